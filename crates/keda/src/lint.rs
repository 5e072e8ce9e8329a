//! `keda lint`: validates KEDA manifests offline with the operator's own code.
//!
//! The input is a set of Kubernetes objects (files, directories, stdin). Every ScaledObject and ScaledJob
//! is checked with the webhook's object validations (`keda_resolver::validate`), then each trigger is
//! resolved like the operator resolves it (container env of the scale target, TriggerAuthentication /
//! ClusterTriggerAuthentication → Secret / ConfigMap) from the objects of the set, and parsed with exactly
//! the operator's parse (`keda_scalers::parse_trigger`).
//!
//! References to objects outside the set are assumed to exist: the parameters they supply count as
//! present (parse errors about them are dropped), with an `assumed-reference` warning. A
//! TriggerAuthentication (ClusterTriggerAuthentication) missing from a set that contains some of that kind
//! is an error instead: the set is taken to hold them all.
//!
//! Warnings cover the pitfalls of the seed operations guide (see [`codes`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret};
use keda_api::common::AuthenticationRefKind;
use keda_api::{
    ClusterTriggerAuthentication, ScaleTriggers, ScaledJob, ScaledObject, TriggerAuthentication,
    TriggerAuthenticationSpec,
};
use keda_resolver::validate::{self, Exposure, Finding, IngressInfo, ServiceInfo, Severity};
use keda_resolver::{
    Absent, AbsentPolicy, MemorySource, ObjectRef, ResolveError, ResolvedAuth, ResolvedEnv,
    Resolver,
};
use keda_scalers::ScalerError;
use serde::Serialize;
use serde_json::Value;

/// Codes of the findings `keda lint` adds to `keda_resolver::validate::codes`.
pub mod codes {
    /// A document of a KEDA (or referenced) kind does not match its schema.
    pub const INVALID_OBJECT: &str = "invalid-object";
    /// The trigger's parse step rejected its metadata or parameters.
    pub const TRIGGER_PARSE: &str = "trigger-parse";
    pub const UNKNOWN_TRIGGER_TYPE: &str = "unknown-trigger-type";
    /// Two ScaledObjects scale the same workload.
    pub const OTHER_SCALED_OBJECT: &str = "other-scaled-object";
    /// Two ScaledObjects would own the same HPA.
    pub const OTHER_SCALED_OBJECT_HPA: &str = "other-scaled-object-hpa";
    /// Warning: a referenced object is not in the input and is assumed to exist.
    pub const ASSUMED_REFERENCE: &str = "assumed-reference";
    /// Warning: no `scaleDown.stabilizationWindowSeconds`; replicas may flap.
    pub const NO_SCALE_DOWN_STABILIZATION: &str = "no-scale-down-stabilization";
    /// Warning: something the resolution noticed (an env parameter whose variable is not set, a
    /// deprecated pod identity provider).
    pub const AUTH_NOTE: &str = "auth-note";
    // The workload warnings (graceful shutdown) are `validate::codes::GRACE_PERIOD_SHORTER_THAN_PRESTOP`
    // and `validate::codes::ALB_GRACE_PERIOD`.
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// One line per result: `<severity> <Kind> <ns>/<name> <field>: <message> [<code>]`.
    #[default]
    Text,
    /// `{"results":[{"kind","namespace","name","severity","field","code","message"}]}`.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct LintArgs {
    /// Files or directories (searched recursively for *.yaml, *.yml, *.json); `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Namespace whose Secrets and ConfigMaps ClusterTriggerAuthentications read (KEDA's namespace).
    #[arg(
        long,
        env = keda_resolver::CLUSTER_OBJECT_NAMESPACE_ENV,
        default_value = "keda",
        value_name = "NAMESPACE"
    )]
    pub cluster_object_namespace: String,
    /// The operator's `--filepath-auth-root-path`: file paths in triggers (postgresql `sslrootcert`, …)
    /// and ClusterTriggerAuthentication `filePath` outside it are errors, as the operator refuses them.
    /// Empty: every such path is an error.
    #[arg(long, default_value = "", value_name = "DIR")]
    pub filepath_auth_root_path: String,
}

/// One result, as printed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LintResult {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub severity: &'static str,
    pub field: String,
    pub code: String,
    pub message: String,
}

impl LintResult {
    fn is_error(&self) -> bool {
        self.severity == Severity::Error.as_str()
    }

    fn text(&self) -> String {
        let id = if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        };
        let field = if self.field.is_empty() {
            "-"
        } else {
            &self.field
        };
        format!(
            "{} {} {} {}: {} [{}]",
            self.severity, self.kind, id, field, self.message, self.code
        )
    }
}

/// Runs `keda lint`: exit 0 without errors, 1 with errors, 2 when the input cannot be read.
pub fn run(args: LintArgs) -> ExitCode {
    let docs = match load(&args.paths) {
        Ok(docs) => docs,
        Err(e) => {
            eprintln!("keda lint: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keda lint: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let files = keda_scalers::files::FileRoot::new(&args.filepath_auth_root_path);
    let results = runtime.block_on(lint_documents(docs, &args.cluster_object_namespace, files));
    let failed = results.iter().any(LintResult::is_error);

    let mut text = String::new();
    match args.output {
        Output::Text => {
            for r in &results {
                text.push_str(&r.text());
                text.push('\n');
            }
        }
        Output::Json => {
            let doc = serde_json::json!({ "results": results });
            text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_owned());
            text.push('\n');
        }
    }
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("keda lint: writing to stdout: {e}");
            return ExitCode::from(2);
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

// ---------------------------------------------------------------------------------------------------
// Input

/// One YAML/JSON document of the input.
struct Doc {
    value: Value,
}

fn load(paths: &[String]) -> Result<Vec<Doc>, String> {
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

/// Splits a file into documents (YAML: `---`-separated; JSON: one value), expanding `kind: List`.
fn parse_text(origin: &str, text: &str, json: bool, docs: &mut Vec<Doc>) -> Result<(), String> {
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
struct Meta {
    kind: String,
    namespace: String,
    name: String,
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

    fn result(&self, f: Finding) -> LintResult {
        LintResult {
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
struct Workload {
    meta: Meta,
    pod_labels: BTreeMap<String, String>,
    pod_spec: PodSpec,
}

enum KedaObject {
    ScaledObject(Box<ScaledObject>),
    ScaledJob(Box<ScaledJob>),
    Auth(Box<TriggerAuthenticationSpec>),
}

struct Set {
    /// KEDA objects in input order, or the error that kept them from being read.
    keda: Vec<(Meta, Result<KedaObject, Finding>)>,
    /// Other objects that failed to decode.
    invalid: Vec<(Meta, Finding)>,
    source: MemorySource,
    workloads: Vec<Workload>,
    /// Services, Ingresses and ALB IngressClasses of the input (for the workload warnings).
    exposure: Exposure,
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

fn collect(docs: Vec<Doc>) -> Set {
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
                    == Some(validate::ALB_CONTROLLER)
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

struct Ctx {
    resolver: Resolver<MemorySource>,
    /// `--filepath-auth-root-path`, checked as written (the files are the operator's).
    files: keda_scalers::files::FileRoot,
    workloads: Vec<Workload>,
    exposure: Exposure,
}

async fn lint_documents(
    docs: Vec<Doc>,
    cluster_object_namespace: &str,
    files: keda_scalers::files::FileRoot,
) -> Vec<LintResult> {
    let set = collect(docs);
    let mut results = Vec::new();
    for (meta, f) in set.invalid {
        results.push(meta.result(f));
    }
    let ctx = Ctx {
        resolver: Resolver::new(set.source, cluster_object_namespace)
            .with_file_root(files.clone(), keda_resolver::FileAccess::CheckOnly),
        files,
        workloads: set.workloads,
        exposure: set.exposure,
    };
    // Workload warnings once per workload, however many ScaledObjects target it.
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
            Ok(KedaObject::Auth(spec)) => findings.extend(validate::trigger_authentication(spec)),
            Ok(KedaObject::ScaledJob(sj)) => {
                findings.extend(validate::scaled_job(sj));
                lint_scaled_job(&ctx, meta, sj, &mut findings).await;
            }
            Ok(KedaObject::ScaledObject(so)) => {
                findings.extend(validate::scaled_object(so));
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
                let workload = lint_scaled_object(&ctx, meta, so, &mut findings).await;
                if let Some(w) = workload
                    && workloads_checked.insert((
                        w.meta.kind.clone(),
                        w.meta.namespace.clone(),
                        w.meta.name.clone(),
                    ))
                {
                    after.extend(
                        workload_findings(&ctx, w)
                            .into_iter()
                            .map(|f| w.meta.result(f)),
                    );
                }
            }
        }
        // Keep each object's findings together, errors first.
        let (errors, warnings): (Vec<_>, Vec<_>) = findings
            .into_iter()
            .partition(|f| f.severity == Severity::Error);
        results.extend(errors.into_iter().map(|f| meta.result(f)));
        results.extend(warnings.into_iter().map(|f| meta.result(f)));
        results.extend(after);
    }
    results
}

fn uses_env(trigger: &ScaleTriggers) -> bool {
    trigger.metadata.keys().any(|k| k.ends_with("FromEnv"))
}

/// The authentication spec a trigger refers to, when it is in the set.
fn auth_spec<'a>(
    ctx: &'a Ctx,
    namespace: &str,
    trigger: &ScaleTriggers,
) -> Option<&'a TriggerAuthenticationSpec> {
    let r = trigger.authentication_ref.as_ref()?;
    let source = &ctx.resolver.source;
    match r.kind() {
        AuthenticationRefKind::TriggerAuthentication => source
            .trigger_authentications
            .get(&(namespace.to_owned(), r.name.clone())),
        AuthenticationRefKind::ClusterTriggerAuthentication => {
            source.cluster_trigger_authentications.get(&r.name)
        }
    }
}

/// Whether resolving the trigger reads the scale target's pod spec.
fn needs_pod_spec(ctx: &Ctx, namespace: &str, trigger: &ScaleTriggers) -> bool {
    uses_env(trigger)
        || auth_spec(ctx, namespace, trigger).is_some_and(|spec| {
            spec.env.as_ref().is_some_and(|e| !e.is_empty())
                || spec.pod_identity.as_ref().is_some_and(|p| {
                    p.identity_owner == Some(keda_api::trigger_auth::IdentityOwner::Workload)
                        || p.provider == keda_api::trigger_auth::PodIdentityProvider::AwsEks
                })
        })
}

fn env_error_field(e: &ResolveError, container_field: &str, target_field: &str) -> String {
    match e {
        ResolveError::ContainerNotFound { .. } => container_field.to_owned(),
        _ => target_field.to_owned(),
    }
}

async fn lint_scaled_object<'c>(
    ctx: &'c Ctx,
    meta: &Meta,
    so: &ScaledObject,
    findings: &mut Vec<Finding>,
) -> Option<&'c Workload> {
    let ns = &meta.namespace;
    let target = &so.spec.scale_target_ref;

    let behavior_window = so
        .spec
        .advanced
        .as_ref()
        .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
        .and_then(|c| c.behavior.as_ref())
        .and_then(|b| b.scale_down.as_ref())
        .and_then(|d| d.stabilization_window_seconds);
    let only_resource = so
        .spec
        .triggers
        .iter()
        .all(|t| t.r#type == "cpu" || t.r#type == "memory");
    if behavior_window.is_none() && !so.spec.triggers.is_empty() && !only_resource {
        findings.push(Finding::warning(
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds",
            codes::NO_SCALE_DOWN_STABILIZATION,
            "no scale-down stabilization window is set, so the HPA's default (300 s) decides how fast replicas drop after a burst; with a noisy event metric the replica count flaps: set it explicitly (the guide uses 600)",
        ));
    }

    let workload = ctx.workloads.iter().find(|w| {
        w.meta.kind == target.kind() && w.meta.namespace == *ns && w.meta.name == target.name
    });
    let env = match workload {
        None => ResolvedEnv::unknown(),
        // Upstream resolves no env for a target without containers.
        Some(w) if w.pod_spec.containers.is_empty() => ResolvedEnv::default(),
        Some(w) => match ctx
            .resolver
            .container_env(ns, &w.pod_spec, target.env_source_container_name.as_deref())
            .await
        {
            Ok(env) => env,
            Err(e) => {
                findings.push(Finding::error(
                    env_error_field(
                        &e,
                        "spec.scaleTargetRef.envSourceContainerName",
                        "spec.scaleTargetRef",
                    ),
                    e.category(),
                    format!(
                        "resolving the env of {} {ns}/{}: {e}",
                        target.kind(),
                        target.name
                    ),
                ));
                ResolvedEnv::unknown()
            }
        },
    };
    let needs_target = so.spec.triggers.iter().any(|t| needs_pod_spec(ctx, ns, t));
    if workload.is_none() && needs_target {
        findings.push(Finding::warning(
            "spec.scaleTargetRef",
            codes::ASSUMED_REFERENCE,
            format!(
                "{} {ns}/{} is not in the input: assumed to exist; the env values its containers supply count as present and are not checked",
                target.kind(),
                target.name
            ),
        ));
    }
    lint_triggers(
        ctx,
        ns,
        &so.spec.triggers,
        &env,
        workload.map(|w| &w.pod_spec),
        needs_target,
        "spec.scaleTargetRef",
        findings,
    )
    .await;
    workload
}

async fn lint_scaled_job(ctx: &Ctx, meta: &Meta, sj: &ScaledJob, findings: &mut Vec<Finding>) {
    let ns = &meta.namespace;
    let empty = PodSpec::default();
    let pod_spec = sj
        .spec
        .job_target_ref
        .template
        .spec
        .as_ref()
        .unwrap_or(&empty);
    let env = match ctx
        .resolver
        .container_env(ns, pod_spec, sj.spec.env_source_container_name.as_deref())
        .await
    {
        Ok(env) => env,
        Err(e) => {
            findings.push(Finding::error(
                env_error_field(
                    &e,
                    "spec.envSourceContainerName",
                    "spec.jobTargetRef.template.spec",
                ),
                e.category(),
                format!("resolving the env of the job template: {e}"),
            ));
            ResolvedEnv::unknown()
        }
    };
    let needs_target = sj.spec.triggers.iter().any(|t| needs_pod_spec(ctx, ns, t));
    lint_triggers(
        ctx,
        ns,
        &sj.spec.triggers,
        &env,
        Some(pod_spec),
        needs_target,
        "spec.jobTargetRef",
        findings,
    )
    .await;
}

#[allow(clippy::too_many_arguments)]
async fn lint_triggers(
    ctx: &Ctx,
    ns: &str,
    triggers: &[ScaleTriggers],
    env: &ResolvedEnv,
    pod_spec: Option<&PodSpec>,
    env_used: bool,
    target_field: &str,
    findings: &mut Vec<Finding>,
) {
    let mut warned: BTreeSet<ObjectRef> = BTreeSet::new();
    if env_used {
        for object in &env.assumed_objects {
            if warned.insert(object.clone()) {
                findings.push(Finding::warning(
                    target_field,
                    codes::ASSUMED_REFERENCE,
                    format!(
                        "{object} (env of the scale target's container) is not in the input: assumed to exist; the variables it supplies count as present and are not checked"
                    ),
                ));
            }
        }
    }
    for (i, trigger) in triggers.iter().enumerate() {
        let auth_field = format!("spec.triggers[{i}].authenticationRef");
        let auth = match ctx.resolver.auth_params(ns, trigger, env, pod_spec).await {
            Ok(auth) => auth,
            Err(e) => {
                findings.push(Finding::error(
                    &auth_field,
                    e.category(),
                    format!("trigger {i} ({}): {e}", trigger.r#type),
                ));
                // Parse on, taking the parameters as unknown, so metadata errors still show.
                ResolvedAuth {
                    incomplete: true,
                    ..Default::default()
                }
            }
        };
        for object in &auth.assumed_objects {
            if !warned.insert(object.clone()) {
                continue;
            }
            let message = if auth.incomplete {
                format!(
                    "{object} is not in the input: assumed to exist; any parameter it may supply counts as present"
                )
            } else {
                let params: Vec<&str> = auth.assumed.iter().map(String::as_str).collect();
                format!(
                    "{object} is not in the input: assumed to exist; the parameters it supplies ({}) count as present and are not checked",
                    params.join(", ")
                )
            };
            findings.push(Finding::warning(
                &auth_field,
                codes::ASSUMED_REFERENCE,
                message,
            ));
        }
        for note in &auth.notes {
            findings.push(Finding::warning(
                &auth_field,
                codes::AUTH_NOTE,
                note.clone(),
            ));
        }
        if let Some(e) =
            keda_resolver::parse::parse_with_assumptions(i, trigger, env, &auth, |input| {
                keda_scalers::parse_trigger_confined(input, &ctx.files).map(drop)
            })
        {
            findings.push(parse_finding(i, &e));
        }
    }
}

fn parse_finding(i: usize, e: &ScalerError) -> Finding {
    match e {
        ScalerError::UnknownType { .. } => {
            let known: Vec<&str> = keda_scalers::registered_types().collect();
            Finding::error(
                format!("spec.triggers[{i}].type"),
                codes::UNKNOWN_TRIGGER_TYPE,
                format!("{e}; this build supports: {}", known.join(", ")),
            )
        }
        ScalerError::Config { field, .. } => Finding::error(
            format!("spec.triggers[{i}].metadata.{field}"),
            codes::TRIGGER_PARSE,
            e.to_string(),
        ),
        ScalerError::Backend { .. } => Finding::error(
            format!("spec.triggers[{i}]"),
            codes::TRIGGER_PARSE,
            e.to_string(),
        ),
    }
}

// ---------------------------------------------------------------------------------------------------
// Workload warnings (the seed guide's graceful-shutdown pitfalls)

fn workload_findings(ctx: &Ctx, w: &Workload) -> Vec<Finding> {
    validate::workload_warnings(&w.meta.namespace, &w.pod_labels, &w.pod_spec, &ctx.exposure)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every case shares: a Deployment, a TriggerAuthentication whose `apiKey` comes from a Secret (the
    /// Secret is in the input, so `keda lint` reads it; the webhook, which reads no Secrets, stands a
    /// placeholder in for it).
    const CONTEXT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 30
      containers: [{name: app, image: x, env: [{name: REDIS_ADDR, value: 'redis:6379'}]}]
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: team}
stringData: {key: s3cret}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: api-auth, namespace: team}
spec:
  secretTargetRef: [{parameter: apiKey, name: creds, key: key}]
";

    fn scaled_object(spec: &str) -> String {
        format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: so, namespace: team}}\nspec:\n  scaleTargetRef: {{name: web}}\n  advanced: {{horizontalPodAutoscalerConfig: {{behavior: {{scaleDown: {{stabilizationWindowSeconds: 60}}}}}}}}\n{spec}"
        )
    }

    const API: &str = "  - type: metrics-api\n    metadata: {url: 'http://api.example/m', valueLocation: v, targetValue: '5', authMode: apiKey}\n    authenticationRef: {name: api-auth}\n";

    /// One rulebook: the same ScaledObject, through `keda lint` and through the admission webhook as the
    /// chart runs it (TriggerAuthentications read, Secrets not), is accepted by both or refused by both,
    /// and every field lint refuses is named in the webhook's denial.
    #[tokio::test]
    async fn lint_and_the_webhook_reach_the_same_verdict() {
        let cases: &[(&str, String, bool)] = &[
            (
                "apiKey from a Secret",
                scaled_object(&format!("  triggers:\n{API}")),
                true,
            ),
            (
                "env value",
                scaled_object("  triggers:\n  - type: redis\n    metadata: {addressFromEnv: REDIS_ADDR, listName: jobs}\n"),
                true,
            ),
            (
                "env variable the container does not have",
                scaled_object("  triggers:\n  - type: redis\n    metadata: {addressFromEnv: NOPE, listName: jobs}\n"),
                false,
            ),
            (
                "missing field next to Secret-backed parameters",
                scaled_object("  triggers:\n  - type: metrics-api\n    metadata: {url: 'http://api.example/m', targetValue: '5', authMode: apiKey}\n    authenticationRef: {name: api-auth}\n"),
                false,
            ),
            (
                "bad number",
                scaled_object("  triggers:\n  - type: metrics-api\n    metadata: {url: 'http://a/b', valueLocation: v, targetValue: five}\n"),
                false,
            ),
            (
                "missing TriggerAuthentication",
                scaled_object(&format!("  triggers:\n{}", API.replace("api-auth", "nope"))),
                false,
            ),
            (
                "min above max",
                scaled_object(&format!("  minReplicaCount: 5\n  maxReplicaCount: 2\n  triggers:\n{API}")),
                false,
            ),
            (
                "idle not below min",
                scaled_object(&format!("  minReplicaCount: 2\n  idleReplicaCount: 2\n  triggers:\n{API}")),
                false,
            ),
            ("no triggers", scaled_object("  triggers: []\n"), false),
            (
                "duplicate trigger names",
                scaled_object(&format!(
                    "  triggers:\n{}{}",
                    API.replace("  - type: metrics-api\n", "  - type: metrics-api\n    name: a\n"),
                    API.replace("  - type: metrics-api\n", "  - type: metrics-api\n    name: a\n")
                )),
                false,
            ),
            (
                "useCachedMetrics on cpu",
                scaled_object("  triggers:\n  - type: cpu\n    metricType: Utilization\n    useCachedMetrics: true\n    metadata: {value: '50'}\n"),
                false,
            ),
            (
                "unknown trigger type",
                scaled_object("  triggers:\n  - type: no-such-scaler\n    metadata: {}\n"),
                false,
            ),
            (
                "formula naming no trigger",
                scaled_object(&format!(
                    "  advanced:\n    scalingModifiers: {{formula: 'x + 1', target: '5'}}\n  triggers:\n{API}"
                ))
                .replace("  advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleDown: {stabilizationWindowSeconds: 60}}}}\n", ""),
                false,
            ),
        ];
        for (name, so, accepted) in cases {
            let text = format!("{CONTEXT}---\n{so}");

            let mut docs = Vec::new();
            parse_text(name, &text, false, &mut docs).expect("test input parses");
            let lint_errors: Vec<LintResult> =
                lint_documents(docs, "keda", keda_scalers::files::FileRoot::unset())
                    .await
                    .into_iter()
                    .filter(|r| r.is_error() && r.kind == "ScaledObject")
                    .collect();

            let mut docs = Vec::new();
            parse_text(name, &text, false, &mut docs).expect("test input parses");
            let set = collect(docs);
            let mut cluster = keda_webhooks::MemoryCluster::default();
            for w in &set.workloads {
                cluster.workloads.insert(
                    (
                        w.meta.namespace.clone(),
                        w.meta.kind.clone(),
                        w.meta.name.clone(),
                    ),
                    k8s_openapi::api::core::v1::PodTemplateSpec {
                        metadata: Some(
                            k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                                labels: Some(w.pod_labels.clone()),
                                ..Default::default()
                            },
                        ),
                        spec: Some(w.pod_spec.clone()),
                    },
                );
            }
            let webhook = keda_webhooks::Webhook {
                index: std::sync::Arc::new(keda_webhooks::Index::new()),
                resolver: Resolver::new(keda_resolver::AuthObjectsOnly(set.source), "keda"),
                cluster,
                metrics: keda_webhooks::Metrics::default(),
            };
            let so: ScaledObject = serde_yaml_ng::from_str(so).expect("ScaledObject");
            let outcome = webhook.scaled_object(&so, "team", false).await;

            assert_eq!(
                lint_errors.is_empty(),
                *accepted,
                "{name}: lint: {lint_errors:?}"
            );
            assert_eq!(
                outcome.errors.is_empty(),
                *accepted,
                "{name}: webhook: {:?}",
                outcome.errors
            );
            let denial = outcome.message().unwrap_or_default();
            for e in &lint_errors {
                let said = denial.contains(&e.field) || denial.contains(&e.message);
                assert!(
                    said,
                    "{name}: lint refuses {e:?}, the webhook says {denial:?}"
                );
            }
        }
    }
}
