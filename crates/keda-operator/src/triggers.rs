//! From a ScaledObject's triggers to parsed scaler configs and HPA metrics: resolve env and
//! authentication, then call each scaler's pure parse (the same code `keda lint` and the webhook run).

use std::collections::BTreeMap;

use keda_api::ScaledObject;
use keda_core::hpa::TriggerMetric;
use keda_scalers::{MetricSpec, TriggerConfig, TriggerInput};

/// One parsed trigger.
#[derive(Debug)]
pub struct ParsedTrigger {
    pub index: usize,
    pub trigger_type: String,
    /// The value of upstream's `scaler` Prometheus label: `triggers[].name`, or the scaler's Go type name
    /// (`prometheusScaler`).
    pub scaler_label: String,
    pub name: Option<String>,
    pub config: Box<dyn TriggerConfig>,
    pub metric_name: String,
    pub use_cached_metrics: bool,
}

impl ParsedTrigger {
    pub fn is_resource(&self) -> bool {
        matches!(self.config.metric_spec(), MetricSpec::Resource { .. })
    }

    /// The metric as the HPA builder takes it.
    pub fn trigger_metric(&self) -> TriggerMetric {
        self.config.metric_spec().trigger_metric(self.index)
    }
}

/// Resolved inputs of one trigger.
pub struct ResolvedTrigger {
    pub env: BTreeMap<String, String>,
    pub auth_params: BTreeMap<String, String>,
}

/// Parses every trigger of `so` with its resolved inputs. The first failure is returned as the message
/// for the Ready condition (it names the trigger and the field). The files a trigger would open must lie
/// under `files`: as written (the check the webhook and `keda lint` make, with the same message), then
/// with their symbolic links followed.
pub fn parse_all(
    so: &ScaledObject,
    resolved: &[ResolvedTrigger],
    files: &keda_scalers::files::FileRoot,
) -> Result<Vec<ParsedTrigger>, String> {
    let mut out = Vec::with_capacity(so.spec.triggers.len());
    let namespace = so.metadata.namespace.as_deref().unwrap_or_default();
    for (index, (trigger, inputs)) in so.spec.triggers.iter().zip(resolved).enumerate() {
        let input = TriggerInput {
            index,
            trigger_type: &trigger.r#type,
            namespace,
            name: trigger.name.as_deref(),
            metadata: &trigger.metadata,
            resolved_env: &inputs.env,
            auth_params: &inputs.auth_params,
            metric_type: trigger.metric_type.as_deref(),
        };
        let config =
            keda_scalers::parse_trigger_confined(&input, files).map_err(|e| e.to_string())?;
        keda_scalers::resolve_files(config.as_ref(), files).map_err(|e| e.to_string())?;
        config.set_object(
            so.metadata.namespace.as_deref().unwrap_or_default(),
            &so.metadata.name.clone().unwrap_or_default(),
        );
        let metric_name = config.metric_spec().metric_name();
        out.push(ParsedTrigger {
            index,
            trigger_type: trigger.r#type.clone(),
            scaler_label: keda_scalers::scaler_label(&trigger.r#type, trigger.name.as_deref()),
            name: trigger.name.clone(),
            config,
            metric_name,
            use_cached_metrics: trigger.use_cached_metrics(),
        });
    }
    Ok(out)
}

/// A fingerprint of everything a loop's triggers are built from: the object's generation and the
/// resolved env and authentication parameters. A resync that resolves a rotated Secret changes it, so
/// the loop is rebuilt with the new value; one that resolves the same values does not.
pub fn inputs_fingerprint(so: &ScaledObject, resolved: &[ResolvedTrigger]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    so.metadata.generation.hash(&mut h);
    for r in resolved {
        r.env.hash(&mut h);
        r.auth_params.hash(&mut h);
    }
    h.finish()
}

/// Resolves env and authentication for every trigger and parses them: what a reconcile does, and what a
/// scale loop does again after a scaler error. Returns the triggers and their [`inputs_fingerprint`].
pub async fn resolve_and_parse(
    ctx: &crate::Context,
    so: &ScaledObject,
    pod_spec: Option<&k8s_openapi::api::core::v1::PodSpec>,
) -> Result<(Vec<ParsedTrigger>, u64), String> {
    let resolved = ctx.resolve_triggers(so, pod_spec).await?;
    let mut triggers = parse_all(so, &resolved, &ctx.config.file_root)?;
    resolve_metric_specs(&ctx.build, &mut triggers).await?;
    Ok((triggers, inputs_fingerprint(so, &resolved)))
}

/// Asks the backends of triggers whose metric only they know (`external`: the server's
/// `GetMetricSpec`, as upstream does for each HPA it builds), bounded by each trigger's build timeout.
/// A failure is the Ready message, so the HPA is never built with a metric the server does not serve.
pub async fn resolve_metric_specs(
    build: &keda_scalers::BuildContext,
    triggers: &mut [ParsedTrigger],
) -> Result<(), String> {
    for t in triggers.iter_mut() {
        let bound = t
            .config
            .timeouts(&build.timeouts)
            .build
            .unwrap_or(build.timeouts.http);
        match tokio::time::timeout(bound, t.config.resolve_metric_spec(build)).await {
            Ok(Ok(())) => t.metric_name = t.config.metric_spec().metric_name(),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => {
                return Err(format!(
                    "trigger {} ({}): the metric spec was not answered within {bound:?}",
                    t.index, t.trigger_type
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn so(generation: i64) -> ScaledObject {
        let mut so: ScaledObject = serde_yaml_ng::from_str(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a}\nspec:\n  scaleTargetRef: {name: w}\n  triggers: [{type: redis, metadata: {}}]\n",
        )
        .expect("parses");
        so.metadata.generation = Some(generation);
        so
    }

    fn resolved(password: &str) -> Vec<ResolvedTrigger> {
        vec![ResolvedTrigger {
            env: BTreeMap::new(),
            auth_params: BTreeMap::from([("password".to_owned(), password.to_owned())]),
        }]
    }

    /// What Ready=False says about a ScaledObject upstream admitted with a trigger type keda-rs does not
    /// support yet (the e2e `webhooks::an_unsupported_trigger_type_from_upstream_stays_editable` sees it on
    /// the object; `trust::an_unsupported_pod_identity_is_named_on_ready` the same for a provider).
    #[test]
    fn an_unknown_trigger_type_is_named() {
        let mut so = so(1);
        so.spec.triggers[0].r#type = "ibmmq".to_owned();
        let Err(message) = parse_all(&so, &resolved("x"), &Default::default()) else {
            panic!("ibmmq is not supported");
        };
        assert!(
            message.contains("unknown trigger type \"ibmmq\""),
            "{message}"
        );
    }

    #[test]
    fn a_rotated_credential_changes_the_inputs() {
        let base = inputs_fingerprint(&so(1), &resolved("old"));
        assert_eq!(base, inputs_fingerprint(&so(1), &resolved("old")));
        assert_ne!(
            base,
            inputs_fingerprint(&so(1), &resolved("new")),
            "same generation, new Secret value"
        );
        assert_ne!(
            base,
            inputs_fingerprint(&so(2), &resolved("old")),
            "new generation"
        );
    }
}
