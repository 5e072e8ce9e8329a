//! `keda operator` and `keda metrics-apiserver` of one test namespace, registered as the cluster's
//! external metrics API, so the real HPA controller reads the ScaledObjects' metrics through the
//! aggregation layer. (`metrics_api.rs` keeps its own: it rotates the certificates and restarts the
//! processes under test.)

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::{
    KedaProcess, NODE_IP, apply, cluster_scoped_lock, free_port, kubectl, kubectl_ok, root,
};

const APISERVICE: &str = keda_api::consts::names::EXTERNAL_METRICS_APISERVICE;
const SERVICE: &str = keda_api::consts::names::METRICS_APISERVER_SERVICE;

/// A CA and one leaf for both processes, written as Secret kedaorg-certs would be mounted; returns the CA PEM.
pub fn write_certs(dir: &std::path::Path, ns: &str) -> Result<String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "KEDA");
    let ca = ca.self_signed(&ca_key)?;
    let mut sans = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        NODE_IP.to_owned(),
    ];
    for svc in ["keda-operator", SERVICE] {
        sans.push(format!("{svc}.{ns}.svc"));
        sans.push(format!("{svc}.{ns}.svc.cluster.local"));
    }
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(sans)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "keda-operator");
    leaf.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let leaf = leaf.signed_by(&key, &ca, &ca_key)?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("ca.crt"), ca.pem())?;
    std::fs::write(dir.join("tls.crt"), leaf.pem())?;
    std::fs::write(dir.join("tls.key"), key.serialize_pem())?;
    Ok(ca.pem())
}

/// The cluster-scoped lock for the one APIService `v1beta1.external.metrics.k8s.io`; deletes the APIService
/// before releasing the lock (an APIService without a server blocks namespace deletion).
pub struct ApiServiceGuard {
    _lock: std::fs::File,
}

impl ApiServiceGuard {
    /// Waits for the lock ([`cluster_scoped_lock`]).
    pub fn acquire() -> Result<ApiServiceGuard> {
        Ok(ApiServiceGuard {
            _lock: cluster_scoped_lock()?,
        })
    }
}

impl Drop for ApiServiceGuard {
    fn drop(&mut self) {
        let _ = kubectl(
            &[
                "delete",
                "apiservice",
                APISERVICE,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        );
    }
}

/// Points the cluster's external metrics API at a metrics API server listening on `port` of the node
/// address (Service and EndpointSlice in `ns`, APIService trusting `ca_pem`); the caller holds the guard.
pub fn register_apiservice(ns: &str, port: u16, ca_pem: &str) -> Result<()> {
    apply(
        ns,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {SERVICE}}}\nspec:\n  ports:\n  - {{name: https, port: 443, targetPort: 6443, protocol: TCP}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {SERVICE}-e2e\n  labels: {{kubernetes.io/service-name: {SERVICE}}}\n\
             addressType: IPv4\nendpoints:\n- addresses: [\"{NODE_IP}\"]\n  conditions: {{ready: true}}\nports:\n- {{name: https, port: {port}, protocol: TCP}}\n"
        ),
    )?;
    let ca_bundle = serde_json::to_value(k8s_openapi::ByteString(ca_pem.as_bytes().to_vec()))?;
    kubectl_ok(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&format!(
            "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: {APISERVICE}}}\nspec:\n  group: external.metrics.k8s.io\n  version: v1beta1\n  groupPriorityMinimum: 100\n  versionPriority: 100\n  caBundle: {ca_bundle}\n  service: {{name: {SERVICE}, namespace: {ns}, port: 443}}\n"
        )),
    )?;
    Ok(())
}

/// The operator and metrics-apiserver of one namespace, registered as the cluster's external metrics API
/// while it lives.
pub struct MetricsStack {
    dir: PathBuf,
    pub operator: KedaProcess,
    pub apiserver: KedaProcess,
    _apiservice: ApiServiceGuard,
}

impl MetricsStack {
    pub async fn start(ns: &str) -> Result<MetricsStack> {
        let dir = root().join("target/keda-e2e-certs").join(ns);
        let ca_pem = write_certs(&dir, ns)?;
        let d = dir.display().to_string();
        let grpc = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
        let https_port = free_port("0.0.0.0")?;
        let operator = KedaProcess::operator_with(
            ns,
            "op-a",
            "127.0.0.1:0",
            &["--metrics-service-bind-address", &grpc, "--cert-dir", &d],
        )?;
        let apiserver = KedaProcess::start(
            &format!("{ns}-metrics-apiserver"),
            &[
                "metrics-apiserver",
                "--secure-port",
                &https_port.to_string(),
                "--bind-address",
                "0.0.0.0",
                "--cert-dir",
                &d,
                "--client-ca-file",
                &dir.join("ca.crt").display().to_string(),
                "--metrics-service-address",
                &grpc,
                "--metrics-service-grpc-authority",
                &format!("keda-operator.{ns}.svc.cluster.local"),
                "--metrics-bind-address",
                "127.0.0.1:0",
            ],
            &[("POD_NAMESPACE", ns)],
        )?;
        let stack = MetricsStack {
            dir,
            operator,
            apiserver,
            _apiservice: ApiServiceGuard::acquire()?,
        };
        register_apiservice(ns, https_port, &ca_pem)?;
        let out = kubectl(
            &[
                "wait",
                "--for=condition=Available",
                "--timeout=120s",
                &format!("apiservice/{APISERVICE}"),
            ],
            None,
        )?;
        if !out.status.success() {
            bail!(
                "APIService not Available: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                stack.logs()
            );
        }
        Ok(stack)
    }

    /// The tails of both processes' logs.
    pub fn logs(&self) -> String {
        format!(
            "--- operator ---\n{}\n--- metrics-apiserver ---\n{}",
            self.operator.log_tail(),
            self.apiserver.log_tail()
        )
    }
}

impl Drop for MetricsStack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
