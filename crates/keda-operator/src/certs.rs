//! Certificates shared by the three processes: a CA and one serving/client certificate (SANs for the
//! operator, metrics API server and webhook Services) in Secret `kedaorg-certs`, renewed before expiry;
//! the CA is patched into the APIService and the ValidatingWebhookConfiguration so the API server trusts
//! them without `insecureSkipTLSVerify`.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};

use crate::error::Error;

/// Leaf certificates live one year and are renewed 90 days before they expire (cert-controller's
/// defaults, as upstream).
const LEAF_VALIDITY_DAYS: i64 = 365;
const RENEW_BEFORE_DAYS: i64 = 90;
const CA_VALIDITY_DAYS: i64 = 3650;

#[derive(Clone, Debug)]
pub struct CertConfig {
    pub namespace: String,
    pub secret_name: String,
    /// Service names to cover: `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`, `<svc>.<ns>.svc.<domain>`.
    pub services: Vec<String>,
    pub cluster_domain: String,
    /// Patch `caBundle` into APIService `v1beta1.external.metrics.k8s.io`.
    pub patch_apiservice: bool,
    /// Patch `caBundle` into the ValidatingWebhookConfiguration [`CertConfig::webhook_name`].
    pub patch_webhooks: bool,
    /// `--validating-webhook-name` (default `keda-admission`).
    pub webhook_name: String,
}

/// PEM material in the Secret.
#[derive(Clone, Debug, PartialEq)]
pub struct CertBundle {
    pub ca_crt: String,
    pub ca_key: String,
    pub tls_crt: String,
    pub tls_key: String,
}

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

impl CertConfig {
    pub fn dns_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for s in &self.services {
            names.push(s.clone());
            names.push(format!("{s}.{}", self.namespace));
            names.push(format!("{s}.{}.svc", self.namespace));
            names.push(format!(
                "{s}.{}.svc.{}",
                self.namespace, self.cluster_domain
            ));
        }
        names
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{what}: {e}"))
}

/// A new CA ("KEDA", org "KEDAORG", as upstream) and leaf.
pub fn generate(config: &CertConfig, now: time::OffsetDateTime) -> Result<CertBundle, Error> {
    let ca_key = rcgen::KeyPair::generate().map_err(|e| err("generating the CA key", e))?;
    let mut ca =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CA parameters", e))?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "KEDA");
    ca.distinguished_name
        .push(rcgen::DnType::OrganizationName, "KEDAORG");
    ca.not_before = now - days(1);
    ca.not_after = now + days(CA_VALIDITY_DAYS);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(|e| err("signing the CA", e))?;
    let (tls_crt, tls_key) = leaf(config, &ca_cert, &ca_key, now)?;
    Ok(CertBundle {
        ca_crt: ca_cert.pem(),
        ca_key: ca_key.serialize_pem(),
        tls_crt,
        tls_key,
    })
}

fn leaf(
    config: &CertConfig,
    ca: &rcgen::Certificate,
    ca_key: &rcgen::KeyPair,
    now: time::OffsetDateTime,
) -> Result<(String, String), Error> {
    let key = rcgen::KeyPair::generate().map_err(|e| err("generating the certificate key", e))?;
    let mut params = rcgen::CertificateParams::new(config.dns_names())
        .map_err(|e| err("certificate parameters", e))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        config.services.first().cloned().unwrap_or_default(),
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "KEDAORG");
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = now - days(1);
    params.not_after = now + days(LEAF_VALIDITY_DAYS);
    let cert = params
        .signed_by(&key, ca, ca_key)
        .map_err(|e| err("signing the certificate", e))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Expiry of the first certificate in a PEM bundle.
fn not_after(pem: &str) -> Option<time::OffsetDateTime> {
    let der = rustls_pemfile_first(pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    time::OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp()).ok()
}

fn rustls_pemfile_first(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Whether the bundle must be (re)issued: missing pieces, SANs changed, or the leaf expires within 90 days.
pub fn needs_renewal(bundle: &CertBundle, config: &CertConfig, now: time::OffsetDateTime) -> bool {
    match not_after(&bundle.tls_crt) {
        Some(expiry) => {
            expiry - now < days(RENEW_BEFORE_DAYS) || !sans_match(&bundle.tls_crt, config)
        }
        None => true,
    }
}

fn sans_match(pem: &str, config: &CertConfig) -> bool {
    let Some(der) = rustls_pemfile_first(pem) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return false;
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    let have: std::collections::BTreeSet<String> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
            _ => None,
        })
        .collect();
    config.dns_names().iter().all(|n| have.contains(n))
}

fn from_secret(secret: &Secret) -> Option<CertBundle> {
    let data = secret.data.as_ref()?;
    let get = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    Some(CertBundle {
        ca_crt: get("ca.crt")?,
        ca_key: get("ca.key").unwrap_or_default(),
        tls_crt: get("tls.crt")?,
        tls_key: get("tls.key")?,
    })
}

fn to_data(b: &CertBundle) -> BTreeMap<String, ByteString> {
    [
        ("ca.crt", &b.ca_crt),
        ("ca.key", &b.ca_key),
        ("tls.crt", &b.tls_crt),
        ("tls.key", &b.tls_key),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
    .collect()
}

/// Makes sure the Secret holds a valid bundle (creating or renewing it) and patches the CA into the
/// APIService and webhook configuration. Returns the bundle in force.
pub async fn ensure(client: &Client, config: &CertConfig) -> Result<CertBundle, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    let now = time::OffsetDateTime::now_utc();
    let existing = api.get_opt(&config.secret_name).await.map_err(|e| {
        Error::kube(
            format!("reading Secret {}/{}", config.namespace, config.secret_name),
            e,
        )
    })?;
    let bundle = match existing.as_ref().and_then(from_secret) {
        Some(b) if !needs_renewal(&b, config, now) => b,
        current => {
            // Keep the CA when we can (clients keep trusting it); issue a new one otherwise.
            let renewed = match current
                .as_ref()
                .filter(|b| !b.ca_key.is_empty())
                .and_then(|b| reuse_ca(b, config, now).ok())
            {
                Some(b) => b,
                None => generate(config, now)?,
            };
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(config.secret_name.clone()),
                    namespace: Some(config.namespace.clone()),
                    labels: Some(
                        [(
                            "app.kubernetes.io/managed-by".to_owned(),
                            "keda-operator".to_owned(),
                        )]
                        .into(),
                    ),
                    resource_version: existing
                        .as_ref()
                        .and_then(|s| s.metadata.resource_version.clone()),
                    ..Default::default()
                },
                type_: Some("kubernetes.io/tls".to_owned()),
                data: Some(to_data(&renewed)),
                ..Default::default()
            };
            let what = format!("writing Secret {}/{}", config.namespace, config.secret_name);
            if existing.is_some() {
                api.replace(&config.secret_name, &PostParams::default(), &secret)
                    .await
                    .map_err(|e| Error::kube(what, e))?;
            } else {
                api.create(&PostParams::default(), &secret)
                    .await
                    .map_err(|e| Error::kube(what, e))?;
            }
            tracing::info!(secret = %config.secret_name, "issued certificates");
            renewed
        }
    };
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(bundle.ca_crt.as_bytes());
    if config.patch_apiservice {
        patch_ca(
            client,
            "apiregistration.k8s.io",
            "v1",
            "APIService",
            "apiservices",
            keda_api::consts::names::EXTERNAL_METRICS_APISERVICE,
            serde_json::json!({"spec": {"caBundle": ca_b64}}),
        )
        .await?;
    }
    if config.patch_webhooks {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingWebhookConfiguration",
            ),
            "validatingwebhookconfigurations",
        );
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let name = config.webhook_name.as_str();
        if let Some(obj) = api
            .get_opt(name)
            .await
            .map_err(|e| Error::kube(format!("reading {name}"), e))?
        {
            let mut webhooks = obj.data.get("webhooks").cloned().unwrap_or_default();
            if let Some(list) = webhooks.as_array_mut() {
                for w in list.iter_mut() {
                    w["clientConfig"]["caBundle"] = serde_json::Value::String(ca_b64.clone());
                }
            }
            api.patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"webhooks": webhooks})),
            )
            .await
            .map_err(|e| Error::kube(format!("patching caBundle into {name}"), e))?;
        }
    }
    Ok(bundle)
}

fn reuse_ca(
    old: &CertBundle,
    config: &CertConfig,
    now: time::OffsetDateTime,
) -> Result<CertBundle, Error> {
    let ca_key = rcgen::KeyPair::from_pem(&old.ca_key).map_err(|e| err("reading the CA key", e))?;
    let params = rcgen::CertificateParams::from_ca_cert_pem(&old.ca_crt)
        .map_err(|e| err("reading the CA", e))?;
    let ca = params
        .self_signed(&ca_key)
        .map_err(|e| err("re-signing the CA", e))?;
    let (tls_crt, tls_key) = leaf(config, &ca, &ca_key, now)?;
    Ok(CertBundle {
        ca_crt: old.ca_crt.clone(),
        ca_key: old.ca_key.clone(),
        tls_crt,
        tls_key,
    })
}

async fn patch_ca(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    name: &str,
    patch: serde_json::Value,
) -> Result<(), Error> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        // Not installed (e.g. the chart disabled it): nothing to patch.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(Error::kube(
            format!("patching caBundle into {kind} {name}"),
            e,
        )),
    }
}

/// Keeps the certificates valid: checks at start and then every `every` (12 h upstream).
pub async fn rotate(
    client: Client,
    config: CertConfig,
    every: Duration,
    on_change: impl Fn(&CertBundle) + Send + 'static,
) {
    let mut last: Option<CertBundle> = None;
    loop {
        tokio::time::sleep(every).await;
        match ensure(&client, &config).await {
            Ok(bundle) => {
                if last.as_ref() != Some(&bundle) {
                    on_change(&bundle);
                    last = Some(bundle);
                }
            }
            Err(e) => tracing::error!(error = %e, "certificate rotation failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CertConfig {
        CertConfig {
            namespace: "keda".into(),
            secret_name: "kedaorg-certs".into(),
            services: vec![
                "keda-operator".into(),
                "keda-operator-metrics-apiserver".into(),
                "keda-admission-webhooks".into(),
            ],
            cluster_domain: "cluster.local".into(),
            patch_apiservice: true,
            patch_webhooks: true,
            webhook_name: "keda-admission".into(),
        }
    }

    #[test]
    fn bundle_covers_every_service_name_and_renews_in_time() {
        let now = time::OffsetDateTime::now_utc();
        let c = config();
        let b = generate(&c, now).unwrap();
        assert!(b.ca_crt.contains("BEGIN CERTIFICATE") && b.tls_key.contains("PRIVATE KEY"));
        assert_eq!(c.dns_names().len(), 12);
        assert!(
            c.dns_names()
                .contains(&"keda-operator-metrics-apiserver.keda.svc".to_owned())
        );
        assert!(sans_match(&b.tls_crt, &c));
        assert!(!needs_renewal(&b, &c, now));
        // 300 days later the leaf is within 90 days of expiry.
        assert!(needs_renewal(&b, &c, now + days(300)));
        // A new Service name forces a reissue.
        let mut more = c.clone();
        more.services.push("extra".into());
        assert!(needs_renewal(&b, &more, now));
        // Renewal keeps the CA.
        let r = reuse_ca(&b, &c, now + days(300)).unwrap();
        assert_eq!(r.ca_crt, b.ca_crt);
        assert_ne!(r.tls_crt, b.tls_crt);
    }
}
