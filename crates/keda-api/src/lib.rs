//! The `keda.sh/v1alpha1` API of KEDA, field for field with upstream v2.20, and every string that
//! other programs can observe (condition types, reasons, annotations, labels, event reasons, metric names).
//!
//! This crate does no IO. The CRD YAML is derived from these types (`crds()`), so the types are the single
//! source of truth for the schema.

pub mod common;
pub mod consts;
pub mod scaled_job;
pub mod scaled_object;
pub mod trigger_auth;

pub use common::{
    AuthenticationRef, Condition, GroupVersionKindResource, ScaleTriggers, TriggerActivityStatus,
};
pub use scaled_job::{ScaledJob, ScaledJobSpec, ScaledJobStatus};
pub use scaled_object::{ScaledObject, ScaledObjectSpec, ScaledObjectStatus};
pub use trigger_auth::{
    ClusterTriggerAuthentication, TriggerAuthentication, TriggerAuthenticationSpec,
    TriggerAuthenticationStatus,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of the core KEDA kinds.
pub const GROUP: &str = "keda.sh";
/// The only served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every object in this crate.
pub const API_VERSION: &str = "keda.sh/v1alpha1";

/// The four CRDs, in the order upstream's chart lists them.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        without_nullable(ClusterTriggerAuthentication::crd()),
        without_nullable(ScaledJob::crd()),
        without_nullable(ScaledObject::crd()),
        without_nullable(TriggerAuthentication::crd()),
    ]
}

/// schemars marks every `Option` field `nullable: true`; upstream's schemas never do, and with it the API
/// server would keep explicit `null`s (common in Helm-rendered manifests) instead of pruning them.
fn without_nullable(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
    fn strip(p: &mut JSONSchemaProps) {
        p.nullable = None;
        for child in p.properties.iter_mut().flat_map(|m| m.values_mut()) {
            strip(child);
        }
        if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(s)) =
            p.items.as_mut()
        {
            strip(s);
        }
        if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(s)) =
            p.additional_properties.as_mut()
        {
            strip(s);
        }
        for s in [&mut p.all_of, &mut p.any_of, &mut p.one_of]
            .into_iter()
            .flatten()
            .flatten()
        {
            strip(s);
        }
    }
    for v in &mut crd.spec.versions {
        if let Some(s) = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            strip(s);
            add_type_meta(s);
        }
    }
    crd
}

/// Upstream's schemas (controller-gen) spell out `apiVersion`, `kind` and `metadata` at the root; tools that
/// diff or document schemas (kubectl explain, ArgoCD) then see the same tree.
fn add_type_meta(
    root: &mut k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps,
) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
    let props = root.properties.get_or_insert_with(Default::default);
    let field = |ty: &str, doc: &str| JSONSchemaProps {
        type_: Some(ty.to_owned()),
        description: Some(doc.to_owned()),
        ..Default::default()
    };
    props.entry("apiVersion".into()).or_insert_with(|| {
        field(
            "string",
            "APIVersion defines the versioned schema of this representation of an object.",
        )
    });
    props.entry("kind".into()).or_insert_with(|| {
        field(
            "string",
            "Kind is a string value representing the REST resource this object represents.",
        )
    });
    props
        .entry("metadata".into())
        .or_insert_with(|| JSONSchemaProps {
            type_: Some("object".to_owned()),
            ..Default::default()
        });
}

/// The CRDs as multi-document YAML, exactly what `keda crds` prints and what the chart ships.
pub fn crds_yaml() -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd)?);
    }
    Ok(out)
}
