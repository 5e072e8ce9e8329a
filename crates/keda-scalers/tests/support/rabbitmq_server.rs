//! A real RabbitMQ node for tests (Debian's rabbitmq-server with the management plugin): the rabbitmq
//! scaler's tests and the end-to-end test that scales a Deployment from a queue share it.

// Each test binary uses part of it.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TempDir, free_port};

/// One RabbitMQ node with the management plugin, on free loopback ports, in a scratch directory; its own
/// epmd on a free port, so nothing is shared with (or left to) other Erlang nodes. A watchdog kills
/// both and removes the directory when the test process exits (the shared node lives in a static and is
/// never dropped).
pub struct Rabbit {
    pub amqp: u16,
    pub http: u16,
    pub beam: Child,
    epmd: Child,
    watchdog: Child,
    dir: TempDir,
}

/// TLS listeners of a node: the server certificate and key (PEM) and the CA that clients must present a
/// certificate of (mutual TLS is optional: `fail_if_no_peer_cert = false`).
pub struct RabbitTls {
    pub cert: String,
    pub key: String,
    pub ca: String,
}

impl Rabbit {
    pub fn start(tls: Option<&RabbitTls>) -> (Rabbit, Option<(u16, u16)>) {
        let dir = TempDir::new("rabbitmq");
        let (amqp, http, dist, epmd_port) = (free_port(), free_port(), free_port(), free_port());
        let root = dir.path().to_path_buf();
        let path = |name: &str| root.join(name).display().to_string();
        let mut conf = format!(
            "listeners.tcp.1 = 127.0.0.1:{amqp}\n\
             management.tcp.port = {http}\n\
             management.tcp.ip = 127.0.0.1\n\
             loopback_users = none\n\
             collect_statistics_interval = 500\n"
        );
        let tls_ports = tls.map(|t| {
            std::fs::write(path("server.pem"), &t.cert).expect("write cert");
            std::fs::write(path("server.key"), &t.key).expect("write key");
            std::fs::write(path("ca.pem"), &t.ca).expect("write ca");
            let (amqps, https) = (free_port(), free_port());
            conf.push_str(&format!(
                "listeners.ssl.1 = 127.0.0.1:{amqps}\n\
                 ssl_options.cacertfile = {ca}\n\
                 ssl_options.certfile = {cert}\n\
                 ssl_options.keyfile = {key}\n\
                 ssl_options.verify = verify_peer\n\
                 ssl_options.fail_if_no_peer_cert = false\n\
                 auth_mechanisms.1 = PLAIN\n\
                 auth_mechanisms.2 = AMQPLAIN\n\
                 management.ssl.port = {https}\n\
                 management.ssl.ip = 127.0.0.1\n\
                 management.ssl.cacertfile = {ca}\n\
                 management.ssl.certfile = {cert}\n\
                 management.ssl.keyfile = {key}\n",
                ca = path("ca.pem"),
                cert = path("server.pem"),
                key = path("server.key"),
            ));
            (amqps, https)
        });
        std::fs::write(path("rabbitmq.conf"), conf).expect("write rabbitmq.conf");
        std::fs::write(path("enabled_plugins"), "[rabbitmq_management].\n").expect("plugins");
        let log = std::fs::File::create(path("rabbitmq.log")).expect("log");
        let epmd = Command::new("epmd")
            .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting epmd (Debian's erlang-base, a dependency of rabbitmq-server)");
        let beam = Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server")
            .env("HOME", dir.path())
            .env("RABBITMQ_NODENAME", format!("rabbit-{amqp}@localhost"))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", amqp.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_LOGS", "-")
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            // `erl` replaces the script (its pid is the node's, so a kill stops the node), without a shell.
            .env("RABBITMQ_ALLOW_INPUT", "true")
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-noinput -kernel inet_dist_use_interface {127,0,0,1}",
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting rabbitmq-server (Debian's rabbitmq-server package)");
        let watchdog = Command::new("sh")
            .args([
                "-c",
                "while kill -0 \"$0\" 2>/dev/null; do sleep 0.5; done; kill -9 \"$1\" \"$2\" 2>/dev/null; sleep 1; rm -rf \"$3\"",
                &std::process::id().to_string(),
                &beam.id().to_string(),
                &epmd.id().to_string(),
                &root.display().to_string(),
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("watchdog");
        let mut rabbit = Rabbit {
            amqp,
            http,
            beam,
            epmd,
            watchdog,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let log = std::fs::read_to_string(path("rabbitmq.log")).unwrap_or_default();
            if log.contains("Server startup complete") {
                break;
            }
            if let Ok(Some(status)) = rabbit.beam.try_wait() {
                panic!(
                    "rabbitmq-server exited with {status}:\n{}",
                    rabbit.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "rabbitmq-server did not start within 90 s:\n{}",
                rabbit.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        (rabbit, tls_ports)
    }

    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("rabbitmq.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn stop(&mut self) {
        let _ = self.beam.kill();
        let _ = self.beam.wait();
    }

    /// The broker URL; an empty `vhost` leaves the path out (the default vhost `/`; a bare `/` path would
    /// name the vhost "").
    pub fn amqp_url(&self, vhost: &str) -> String {
        let path = if vhost.is_empty() {
            String::new()
        } else {
            format!("/{vhost}")
        };
        format!("amqp://guest:guest@127.0.0.1:{}{path}", self.amqp)
    }

    pub fn http_url(&self) -> String {
        format!("http://guest:guest@127.0.0.1:{}", self.http)
    }

    /// A management API call as guest; panics unless it succeeds.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("http://127.0.0.1:{}/api/{path}", self.http);
        let mut req = reqwest::Client::new()
            .request(method.clone(), &url)
            .basic_auth("guest", Some("guest"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("management API");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_success(), "{method} {url}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Declares `queue` in `vhost` (URL-escaped) over the management API.
    pub async fn declare(&self, vhost: &str, queue: &str) {
        self.api(
            reqwest::Method::PUT,
            &format!("queues/{vhost}/{queue}"),
            Some(json!({"durable": false, "auto_delete": false})),
        )
        .await;
    }

    /// Publishes `count` messages to `queue` through the default exchange, over the management API.
    pub async fn publish(&self, vhost: &str, queue: &str, count: usize) {
        for i in 0..count {
            let routed = self
                .api(
                    reqwest::Method::POST,
                    &format!("exchanges/{vhost}/amq.default/publish"),
                    Some(json!({"properties": {}, "routing_key": queue,
                        "payload": format!("message {i}"), "payload_encoding": "string"})),
                )
                .await;
            assert_eq!(routed["routed"], true, "publish to {queue}: {routed}");
        }
    }

    /// Removes every message of `queue`.
    pub async fn purge(&self, vhost: &str, queue: &str) {
        self.api(
            reqwest::Method::DELETE,
            &format!("queues/{vhost}/{queue}/contents"),
            None,
        )
        .await;
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        self.stop();
        let _ = self.epmd.kill();
        let _ = self.epmd.wait();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}
