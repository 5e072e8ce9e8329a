//! The URLs and requests of both modes.

use reqwest::{Client, RequestBuilder};

use super::config::{ApiMode, ClusterAgentMode};

impl ApiMode {
    /// `https://api.<site>`.
    pub fn base_url(&self) -> String {
        format!("https://api.{}", self.site)
    }

    /// The metrics query endpoint, `<base_url>/api/v1/query`.
    pub fn query_url(&self) -> String {
        format!("{}/api/v1/query", self.base_url())
    }
}

impl ClusterAgentMode {
    /// The Cluster Agent's external metrics API root, on the service's (not the metric's) namespace.
    pub fn service_url(&self) -> String {
        format!(
            "https://{}.{}:{}/apis/external.metrics.k8s.io/v1beta1",
            self.service, self.service_namespace, self.port
        )
    }

    /// The metric's URL: `<service_url>/namespaces/<metric namespace>/<external metric name>`.
    pub fn metric_url(&self, external_metric_name: &str) -> String {
        format!(
            "{}/namespaces/{}/{}",
            self.service_url(),
            self.metric_namespace,
            external_metric_name
        )
    }
}

/// The `/api/v1/query` request for the `age` seconds ending `time_window_offset` seconds before `now`
/// (Unix seconds), authenticated by the API and application keys.
pub(super) fn api_query(client: &Client, url: &str, api: &ApiMode, now: i64) -> RequestBuilder {
    let to = now - api.time_window_offset;
    let from = to - api.age;
    client
        .get(url)
        .query(&[
            ("from", from.to_string()),
            ("to", to.to_string()),
            ("query", api.query.clone()),
        ])
        .header(reqwest::header::ACCEPT, "application/json")
        .header("DD-API-KEY", &api.api_key)
        .header("DD-APPLICATION-KEY", &api.app_key)
}

/// The Cluster Agent request for the metric at `url`, with the bearer token when `authMode` is bearer.
pub(super) fn cluster_agent_metric(
    client: &Client,
    url: &str,
    ca: &ClusterAgentMode,
) -> RequestBuilder {
    let req = client.get(url);
    match &ca.bearer_token {
        Some(token) => req.bearer_auth(token),
        None => req,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> ApiMode {
        ApiMode {
            query: "avg:x{*}".into(),
            aggregator: None,
            activation_query_value: 0.0,
            age: 90,
            time_window_offset: 30,
            last_available_point_offset: 0,
            api_key: "k".into(),
            app_key: "a".into(),
            site: "datadoghq.eu".into(),
        }
    }

    #[test]
    fn the_query_covers_the_window_before_the_offset() {
        let api = api();
        let req = api_query(&Client::new(), &api.query_url(), &api, 1_000)
            .build()
            .expect("builds");
        assert_eq!(
            req.url().as_str(),
            "https://api.datadoghq.eu/api/v1/query?from=880&to=970&query=avg%3Ax%7B*%7D"
        );
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("DD-API-KEY"), Some("k"));
        assert_eq!(header("DD-APPLICATION-KEY"), Some("a"));
        assert_eq!(header("accept"), Some("application/json"));
    }

    #[test]
    fn the_cluster_agent_request_carries_the_bearer_token() {
        let mut ca = ClusterAgentMode {
            service: "datadog-cluster-agent-metrics-api".into(),
            service_namespace: "datadog".into(),
            port: 8443,
            metric_namespace: "apps".into(),
            metric_name: "web".into(),
            activation_target_value: 0.0,
            unsafe_ssl: false,
            bearer_token: None,
        };
        let url = ca.metric_url("datadogmetric@apps:web");
        assert_eq!(
            url,
            "https://datadog-cluster-agent-metrics-api.datadog:8443/apis/external.metrics.k8s.io/v1beta1/namespaces/apps/datadogmetric@apps:web"
        );
        let auth = |ca: &ClusterAgentMode| {
            cluster_agent_metric(&Client::new(), &url, ca)
                .build()
                .expect("builds")
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap_or_default().to_owned())
        };
        assert_eq!(auth(&ca), None);
        ca.bearer_token = Some("t".into());
        assert_eq!(auth(&ca), Some("Bearer t".to_owned()));
    }
}
