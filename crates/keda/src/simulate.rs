//! `keda simulate`: replays a metric series through a ScaledObject's scale loop and its HPA, offline.
//! Preparing the object is `keda_check::simulate` (lint's checks, render's HPA, the operator's parse),
//! the replay is `keda_core::simulate`; this module parses the arguments and prints (table, JSON, SVG).

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;

use keda_check::manifests;
use keda_check::simulate::Refusal;
use keda_core::simulate::{Entry, Options, Series};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// One line per entry: t, replicas, the HPA's desired count, the metrics, the reason.
    #[default]
    Table,
    /// `{"timeline":[{"t","replicas","hpa_desired","metrics":{…},"reason"}]}`.
    Json,
    /// An SVG chart of the metrics and the replicas over time.
    Svg,
}

/// Replays a metric series (CSV) through the ScaledObject's KEDA scale loop (pollingInterval,
/// activation, cooldownPeriod, initialCooldownPeriod, idleReplicaCount, minReplicaCount, fallback,
/// scalingModifiers: the operator's own code) and the Kubernetes 1.35 HPA algorithm (15 s syncs,
/// tolerance, stabilization windows, policies, selectPolicy, min/max, the default scale-up limits), and
/// prints the replica timeline with the reason for every change. There is an entry at every HPA sync
/// and at every KEDA poll that writes or changes its state.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "The series: a header `t,<trigger name or s<index>-<type>>…`, then one row per change: \
t in whole seconds from the ScaledObject's creation (the first row at 0), each value holding until the next \
row; an empty cell is a failed query. The run ends at the last row.\n\n\
Example:\n  keda simulate examples/new-relic/scaledobject.yaml --series examples/new-relic/burst-then-quiet.csv"
)]
pub struct SimulateArgs {
    /// Files or directories of manifests holding the ScaledObject (and its TriggerAuthentication, …).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// The metric series (CSV).
    #[arg(long, value_name = "CSV")]
    pub series: String,
    /// The target's replicas at t=0; default max(minReplicaCount, 1).
    #[arg(long, value_name = "N")]
    pub start_replicas: Option<i32>,
    /// The ScaledObject to replay, when the input holds several.
    #[arg(long, value_name = "NAME")]
    pub scaled_object: Option<String>,
    /// Seconds from creation to the HPA's first sync (then every 15 s).
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub hpa_phase: i64,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Namespace whose Secrets and ConfigMaps ClusterTriggerAuthentications read (KEDA's namespace).
    #[arg(
        long,
        env = keda_resolver::CLUSTER_OBJECT_NAMESPACE_ENV,
        default_value = "keda",
        value_name = "NAMESPACE"
    )]
    pub cluster_object_namespace: String,
}

fn value(v: Option<f64>) -> String {
    match v {
        Some(v) => format!("{v}"),
        None => "failed".to_owned(),
    }
}

/// The timeline as an aligned table.
pub fn table(timeline: &[Entry], columns: &[String]) -> String {
    let mut rows = vec![
        ["t", "replicas", "hpa_desired"]
            .into_iter()
            .map(str::to_owned)
            .chain(columns.iter().cloned())
            .chain(["reason".to_owned()])
            .collect::<Vec<_>>(),
    ];
    for e in timeline {
        let mut row = vec![
            e.t.to_string(),
            e.replicas.to_string(),
            e.hpa_desired.map_or("-".to_owned(), |d| d.to_string()),
        ];
        row.extend(
            columns
                .iter()
                .map(|c| value(e.metrics.get(c).copied().flatten())),
        );
        row.push(e.reason.clone());
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len() - 1)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        for (cell, w) in r.iter().zip(&widths) {
            let _ = write!(out, "{cell:<w$}  ");
        }
        out.push_str(r.last().map_or("", String::as_str));
        out.push('\n');
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The timeline as an SVG chart: each metric (left axis) as a line, failed samples as red marks, the
/// replicas (right axis) as a step line.
pub fn svg(timeline: &[Entry], columns: &[String], title: &str) -> String {
    const W: f64 = 960.0;
    const H: f64 = 420.0;
    const LEFT: f64 = 60.0;
    const RIGHT: f64 = 60.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 50.0;
    const COLOURS: [&str; 5] = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"];
    let end = timeline.last().map_or(1, |e| e.t).max(1) as f64;
    let max_metric = timeline
        .iter()
        .flat_map(|e| e.metrics.values().flatten())
        .fold(0.0_f64, |m, v| m.max(*v))
        .max(1.0);
    let max_replicas = timeline
        .iter()
        .map(|e| e.replicas)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let x = |t: i64| LEFT + (t as f64 / end) * (W - LEFT - RIGHT);
    let y = |v: f64, max: f64| TOP + (1.0 - v / max) * (H - TOP - BOTTOM);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
<text x=\"{LEFT}\" y=\"20\" font-size=\"14\">{}</text>\n",
        escape(title)
    );
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    let _ = writeln!(
        out,
        "<path d=\"M{x0},{y0} L{x0},{y1} L{x1},{y1} L{x1},{y0}\" fill=\"none\" stroke=\"#999\"/>"
    );
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let yy = y(f * max_metric, max_metric);
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{yy:.1}\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{yy:.1}\">{}</text>",
            LEFT - 4.0,
            (f * max_metric * 100.0).round() / 100.0,
            W - RIGHT + 4.0,
            (f * max_replicas * 10.0).round() / 10.0
        );
        let t = (f * end) as i64;
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{t}s</text>",
            x(t),
            H - BOTTOM + 16.0
        );
    }
    for (i, c) in columns.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points = String::new();
        for e in timeline {
            match e.metrics.get(c).copied().flatten() {
                Some(v) => {
                    let _ = write!(points, "{:.1},{:.1} ", x(e.t), y(v, max_metric));
                }
                None => {
                    let _ = writeln!(
                        out,
                        "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"red\" stroke-opacity=\"0.4\"/>",
                        x(e.t),
                        y1 - 6.0,
                        y1
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
            points.trim_end()
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{} (left axis)</text>",
            LEFT + 10.0 + 200.0 * i as f64,
            H - 12.0,
            escape(c)
        );
    }
    let mut steps = String::new();
    let mut previous: Option<f64> = None;
    for e in timeline {
        let yy = y(f64::from(e.replicas), max_replicas);
        if let Some(p) = previous {
            let _ = write!(steps, "{:.1},{p:.1} ", x(e.t));
        }
        let _ = write!(steps, "{:.1},{yy:.1} ", x(e.t));
        previous = Some(yy);
    }
    let _ = writeln!(
        out,
        "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"{}\"/>",
        steps.trim_end()
    );
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" fill=\"#d62728\" text-anchor=\"end\">replicas (right axis)</text>",
        W - RIGHT,
        H - 12.0
    );
    out.push_str("</svg>\n");
    out
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("keda simulate: {message}");
    ExitCode::from(2)
}

/// Runs `keda simulate`: exit 0 on a replay, 1 when the object has errors (printed as `keda lint`
/// prints them), 2 when the input cannot be used (unreadable, malformed series, unknown object).
pub fn run(args: SimulateArgs) -> ExitCode {
    let docs = match manifests::load(&args.paths) {
        Ok(docs) => docs,
        Err(e) => return fail(e),
    };
    let csv = match std::fs::read_to_string(&args.series) {
        Ok(text) => text,
        Err(e) => return fail(format!("{}: {e}", args.series)),
    };
    let series = match Series::parse_csv(&csv) {
        Ok(s) => s,
        Err(e) => return fail(format!("{}: {e}", args.series)),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => return fail(format!("starting the async runtime: {e}")),
    };
    let prepared = match runtime.block_on(keda_check::simulate::prepare(
        docs,
        args.scaled_object.as_deref(),
        &args.cluster_object_namespace,
        keda_scalers::files::FileRoot::default(),
        keda_operator::VERSION,
    )) {
        Ok(p) => p,
        Err(Refusal::Input(message)) => return fail(message),
        Err(Refusal::Findings(findings)) => {
            for f in &findings {
                eprintln!("{}", crate::lint::text(f));
            }
            return ExitCode::from(1);
        }
    };
    for f in &prepared.warnings {
        eprintln!("{}", crate::lint::text(f));
    }
    let so = &prepared.scaled_object;
    let options = Options {
        start_replicas: args
            .start_replicas
            .unwrap_or_else(|| so.spec.min_replica_count().max(1)),
        hpa_phase: args.hpa_phase,
    };
    if options.start_replicas < 0 || options.hpa_phase < 0 {
        return fail("--start-replicas and --hpa-phase must not be negative");
    }
    let timeline = match keda_core::simulate::simulate(
        so,
        &prepared.triggers,
        &prepared.hpa,
        &series,
        &options,
    ) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: {e}", args.series)),
    };
    let text = match args.output {
        Output::Table => table(&timeline, &series.columns),
        Output::Json => {
            let doc = serde_json::json!({ "timeline": timeline });
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_owned()) + "\n"
        }
        Output::Svg => svg(
            &timeline,
            &series.columns,
            &format!(
                "keda simulate: ScaledObject {}",
                so.metadata.name.as_deref().unwrap_or_default()
            ),
        ),
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(format!("writing to stdout: {e}")),
    }
}
