//! The generated CRDs must be a drop-in replacement for upstream's: every property path, shortName,
//! printer column, the status subresource and the min/max CEL rule.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use std::collections::{BTreeMap, BTreeSet};

fn collect(p: &JSONSchemaProps, path: &str, out: &mut BTreeSet<String>) {
    if !path.is_empty() {
        out.insert(path.to_owned());
    }
    for (k, v) in p.properties.iter().flatten() {
        let child = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        collect(v, &child, out);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(s)) = &p.items {
        collect(s, &format!("{path}[]"), out);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(s)) = &p.additional_properties {
        collect(s, &format!("{path}{{}}"), out);
    }
}

fn by_plural() -> BTreeMap<String, CustomResourceDefinition> {
    keda_api::crds()
        .into_iter()
        .map(|c| (c.spec.names.plural.clone(), c))
        .collect()
}

fn schema(crd: &CustomResourceDefinition) -> &JSONSchemaProps {
    crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("every CRD has a schema")
}

#[test]
fn every_upstream_property_path_exists() {
    let crds = by_plural();
    let mut ours: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (plural, crd) in &crds {
        let mut set = BTreeSet::new();
        collect(schema(crd), "", &mut set);
        ours.insert(plural, set);
    }
    let data = include_str!("data/upstream-crd-paths.txt");
    let mut missing = Vec::new();
    let mut checked = 0;
    for line in data
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (plural, path) = line.split_once(' ').expect("line is '<plural> <path>'");
        let set = ours
            .get(plural)
            .unwrap_or_else(|| panic!("no CRD for {plural}"));
        checked += 1;
        if !set.contains(path) {
            missing.push(line.to_owned());
        }
    }
    assert!(
        checked > 1700,
        "the path list was truncated: {checked} paths"
    );
    assert!(
        missing.is_empty(),
        "{} upstream paths missing:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[test]
fn names_scope_and_short_names_match_upstream() {
    let crds = by_plural();
    let expect = [
        ("scaledobjects", "ScaledObject", "Namespaced", vec!["so"]),
        ("scaledjobs", "ScaledJob", "Namespaced", vec!["sj"]),
        (
            "triggerauthentications",
            "TriggerAuthentication",
            "Namespaced",
            vec!["ta", "triggerauth"],
        ),
        (
            "clustertriggerauthentications",
            "ClusterTriggerAuthentication",
            "Cluster",
            vec!["cta", "clustertriggerauth"],
        ),
    ];
    assert_eq!(crds.len(), expect.len());
    for (plural, kind, scope, short) in expect {
        let crd = &crds[plural];
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some(format!("{plural}.keda.sh").as_str())
        );
        assert_eq!(crd.spec.group, "keda.sh");
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.scope, scope);
        assert_eq!(
            crd.spec.names.short_names.clone().unwrap_or_default(),
            short
        );
        let v = &crd.spec.versions;
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].name.as_str(), v[0].served, v[0].storage),
            ("v1alpha1", true, true)
        );
        assert!(
            v[0].subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{plural} status subresource"
        );
    }
}

#[test]
fn printer_columns_match_upstream() {
    let cond = |t: &str| format!(".status.conditions[?(@.type==\"{t}\")].status");
    let so = vec![
        (
            "ScaleTargetKind",
            ".status.scaleTargetKind".to_owned(),
            None,
        ),
        (
            "ScaleTargetName",
            ".spec.scaleTargetRef.name".to_owned(),
            None,
        ),
        ("Min", ".spec.minReplicaCount".to_owned(), None),
        ("Max", ".spec.maxReplicaCount".to_owned(), None),
        ("Ready", cond("Ready"), None),
        ("Active", cond("Active"), None),
        ("Fallback", cond("Fallback"), None),
        ("Paused", cond("Paused"), None),
        ("Triggers", ".status.triggersTypes".to_owned(), None),
        (
            "Authentications",
            ".status.authenticationsTypes".to_owned(),
            None,
        ),
        ("Age", ".metadata.creationTimestamp".to_owned(), None),
    ];
    let sj = vec![
        ("Min", ".spec.minReplicaCount".to_owned(), None),
        ("Max", ".spec.maxReplicaCount".to_owned(), None),
        ("Ready", cond("Ready"), None),
        ("Active", cond("Active"), None),
        ("Paused", cond("Paused"), None),
        ("Triggers", ".status.triggersTypes".to_owned(), None),
        (
            "Authentications",
            ".status.authenticationsTypes".to_owned(),
            None,
        ),
        ("Age", ".metadata.creationTimestamp".to_owned(), None),
    ];
    let auth = |cluster: bool| {
        let mut v = vec![
            ("PodIdentity", ".spec.podIdentity.provider".to_owned(), None),
            ("Secret", ".spec.secretTargetRef[*].name".to_owned(), None),
            ("Env", ".spec.env[*].name".to_owned(), None),
        ];
        if cluster {
            v.push(("FilePath", ".spec.filePath".to_owned(), None));
        }
        v.push((
            "VaultAddress",
            ".spec.hashiCorpVault.address".to_owned(),
            None,
        ));
        v.push(("ScaledObjects", ".status.scaledobjects".to_owned(), Some(1)));
        v.push(("ScaledJobs", ".status.scaledjobs".to_owned(), Some(1)));
        v
    };
    let crds = by_plural();
    for (plural, want) in [
        ("scaledobjects", so),
        ("scaledjobs", sj),
        ("triggerauthentications", auth(false)),
        ("clustertriggerauthentications", auth(true)),
    ] {
        let got: Vec<(&str, String, Option<i32>)> = crds[plural].spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.json_path.clone(), c.priority))
            .collect();
        assert_eq!(got, want, "{plural}");
    }
}

#[test]
fn scaled_object_spec_has_the_min_max_cel_rule() {
    let crds = by_plural();
    let spec = &schema(&crds["scaledobjects"])
        .properties
        .as_ref()
        .expect("properties")["spec"];
    let rules = spec
        .x_kubernetes_validations
        .as_ref()
        .expect("CEL rules on spec");
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].rule,
        "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)"
    );
    assert_eq!(
        rules[0].message.as_deref(),
        Some("minReplicaCount must be less than or equal to maxReplicaCount")
    );
}

#[test]
fn scaled_job_target_is_a_full_job_spec() {
    let crds = by_plural();
    let mut paths = BTreeSet::new();
    collect(schema(&crds["scaledjobs"]), "", &mut paths);
    for p in [
        "spec.jobTargetRef.template.spec.containers[].image",
        "spec.jobTargetRef.backoffLimit",
        "spec.jobTargetRef.podFailurePolicy.rules[].action",
        "spec.jobTargetRef.template.spec.containers[].resources.limits{}",
    ] {
        assert!(paths.contains(p), "missing {p}");
    }
}

#[test]
fn no_field_is_nullable_like_upstream() {
    let yaml = keda_api::crds_yaml().expect("serialises");
    assert!(!yaml.contains("nullable"));
    assert_eq!(yaml.matches("kind: CustomResourceDefinition").count(), 4);
}
