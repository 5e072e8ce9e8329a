//! `keda simulate` without the arguments and the printing: the ScaledObject chosen from a set of
//! manifests, checked as `keda lint` checks it, its HPA as `keda render` builds it
//! ([`crate::render::build_hpa`]), its triggers as the operator parses them, handed to
//! `keda_core::simulate` (the operator's activation, fallback and formula code and the HPA controller
//! model).

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_api::ScaledObject;
use keda_core::simulate::Trigger;
use keda_scalers::MetricSpec;
use keda_scalers::files::FileRoot;

use crate::manifests::{self, Doc, ObjectFinding, Scaled};

/// Why a simulation cannot start.
#[derive(Debug)]
pub enum Refusal {
    /// The object has errors, as `keda lint` reports them (with its warnings).
    Findings(Vec<ObjectFinding>),
    /// The input does not name a ScaledObject that can be replayed; the text says what is wrong.
    Input(String),
}

/// What a simulation runs on.
pub struct Prepared {
    pub scaled_object: ScaledObject,
    pub triggers: Vec<Trigger>,
    pub hpa: HorizontalPodAutoscaler,
    /// `keda lint`'s warnings about the object.
    pub warnings: Vec<ObjectFinding>,
}

/// Picks the ScaledObject named `name` (or the only one) from `docs` and prepares its replay.
pub async fn prepare(
    docs: Vec<Doc>,
    name: Option<&str>,
    cluster_object_namespace: &str,
    files: FileRoot,
    keda_version: &str,
) -> Result<Prepared, Refusal> {
    let checked = manifests::check_objects(docs, cluster_object_namespace, files, None).await;
    let mut found = Vec::new();
    let mut names = Vec::new();
    for object in checked.objects {
        if let Scaled::ScaledObject(so, triggers) = object.object {
            names.push(format!("{}/{}", object.meta.namespace, object.meta.name));
            if name.is_none_or(|n| n == object.meta.name) {
                found.push((object.meta, so, triggers, object.has_errors));
            }
        }
    }
    let list = if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    };
    if found.len() != 1 {
        return Err(Refusal::Input(match (name, found.len()) {
            (Some(n), 0) => {
                format!("no ScaledObject named {n:?} in the input (ScaledObjects: {list})")
            }
            (None, 0) => "the input holds no ScaledObject".to_owned(),
            (Some(n), _) => format!(
                "{} ScaledObjects are named {n:?} (in different namespaces): keep one in the input ({list})",
                found.len()
            ),
            (None, _) => format!(
                "the input holds {} ScaledObjects ({list}): choose one with --scaled-object NAME",
                found.len()
            ),
        }));
    }
    let Some((meta, so, parsed, has_errors)) = found.pop() else {
        return Err(Refusal::Input("the input holds no ScaledObject".to_owned()));
    };
    let own: Vec<ObjectFinding> = checked
        .results
        .into_iter()
        .filter(|r| {
            r.kind == "ScaledObject" && r.namespace == meta.namespace && r.name == meta.name
        })
        .collect();
    if has_errors {
        return Err(Refusal::Findings(own));
    }
    let id = format!("ScaledObject {}/{}", meta.namespace, meta.name);
    let mut triggers = Vec::with_capacity(so.spec.triggers.len());
    for (index, (spec, parsed)) in so.spec.triggers.iter().zip(&parsed).enumerate() {
        let what = format!("{id}: trigger {index} ({})", spec.r#type);
        let Some(parsed) = parsed else {
            return Err(Refusal::Input(format!("{what} did not parse")));
        };
        let MetricSpec::External {
            metric_name,
            target_type,
            target,
        } = &parsed.metric
        else {
            return Err(Refusal::Input(format!(
                "{what} is measured by the HPA from the pods' usage, which a series does not describe: keda simulate replays external metrics only"
            )));
        };
        let Some(activation_threshold) = parsed.activation_threshold else {
            return Err(Refusal::Input(format!(
                "{what}: its scaler decides activity by its own rule, not by a threshold on the value, so keda simulate cannot replay it"
            )));
        };
        triggers.push(Trigger {
            index,
            trigger_type: spec.r#type.clone(),
            name: spec.name.clone().filter(|n| !n.is_empty()),
            metric_name: metric_name.clone(),
            target_type: *target_type,
            target: *target,
            activation_threshold,
            use_cached_metrics: spec.use_cached_metrics(),
        });
    }
    let hpa = crate::render::build_hpa(&meta, &so, &parsed, keda_version)
        .map_err(|f| Refusal::Input(format!("{id}: {}", f.message)))?;
    Ok(Prepared {
        scaled_object: *so,
        triggers,
        hpa,
        warnings: own,
    })
}
