//! Real backend servers for scaler tests, run as child processes on loopback (no containers here).
//! Each test file that needs one declares `mod support;` and starts what it needs; the process is
//! killed when the guard drops. The Debian packages are listed in `tests/backends/debian-packages.txt`
//! at the workspace root and installed by `cargo xtask test`.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `hack/backends/<name>.sh` installed a backend: `${KEDA_RS_CACHE:-~/.cache/keda-rs}/<dir>`.
/// Panics naming the script when it is not there (`cargo xtask test` runs every script first).
pub fn cached_backend(dir: &str, script: &str) -> PathBuf {
    let root = std::env::var_os("KEDA_RS_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/keda-rs")))
        .expect("KEDA_RS_CACHE or HOME is set");
    let path = root.join(dir);
    assert!(
        path.exists(),
        "{} is missing: run `bash hack/backends/{script}.sh` (cargo xtask test does)",
        path.display()
    );
    path
}

/// A free loopback TCP port (bind to :0, read it back, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "keda-rs-{prefix}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server process; killed (and its scratch dir removed) on drop.
pub struct ServerProcess {
    pub name: String,
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
    pub dir: TempDir,
}

impl ServerProcess {
    /// Starts `program args…` (logging to a file in its scratch dir) and waits until `port` accepts TCP
    /// connections. Panics with the log's tail if the process exits or never listens.
    pub fn start(
        name: &str,
        program: &str,
        args: &[String],
        port: u16,
        dir: TempDir,
        timeout: Duration,
    ) -> ServerProcess {
        let log = dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("create log");
        let err = out.try_clone().expect("clone log handle");
        let child = Command::new(program)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e} (is its Debian package installed? see tests/backends/debian-packages.txt)"));
        let mut server = ServerProcess {
            name: name.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            log,
            dir,
        };
        server.wait_listening(timeout);
        server
    }

    fn wait_listening(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited early with {status}:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not listen on {} within {timeout:?}:\n{}",
                    self.name,
                    self.addr,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last 30 lines the server logged.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Stops the server now (to test backend failures).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a command to completion, panicking with its output if it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A throwaway certificate authority for TLS stand-ins: signs server and client certificates.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "keda-rs test CA");
        let cert = params.self_signed(&key).expect("self-sign CA");
        TestCa { cert, key }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses), usable by servers and clients: (cert, key) PEM.
    pub fn leaf(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(sans).expect("leaf params");
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            names.first().copied().unwrap_or("client"),
        );
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign leaf");
        (cert.pem(), key.serialize_pem())
    }
}

/// Serves `app` over HTTPS on `127.0.0.1:<port>` (0 picks a free port) with the given certificate. With
/// `client_ca`, clients must present a certificate signed by it (mutual TLS).
pub async fn serve_tls(
    app: axum::Router,
    port: u16,
    cert_pem: &str,
    key_pem: &str,
    client_ca: Option<&str>,
) -> SocketAddr {
    serve_tls_versions(
        app,
        port,
        cert_pem,
        key_pem,
        client_ca,
        rustls::DEFAULT_VERSIONS,
    )
    .await
}

/// [`serve_tls`] speaking only the given TLS versions (`&[&rustls::version::TLS12]`: a TLS 1.2-only server).
pub async fn serve_tls_versions(
    app: axum::Router,
    port: u16,
    cert_pem: &str,
    key_pem: &str,
    client_ca: Option<&str>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("server certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("server key PEM");
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("TLS versions");
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.expect("client CA PEM")).expect("add client CA");
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .expect("server TLS config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    addr
}

/// Serves `app` over plain HTTP on a free loopback port.
pub async fn serve_http(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Starts Debian's `prometheus` on a free loopback port, scraping `targets` every second.
pub fn start_prometheus(targets: &[SocketAddr]) -> ServerProcess {
    let dir = TempDir::new("prometheus");
    let port = free_port();
    let list = targets
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    scrape_interval: 1s\n    static_configs:\n      - targets: [{list}]\n"
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).expect("write prometheus.yml");
    let args = vec![
        format!("--config.file={}", config_path.display()),
        format!("--storage.tsdb.path={}", dir.path().join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    ServerProcess::start(
        "prometheus",
        "/usr/bin/prometheus",
        &args,
        port,
        dir,
        Duration::from_secs(30),
    )
}

impl ServerProcess {
    /// Process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the server to shut down with `signal` (`INT`, `TERM`…), waits up to `timeout` for it to exit,
    /// then kills it. Servers with worker processes (PostgreSQL) take their workers down this way.
    pub fn stop_gracefully(&mut self, signal: &str, timeout: Duration) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-s", signal, &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.stop();
    }
}

/// Starts Debian's `redis-server` on a free loopback port, without persistence; `extra` adds arguments.
pub fn start_redis(extra: &[String]) -> ServerProcess {
    start_redis_on(free_port(), extra)
}

/// Starts `redis-server` on the given loopback port (to restart a server where clients expect it).
pub fn start_redis_on(port: u16, extra: &[String]) -> ServerProcess {
    let dir = TempDir::new("redis");
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--daemonize",
        "no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--dir".to_string(), dir.path().display().to_string()]);
    args.extend(extra.iter().cloned());
    ServerProcess::start(
        "redis-server",
        "redis-server",
        &args,
        port,
        dir,
        Duration::from_secs(10),
    )
}

/// Runs `redis-cli -p <port> args…` (`-c` follows cluster redirections) and returns its output.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let port = port.to_string();
    let mut all = vec!["-c", "-p", port.as_str()];
    all.extend_from_slice(args);
    run("redis-cli", &all)
}

/// Polls `probe` every 100 ms until it returns true, panicking with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !probe() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts a Redis Cluster of `size` primaries (no replicas), each on free loopback ports (client and
/// cluster bus), created with `redis-cli --cluster create` and waited on until every node reports
/// `cluster_state:ok`.
pub fn start_redis_cluster(size: usize) -> Vec<ServerProcess> {
    let nodes: Vec<ServerProcess> = (0..size)
        .map(|_| {
            let bus = free_port();
            start_redis(&[
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-config-file".into(),
                "nodes.conf".into(),
                "--cluster-port".into(),
                bus.to_string(),
                "--cluster-node-timeout".into(),
                "5000".into(),
            ])
        })
        .collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.to_string()).collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    run("redis-cli", &args);
    for n in &nodes {
        wait_until(
            "the redis cluster to be ok",
            Duration::from_secs(30),
            || redis_cli(n.addr.port(), &["CLUSTER", "INFO"]).contains("cluster_state:ok"),
        );
    }
    nodes
}

/// Starts a Redis Sentinel (`redis-server <conf> --sentinel`) on a free loopback port, monitoring the
/// primary at `primary_port` as `master_name` (quorum 1), and waits until it names the primary.
pub fn start_redis_sentinel(primary_port: u16, master_name: &str) -> ServerProcess {
    let dir = TempDir::new("redis-sentinel");
    let port = free_port();
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {}\n\
             sentinel monitor {master_name} 127.0.0.1 {primary_port} 1\n\
             sentinel down-after-milliseconds {master_name} 60000\n",
            dir.path().display()
        ),
    )
    .expect("write sentinel.conf");
    let args = vec![conf.display().to_string(), "--sentinel".to_string()];
    let sentinel = ServerProcess::start(
        "redis-sentinel",
        "redis-server",
        &args,
        port,
        dir,
        Duration::from_secs(10),
    );
    wait_until(
        "the sentinel to know the primary",
        Duration::from_secs(10),
        || {
            run(
                "redis-cli",
                &[
                    "-p",
                    &port.to_string(),
                    "SENTINEL",
                    "get-master-addr-by-name",
                    master_name,
                ],
            )
            .contains(&primary_port.to_string())
        },
    );
    sentinel
}

/// A PostgreSQL server in a scratch directory, shut down (fast shutdown) on drop.
pub struct Postgres {
    pub server: ServerProcess,
    /// The superuser `keda`, whose password is `password` over TCP (scram-sha-256); the Unix socket in
    /// the scratch dir trusts local users.
    pub user: String,
    pub password: String,
}

impl Postgres {
    /// Runs SQL as `keda` through the Unix socket with Debian's `psql`; returns the unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let socket_dir = self.server.dir.path().display().to_string();
        let port = self.server.addr.port().to_string();
        run(
            "psql",
            &[
                "-h",
                &socket_dir,
                "-p",
                &port,
                "-U",
                &self.user,
                "-d",
                "postgres",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        )
    }

    /// Shuts the server down now (fast shutdown: workers exit, clients are disconnected).
    pub fn stop(&mut self) {
        self.server.stop_gracefully("INT", Duration::from_secs(10));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Debian's newest PostgreSQL server binaries (`/usr/lib/postgresql/<version>/bin`).
pub fn postgres_bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("/usr/lib/postgresql (is the postgresql package installed? see tests/backends/debian-packages.txt)")
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("postgres").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL server under /usr/lib/postgresql")
        .1
}

/// Starts PostgreSQL (initdb into a scratch dir, then `postgres` on a free loopback port). PostgreSQL
/// refuses to run as root, so when the tests run as root both run as the `postgres` system user created
/// by Debian's package (`nobody` if it is missing), through `setpriv`, which execs in place so the
/// process we hold is the postmaster itself; the scratch dir is chowned to that user.
pub fn start_postgres() -> Postgres {
    let dir = TempDir::new("postgres");
    let port = free_port();
    let bin = postgres_bin_dir();
    let password = "s3cret pass".to_string();
    let pwfile = dir.path().join("pwfile");
    std::fs::write(&pwfile, format!("{password}\n")).expect("write pwfile");
    let is_root = run("id", &["-u"]).trim() == "0";
    let mut prefix: Vec<String> = Vec::new();
    if is_root {
        let user = if Command::new("id")
            .arg("postgres")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
        {
            "postgres"
        } else {
            "nobody"
        };
        run("chown", &["-R", user, &dir.path().display().to_string()]);
        prefix = [
            "setpriv",
            &format!("--reuid={user}"),
            &format!("--regid={user}"),
            "--init-groups",
            "--",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
    }
    let data = dir.path().join("data").display().to_string();
    let mut initdb: Vec<String> = prefix.clone();
    initdb.extend([
        bin.join("initdb").display().to_string(),
        "-D".into(),
        data.clone(),
        "-U".into(),
        "keda".into(),
        format!("--pwfile={}", pwfile.display()),
        "--auth-local=trust".into(),
        "--auth-host=scram-sha-256".into(),
        "-E".into(),
        "UTF8".into(),
        "--no-sync".into(),
        "--no-instructions".into(),
    ]);
    let (program, rest) = initdb.split_first().expect("initdb command");
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    run(program, &rest);
    let mut server: Vec<String> = prefix;
    server.extend([
        bin.join("postgres").display().to_string(),
        "-D".into(),
        data,
        "-c".into(),
        "listen_addresses=127.0.0.1".into(),
        "-c".into(),
        format!("port={port}"),
        "-c".into(),
        format!("unix_socket_directories={}", dir.path().display()),
        "-c".into(),
        "fsync=off".into(),
        "-c".into(),
        "shared_buffers=16MB".into(),
    ]);
    let (program, args) = server.split_first().expect("postgres command");
    let program = program.clone();
    let server = ServerProcess::start(
        "postgres",
        &program,
        args,
        port,
        dir,
        Duration::from_secs(30),
    );
    let pg = Postgres {
        server,
        user: "keda".into(),
        password,
    };
    wait_until(
        "postgres to accept queries",
        Duration::from_secs(20),
        || {
            let socket_dir = pg.server.dir.path().display().to_string();
            Command::new("psql")
                .args([
                    "-h",
                    &socket_dir,
                    "-p",
                    &port.to_string(),
                    "-U",
                    "keda",
                    "-d",
                    "postgres",
                    "-c",
                    "select 1",
                ])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        },
    );
    pg
}

/// A MariaDB server in a scratch directory (Debian's `mariadb-server`).
pub struct MariaDb {
    pub server: ServerProcess,
    socket: PathBuf,
}

impl MariaDb {
    /// Runs SQL as root through the Unix socket with the `mariadb` client; returns the tab-separated output.
    pub fn sql(&self, sql: &str) -> String {
        let socket = self.socket.display().to_string();
        run(
            "mariadb",
            &[
                "--no-defaults",
                "-S",
                &socket,
                "-u",
                "root",
                "-N",
                "-B",
                "-e",
                sql,
            ],
        )
    }
}

/// Starts MariaDB: `mariadb-install-db` into a scratch dir, then `mariadbd` on a free loopback port (as
/// root, with `--user=root`, when the tests run as root); `extra` adds server options.
pub fn start_mariadb(extra: &[String]) -> MariaDb {
    let dir = TempDir::new("mariadb");
    let port = free_port();
    let data = dir.path().join("data").display().to_string();
    let socket = dir.path().join("mysqld.sock");
    let user = run("id", &["-un"]).trim().to_string();
    run(
        "mariadb-install-db",
        &[
            "--no-defaults",
            &format!("--datadir={data}"),
            &format!("--user={user}"),
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ],
    );
    let args: Vec<String> = vec![
        "--no-defaults".into(),
        format!("--datadir={data}"),
        format!("--socket={}", socket.display()),
        format!("--port={port}"),
        "--bind-address=127.0.0.1".into(),
        format!("--user={user}"),
        "--skip-log-bin".into(),
        "--skip-name-resolve".into(),
        format!("--pid-file={}", dir.path().join("mysqld.pid").display()),
        format!("--tmpdir={}", dir.path().display()),
        "--innodb-buffer-pool-size=16M".into(),
    ];
    let args: Vec<String> = args.into_iter().chain(extra.iter().cloned()).collect();
    let server = ServerProcess::start(
        "mariadbd",
        "mariadbd",
        &args,
        port,
        dir,
        Duration::from_secs(30),
    );
    MariaDb { server, socket }
}

/// Starts `redis-server` serving only TLS on a free loopback port, with the given server certificate and
/// key (PEM); `ca` (PEM) verifies client certificates, which are required when `require_client_cert`.
pub fn start_redis_tls(
    cert: &str,
    key: &str,
    ca: &str,
    require_client_cert: bool,
) -> ServerProcess {
    let dir = TempDir::new("redis-tls");
    let port = free_port();
    let write = |name: &str, content: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write TLS file");
        path.display().to_string()
    };
    let args: Vec<String> = vec![
        "--port".into(),
        "0".into(),
        "--tls-port".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--save".into(),
        "".into(),
        "--appendonly".into(),
        "no".into(),
        "--dir".into(),
        dir.path().display().to_string(),
        "--tls-cert-file".into(),
        write("server.crt", cert),
        "--tls-key-file".into(),
        write("server.key", key),
        "--tls-ca-cert-file".into(),
        write("ca.pem", ca),
        "--tls-auth-clients".into(),
        if require_client_cert { "yes" } else { "no" }.into(),
    ];
    ServerProcess::start(
        "redis-server-tls",
        "redis-server",
        &args,
        port,
        dir,
        Duration::from_secs(10),
    )
}
