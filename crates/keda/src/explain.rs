//! `keda explain`: reads a live ScaledObject, its HPA, the scale target's `/scale`, the external metric
//! values and the recent Events with the user's kubeconfig (never writes), and prints
//! `keda_check::explain`'s explanation. This module only fetches and prints.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use keda_api::ScaledObject;
use keda_api::consts::labels;
use keda_check::explain::{Inputs, explain};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Plain words: state, why, what next, metrics, HPA, rules, Events.
    #[default]
    Text,
    /// `{"namespace","name","now","target","state":{"kind",…},"summary","rules","metrics","hpa","next","events"}`.
    Json,
}

/// Explains why a ScaledObject's target has the replicas it has now and what would change them next:
/// the external metric values and targets with the HPA's computation, the HPA's conditions, which of KEDA's
/// rules is in force (paused, activation, cooldown, idle, fallback) and whether a stabilization window holds
/// a scale-down, with the last Events. Reads only; works on upstream KEDA's objects too.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  keda explain scaledobject/example-app -n shop\n  keda explain so/example-app -o json\n\n\
Exit 0: explained; 1: the object or the cluster could not be read; 2: a malformed argument."
)]
pub struct ExplainArgs {
    /// `scaledobject/NAME` (or `so/NAME`).
    #[arg(value_name = "scaledobject/NAME")]
    pub object: String,
    /// Namespace; default: the kubeconfig context's namespace, else `default`.
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// The name in `scaledobject/NAME`, or what is wrong with the argument.
pub fn parse_object(arg: &str) -> Result<String, String> {
    let Some((kind, name)) = arg.split_once('/') else {
        return Err(format!(
            "{arg:?} is not of the form scaledobject/NAME (or so/NAME)"
        ));
    };
    let kind_ok = matches!(
        kind.to_ascii_lowercase().as_str(),
        "scaledobject" | "scaledobjects" | "so" | "scaledobject.keda.sh" | "scaledobjects.keda.sh"
    );
    if !kind_ok {
        return Err(format!(
            "{kind:?} is not a ScaledObject: only scaledobject/NAME (or so/NAME) can be explained"
        ));
    }
    if name.is_empty() || name.contains('/') {
        return Err(format!(
            "{arg:?}: the name after scaledobject/ is missing or has a '/'"
        ));
    }
    Ok(name.to_owned())
}

/// Runs `keda explain`.
pub fn run(args: ExplainArgs) -> ExitCode {
    let name = match parse_object(&args.object) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("keda explain: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keda explain: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let text = match runtime.block_on(fetch_and_explain(&name, args.namespace, args.output)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("keda explain: {e}");
            return ExitCode::from(1);
        }
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keda explain: writing to stdout: {e}");
            ExitCode::from(1)
        }
    }
}

async fn fetch_and_explain(
    name: &str,
    namespace: Option<String>,
    output: Output,
) -> Result<String, String> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("connecting to the cluster (kubeconfig): {e}"))?;
    let ns = namespace.unwrap_or_else(|| client.default_namespace().to_owned());
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), &ns);
    let so = sos
        .get_opt(name)
        .await
        .map_err(|e| format!("reading scaledobject {ns}/{name}: {e}"))?
        .ok_or_else(|| format!("scaledobject {ns}/{name} not found"))?;
    let hpa_name = so.hpa_name();
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    // A missing or unreadable HPA is part of the explanation, not a failure.
    let hpa = hpas.get_opt(&hpa_name).await.ok().flatten();
    let target_replicas = target_replicas(&client, &ns, &so).await;
    let metric_names: Vec<String> = hpa
        .as_ref()
        .and_then(|h| h.spec.as_ref())
        .and_then(|s| s.metrics.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|m| m.external.as_ref().map(|e| e.metric.name.clone()))
        .collect();
    let mut metric_values = BTreeMap::new();
    for metric in metric_names {
        let value = external_metric(&client, &ns, name, &metric).await;
        metric_values.insert(metric, value);
    }
    let mut events = object_events(&client, &ns, "ScaledObject", name).await;
    events.extend(object_events(&client, &ns, "HorizontalPodAutoscaler", &hpa_name).await);
    let explanation = explain(&Inputs {
        scaled_object: &so,
        hpa: hpa.as_ref(),
        target_replicas,
        metric_values: &metric_values,
        events: &events,
        now: Timestamp::now(),
    });
    match output {
        Output::Text => Ok(explanation.text()),
        Output::Json => serde_json::to_string_pretty(&explanation)
            .map(|s| s + "\n")
            .map_err(|e| format!("serialising the explanation: {e}")),
    }
}

/// `spec.replicas` of the target's `/scale`: the resource from `status.scaleTargetGVKR` (upstream and
/// keda-rs write it), else found by discovery from `scaleTargetRef`. `None` when it cannot be read.
async fn target_replicas(client: &Client, ns: &str, so: &ScaledObject) -> Option<i32> {
    let target = &so.spec.scale_target_ref;
    let resource = match so
        .status
        .as_ref()
        .and_then(|s| s.scale_target_gvkr.as_ref())
    {
        Some(g) => ApiResource {
            group: g.group.clone(),
            version: g.version.clone(),
            api_version: if g.group.is_empty() {
                g.version.clone()
            } else {
                format!("{}/{}", g.group, g.version)
            },
            kind: g.kind.clone(),
            plural: g.resource.clone(),
        },
        None => {
            let (group, version) = match target.api_version().split_once('/') {
                Some((g, v)) => (g, v),
                None => ("", target.api_version()),
            };
            let gvk = GroupVersionKind::gvk(group, version, target.kind());
            kube::discovery::pinned_kind(client, &gvk).await.ok()?.0
        }
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let scale = api.get_scale(&target.name).await.ok()?;
    // `replicas` is omitted from a Scale at zero.
    Some(scale.spec.and_then(|s| s.replicas).unwrap_or(0))
}

/// The API server's message, without the Debug dump of its Status.
fn api_message(e: kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} (HTTP {})", status.message, status.code),
        other => other.to_string(),
    }
}

/// The value of external metric `metric` for the ScaledObject, asked as the HPA controller asks (the
/// ScaledObject's label as selector; items summed), or why it could not be read.
async fn external_metric(client: &Client, ns: &str, so: &str, metric: &str) -> Result<f64, String> {
    let path = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}?labelSelector={}%3D{so}",
        labels::SCALED_OBJECT_NAME.replace('/', "%2F")
    );
    let request = http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let list: serde_json::Value = client
        .request(request)
        .await
        .map_err(|e| format!("external.metrics.k8s.io unavailable: {}", api_message(e)))?;
    let items = list["items"]
        .as_array()
        .ok_or_else(|| "external.metrics.k8s.io answered without items".to_owned())?;
    let mut sum = 0.0;
    for item in items {
        let text = item["value"].as_str().unwrap_or_default();
        sum += keda_core::quantity::parse_quantity(text)
            .ok_or_else(|| format!("external.metrics.k8s.io returned value {text:?}"))?;
    }
    Ok(sum)
}

/// Events about `kind/name`; none when they cannot be listed.
async fn object_events(client: &Client, ns: &str, kind: &str, name: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let params = ListParams::default().fields(&format!(
        "involvedObject.kind={kind},involvedObject.name={name}"
    ));
    api.list(&params).await.map(|l| l.items).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_argument_forms() {
        assert_eq!(parse_object("scaledobject/web"), Ok("web".to_owned()));
        assert_eq!(parse_object("so/web"), Ok("web".to_owned()));
        assert_eq!(
            parse_object("ScaledObjects.keda.sh/web"),
            Ok("web".to_owned())
        );
        let cases = [
            ("web", "is not of the form scaledobject/NAME"),
            ("deployment/web", "\"deployment\" is not a ScaledObject"),
            ("so/", "the name after scaledobject/ is missing"),
            ("so/a/b", "has a '/'"),
        ];
        for (arg, want) in cases {
            let err = parse_object(arg).expect_err(arg);
            assert!(err.contains(want), "{arg}: {err}");
        }
    }
}
