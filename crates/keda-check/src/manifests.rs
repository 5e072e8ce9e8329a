//! A set of manifests (files, directories, stdin; YAML or JSON, `kind: List` expanded) as a source, checked
//! as a whole: what `keda lint` does, minus the arguments and the printing.
//!
//! Every KEDA object goes through the one pipeline ([`crate::Checker`], [`Sight::Manifests`]): triggers
//! are resolved as the operator resolves them (the scale target's container env, TriggerAuthentication /
//! ClusterTriggerAuthentication → Secret / ConfigMap) from the objects of the set and parsed by the scaler
//! registry. References to objects outside the set are assumed to exist: the parameters they supply count
//! as present (parse errors about them are dropped), with an `assumed-reference` warning. A
//! TriggerAuthentication (ClusterTriggerAuthentication) missing from a set that contains some of that kind
//! is an error instead: the set is taken to hold them all. Across the set: two ScaledObjects scaling one
//! workload or owning one HPA are errors; each workload's graceful-shutdown advice is given once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret};
use keda_api::{
    ClusterTriggerAuthentication, ScaledJob, ScaledObject, TriggerAuthentication,
    TriggerAuthenticationSpec,
};
use keda_resolver::{Absent, AbsentPolicy, FileAccess, MemorySource, Resolver};
use keda_scalers::files::FileRoot;
use serde::Serialize;
use serde_json::Value;

use crate::advice::{self, Exposure, IngressInfo, ServiceInfo};
use crate::finding::{Finding, Severity, codes};
use crate::object::{Checker, ParsedTrigger, Sight, Target};

/// One finding about one object of the set, as printed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectFinding {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub severity: &'static str,
    pub field: String,
    pub code: String,
    pub message: String,
}

impl ObjectFinding {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error.as_str()
    }
}

// ---------------------------------------------------------------------------------------------------
// Input

/// One YAML/JSON document of the input.
pub struct Doc {
    value: Value,
}

/// The documents of `paths` (files, directories searched recursively for *.yaml, *.yml, *.json; `-` for
/// stdin), or why they cannot be read.
pub fn load(paths: &[String]) -> Result<Vec<Doc>, String> {
    let mut docs = Vec::new();
    for p in paths {
        if p == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("reading stdin: {e}"))?;
            parse_text("<stdin>", &text, false, &mut docs)?;
            continue;
        }
        let path = Path::new(p);
        let meta = std::fs::metadata(path).map_err(|e| format!("{p}: {e}"))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            let mut seen = BTreeSet::new();
            walk(path, &mut files, &mut seen, 0)?;
            for f in files {
                read_file(&f, &mut docs)?;
            }
        } else {
            read_file(path, &mut docs)?;
        }
    }
    Ok(docs)
}

fn is_manifest_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Files under `dir`, sorted, skipping hidden entries; symlink loops are cut by the canonical path.
fn walk(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    seen: &mut BTreeSet<PathBuf>,
    depth: usize,
) -> Result<(), String> {
    let canonical = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if depth > 64 || !seen.insert(canonical) {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        let meta = std::fs::metadata(&entry).map_err(|e| format!("{}: {e}", entry.display()))?;
        if meta.is_dir() {
            walk(&entry, out, seen, depth + 1)?;
        } else if is_manifest_file(&entry) {
            out.push(entry);
        }
    }
    Ok(())
}

fn read_file(path: &Path, docs: &mut Vec<Doc>) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
    let json = path.extension().and_then(|e| e.to_str()) == Some("json");
    parse_text(&path.display().to_string(), &text, json, docs)
}

/// Splits a text into documents (YAML: `---`-separated; JSON: one value), expanding `kind: List`.
pub fn parse_text(origin: &str, text: &str, json: bool, docs: &mut Vec<Doc>) -> Result<(), String> {
    if json {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("{origin}: invalid JSON: {e}"))?;
        push_doc(value, docs);
        return Ok(());
    }
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        use serde::Deserialize;
        let mut yaml = serde_yaml_ng::Value::deserialize(de)
            .map_err(|e| format!("{origin}: document {}: invalid YAML: {e}", i + 1))?;
        yaml.apply_merge()
            .map_err(|e| format!("{origin}: document {}: invalid YAML: {e}", i + 1))?;
        let value = serde_json::to_value(&yaml)
            .map_err(|e| format!("{origin}: document {}: not a Kubernetes object: {e}", i + 1))?;
        push_doc(value, docs);
    }
    Ok(())
}

fn push_doc(value: Value, docs: &mut Vec<Doc>) {
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List" || k.ends_with("List"));
    if is_list && let Some(items) = value.get("items").and_then(Value::as_array) {
        for item in items {
            push_doc(item.clone(), docs);
        }
        return;
    }
    if value.get("kind").and_then(Value::as_str).is_some() {
        docs.push(Doc { value });
    }
}

// ---------------------------------------------------------------------------------------------------
// The object set

/// Identity of an input object.
#[derive(Clone, Debug)]
pub struct Meta {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl Meta {
    fn of(value: &Value, cluster_scoped: bool) -> Meta {
        let s = |path: &[&str]| {
            let mut v = value;
            for p in path {
                v = match v.get(p) {
                    Some(v) => v,
                    None => return String::new(),
                };
            }
            v.as_str().unwrap_or_default().to_owned()
        };
        let namespace = if cluster_scoped {
            String::new()
        } else {
            Some(s(&["metadata", "namespace"]))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".to_owned())
        };
        Meta {
            kind: s(&["kind"]),
            namespace,
            name: s(&["metadata", "name"]),
        }
    }

    pub fn result(&self, f: Finding) -> ObjectFinding {
        ObjectFinding {
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            severity: f.severity.as_str(),
            field: f.field,
            code: f.code.to_owned(),
            message: f.message,
        }
    }
}

/// A workload with a pod template (Deployment, StatefulSet, or anything with `spec.template.spec`).
pub struct Workload {
    pub meta: Meta,
    pub pod_labels: BTreeMap<String, String>,
    pub pod_spec: PodSpec,
}

pub enum KedaObject {
    ScaledObject(Box<ScaledObject>),
    ScaledJob(Box<ScaledJob>),
    Auth(Box<TriggerAuthenticationSpec>),
}

pub struct Set {
    /// KEDA objects in input order, or the error that kept them from being read.
    pub keda: Vec<(Meta, Result<KedaObject, Finding>)>,
    /// Other objects that failed to decode.
    pub invalid: Vec<(Meta, Finding)>,
    pub source: MemorySource,
    pub workloads: Vec<Workload>,
    /// Services, Ingresses and ALB IngressClasses of the input (for the workload warnings).
    pub exposure: Exposure,
}

fn decode<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, Finding> {
    serde_path_to_error::deserialize::<_, T>(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        Finding::error(
            field,
            codes::INVALID_OBJECT,
            format!("does not match the schema: {}", e.inner()),
        )
    })
}

fn api_group(value: &Value) -> &str {
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn collect(docs: Vec<Doc>) -> Set {
    let mut set = Set {
        keda: Vec::new(),
        invalid: Vec::new(),
        source: MemorySource::default(),
        workloads: Vec::new(),
        exposure: Exposure::default(),
    };
    let mut has_ta = false;
    let mut has_cta = false;
    for Doc { value } in docs {
        let group = api_group(&value).to_owned();
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let keda = group == keda_api::GROUP;
        let core = group.is_empty();
        match (kind.as_str(), keda, core) {
            ("ScaledObject", true, _) => {
                let obj =
                    decode::<ScaledObject>(&value).map(|o| KedaObject::ScaledObject(Box::new(o)));
                set.keda.push((Meta::of(&value, false), obj));
            }
            ("ScaledJob", true, _) => {
                let obj = decode::<ScaledJob>(&value).map(|o| KedaObject::ScaledJob(Box::new(o)));
                set.keda.push((Meta::of(&value, false), obj));
            }
            ("TriggerAuthentication", true, _) => {
                has_ta = true;
                let meta = Meta::of(&value, false);
                let obj = decode::<TriggerAuthentication>(&value).map(|ta| {
                    set.source
                        .trigger_authentications
                        .insert((meta.namespace.clone(), meta.name.clone()), ta.spec.clone());
                    KedaObject::Auth(Box::new(ta.spec))
                });
                set.keda.push((meta, obj));
            }
            ("ClusterTriggerAuthentication", true, _) => {
                has_cta = true;
                let meta = Meta::of(&value, true);
                let obj = decode::<ClusterTriggerAuthentication>(&value).map(|cta| {
                    set.source
                        .cluster_trigger_authentications
                        .insert(meta.name.clone(), cta.spec.0.clone());
                    KedaObject::Auth(Box::new(cta.spec.0))
                });
                set.keda.push((meta, obj));
            }
            ("Secret", _, true) => {
                let meta = Meta::of(&value, false);
                match decode::<Secret>(&value) {
                    Ok(secret) => {
                        // The API server merges stringData over data.
                        let mut data: BTreeMap<String, String> = secret
                            .data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                            .collect();
                        data.extend(secret.string_data.unwrap_or_default());
                        set.source
                            .secrets
                            .insert((meta.namespace.clone(), meta.name.clone()), data);
                    }
                    Err(f) => set.invalid.push((meta, f)),
                }
            }
            ("ConfigMap", _, true) => {
                let meta = Meta::of(&value, false);
                match decode::<ConfigMap>(&value) {
                    Ok(cm) => {
                        set.source.config_maps.insert(
                            (meta.namespace.clone(), meta.name.clone()),
                            cm.data.unwrap_or_default(),
                        );
                    }
                    Err(f) => set.invalid.push((meta, f)),
                }
            }
            ("ServiceAccount", _, true) => {
                let meta = Meta::of(&value, false);
                let annotations = string_map(value.pointer("/metadata/annotations"));
                set.source
                    .service_accounts
                    .insert((meta.namespace, meta.name), annotations);
            }
            ("Service", _, true) => {
                let meta = Meta::of(&value, false);
                set.exposure.services.push(ServiceInfo {
                    namespace: meta.namespace,
                    name: meta.name,
                    selector: string_map(value.pointer("/spec/selector")),
                });
            }
            ("Ingress", _, _) => set.exposure.ingresses.push(ingress(&value)),
            ("IngressClass", _, _) => {
                if value.pointer("/spec/controller").and_then(Value::as_str)
                    == Some(advice::ALB_CONTROLLER)
                {
                    set.exposure.alb_classes.insert(Meta::of(&value, true).name);
                }
            }
            _ => {
                if let Some(template) = value.pointer("/spec/template/spec") {
                    let meta = Meta::of(&value, false);
                    match decode::<PodSpec>(template) {
                        Ok(pod_spec) => set.workloads.push(Workload {
                            pod_labels: string_map(value.pointer("/spec/template/metadata/labels")),
                            meta,
                            pod_spec,
                        }),
                        Err(mut f) => {
                            f.field = format!("spec.template.spec.{}", f.field);
                            set.invalid.push((meta, f));
                        }
                    }
                }
            }
        }
    }
    let complete_if = |present: bool| {
        if present {
            Absent::Missing
        } else {
            Absent::Assumed
        }
    };
    set.source.absent = AbsentPolicy {
        trigger_authentication: complete_if(has_ta),
        cluster_trigger_authentication: complete_if(has_cta),
        ..AbsentPolicy::assume_all()
    };
    set
}

fn ingress(value: &Value) -> IngressInfo {
    let meta = Meta::of(value, false);
    let annotations = string_map(value.pointer("/metadata/annotations"));
    let mut backends = BTreeSet::new();
    let mut add_backend = |b: Option<&Value>| {
        if let Some(b) = b {
            // networking.k8s.io/v1 and the older extensions/v1beta1 shape.
            let name = b
                .pointer("/service/name")
                .or_else(|| b.get("serviceName"))
                .and_then(Value::as_str);
            if let Some(name) = name {
                backends.insert(name.to_owned());
            }
        }
    };
    add_backend(value.pointer("/spec/defaultBackend"));
    add_backend(value.pointer("/spec/backend"));
    for rule in value
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for path in rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add_backend(path.get("backend"));
        }
    }
    IngressInfo::new(
        meta.namespace,
        meta.name,
        value
            .pointer("/spec/ingressClassName")
            .and_then(Value::as_str),
        &annotations,
        backends,
    )
}

// ---------------------------------------------------------------------------------------------------
// Linting

// ---------------------------------------------------------------------------------------------------
// Checking the set

/// Checks every object of `docs`: per object its errors first, then its warnings (and, with
/// `queue_length`, what each ScaledJob would create), then the advice about the workload it scales (once
/// per workload).
pub async fn check(
    docs: Vec<Doc>,
    cluster_object_namespace: &str,
    files: FileRoot,
    queue_length: Option<f64>,
) -> Vec<ObjectFinding> {
    check_objects(docs, cluster_object_namespace, files, queue_length)
        .await
        .results
}

/// A ScaledObject or ScaledJob of the set as [`check_objects`] judged it.
pub struct CheckedObject {
    pub meta: Meta,
    pub object: Scaled,
    /// At least one error was found about it: the operator would not create its objects.
    pub has_errors: bool,
}

/// A scaling object of the input.
pub enum Scaled {
    /// With what the parse says of each trigger, in trigger order (`None` where the parse failed).
    ScaledObject(Box<ScaledObject>, Vec<Option<ParsedTrigger>>),
    ScaledJob(Box<ScaledJob>),
}

/// What [`check_objects`] found: the results `keda lint` prints, and the ScaledObjects and ScaledJobs
/// that decoded, in input order.
pub struct Checked {
    pub results: Vec<ObjectFinding>,
    pub objects: Vec<CheckedObject>,
}

/// [`check`], keeping the decoded ScaledObjects (with their trigger metrics) and ScaledJobs for what is
/// built from them (`keda render`, `keda simulate`).
pub async fn check_objects(
    docs: Vec<Doc>,
    cluster_object_namespace: &str,
    files: FileRoot,
    queue_length: Option<f64>,
) -> Checked {
    let mut objects = Vec::new();
    let set = collect(docs);
    let mut results = Vec::new();
    for (meta, f) in set.invalid {
        results.push(meta.result(f));
    }
    let resolver = Resolver::new(set.source, cluster_object_namespace)
        .with_file_root(files, FileAccess::CheckOnly);
    let checker = Checker {
        resolver: &resolver,
        sight: Sight::Manifests,
        queue_length,
    };
    let workloads = set.workloads;
    let exposure = set.exposure;
    // Workload advice once per workload, however many ScaledObjects target it.
    let mut workloads_checked = BTreeSet::new();
    // (namespace, target kind, target name) and (namespace, HPA name) → ScaledObject name.
    let mut targets: BTreeMap<(String, String, String), String> = BTreeMap::new();
    let mut hpas: BTreeMap<(String, String), String> = BTreeMap::new();

    for (meta, obj) in &set.keda {
        let mut findings = Vec::new();
        // Results about other objects (the scale target), printed after this object's.
        let mut after = Vec::new();
        match obj {
            Err(f) => findings.push(f.clone()),
            Ok(KedaObject::Auth(spec)) => {
                findings.extend(crate::rules::trigger_authentication(spec))
            }
            Ok(KedaObject::ScaledJob(sj)) => {
                findings.extend(checker.scaled_job(&meta.namespace, sj).await);
                // Offline, whether Jobs run is unknown: the immediate rollout is said as advice.
                findings.extend(advice::rollout_deletes_jobs(sj, None));
                objects.push(CheckedObject {
                    meta: meta.clone(),
                    object: Scaled::ScaledJob(sj.clone()),
                    has_errors: findings.iter().any(|f| f.severity == Severity::Error),
                });
            }
            Ok(KedaObject::ScaledObject(so)) => {
                let target = &so.spec.scale_target_ref;
                let target_key = (
                    meta.namespace.clone(),
                    target.kind().to_owned(),
                    target.name.clone(),
                );
                if let Some(other) = targets.get(&target_key) {
                    findings.push(Finding::error(
                        "spec.scaleTargetRef",
                        codes::OTHER_SCALED_OBJECT,
                        format!(
                            "the workload {:?} of kind {} is already managed by the ScaledObject {other:?}",
                            target.name,
                            target.kind()
                        ),
                    ));
                } else {
                    targets.insert(target_key, meta.name.clone());
                }
                let hpa = (meta.namespace.clone(), so.hpa_name());
                if let Some(other) = hpas.get(&hpa) {
                    findings.push(Finding::error(
                        "spec.advanced.horizontalPodAutoscalerConfig.name",
                        codes::OTHER_SCALED_OBJECT_HPA,
                        format!(
                            "the HPA {:?} is already managed by the ScaledObject {other:?}",
                            hpa.1
                        ),
                    ));
                } else {
                    hpas.insert(hpa, meta.name.clone());
                }
                let workload = workloads.iter().find(|w| {
                    w.meta.kind == target.kind()
                        && w.meta.namespace == meta.namespace
                        && w.meta.name == target.name
                });
                let seen = match workload {
                    Some(w) => Target::Seen(&w.pod_spec),
                    None => Target::Unseen,
                };
                let (found, metrics) = checker
                    .scaled_object_metrics(&meta.namespace, so, seen)
                    .await;
                findings.extend(found);
                objects.push(CheckedObject {
                    meta: meta.clone(),
                    object: Scaled::ScaledObject(so.clone(), metrics),
                    has_errors: findings.iter().any(|f| f.severity == Severity::Error),
                });
                if let Some(w) = workload
                    && workloads_checked.insert((
                        w.meta.kind.clone(),
                        w.meta.namespace.clone(),
                        w.meta.name.clone(),
                    ))
                {
                    after.extend(
                        advice::workload_warnings(
                            &w.meta.namespace,
                            &w.pod_labels,
                            &w.pod_spec,
                            &exposure,
                        )
                        .into_iter()
                        .map(|f| w.meta.result(f)),
                    );
                }
            }
        }
        // Keep each object's findings together, errors first.
        findings.sort_by_key(|f| f.severity);
        results.extend(findings.into_iter().map(|f| meta.result(f)));
        results.extend(after);
    }
    Checked { results, objects }
}
