//! `keda`: one binary, one subcommand per process. The logic lives in the library crates.

mod admission_webhooks;
mod explain;
mod flags;
mod lint;
mod logging;
mod metrics_apiserver;
mod operator;
mod render;
mod simulate;

use clap::{Parser, Subcommand};

/// jemalloc instead of glibc's malloc. The operator's heap churns with every poll while most of its
/// memory is long-lived per-object state; with glibc the anonymous memory was 40% larger and a poll cost
/// ~40% more CPU (`cargo xtask bench operator`, 1,000 objects at 1 s: 33.3 vs 23.8 MiB anonymous,
/// 0.192 vs 0.138 CPU-s per 1,000 polls). Its options are set at build time in `.cargo/config.toml`.
#[cfg(not(feature = "dhat-heap"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A heap-profiling build (`cargo build -p keda --features dhat-heap`): every allocation is recorded with
/// its call stack, and `$KEDA_DHAT_FILE` (default `dhat-heap.json`) is written when the process exits
/// normally (SIGTERM), for `cargo xtask bench operator`'s heap report (BENCH_HEAP=1). Slow; never shipped.
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;
use std::io::Write;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "keda",
    version,
    about = "keda-rs: Kubernetes event-driven autoscaling, rebuilt in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: controllers, scale loops, the HPAs, gRPC metrics service.
    Operator(Box<operator::OperatorArgs>),
    /// Run the external.metrics.k8s.io API server.
    MetricsApiserver(Box<metrics_apiserver::MetricsApiserverArgs>),
    /// Run the validating admission webhooks.
    AdmissionWebhooks(Box<admission_webhooks::AdmissionWebhooksArgs>),
    /// Print the four keda.sh CRDs as multi-document YAML.
    Crds,
    /// Validate KEDA manifests offline with the operator's own parse and validation code.
    Lint(lint::LintArgs),
    /// Print the objects keda-rs would create (the HPA per ScaledObject, a sample Job per ScaledJob),
    /// offline, with the operator's own builders.
    Render(render::RenderArgs),
    /// Replay a metric series through a ScaledObject's scale loop and its HPA, offline, and print the
    /// replica timeline with the reason for every change.
    Simulate(simulate::SimulateArgs),
    /// Explain, live and read-only, why a ScaledObject's target has its replicas and what would change
    /// them next.
    Explain(explain::ExplainArgs),
}

fn main() -> ExitCode {
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::builder()
        .file_name(std::env::var_os("KEDA_DHAT_FILE").unwrap_or_else(|| "dhat-heap.json".into()))
        .build();
    let cli = Cli::parse();
    match cli.command {
        Command::Operator(args) => match operator::run(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                logging::fatal("operator", &e);
                ExitCode::FAILURE
            }
        },
        Command::MetricsApiserver(args) => match metrics_apiserver::run(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                logging::fatal("metrics-apiserver", &e);
                ExitCode::FAILURE
            }
        },
        Command::AdmissionWebhooks(args) => match admission_webhooks::run(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                logging::fatal("admission-webhooks", &e);
                ExitCode::FAILURE
            }
        },
        Command::Lint(args) => lint::run(args),
        Command::Render(args) => render::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Crds => match keda_api::crds_yaml() {
            Ok(yaml) => match std::io::stdout().lock().write_all(yaml.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                // A closed pipe (`keda crds | head`) is not worth a panic or an error message.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("keda crds: writing to stdout: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("keda crds: serialising the CRDs: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
