//! Authentication and authorization of requests, as a Kubernetes extension API server does it.
//!
//! Authentication: the kube-apiserver aggregator proxies requests with a client certificate signed by
//! the *request-header* CA (front proxy) and names the real user in `X-Remote-User` /
//! `X-Remote-Group` / `X-Remote-Extra-*`. Those headers are believed only on connections whose client
//! certificate verifies against that CA and whose CN is an allowed name. A client certificate from the
//! plain client CA authenticates its CN (user) and O (groups). Everyone else is `system:anonymous`.
//! The CAs and header names come from ConfigMap `kube-system/extension-apiserver-authentication`
//! (and flags), see [`AuthnConfig`].
//!
//! Authorization: delegated to the API server with a SubjectAccessReview per request, decisions cached
//! for 10 s ([`SarAuthorizer`]); members of `system:masters` are always allowed, like the generic API
//! server does. Bearer tokens are not accepted (no TokenReview): the only callers are the aggregator
//! and, for the probe paths, the kubelet.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use http::HeaderMap;
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

pub const ANONYMOUS_USER: &str = "system:anonymous";
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
pub const MASTERS_GROUP: &str = "system:masters";

impl UserInfo {
    pub fn anonymous() -> Self {
        UserInfo {
            name: ANONYMOUS_USER.into(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED_GROUP.into()],
            extra: BTreeMap::new(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS_USER
    }
}

/// What the TLS handshake established about a connection's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnIdentity {
    /// No client certificate (or one that proves nothing we use).
    Anonymous,
    /// The front proxy: its requests carry the user in the request headers.
    FrontProxy { cn: String },
    /// A client certificate from the client CA.
    X509(UserInfo),
}

/// Request-header settings of the front proxy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHeaderConfig {
    /// CNs allowed to assert users through headers; empty = any certificate from the CA.
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub uid_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_headers_prefixes: Vec<String>,
}

/// Everything authentication needs; rebuilt when the ConfigMap or the flag files change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthnConfig {
    /// PEM bundle of the front proxy's CA (`requestheader-client-ca-file`).
    pub requestheader_ca_pem: String,
    pub requestheader: RequestHeaderConfig,
    /// PEM bundle(s) of CAs whose client certificates authenticate their CN (`client-ca-file`).
    pub client_ca_pem: String,
}

/// Keys of ConfigMap `kube-system/extension-apiserver-authentication`.
pub mod configmap_keys {
    pub const NAMESPACE: &str = "kube-system";
    pub const NAME: &str = "extension-apiserver-authentication";
    pub const CLIENT_CA: &str = "client-ca-file";
    pub const REQUESTHEADER_CA: &str = "requestheader-client-ca-file";
    pub const ALLOWED_NAMES: &str = "requestheader-allowed-names";
    pub const USERNAME_HEADERS: &str = "requestheader-username-headers";
    pub const UID_HEADERS: &str = "requestheader-uid-headers";
    pub const GROUP_HEADERS: &str = "requestheader-group-headers";
    pub const EXTRA_PREFIXES: &str = "requestheader-extra-headers-prefix";
}

impl AuthnConfig {
    /// Reads the ConfigMap's data. List values are JSON arrays of strings, as the API server writes them.
    pub fn from_configmap(data: &BTreeMap<String, String>) -> Result<Self, String> {
        use configmap_keys::*;
        let list = |key: &str| -> Result<Vec<String>, String> {
            match data.get(key).map(|s| s.trim()) {
                None | Some("") => Ok(Vec::new()),
                Some(s) => serde_json::from_str::<Vec<String>>(s)
                    .map_err(|e| format!("{key}: not a JSON list of strings: {e}")),
            }
        };
        let mut requestheader = RequestHeaderConfig {
            allowed_names: list(ALLOWED_NAMES)?,
            username_headers: list(USERNAME_HEADERS)?,
            uid_headers: list(UID_HEADERS)?,
            group_headers: list(GROUP_HEADERS)?,
            extra_headers_prefixes: list(EXTRA_PREFIXES)?,
        };
        let requestheader_ca_pem = data.get(REQUESTHEADER_CA).cloned().unwrap_or_default();
        if !requestheader_ca_pem.trim().is_empty() && requestheader.username_headers.is_empty() {
            // The API server's defaults, in case an older one left the header lists out.
            requestheader.username_headers = vec!["X-Remote-User".into()];
            requestheader.group_headers = vec!["X-Remote-Group".into()];
            requestheader.extra_headers_prefixes = vec!["X-Remote-Extra-".into()];
        }
        Ok(AuthnConfig {
            requestheader_ca_pem,
            requestheader,
            client_ca_pem: data.get(CLIENT_CA).cloned().unwrap_or_default(),
        })
    }
}

/// Parses every certificate of a PEM bundle.
pub fn parse_pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("reading PEM certificates: {e}"))
}

fn roots(certs: &[CertificateDer<'static>]) -> Result<rustls::RootCertStore, String> {
    let mut store = rustls::RootCertStore::empty();
    for c in certs {
        store
            .add(c.clone())
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    Ok(store)
}

/// A verifier for client chains ending at `certs`, or `None` when there are none.
fn verifier(
    certs: &[CertificateDer<'static>],
) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    if certs.is_empty() {
        return Ok(None);
    }
    let v = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(certs)?),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| format!("building a client certificate verifier: {e}"))?;
    Ok(Some(v))
}

/// The compiled form of an [`AuthnConfig`]: verifiers for both CAs and the header names.
pub struct Authenticator {
    pub config: AuthnConfig,
    requestheader: Option<Arc<dyn ClientCertVerifier>>,
    client: Option<Arc<dyn ClientCertVerifier>>,
    /// Both CAs together: what the TLS layer accepts (client certificates stay optional).
    pub all_roots: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(config: AuthnConfig) -> Result<Self, String> {
        let rh = parse_pem_certs(&config.requestheader_ca_pem)
            .map_err(|e| format!("requestheader client CA: {e}"))?;
        let cl = parse_pem_certs(&config.client_ca_pem).map_err(|e| format!("client CA: {e}"))?;
        let mut all_roots = rh.clone();
        all_roots.extend(cl.iter().cloned());
        Ok(Authenticator {
            requestheader: verifier(&rh)?,
            client: verifier(&cl)?,
            all_roots,
            config,
        })
    }

    /// Classifies a connection by its client certificate chain (end entity first).
    pub fn identify(&self, chain: Option<&[CertificateDer<'static>]>) -> ConnIdentity {
        let Some((ee, intermediates)) = chain.and_then(|c| c.split_first()) else {
            return ConnIdentity::Anonymous;
        };
        let now = UnixTime::now();
        let subject = subject_names(ee);
        if let Some(v) = &self.requestheader
            && v.verify_client_cert(ee, intermediates, now).is_ok()
        {
            let cn = subject.cn.clone().unwrap_or_default();
            let allowed = &self.config.requestheader.allowed_names;
            if allowed.is_empty() || allowed.iter().any(|a| a == &cn) {
                return ConnIdentity::FrontProxy { cn };
            }
            tracing::debug!(%cn, "request-header client certificate with a CN that is not allowed");
        }
        if let Some(v) = &self.client
            && v.verify_client_cert(ee, intermediates, now).is_ok()
            && let Some(cn) = subject.cn
        {
            let mut groups = subject.orgs;
            groups.push(AUTHENTICATED_GROUP.into());
            return ConnIdentity::X509(UserInfo {
                name: cn,
                uid: String::new(),
                groups,
                extra: BTreeMap::new(),
            });
        }
        ConnIdentity::Anonymous
    }

    /// The user of one request on a connection identified as `conn`.
    pub fn user(&self, conn: &ConnIdentity, headers: &HeaderMap) -> UserInfo {
        match conn {
            ConnIdentity::Anonymous => UserInfo::anonymous(),
            ConnIdentity::X509(u) => u.clone(),
            ConnIdentity::FrontProxy { .. } => {
                user_from_headers(&self.config.requestheader, headers)
                    .unwrap_or_else(UserInfo::anonymous)
            }
        }
    }
}

/// Reads the user a front proxy asserts; `None` when no username header is set.
pub fn user_from_headers(rh: &RequestHeaderConfig, headers: &HeaderMap) -> Option<UserInfo> {
    let first = |names: &[String]| {
        names.iter().find_map(|n| {
            headers
                .get_all(n.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| !v.is_empty())
                .map(str::to_owned)
        })
    };
    let name = first(&rh.username_headers)?;
    let uid = first(&rh.uid_headers).unwrap_or_default();
    let mut groups = Vec::new();
    for n in &rh.group_headers {
        for v in headers.get_all(n.as_str()) {
            if let Ok(v) = v.to_str() {
                groups.push(v.to_owned());
            }
        }
    }
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (hname, value) in headers {
        let lower = hname.as_str();
        for prefix in &rh.extra_headers_prefixes {
            let p = prefix.to_ascii_lowercase();
            if let Some(key) = lower.strip_prefix(p.as_str())
                && !key.is_empty()
                && let Ok(v) = value.to_str()
            {
                extra
                    .entry(percent_decode(key).to_ascii_lowercase())
                    .or_default()
                    .push(v.to_owned());
            }
        }
    }
    Some(UserInfo {
        name,
        uid,
        groups,
        extra,
    })
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("k={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

struct SubjectNames {
    cn: Option<String>,
    orgs: Vec<String>,
}

fn subject_names(cert: &CertificateDer<'_>) -> SubjectNames {
    use x509_cert::der::Decode;
    use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
    const CN: &str = "2.5.4.3";
    const O: &str = "2.5.4.10";
    let mut out = SubjectNames {
        cn: None,
        orgs: Vec::new(),
    };
    let Ok(parsed) = x509_cert::Certificate::from_der(cert.as_ref()) else {
        return out;
    };
    for rdn in parsed.tbs_certificate.subject.0.iter() {
        for atv in rdn.0.iter() {
            let oid = atv.oid.to_string();
            let text = Utf8StringRef::try_from(&atv.value)
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    PrintableStringRef::try_from(&atv.value).map(|s| s.as_str().to_owned())
                })
                .ok();
            match (oid.as_str(), text) {
                (CN, Some(t)) => out.cn = Some(t),
                (O, Some(t)) => out.orgs.push(t),
                _ => {}
            }
        }
    }
    out
}

/// What a request wants to do, in SubjectAccessReview terms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attributes {
    Resource {
        verb: String,
        group: String,
        version: String,
        resource: String,
        namespace: String,
    },
    NonResource {
        verb: String,
        path: String,
    },
}

/// An authorization decision with the API server's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
#[error("authorizing the request: {0}")]
pub struct AuthzError(pub String);

#[async_trait]
pub trait Authorizer: Send + Sync + 'static {
    async fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<Decision, AuthzError>;
}

/// Allows everything. For tests and benchmarks only.
pub struct AllowAll;

#[async_trait]
impl Authorizer for AllowAll {
    async fn authorize(&self, _: &UserInfo, _: &Attributes) -> Result<Decision, AuthzError> {
        Ok(Decision {
            allowed: true,
            reason: String::new(),
        })
    }
}

/// Something that answers SubjectAccessReviews (the API server; a fake in tests).
#[async_trait]
pub trait ReviewSubjectAccess: Send + Sync + 'static {
    async fn review(&self, review: SubjectAccessReview) -> Result<SubjectAccessReview, AuthzError>;
}

#[async_trait]
impl ReviewSubjectAccess for kube::Client {
    async fn review(&self, review: SubjectAccessReview) -> Result<SubjectAccessReview, AuthzError> {
        let api: kube::Api<SubjectAccessReview> = kube::Api::all(self.clone());
        api.create(&Default::default(), &review)
            .await
            .map_err(|e| AuthzError(format!("creating a SubjectAccessReview: {e}")))
    }
}

type CacheKey = (UserInfo, Attributes);

/// Delegated authorization with a decision cache (allowed and denied answers both live `ttl`).
pub struct SarAuthorizer<R> {
    reviewer: R,
    ttl: Duration,
    cache: Mutex<HashMap<CacheKey, (Decision, Instant)>>,
    max_entries: usize,
}

impl<R: ReviewSubjectAccess> SarAuthorizer<R> {
    pub fn new(reviewer: R, ttl: Duration) -> Self {
        SarAuthorizer {
            reviewer,
            ttl,
            cache: Mutex::new(HashMap::new()),
            max_entries: 10_000,
        }
    }

    fn cached(&self, key: &CacheKey) -> Option<Decision> {
        let cache = self.cache.lock().ok()?;
        let (d, at) = cache.get(key)?;
        (at.elapsed() < self.ttl).then(|| d.clone())
    }

    fn remember(&self, key: CacheKey, d: Decision) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= self.max_entries {
                let ttl = self.ttl;
                cache.retain(|_, (_, at)| at.elapsed() < ttl);
                if cache.len() >= self.max_entries {
                    cache.clear();
                }
            }
            cache.insert(key, (d, Instant::now()));
        }
    }
}

pub fn subject_access_review(user: &UserInfo, attrs: &Attributes) -> SubjectAccessReview {
    let mut spec = SubjectAccessReviewSpec {
        user: Some(user.name.clone()),
        groups: Some(user.groups.clone()),
        uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
        extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
        ..Default::default()
    };
    match attrs {
        Attributes::Resource {
            verb,
            group,
            version,
            resource,
            namespace,
        } => {
            spec.resource_attributes = Some(ResourceAttributes {
                verb: Some(verb.clone()),
                group: Some(group.clone()),
                version: Some(version.clone()),
                resource: Some(resource.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            })
        }
        Attributes::NonResource { verb, path } => {
            spec.non_resource_attributes = Some(NonResourceAttributes {
                verb: Some(verb.clone()),
                path: Some(path.clone()),
            })
        }
    }
    SubjectAccessReview {
        spec,
        ..Default::default()
    }
}

#[async_trait]
impl<R: ReviewSubjectAccess> Authorizer for SarAuthorizer<R> {
    async fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<Decision, AuthzError> {
        if user.groups.iter().any(|g| g == MASTERS_GROUP) {
            return Ok(Decision {
                allowed: true,
                reason: String::new(),
            });
        }
        let key = (user.clone(), attrs.clone());
        if let Some(d) = self.cached(&key) {
            return Ok(d);
        }
        let answer = self
            .reviewer
            .review(subject_access_review(user, attrs))
            .await?;
        let status = answer.status.unwrap_or_default();
        let d = Decision {
            allowed: status.allowed && !status.denied.unwrap_or(false),
            reason: status
                .reason
                .or(status.evaluation_error)
                .unwrap_or_default(),
        };
        self.remember(key, d.clone());
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn configmap_is_read_like_the_api_server_writes_it() {
        let mut data = BTreeMap::new();
        data.insert(
            "requestheader-allowed-names".into(),
            "[\"front-proxy-client\"]".into(),
        );
        data.insert(
            "requestheader-username-headers".into(),
            "[\"X-Remote-User\"]".into(),
        );
        data.insert(
            "requestheader-group-headers".into(),
            "[\"X-Remote-Group\"]".into(),
        );
        data.insert(
            "requestheader-extra-headers-prefix".into(),
            "[\"X-Remote-Extra-\"]".into(),
        );
        let c = AuthnConfig::from_configmap(&data).expect("parses");
        assert_eq!(c.requestheader.allowed_names, ["front-proxy-client"]);
        assert_eq!(c.requestheader.username_headers, ["X-Remote-User"]);
        data.insert(
            "requestheader-group-headers".into(),
            "X-Remote-Group".into(),
        );
        assert!(AuthnConfig::from_configmap(&data).is_err());
    }

    #[test]
    fn headers_name_the_user() {
        let rh = RequestHeaderConfig {
            allowed_names: vec![],
            username_headers: vec!["X-Remote-User".into()],
            uid_headers: vec![],
            group_headers: vec!["X-Remote-Group".into()],
            extra_headers_prefixes: vec!["X-Remote-Extra-".into()],
        };
        let mut h = HeaderMap::new();
        assert_eq!(user_from_headers(&rh, &h), None);
        h.insert(
            "x-remote-user",
            "system:serviceaccount:kube-system:hpa".parse().unwrap(),
        );
        h.append("x-remote-group", "system:serviceaccounts".parse().unwrap());
        h.append("x-remote-group", "system:authenticated".parse().unwrap());
        h.insert("x-remote-extra-scopes%2Fa", "x".parse().unwrap());
        let u = user_from_headers(&rh, &h).expect("user");
        assert_eq!(u.name, "system:serviceaccount:kube-system:hpa");
        assert_eq!(u.groups, ["system:serviceaccounts", "system:authenticated"]);
        assert_eq!(u.extra.get("scopes/a").map(Vec::len), Some(1));
    }

    struct CountingReviewer {
        calls: AtomicUsize,
        allow: bool,
    }

    #[async_trait]
    impl ReviewSubjectAccess for CountingReviewer {
        async fn review(&self, r: SubjectAccessReview) -> Result<SubjectAccessReview, AuthzError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let ra = r
                .spec
                .resource_attributes
                .clone()
                .expect("resource attributes");
            assert_eq!(ra.group.as_deref(), Some("external.metrics.k8s.io"));
            Ok(SubjectAccessReview {
                status: Some(
                    k8s_openapi::api::authorization::v1::SubjectAccessReviewStatus {
                        allowed: self.allow,
                        reason: Some("test".into()),
                        ..Default::default()
                    },
                ),
                ..r
            })
        }
    }

    #[tokio::test]
    async fn decisions_are_cached_and_masters_skip_the_review() {
        let authz = SarAuthorizer::new(
            CountingReviewer {
                calls: AtomicUsize::new(0),
                allow: false,
            },
            Duration::from_secs(10),
        );
        let attrs = Attributes::Resource {
            verb: "list".into(),
            group: "external.metrics.k8s.io".into(),
            version: "v1beta1".into(),
            resource: "s0-x".into(),
            namespace: "ns".into(),
        };
        let user = UserInfo {
            name: "bob".into(),
            uid: String::new(),
            groups: vec![AUTHENTICATED_GROUP.into()],
            extra: BTreeMap::new(),
        };
        for _ in 0..3 {
            let d = authz.authorize(&user, &attrs).await.expect("answer");
            assert!(!d.allowed);
        }
        assert_eq!(authz.reviewer.calls.load(Ordering::SeqCst), 1);
        let admin = UserInfo {
            groups: vec![MASTERS_GROUP.into()],
            ..user
        };
        assert!(
            authz
                .authorize(&admin, &attrs)
                .await
                .expect("answer")
                .allowed
        );
        assert_eq!(authz.reviewer.calls.load(Ordering::SeqCst), 1);
    }
}
