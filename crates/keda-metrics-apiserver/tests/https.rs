//! The HTTPS server end to end on loopback: who a request is (front-proxy certificate + X-Remote-*
//! headers, client-CA certificate, anonymous), what the authorizer is asked, and probes without
//! credentials.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keda_metrics_apiserver::StaticProvider;
use keda_metrics_apiserver::api::Api;
use keda_metrics_apiserver::auth::{
    Attributes, AuthnConfig, Authorizer, AuthzError, Decision, RequestHeaderConfig, UserInfo,
};
use keda_metrics_apiserver::metrics::Metrics;
use keda_metrics_apiserver::server::Server;
use keda_tls::ReloadingCert;

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(UserInfo, Attributes)>>,
}

#[async_trait::async_trait]
impl Authorizer for Recorder {
    async fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<Decision, AuthzError> {
        if let Ok(mut s) = self.seen.lock() {
            s.push((user.clone(), attrs.clone()));
        }
        Ok(Decision {
            allowed: user.name == "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
                || user.name == "alice",
            reason: String::new(),
        })
    }
}

struct Fixture {
    url: String,
    serving_ca: reqwest::Certificate,
    authz: Arc<Recorder>,
    front_proxy: common::Ca,
    client_ca: common::Ca,
    _dir: std::path::PathBuf,
}

async fn start() -> Fixture {
    let dir = common::temp_dir("https");
    let serving = common::Ca::new("serving-ca");
    let leaf = serving.leaf("keda-operator-metrics-apiserver", &[], &["localhost"]);
    std::fs::write(dir.join("tls.crt"), &leaf.cert_pem).expect("write");
    std::fs::write(dir.join("tls.key"), &leaf.key_pem).expect("write");
    let front_proxy = common::Ca::new("front-proxy-ca");
    let client_ca = common::Ca::new("client-ca");
    let authn = AuthnConfig {
        requestheader_ca_pem: front_proxy.pem(),
        requestheader: RequestHeaderConfig {
            allowed_names: vec!["front-proxy-client".into()],
            username_headers: vec!["X-Remote-User".into()],
            uid_headers: vec![],
            group_headers: vec!["X-Remote-Group".into()],
            extra_headers_prefixes: vec!["X-Remote-Extra-".into()],
        },
        client_ca_pem: client_ca.pem(),
    };
    let provider = Arc::new(StaticProvider::new());
    provider.set("ns", "web", "s0-metric-api-value", 7.0);
    let authz = Arc::new(Recorder::default());
    let api = Arc::new(Api::new(
        provider,
        authz.clone(),
        Arc::new(Metrics::default()),
    ));
    let cert = Arc::new(
        ReloadingCert::from_files(
            dir.join("tls.crt"),
            dir.join("tls.key"),
            Duration::from_secs(2),
        )
        .expect("cert"),
    );
    let server = Arc::new(Server::new(api, cert, authn, Default::default()).expect("server"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(server.serve(listener));
    Fixture {
        url: format!("https://localhost:{port}"),
        serving_ca: reqwest::Certificate::from_pem(serving.pem().as_bytes()).expect("ca"),
        authz,
        front_proxy,
        client_ca,
        _dir: dir,
    }
}

fn client(f: &Fixture, identity: Option<&common::Leaf>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(f.serving_ca.clone());
    if let Some(l) = identity {
        let pem = format!("{}{}", l.cert_pem, l.key_pem);
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
    }
    b.build().expect("client")
}

const METRIC: &str = "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/s0-metric-api-value?labelSelector=scaledobject.keda.sh%2Fname%3Dweb";
const HPA: &str = "system:serviceaccount:kube-system:horizontal-pod-autoscaler";

#[tokio::test]
async fn front_proxy_headers_are_believed_only_from_the_front_proxy() {
    let f = start().await;
    let proxy = f.front_proxy.leaf("front-proxy-client", &[], &[]);
    let resp = client(&f, Some(&proxy))
        .get(format!("{}{METRIC}", f.url))
        .header("X-Remote-User", HPA)
        .header("X-Remote-Group", "system:serviceaccounts")
        .header("X-Remote-Group", "system:authenticated")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["items"][0]["value"], "7");
    {
        let seen = f.authz.seen.lock().expect("lock");
        let (user, attrs) = seen.last().expect("authorized");
        assert_eq!(user.name, HPA);
        assert_eq!(
            user.groups,
            ["system:serviceaccounts", "system:authenticated"]
        );
        assert_eq!(
            attrs,
            &Attributes::Resource {
                verb: "list".into(),
                group: "external.metrics.k8s.io".into(),
                version: "v1beta1".into(),
                resource: "s0-metric-api-value".into(),
                namespace: "ns".into(),
            }
        );
    }

    // The same headers without the proxy's certificate, or from a CN that is not allowed: anonymous.
    let imposter = f.front_proxy.leaf("someone-else", &[], &[]);
    for who in [None, Some(&imposter)] {
        let resp = client(&f, who)
            .get(format!("{}{METRIC}", f.url))
            .header("X-Remote-User", HPA)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 403);
        let v: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(v["reason"], "Forbidden");
        let seen = f.authz.seen.lock().expect("lock");
        assert_eq!(seen.last().expect("authorized").0.name, "system:anonymous");
    }

    // A certificate from the client CA authenticates its CN and O.
    let alice = f.client_ca.leaf("alice", &["devs"], &[]);
    let resp = client(&f, Some(&alice))
        .get(format!("{}/apis/external.metrics.k8s.io/v1beta1", f.url))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let seen = f.authz.seen.lock().expect("lock");
    let (user, attrs) = seen.last().expect("authorized");
    assert_eq!(user.name, "alice");
    assert_eq!(user.groups, ["devs", "system:authenticated"]);
    assert_eq!(
        attrs,
        &Attributes::NonResource {
            verb: "get".into(),
            path: "/apis/external.metrics.k8s.io/v1beta1".into()
        }
    );
}

#[tokio::test]
async fn probes_need_no_credentials_and_http2_works() {
    let f = start().await;
    let c = client(&f, None);
    for path in ["/healthz", "/livez", "/readyz"] {
        let resp = c
            .get(format!("{}{path}", f.url))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    }
    assert!(f.authz.seen.lock().expect("lock").is_empty());
}
