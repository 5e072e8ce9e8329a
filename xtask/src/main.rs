//! Project automation: `cargo xtask <command>`. See README.md.

mod cluster;
mod generated;
mod layers;
mod packages;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Parser)]
#[command(name = "xtask", about = "keda-rs project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The full check CI runs: fmt, clippy, generated files, unit tests, then e2e on the local control plane.
    Test {
        /// Skip the control-plane tests (for a quick local loop; CI never sets this).
        #[arg(long)]
        no_cluster: bool,
        /// Leave the local control plane running afterwards.
        #[arg(long)]
        keep_cluster: bool,
    },
    /// Run only the e2e tests against the local control plane (started if needed, left running).
    E2e {
        /// Extra arguments for the test binary (e.g. a test name filter).
        args: Vec<String>,
    },
    /// Regenerate the checked-in generated files (the chart's CRDs).
    Gen,
    /// Fail if a generated file differs from what the code generates.
    CheckGenerated,
    /// Fail if a crate depends on one of ours that docs/ARCHITECTURE.md's crate map does not allow.
    CheckLayers,
    /// The local Kubernetes control plane: up | down | status | exec -- CMD...
    Cluster {
        #[command(subcommand)]
        action: cluster::Action,
    },
    /// Show keda-rs working: the chart and the real processes on the local control plane scaling the example
    /// app 0 → N → 0 from a Redis list.
    Demo,
    /// Benchmarks that print numbers: `operator` (1,000 ScaledObjects on the local control plane),
    /// `scaledjob` (200 ScaledJobs polling an empty queue every second); `operator --against upstream`
    /// (keda-rs and upstream KEDA 2.20.2 side by side, see docs/performance.md).
    Bench {
        /// What to benchmark: `operator` or `scaledjob`.
        what: String,
        /// `upstream`: run the operator workload with keda-rs and with upstream KEDA (built once from
        /// hack/upstream/ into ~/.cache/keda-rs), one after the other; writes target/bench/operator.{json,svg}.
        #[arg(long)]
        against: Option<String>,
        /// ScaledObjects in the side-by-side run (default 1000).
        #[arg(long)]
        objects: Option<usize>,
        /// pollingInterval in seconds of the side-by-side run (default 30).
        #[arg(long)]
        polling: Option<u64>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Test {
            no_cluster,
            keep_cluster,
        } => test(no_cluster, keep_cluster),
        Cmd::E2e { args } => e2e(&args),
        Cmd::Gen => generated::write(&root()),
        Cmd::CheckGenerated => generated::check(&root()),
        Cmd::CheckLayers => layers::check(),
        Cmd::Cluster { action } => cluster::run(&root(), action),
        Cmd::Demo => demo(),
        Cmd::Bench {
            what,
            against,
            objects,
            polling,
        } => bench(&what, against.as_deref(), objects, polling),
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs a command in the workspace root, failing with the command line if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: running {shown}");
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn test(no_cluster: bool, keep_cluster: bool) -> Result<()> {
    let started = std::time::Instant::now();
    packages::ensure(&root().join("tests/backends/debian-packages.txt"))?;
    packages::ensure_scripted(&root().join("hack/backends"))?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    generated::check(&root())?;
    layers::check()?;
    run(cargo().args(["test", "--workspace", "--exclude", "keda-e2e"]))?;
    if no_cluster {
        eprintln!("xtask: --no-cluster: control-plane tests skipped");
    } else {
        let result = e2e(&[]);
        if !keep_cluster && let Err(e) = cluster::run(&root(), cluster::Action::Down) {
            eprintln!("xtask: stopping the cluster failed: {e:#}");
        }
        result?;
    }
    eprintln!("xtask: all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

fn e2e(args: &[String]) -> Result<()> {
    // Build outside the network namespace, then run the test binaries inside it directly: running cargo
    // in there would see a different environment and rebuild.
    let tests = e2e_test_binaries()?;
    run(cargo().args(["build", "-p", "keda"]))?;
    cluster::run(&root(), cluster::Action::Up)?;
    let mut failed = Vec::new();
    for bin in &tests {
        let mut cmd = vec![bin.clone(), "--test-threads=4".to_owned()];
        cmd.extend(args.iter().cloned());
        if let Err(e) = cluster::run(&root(), cluster::Action::Exec { command: cmd }) {
            eprintln!("xtask: {e:#}");
            failed.push(bin.clone());
        }
    }
    if !failed.is_empty() {
        bail!("e2e tests failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Builds the e2e test binaries and returns their paths (from cargo's JSON messages).
fn e2e_test_binaries() -> Result<Vec<String>> {
    let out = cargo()
        .args([
            "test",
            "-p",
            "keda-e2e",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("building the e2e tests")?;
    if !out.status.success() {
        bail!("building the e2e tests failed");
    }
    let mut bins = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["profile"]["test"] == true
            && let Some(exe) = msg["executable"].as_str()
            && msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "test"))
        {
            bins.push(exe.to_owned());
        }
    }
    if bins.is_empty() {
        bail!("no e2e test binaries were built");
    }
    Ok(bins)
}

fn bench(
    what: &str,
    against: Option<&str>,
    objects: Option<usize>,
    polling: Option<u64>,
) -> Result<()> {
    let mut env = Vec::new();
    let example = match (what, against) {
        ("operator", Some("upstream")) => {
            env.push(format!("UPSTREAM_KEDA_DIR={}", upstream_keda()?.display()));
            "bench_versus"
        }
        (_, Some(other)) => {
            bail!("--against {other:?}: only `bench operator --against upstream` exists")
        }
        ("operator", None) => "bench_operator",
        ("scaledjob", None) => "bench_scaledjob",
        ("kafka", None) => "bench_kafka",
        (other, None) => {
            bail!("unknown benchmark {other:?}; try `operator`, `scaledjob` or `kafka`")
        }
    };
    if against.is_none() && (objects.is_some() || polling.is_some()) {
        bail!("--objects and --polling go with `bench operator --against upstream`");
    }
    if let Some(n) = objects {
        env.push(format!("BENCH_N={n}"));
    }
    if let Some(s) = polling {
        env.push(format!("BENCH_POLLING={s}"));
    }
    // KEDA_BIN picks another keda binary (e.g. a debug build: request counts do not depend on the build
    // profile); without it the release build is benchmarked.
    let keda = match std::env::var_os("KEDA_BIN") {
        Some(bin) => std::path::absolute(bin)?,
        None => {
            run(cargo().args(["build", "--release", "-p", "keda"]))?;
            root().join("target/release/keda")
        }
    };
    run(cargo().args(["build", "-p", "keda-e2e", "--example", example]))?;
    cluster::run(&root(), cluster::Action::Up)?;
    let exe = root().join("target/debug/examples").join(example);
    cluster::run(
        &root(),
        cluster::Action::Exec {
            command: vec![
                "env".into(),
                format!("KEDA_BIN={}", keda.display()),
                "RUST_LOG=warn".into(),
            ]
            .into_iter()
            .chain(env)
            .chain([exe.display().to_string()])
            .collect(),
        },
    )
}

/// Upstream KEDA's binaries and CRDs, built on first use by hack/upstream/build.sh (its last stdout line
/// is the cache dir).
fn upstream_keda() -> Result<PathBuf> {
    let out = Command::new("bash")
        .arg(root().join("hack/upstream/build.sh"))
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("starting hack/upstream/build.sh")?;
    if !out.status.success() {
        bail!("hack/upstream/build.sh failed ({}); see above", out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout
        .lines()
        .last()
        .map(PathBuf::from)
        .context("hack/upstream/build.sh printed no directory")?;
    if !dir.join("bin/keda").exists() {
        bail!("{} has no bin/keda", dir.display());
    }
    Ok(dir)
}

/// `cargo xtask demo`: builds keda and the demo (tests/e2e/examples/demo.rs), starts the local control plane
/// and runs the demo inside its network namespace. The demo installs charts/keda, runs the keda processes
/// in place of the chart's pods, scales examples/example-app 0 → N → 0 from a local Redis list and cleans
/// up after itself (also on Ctrl-C); the control plane stays up.
fn demo() -> Result<()> {
    // The demo's Redis (Debian's redis-server and redis-cli), installed with apt-get when running as root.
    let list = root().join("target/xtask-demo-packages.txt");
    std::fs::create_dir_all(root().join("target"))?;
    std::fs::write(&list, "redis-server\nredis-tools\n")?;
    packages::ensure(&list)?;
    run(cargo().args(["build", "-p", "keda"]))?;
    run(cargo().args(["build", "-p", "keda-e2e", "--example", "demo"]))?;
    cluster::run(&root(), cluster::Action::Up)?;
    // Ctrl-C reaches every process in the terminal's foreground group. The demo handles it and cleans up;
    // xtask must wait for that rather than die first and hand the terminal back mid-cleanup.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _sigint = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    })?;
    let exe = root().join("target/debug/examples/demo");
    let status = Command::new("bash")
        .arg(root().join("hack/cluster.sh"))
        .args(["exec", "--"])
        .arg(&exe)
        .current_dir(root())
        .status()
        .with_context(|| format!("starting {}", exe.display()))?;
    match status.code() {
        Some(0) => Ok(()),
        // Interrupted: the demo has cleaned up and said so.
        Some(130) => std::process::exit(130),
        _ => bail!("the demo failed ({status}); see its output above"),
    }
}
