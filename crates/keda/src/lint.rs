//! `keda lint`: validates KEDA manifests offline with the operator's own code. The checking is
//! `keda_check::manifests` (the same pipeline the admission webhook runs); this module parses the
//! arguments and prints.

use std::io::Write;
use std::process::ExitCode;

use keda_check::manifests::{self, ObjectFinding};

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
    /// For each ScaledJob, report (severity `info`) how many Jobs it would create on one poll if every
    /// trigger reported this queue length and no Job ran, with its effective bounds.
    #[arg(long, value_name = "N")]
    pub queue_length: Option<f64>,
}

/// One result as a line of text.
pub fn text(r: &ObjectFinding) -> String {
    let id = if r.namespace.is_empty() {
        r.name.clone()
    } else {
        format!("{}/{}", r.namespace, r.name)
    };
    let field = if r.field.is_empty() { "-" } else { &r.field };
    format!(
        "{} {} {} {}: {} [{}]",
        r.severity, r.kind, id, field, r.message, r.code
    )
}

/// Runs `keda lint`: exit 0 without errors, 1 with errors, 2 when the input cannot be read.
pub fn run(args: LintArgs) -> ExitCode {
    let docs = match manifests::load(&args.paths) {
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
    let results = runtime.block_on(manifests::check(
        docs,
        &args.cluster_object_namespace,
        files,
        args.queue_length,
    ));
    let failed = results.iter().any(ObjectFinding::is_error);

    let mut text = String::new();
    match args.output {
        Output::Text => {
            for r in &results {
                text.push_str(&self::text(r));
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
