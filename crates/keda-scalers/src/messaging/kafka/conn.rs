//! One connection to one broker: TCP (or TLS), the ApiVersions exchange, SASL, then pipelined requests.
//!
//! kafka-protocol encodes and decodes the messages; this file only frames them (a 4-byte big-endian
//! length, then header and body) and matches responses to requests by correlation id, so any number of
//! triggers can have requests in flight on the one connection at once. A read error, or a request that
//! times out, marks the connection broken; the owner then opens a new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, OffsetFetchRequest, OffsetFetchResponse, RequestHeader,
    ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::config::Sasl;
use super::scram::{Scram, ScramHash};

/// Largest response accepted (a Metadata answer of a big cluster is a few MiB at most).
const MAX_FRAME: usize = 100 * 1024 * 1024;

const CLIENT_ID: &str = "keda";

/// A request this client sends: its API key and response type. (kafka-protocol's own `Request` trait
/// also wants the broker-side decoders, a second copy of every message codec this client never uses.)
pub(super) trait Request: Message + Encodable + HeaderVersion {
    const KEY: i16;
    const NAME: &'static str;
    type Response: Decodable + HeaderVersion;
}

macro_rules! requests {
    ($($req:ident => $resp:ident = $key:literal),* $(,)?) => {
        $(impl Request for $req {
            const KEY: i16 = $key;
            const NAME: &'static str = stringify!($req);
            type Response = $resp;
        })*
    };
}

requests! {
    ListOffsetsRequest => ListOffsetsResponse = 2,
    MetadataRequest => MetadataResponse = 3,
    OffsetFetchRequest => OffsetFetchResponse = 9,
    FindCoordinatorRequest => FindCoordinatorResponse = 10,
    DescribeGroupsRequest => DescribeGroupsResponse = 15,
    SaslHandshakeRequest => SaslHandshakeResponse = 17,
    ApiVersionsRequest => ApiVersionsResponse = 18,
    SaslAuthenticateRequest => SaslAuthenticateResponse = 36,
}

/// Anything the connection can run over: a TCP stream or a TLS stream on one.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type Waiter = oneshot::Sender<Bytes>;

#[derive(Default)]
struct Pending {
    waiters: HashMap<i32, Waiter>,
    /// Why the connection is unusable; set once.
    broken: Option<String>,
}

/// How to reach a broker: the TLS client configuration (with its server name) and the SASL settings.
#[derive(Clone)]
pub(super) struct Dialer {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<Sasl>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

/// A live connection to one broker.
pub(super) struct BrokerConn {
    pub addr: String,
    writer: tokio::sync::Mutex<WriteHalf<Box<dyn Io>>>,
    pending: Arc<Mutex<Pending>>,
    next_id: AtomicI32,
    reader: JoinHandle<()>,
    /// The broker's version range per API key, from ApiVersions.
    versions: OnceLock<HashMap<i16, (i16, i16)>>,
    request_timeout: Duration,
}

impl Drop for BrokerConn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Splits `host:port` (`[v6]:port`); Kafka has no default port, upstream requires one.
fn host_port(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?} has no port"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{addr:?}: {port:?} is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), port))
}

impl BrokerConn {
    /// Connects, negotiates versions and authenticates, all within the dialer's connect timeout.
    pub async fn connect(addr: &str, dialer: &Dialer) -> Result<Arc<BrokerConn>, String> {
        match tokio::time::timeout(dialer.connect_timeout, Self::connect_inner(addr, dialer)).await
        {
            Ok(r) => r,
            Err(_) => Err(format!(
                "connecting to {addr}: no answer within {:?}",
                dialer.connect_timeout
            )),
        }
    }

    async fn connect_inner(addr: &str, dialer: &Dialer) -> Result<Arc<BrokerConn>, String> {
        let (host, port) = host_port(addr)?;
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match &dialer.tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
                Box::new(tls)
            }
            None => Box::new(tcp),
        };
        let (read, write) = tokio::io::split(io);
        let pending = Arc::new(Mutex::new(Pending::default()));
        let reader = tokio::spawn(read_loop(read, pending.clone()));
        let conn = BrokerConn {
            addr: addr.to_owned(),
            writer: tokio::sync::Mutex::new(write),
            pending,
            next_id: AtomicI32::new(1),
            reader,
            versions: OnceLock::new(),
            request_timeout: dialer.request_timeout,
        };
        // v0: every broker from 0.10 to 4.x answers it, and in its own (v0) format.
        let api: ApiVersionsResponse = conn
            .send(&ApiVersionsRequest::default(), 0)
            .await
            .map_err(|e| format!("{addr}: ApiVersions: {e}"))?;
        if api.error_code != 0 {
            return Err(format!(
                "{addr}: ApiVersions: {}",
                error_name(api.error_code)
            ));
        }
        let versions = api
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        let _ = conn.versions.set(versions);
        if let Some(sasl) = &dialer.sasl {
            conn.authenticate(sasl)
                .await
                .map_err(|e| format!("{addr}: SASL {}: {e}", sasl.mechanism()))?;
        }
        Ok(Arc::new(conn))
    }

    /// SASL over SaslHandshake v1 + SaslAuthenticate (KIP-152).
    async fn authenticate(&self, sasl: &Sasl) -> Result<(), String> {
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(sasl.mechanism()));
        let resp = self.send(&handshake, 1).await?;
        if resp.error_code != 0 {
            let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(format!(
                "{} (the broker offers {offered:?})",
                error_name(resp.error_code)
            ));
        }
        let auth_version = self.version::<SaslAuthenticateRequest>(0, 2)?;
        match sasl {
            Sasl::Plain { username, password } => {
                let msg = format!("\0{username}\0{password}");
                self.sasl_step(msg.into_bytes(), auth_version).await?;
                Ok(())
            }
            Sasl::ScramSha256 { username, password } | Sasl::ScramSha512 { username, password } => {
                let hash = if matches!(sasl, Sasl::ScramSha256 { .. }) {
                    ScramHash::Sha256
                } else {
                    ScramHash::Sha512
                };
                let mut scram = Scram::new(hash, username, password)?;
                let server_first = self.sasl_step(scram.client_first(), auth_version).await?;
                let client_final = scram.client_final(&server_first)?;
                let server_final = self.sasl_step(client_final, auth_version).await?;
                scram.verify_server_final(&server_final)
            }
            Sasl::OAuthBearer { .. } | Sasl::Gssapi => {
                Err("this mechanism is not supported by keda-rs".into())
            }
        }
    }

    async fn sasl_step(&self, bytes: Vec<u8>, version: i16) -> Result<Bytes, String> {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes));
        let resp = self.send(&req, version).await?;
        if resp.error_code != 0 {
            let msg = resp
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            return Err(format!("{}: {msg}", error_name(resp.error_code)));
        }
        Ok(resp.auth_bytes)
    }

    /// The highest version of `R` both sides speak, within `lo..=hi` (what the caller's code builds).
    pub fn version<R: Request>(&self, lo: i16, hi: i16) -> Result<i16, String> {
        let api = R::NAME.trim_end_matches("Request");
        let (bmin, bmax) = self
            .versions
            .get()
            .and_then(|v| v.get(&R::KEY).copied())
            .ok_or_else(|| format!("the broker does not support {api}"))?;
        let min = lo.max(bmin).max(R::VERSIONS.min);
        let max = hi.min(bmax).min(R::VERSIONS.max);
        if min > max {
            return Err(format!(
                "no common version of {api}: the broker speaks {bmin}..{bmax}, keda-rs {lo}..{hi}"
            ));
        }
        Ok(max)
    }

    /// Whether the connection can still be used.
    pub fn is_broken(&self) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .broken
            .is_some()
    }

    fn mark_broken(&self, why: &str) {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.broken.is_none() {
            p.broken = Some(why.to_owned());
        }
        p.waiters.clear();
    }

    /// Sends `req` at `version` and waits for its response (at most the request timeout).
    pub async fn send<R: Request>(&self, req: &R, version: i16) -> Result<R::Response, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i32(0);
        header
            .encode(&mut buf, R::header_version(version))
            .and_then(|_| req.encode(&mut buf, version))
            .map_err(|e| format!("encoding request: {e}"))?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());

        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(why) = &p.broken {
                return Err(why.clone());
            }
            p.waiters.insert(id, tx);
        }
        let exchange = async {
            {
                let mut w = self.writer.lock().await;
                w.write_all(&buf)
                    .await
                    .map_err(|e| format!("writing to {}: {e}", self.addr))?;
                w.flush()
                    .await
                    .map_err(|e| format!("writing to {}: {e}", self.addr))?;
            }
            rx.await.map_err(|_| {
                let p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                p.broken
                    .clone()
                    .unwrap_or_else(|| format!("connection to {} closed", self.addr))
            })
        };
        let mut body = match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => {
                self.mark_broken(&e);
                return Err(e);
            }
            Err(_) => {
                let e = format!("{}: no answer within {:?}", self.addr, self.request_timeout);
                // The stream may be stuck mid-frame: a fresh connection is safer than waiting on.
                self.mark_broken(&e);
                return Err(e);
            }
        };
        ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| format!("decoding response header: {e}"))?;
        R::Response::decode(&mut body, version).map_err(|e| format!("decoding response: {e}"))
    }
}

/// Reads frames and hands each to the request with its correlation id, until the stream ends.
async fn read_loop(mut read: ReadHalf<Box<dyn Io>>, pending: Arc<Mutex<Pending>>) {
    let why = loop {
        let len = match read.read_i32().await {
            Ok(n) if n >= 4 && (n as usize) <= MAX_FRAME => n as usize,
            Ok(n) => break format!("invalid frame length {n}"),
            Err(e) => break format!("reading: {e}"),
        };
        let mut frame = BytesMut::zeroed(len);
        if let Err(e) = read.read_exact(&mut frame).await {
            break format!("reading: {e}");
        }
        let frame = frame.freeze();
        let id = (&frame[..4]).get_i32();
        let waiter = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiters
            .remove(&id);
        if let Some(w) = waiter {
            let _ = w.send(frame);
        }
    };
    let mut p = pending.lock().unwrap_or_else(PoisonError::into_inner);
    if p.broken.is_none() {
        p.broken = Some(format!("connection closed ({why})"));
    }
    p.waiters.clear();
}

/// A Kafka error code as its name (the codes the scaler meets; others by number).
pub(super) fn error_name(code: i16) -> String {
    let name = match code {
        -1 => "UNKNOWN_SERVER_ERROR",
        1 => "OFFSET_OUT_OF_RANGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        16 => "NOT_COORDINATOR",
        25 => "UNKNOWN_MEMBER_ID",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        30 => "GROUP_AUTHORIZATION_FAILED",
        31 => "CLUSTER_AUTHORIZATION_FAILED",
        33 => "UNSUPPORTED_SASL_MECHANISM",
        34 => "ILLEGAL_SASL_STATE",
        35 => "UNSUPPORTED_VERSION",
        36 => "TOPIC_ALREADY_EXISTS",
        58 => "SASL_AUTHENTICATION_FAILED",
        69 => "GROUP_ID_NOT_FOUND",
        _ => return format!("error code {code}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(host_port("b1:9092"), Ok(("b1".into(), 9092)));
        assert_eq!(host_port("[::1]:9093"), Ok(("::1".into(), 9093)));
        assert!(host_port("b1").is_err());
        assert!(host_port("b1:x").is_err());
    }
}
