//! The HTTP API: discovery documents, the external metrics endpoint, probes. Independent of TLS and
//! of where metrics come from ([`MetricsProvider`]).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Response, StatusCode, Uri, header};
use http_body_util::Full;
use keda_api::consts::labels::SCALED_OBJECT_NAME;
use keda_proto::ExternalMetricValueList;
use serde::Serialize;

use crate::auth::{Attributes, Authorizer, UserInfo};
use crate::metrics::Metrics;
use crate::provider::{MetricsProvider, ProviderError};

pub const GROUP: &str = "external.metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
pub const GROUP_VERSION: &str = "external.metrics.k8s.io/v1beta1";
/// The one resource discovery lists (as custom-metrics-apiserver's default external provider does).
pub const RESOURCE: &str = "externalmetrics";
const GROUP_PATH: &str = "/apis/external.metrics.k8s.io";
const VERSION_PATH: &str = "/apis/external.metrics.k8s.io/v1beta1";
/// Error message when the label selector does not name a ScaledObject (upstream's wording).
pub const NO_SCALED_OBJECT: &str = "scaledObject name is not specified";
/// Name of the readiness check that follows the operator connection.
pub const READY_CHECK: &str = "keda-metrics-service";

pub type Body = Full<Bytes>;

/// Called with the kind and server-side duration of every request (benchmarks).
pub type LatencyHook = Arc<dyn Fn(Kind, std::time::Duration) + Send + Sync>;

/// The API server's request handler.
pub struct Api {
    pub provider: Arc<dyn MetricsProvider>,
    pub authorizer: Arc<dyn Authorizer>,
    pub metrics: Arc<Metrics>,
    pub latency_hook: Option<LatencyHook>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupVersionForDiscovery {
    group_version: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiGroup {
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<&'static str>,
    name: &'static str,
    versions: [GroupVersionForDiscovery; 1],
    preferred_version: GroupVersionForDiscovery,
}

fn api_group(typed: bool) -> ApiGroup {
    let gv = || GroupVersionForDiscovery {
        group_version: GROUP_VERSION,
        version: VERSION,
    };
    ApiGroup {
        kind: typed.then_some("APIGroup"),
        api_version: typed.then_some("v1"),
        name: GROUP,
        versions: [gv()],
        preferred_version: gv(),
    }
}

/// `GET /apis/external.metrics.k8s.io/v1beta1`.
pub fn api_resource_list() -> serde_json::Value {
    serde_json::json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [{
            "name": RESOURCE,
            "singularName": "",
            "namespaced": true,
            "kind": "ExternalMetricValueList",
            "verbs": ["get"],
        }],
    })
}

/// `GET /apis/external.metrics.k8s.io`.
pub fn api_group_document() -> serde_json::Value {
    serde_json::to_value(api_group(true)).unwrap_or_default()
}

/// `GET /apis`.
pub fn api_group_list() -> serde_json::Value {
    serde_json::json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [api_group(false)],
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListMetaJson<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    self_link: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    resource_version: &'a str,
    #[serde(rename = "continue", skip_serializing_if = "str::is_empty")]
    continue_: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining_item_count: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ValueJson<'a> {
    metric_name: &'a str,
    /// `null` when empty, as Kubernetes serialises a nil map.
    metric_labels: Option<&'a std::collections::HashMap<String, String>>,
    timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<i64>,
    value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListJson<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: ListMetaJson<'a>,
    items: Vec<ValueJson<'a>>,
}

fn rfc3339(seconds: i64) -> Option<String> {
    if seconds == 0 {
        return None;
    }
    k8s_openapi::jiff::Timestamp::from_second(seconds)
        .ok()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The Kubernetes JSON form of an `ExternalMetricValueList` (kind and apiVersion
/// `external.metrics.k8s.io/v1beta1`).
pub fn external_metric_list_json(
    list: &ExternalMetricValueList,
) -> Result<Vec<u8>, serde_json::Error> {
    let meta = list.metadata.as_ref();
    let doc = ListJson {
        kind: "ExternalMetricValueList",
        api_version: GROUP_VERSION,
        metadata: ListMetaJson {
            self_link: meta.map(|m| m.self_link.as_str()).unwrap_or(""),
            resource_version: meta.map(|m| m.resource_version.as_str()).unwrap_or(""),
            continue_: meta.map(|m| m.r#continue.as_str()).unwrap_or(""),
            remaining_item_count: meta.and_then(|m| m.remaining_item_count),
        },
        items: list
            .items
            .iter()
            .map(|i| ValueJson {
                metric_name: &i.metric_name,
                metric_labels: (!i.metric_labels.is_empty()).then_some(&i.metric_labels),
                timestamp: i.timestamp.as_ref().and_then(|t| rfc3339(t.seconds)),
                window: i.window,
                value: i.value.as_ref().map(|q| q.string.as_str()).unwrap_or("0"),
            })
            .collect(),
    };
    serde_json::to_vec(&doc)
}

/// A meta/v1 Status error document.
pub fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let doc = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    json(code, doc.to_string().into_bytes())
}

fn json(code: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn text(code: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    r
}

fn provider_error(e: &ProviderError) -> Response<Body> {
    let (code, reason) = match e {
        ProviderError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
        ProviderError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
        ProviderError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        ProviderError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "Timeout"),
        ProviderError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
    };
    status(code, reason, &e.to_string())
}

/// Reads the ScaledObject name from a label selector `scaledobject.keda.sh/name=<so>[,k=v…]`
/// (`=` or `==`; other operators are rejected, as upstream's selector-to-map conversion does).
pub fn scaled_object_from_selector(selector: &str) -> Result<Option<String>, String> {
    let mut found = None;
    for part in selector.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = if let Some((k, v)) = part.split_once("==") {
            (k, v)
        } else if let Some((k, v)) = part.split_once('=') {
            if k.ends_with('!') {
                return Err(format!(
                    "invalid selector: {selector:?}: only = and == are supported"
                ));
            }
            (k, v)
        } else {
            return Err(format!(
                "invalid selector: {selector:?}: only = and == are supported"
            ));
        };
        if k.trim() == SCALED_OBJECT_NAME {
            found = Some(v.trim().to_owned());
        }
    }
    Ok(found.filter(|s| !s.is_empty()))
}

/// The request's query parameter `name`, decoded.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

enum Route<'a> {
    Probe(&'a str),
    Apis,
    Group,
    Version,
    Metric { namespace: &'a str, metric: &'a str },
    NotFound,
}

fn route(path: &str) -> Route<'_> {
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    match trimmed {
        "/healthz" | "/livez" | "/readyz" => return Route::Probe(trimmed),
        "/apis" => return Route::Apis,
        GROUP_PATH => return Route::Group,
        VERSION_PATH => return Route::Version,
        _ => {}
    }
    if let Some(rest) = trimmed.strip_prefix(VERSION_PATH)
        && let Some(rest) = rest.strip_prefix("/namespaces/")
    {
        let mut parts = rest.split('/');
        if let (Some(ns), Some(metric), None) = (parts.next(), parts.next(), parts.next())
            && !ns.is_empty()
            && !metric.is_empty()
        {
            return Route::Metric {
                namespace: ns,
                metric,
            };
        }
    }
    Route::NotFound
}

/// What [`Api::handle`] did, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Probe,
    Discovery,
    ExternalMetric,
    Other,
}

impl Api {
    pub fn new(
        provider: Arc<dyn MetricsProvider>,
        authorizer: Arc<dyn Authorizer>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Api {
            provider,
            authorizer,
            metrics,
            latency_hook: None,
        }
    }

    /// Answers one request of `user`. Probe paths need no authorization; everything else is authorized
    /// first (403 when denied).
    pub async fn handle(&self, user: &UserInfo, method: &Method, uri: &Uri) -> Response<Body> {
        let started = Instant::now();
        let r = route(uri.path());
        let kind = match r {
            Route::Probe(_) => Kind::Probe,
            Route::Apis | Route::Group | Route::Version => Kind::Discovery,
            Route::Metric { .. } => Kind::ExternalMetric,
            Route::NotFound => Kind::Other,
        };
        let resp = self.dispatch(user, method, uri, r).await;
        let took = started.elapsed();
        self.metrics
            .observe_request(kind, method, resp.status(), took);
        if let Some(hook) = &self.latency_hook {
            hook(kind, took);
        }
        resp
    }

    async fn dispatch(
        &self,
        user: &UserInfo,
        method: &Method,
        uri: &Uri,
        r: Route<'_>,
    ) -> Response<Body> {
        if let Route::Probe(which) = r {
            return self.probe(which, uri);
        }
        if method != Method::GET && method != Method::HEAD {
            return status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                &format!(
                    "the server does not allow this method on the requested resource ({method})"
                ),
            );
        }
        let attrs = match &r {
            Route::Metric { namespace, metric } => Attributes::Resource {
                verb: if query_param(uri, "watch").is_some_and(|w| w == "true" || w == "1") {
                    "watch".into()
                } else {
                    "list".into()
                },
                group: GROUP.into(),
                version: VERSION.into(),
                resource: metric.to_string(),
                namespace: namespace.to_string(),
            },
            _ => Attributes::NonResource {
                verb: "get".into(),
                path: uri.path().to_owned(),
            },
        };
        match self.authorizer.authorize(user, &attrs).await {
            Ok(d) if d.allowed => {}
            Ok(d) => return forbidden(user, &attrs, &d.reason),
            Err(e) => {
                tracing::warn!(error = %e, "authorization failed");
                return forbidden(user, &attrs, &e.to_string());
            }
        }
        match r {
            Route::Apis => json(StatusCode::OK, api_group_list().to_string().into_bytes()),
            Route::Group => json(
                StatusCode::OK,
                api_group_document().to_string().into_bytes(),
            ),
            Route::Version => json(StatusCode::OK, api_resource_list().to_string().into_bytes()),
            Route::Metric { namespace, metric } => {
                self.external_metric(namespace, metric, uri).await
            }
            Route::NotFound | Route::Probe(_) => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            ),
        }
    }

    fn probe(&self, which: &str, uri: &Uri) -> Response<Body> {
        let verbose = query_param(uri, "verbose").is_some();
        let check = if which == "/readyz" {
            Some(self.provider.ready())
        } else {
            None
        };
        let name = &which[1..];
        match check {
            Some(Err(reason)) => {
                tracing::debug!(%reason, "not ready");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "[+]ping ok\n[-]{READY_CHECK} failed: reason withheld\n{name} check failed\n"
                    ),
                )
            }
            Some(Ok(())) if verbose => text(
                StatusCode::OK,
                format!("[+]ping ok\n[+]{READY_CHECK} ok\n{name} check passed\n"),
            ),
            None if verbose => text(StatusCode::OK, format!("[+]ping ok\n{name} check passed\n")),
            _ => text(StatusCode::OK, "ok".into()),
        }
    }

    async fn external_metric(&self, namespace: &str, metric: &str, uri: &Uri) -> Response<Body> {
        let selector = query_param(uri, "labelSelector").unwrap_or_default();
        let so = match scaled_object_from_selector(&selector) {
            Ok(Some(so)) => so,
            Ok(None) => {
                return status(StatusCode::BAD_REQUEST, "BadRequest", NO_SCALED_OBJECT);
            }
            Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e),
        };
        // Metric names are matched case-insensitively: upstream's names are lowercase.
        let metric = metric.to_ascii_lowercase();
        match self.provider.get_metrics(namespace, &so, &metric).await {
            Ok(list) => match external_metric_list_json(&list) {
                Ok(body) => json(StatusCode::OK, body),
                Err(e) => status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    &e.to_string(),
                ),
            },
            Err(e) => {
                tracing::debug!(namespace, scaledobject = %so, metric, error = %e, "metric request failed");
                provider_error(&e)
            }
        }
    }
}

fn forbidden(user: &UserInfo, attrs: &Attributes, reason: &str) -> Response<Body> {
    let mut message = match attrs {
        Attributes::Resource {
            verb,
            group,
            resource,
            namespace,
            ..
        } => format!(
            "{resource}.{group} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" in the namespace \"{namespace}\"",
            user.name
        ),
        Attributes::NonResource { verb, path } => format!(
            "forbidden: User \"{}\" cannot {verb} path \"{path}\"",
            user.name
        ),
    };
    if !reason.is_empty() {
        message.push_str(": ");
        message.push_str(reason);
    }
    status(StatusCode::FORBIDDEN, "Forbidden", &message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AllowAll, AuthzError, Decision};
    use crate::provider::StaticProvider;
    use http_body_util::BodyExt;

    struct DenyAll;

    #[async_trait::async_trait]
    impl Authorizer for DenyAll {
        async fn authorize(&self, _: &UserInfo, _: &Attributes) -> Result<Decision, AuthzError> {
            Ok(Decision {
                allowed: false,
                reason: String::new(),
            })
        }
    }

    fn api(provider: Arc<StaticProvider>) -> Api {
        Api::new(provider, Arc::new(AllowAll), Arc::new(Metrics::default()))
    }

    async fn get(api: &Api, uri: &str) -> (StatusCode, serde_json::Value) {
        let r = api
            .handle(
                &UserInfo::anonymous(),
                &Method::GET,
                &uri.parse().expect("uri"),
            )
            .await;
        let code = r.status();
        let body = r.into_body().collect().await.expect("body").to_bytes();
        let v = serde_json::from_slice(&body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
        (code, v)
    }

    #[tokio::test]
    async fn serves_the_metric_of_a_scaled_object() {
        let p = Arc::new(StaticProvider::new());
        p.set("ns", "web", "s0-metric-api-value", 20.0);
        let a = api(p);
        let (code, v) = get(
            &a,
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/s0-metric-api-value?labelSelector=scaledobject.keda.sh%2Fname%3Dweb",
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{v}");
        assert_eq!(v["kind"], "ExternalMetricValueList");
        assert_eq!(v["apiVersion"], "external.metrics.k8s.io/v1beta1");
        assert_eq!(v["metadata"], serde_json::json!({}));
        assert_eq!(v["items"][0]["metricName"], "s0-metric-api-value");
        assert_eq!(v["items"][0]["metricLabels"], serde_json::Value::Null);
        assert_eq!(v["items"][0]["value"], "20");
        let ts = v["items"][0]["timestamp"].as_str().expect("timestamp");
        assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");
        // Case-insensitive metric names; an unencoded selector works too.
        let (code, v) = get(
            &a,
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/S0-Metric-API-Value?labelSelector=scaledobject.keda.sh/name=web",
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{v}");
        assert_eq!(v["items"][0]["metricName"], "s0-metric-api-value");
    }

    #[tokio::test]
    async fn errors_are_kubernetes_statuses() {
        let p = Arc::new(StaticProvider::new());
        let a = api(p);
        let (code, v) = get(
            &a,
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/s0-metric-api-value",
        )
        .await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["message"], NO_SCALED_OBJECT);
        assert_eq!(v["code"], 400);
        let (code, _) = get(
            &a,
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/m?labelSelector=other%3Dx",
        )
        .await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        let (code, v) = get(
            &a,
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/m?labelSelector=scaledobject.keda.sh%2Fname%3Dnope",
        )
        .await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert_eq!(v["reason"], "NotFound");
        let (code, _) = get(
            &a,
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/m/extra",
        )
        .await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        let r = a
            .handle(
                &UserInfo::anonymous(),
                &Method::POST,
                &"/apis/external.metrics.k8s.io/v1beta1"
                    .parse()
                    .expect("uri"),
            )
            .await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn discovery_documents() {
        let a = api(Arc::new(StaticProvider::new()));
        let (code, v) = get(&a, "/apis/external.metrics.k8s.io/v1beta1").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(
            v,
            serde_json::json!({"kind":"APIResourceList","apiVersion":"v1","groupVersion":"external.metrics.k8s.io/v1beta1",
                "resources":[{"name":"externalmetrics","singularName":"","namespaced":true,"kind":"ExternalMetricValueList","verbs":["get"]}]})
        );
        let (_, v) = get(&a, "/apis/external.metrics.k8s.io").await;
        assert_eq!(
            v,
            serde_json::json!({"kind":"APIGroup","apiVersion":"v1","name":"external.metrics.k8s.io",
                "versions":[{"groupVersion":"external.metrics.k8s.io/v1beta1","version":"v1beta1"}],
                "preferredVersion":{"groupVersion":"external.metrics.k8s.io/v1beta1","version":"v1beta1"}})
        );
        let (_, v) = get(&a, "/apis").await;
        assert_eq!(v["kind"], "APIGroupList");
        assert_eq!(v["groups"][0]["name"], "external.metrics.k8s.io");
        assert!(v["groups"][0].get("kind").is_none());
    }

    #[tokio::test]
    async fn probes_follow_the_provider_and_need_no_authorization() {
        let p = Arc::new(StaticProvider::new());
        let a = Api::new(p.clone(), Arc::new(DenyAll), Arc::new(Metrics::default()));
        assert_eq!(get(&a, "/readyz").await.0, StatusCode::OK);
        assert_eq!(get(&a, "/healthz").await.0, StatusCode::OK);
        p.set_not_ready(Some("operator unreachable"));
        let (code, body) = get(&a, "/readyz").await;
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            body.as_str()
                .is_some_and(|b| b.contains("[-]keda-metrics-service failed"))
        );
        assert_eq!(get(&a, "/livez").await.0, StatusCode::OK);
        let (code, v) = get(&a, "/apis/external.metrics.k8s.io/v1beta1").await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert_eq!(v["reason"], "Forbidden");
        let (code, v) = get(
            &a,
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/s0-x?labelSelector=scaledobject.keda.sh%2Fname%3Dweb",
        )
        .await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("cannot list resource \"s0-x\" in API group \"external.metrics.k8s.io\" in the namespace \"ns\"")),
            "{v}"
        );
    }

    #[test]
    fn selectors() {
        assert_eq!(
            scaled_object_from_selector("scaledobject.keda.sh/name=web").expect("ok"),
            Some("web".into())
        );
        assert_eq!(
            scaled_object_from_selector("a=b, scaledobject.keda.sh/name == web").expect("ok"),
            Some("web".into())
        );
        assert_eq!(scaled_object_from_selector("").expect("ok"), None);
        assert!(scaled_object_from_selector("scaledobject.keda.sh/name!=web").is_err());
        assert!(scaled_object_from_selector("scaledobject.keda.sh/name in (web)").is_err());
    }
}
