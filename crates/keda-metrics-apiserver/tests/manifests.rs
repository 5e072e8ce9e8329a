//! The manifests in config/metrics-apiserver/ say what the aggregation layer and RBAC need, with
//! upstream's names.

use serde_json::Value;

fn docs(file: &str) -> Vec<Value> {
    let path = format!(
        "{}/../../config/metrics-apiserver/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn apiservice_points_at_the_service_without_skipping_tls_verification() {
    let d = docs("apiservice.yaml");
    let a = find(&d, "APIService", "v1beta1.external.metrics.k8s.io");
    assert_eq!(a["apiVersion"], "apiregistration.k8s.io/v1");
    let spec = &a["spec"];
    assert_eq!(spec["group"], "external.metrics.k8s.io");
    assert_eq!(spec["version"], "v1beta1");
    assert_eq!(spec["groupPriorityMinimum"], 100);
    assert_eq!(spec["versionPriority"], 100);
    assert!(spec.get("insecureSkipTLSVerify").is_none());
    assert_eq!(spec["service"]["name"], "keda-operator-metrics-apiserver");
    assert_eq!(spec["service"]["port"], 443);

    let s = docs("service.yaml");
    let svc = find(&s, "Service", "keda-operator-metrics-apiserver");
    let https = &svc["spec"]["ports"][0];
    assert_eq!(https["name"], "https");
    assert_eq!(https["port"], 443);
    assert_eq!(https["targetPort"], 6443);
    assert_eq!(svc["metadata"]["namespace"], spec["service"]["namespace"]);
}

#[test]
fn rbac_delegates_auth_and_lets_the_hpa_controller_read() {
    let d = docs("rbac.yaml");
    let delegator = find(
        &d,
        "ClusterRoleBinding",
        "keda-operator-system-auth-delegator",
    );
    assert_eq!(delegator["roleRef"]["name"], "system:auth-delegator");
    let reader = find(&d, "RoleBinding", "keda-operator-auth-reader");
    assert_eq!(reader["metadata"]["namespace"], "kube-system");
    assert_eq!(reader["roleRef"]["kind"], "Role");
    assert_eq!(
        reader["roleRef"]["name"],
        "extension-apiserver-authentication-reader"
    );
    let role = find(&d, "ClusterRole", "keda-operator-external-metrics-reader");
    assert_eq!(role["rules"][0]["apiGroups"][0], "external.metrics.k8s.io");
    assert_eq!(role["rules"][0]["resources"][0], "externalmetrics");
    let hpa = find(
        &d,
        "ClusterRoleBinding",
        "keda-operator-hpa-controller-external-metrics",
    );
    assert_eq!(
        hpa["roleRef"]["name"],
        "keda-operator-external-metrics-reader"
    );
    assert_eq!(hpa["subjects"][0]["name"], "horizontal-pod-autoscaler");
    assert_eq!(hpa["subjects"][0]["namespace"], "kube-system");
    for b in [delegator, reader] {
        assert_eq!(b["subjects"][0]["name"], "keda-metrics-server");
    }
}
