//! `keda render`: prints the objects keda-rs would create for a set of manifests. Building them is
//! `keda_check::render` (the operator's HPA and Job builders over the parse `keda lint` runs); this module
//! parses the arguments and prints.

use std::io::Write;
use std::process::ExitCode;

use keda_check::manifests;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Multi-document YAML, one document per object.
    #[default]
    Yaml,
    /// A `List`: `{"apiVersion":"v1","kind":"List","items":[…]}`.
    Json,
}

/// Prints the HPA `keda-hpa-<name>` of every ScaledObject and a sample Job of every ScaledJob, built by
/// the operator's own code, or the findings (as `keda lint` prints them, on stderr) that prevent it.
/// Exit 0: everything rendered; 1: an object has errors; 2: input unreadable.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  keda render examples/new-relic/scaledobject.yaml\n\n\
The ownerReference uid is the input's metadata.uid (empty when the input was not read from a cluster).\n\
An `external` trigger's metric name comes from its server at run time; offline it is the parse's."
)]
pub struct RenderArgs {
    /// Files or directories (searched recursively for *.yaml, *.yml, *.json); `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Yaml)]
    pub output: Output,
    /// Namespace whose Secrets and ConfigMaps ClusterTriggerAuthentications read (KEDA's namespace).
    #[arg(
        long,
        env = keda_resolver::CLUSTER_OBJECT_NAMESPACE_ENV,
        default_value = "keda",
        value_name = "NAMESPACE"
    )]
    pub cluster_object_namespace: String,
    /// The operator's `--filepath-auth-root-path` (see `keda lint --help`).
    #[arg(long, default_value = "", value_name = "DIR")]
    pub filepath_auth_root_path: String,
}

/// The objects as text in the chosen format.
fn format(objects: Vec<serde_json::Value>, output: Output) -> Result<String, String> {
    match output {
        Output::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            serde_json::to_string_pretty(&list)
                .map(|s| s + "\n")
                .map_err(|e| e.to_string())
        }
        Output::Yaml => {
            let mut text = String::new();
            for o in &objects {
                text.push_str("---\n");
                text.push_str(&serde_yaml_ng::to_string(o).map_err(|e| e.to_string())?);
            }
            Ok(text)
        }
    }
}

/// Runs `keda render`.
pub fn run(args: RenderArgs) -> ExitCode {
    let docs = match manifests::load(&args.paths) {
        Ok(docs) => docs,
        Err(e) => {
            eprintln!("keda render: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keda render: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let files = keda_scalers::files::FileRoot::new(&args.filepath_auth_root_path);
    let rendering = runtime.block_on(keda_check::render::render(
        docs,
        &args.cluster_object_namespace,
        files,
        keda_operator::VERSION,
    ));
    let failed = rendering.has_errors();
    let mut findings = String::new();
    match args.output {
        Output::Yaml => {
            for r in &rendering.results {
                findings.push_str(&crate::lint::text(r));
                findings.push('\n');
            }
        }
        Output::Json if !rendering.results.is_empty() => {
            let doc = serde_json::json!({ "results": rendering.results });
            findings = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_owned());
            findings.push('\n');
        }
        Output::Json => {}
    }
    let _ = std::io::stderr().lock().write_all(findings.as_bytes());
    let text = match format(rendering.objects, args.output) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("keda render: serialising the objects: {e}");
            return ExitCode::from(2);
        }
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("keda render: writing to stdout: {e}");
            return ExitCode::from(2);
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
