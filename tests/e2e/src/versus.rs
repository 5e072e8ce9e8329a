//! The side-by-side operator bench's report (`cargo xtask bench operator --against upstream`): one
//! [`Run`] per implementation and pass, written as the table on stdout, `target/bench/operator.json`
//! (the shape issue 18 fixes) and a bar chart of the keda-rs ÷ upstream ratios as SVG.

use serde_json::{Map, Value, json};

/// The implementation every ratio divides by.
pub const BASELINE: &str = "upstream-2.20.2";
pub const KEDA_RS: &str = "keda-rs";

/// Every field of a run in the JSON's order, with its label in the table and the chart. `None` is a
/// field this bench does not measure (written as `null`).
pub const FIELDS: [(&str, &str); 13] = [
    ("ready_s", "all Ready with their HPA (s)"),
    ("rss_mib", "RSS at steady state (MiB)"),
    ("anon_mib", "anonymous RSS at steady state (MiB)"),
    ("peak_rss_mib", "peak RSS until all Ready (MiB)"),
    ("cpu_s_per_1k_polls", "CPU-s per 1,000 polls"),
    ("drift_p99_ms", "scale-loop drift p99 (ms)"),
    ("api_reads_per_s", "operator API reads/s at steady state"),
    ("api_writes_per_s", "operator API writes/s at steady state"),
    ("metrics_p99_ms", "external metrics p99 (ms)"),
    ("metrics_cached_p99_ms", "external metrics p99, cached (ms)"),
    ("metrics_apiserver_rss_mib", "metrics API server RSS (MiB)"),
    ("webhook_burst_rss_mib", "webhook RSS, 10k burst (MiB)"),
    ("webhook_p99_ms", "webhook p99 (ms)"),
];

/// One implementation's measurements, by field name of [`FIELDS`].
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub implementation: String,
    pub values: Vec<(&'static str, Option<f64>)>,
}

impl Run {
    pub fn new(implementation: &str) -> Run {
        Run {
            implementation: implementation.to_owned(),
            values: FIELDS.iter().map(|(f, _)| (*f, None)).collect(),
        }
    }

    /// Sets a measured field; NaN and infinities (nothing to divide by) stay unmeasured.
    pub fn set(&mut self, field: &str, value: f64) {
        if let Some(slot) = self.values.iter_mut().find(|(f, _)| *f == field) {
            slot.1 = value.is_finite().then_some(value);
        }
    }

    pub fn get(&self, field: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(f, _)| *f == field)
            .and_then(|(_, v)| *v)
    }
}

/// Reads (get, list, watch) and writes (everything else) in request counts by (kube-apiserver verb label,
/// resource), Leases left out: both operators renew their leader Lease every 2 s by design.
pub fn reads_writes(counts: &crate::apicount::Counts) -> (f64, f64) {
    let (mut reads, mut writes) = (0.0, 0.0);
    for ((verb, resource), n) in counts {
        if resource.starts_with("leases.coordination.k8s.io") {
            continue;
        }
        match verb.as_str() {
            "GET" | "LIST" | "WATCH" => reads += n,
            _ => writes += n,
        }
    }
    (reads, writes)
}

/// keda-rs ÷ baseline for each field; `None` when either is missing or the baseline is 0.
pub fn ratios(runs: &[Run]) -> Vec<(&'static str, Option<f64>)> {
    let find = |name: &str| runs.iter().find(|r| r.implementation == name);
    FIELDS
        .iter()
        .map(|(f, _)| {
            let r = match (find(KEDA_RS), find(BASELINE)) {
                (Some(k), Some(b)) => match (k.get(f), b.get(f)) {
                    (Some(k), Some(b)) if b != 0.0 => Some(k / b),
                    _ => None,
                },
                _ => None,
            };
            (*f, r)
        })
        .collect()
}

fn number(v: Option<f64>) -> Value {
    v.and_then(|v| serde_json::Number::from_f64((v * 1000.0).round() / 1000.0))
        .map_or(Value::Null, Value::Number)
}

/// The JSON document of issue 18.
pub fn to_json(objects: usize, polling_s: u64, runs: &[Run]) -> Value {
    let runs_json: Vec<Value> = runs
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("impl".into(), Value::String(r.implementation.clone()));
            for (f, v) in &r.values {
                m.insert((*f).into(), number(*v));
            }
            Value::Object(m)
        })
        .collect();
    let ratios: Map<String, Value> = ratios(runs)
        .into_iter()
        .map(|(f, v)| (f.to_owned(), number(v)))
        .collect();
    json!({"objects": objects, "polling_s": polling_s, "runs": runs_json, "ratios": ratios})
}

/// The runs of an earlier `operator.json` with the same objects and polling interval (to complete a
/// side-by-side table run in parts); empty when the shape or the settings differ.
pub fn previous_runs(json: &Value, objects: usize, polling_s: u64) -> Vec<Run> {
    if json["objects"].as_u64() != Some(objects as u64)
        || json["polling_s"].as_u64() != Some(polling_s)
    {
        return Vec::new();
    }
    let Some(runs) = json["runs"].as_array() else {
        return Vec::new();
    };
    runs.iter()
        .filter_map(|r| {
            let mut run = Run::new(r["impl"].as_str()?);
            for (f, _) in FIELDS {
                if let Some(v) = r[f].as_f64() {
                    run.set(f, v);
                }
            }
            Some(run)
        })
        .collect()
}

/// The text table: one row per field, one column per run, then the ratio.
pub fn table(runs: &[Run]) -> String {
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
    let mut out = format!("{:<40}", "");
    for r in runs {
        out.push_str(&format!(" {:>22}", r.implementation));
    }
    out.push_str(&format!(" {:>10}\n", "ratio"));
    let ratios = ratios(runs);
    for ((field, label), (_, ratio)) in FIELDS.iter().zip(ratios) {
        out.push_str(&format!("{label:<40}"));
        for r in runs {
            out.push_str(&format!(" {:>22}", cell(r.get(field))));
        }
        out.push_str(&format!(" {:>10}\n", cell(ratio)));
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A horizontal bar per measured ratio on a linear axis from 0 to max(1, largest ratio), with the parity
/// line at 1; unmeasured ratios are listed as such. Plain SVG, no scripts or fonts beyond sans-serif.
pub fn svg(objects: usize, polling_s: u64, runs: &[Run]) -> String {
    let ratios = ratios(runs);
    let (label_w, bar_w, row_h, top) = (300.0, 420.0, 26.0, 56.0);
    let max = ratios
        .iter()
        .filter_map(|(_, v)| *v)
        .fold(1.0_f64, f64::max);
    let height = top + row_h * ratios.len() as f64 + 30.0;
    let width = label_w + bar_w + 90.0;
    let x = |v: f64| label_w + bar_w * v / max;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">keda-rs ÷ upstream KEDA 2.20.2 ({objects} ScaledObjects, pollingInterval {polling_s} s; lower is better)</text>\n\
         <text x=\"10\" y=\"42\" fill=\"#555\">bars: measured ratio; dashed line: parity (1.0)</text>\n"
    );
    for (i, ((field, label), (_, ratio))) in FIELDS.iter().zip(&ratios).enumerate() {
        let y = top + row_h * i as f64;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            label_w - 8.0,
            y + 16.0,
            escape(label)
        ));
        match ratio {
            Some(r) => {
                let color = if *r <= 1.0 { "#2e7d32" } else { "#c62828" };
                s.push_str(&format!(
                    "<rect x=\"{label_w}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"{color}\"><title>{field}</title></rect>\n\
                     <text x=\"{:.1}\" y=\"{}\">{r:.3}</text>\n",
                    y + 4.0,
                    (x(*r) - label_w).max(1.0),
                    row_h - 8.0,
                    x(*r).max(label_w + 1.0) + 6.0,
                    y + 16.0,
                ));
            }
            None => s.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" fill=\"#888\">not measured</text>\n",
                label_w + 6.0,
                y + 16.0
            )),
        }
    }
    let bottom = top + row_h * ratios.len() as f64;
    s.push_str(&format!(
        "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{bottom}\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>\n\
         <line x1=\"{label_w}\" y1=\"{top}\" x2=\"{label_w}\" y2=\"{bottom}\" stroke=\"#333\"/>\n\
         <text x=\"{0:.1}\" y=\"{1}\" text-anchor=\"middle\">1.0</text>\n</svg>\n",
        x(1.0),
        bottom + 18.0
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, ready: f64, rss: f64, writes: f64) -> Run {
        let mut r = Run::new(name);
        r.set("ready_s", ready);
        r.set("rss_mib", rss);
        r.set("api_writes_per_s", writes);
        r
    }

    #[test]
    fn ratios_divide_keda_rs_by_the_baseline_and_skip_what_cannot_be_divided() {
        let runs = [
            run(KEDA_RS, 20.0, 50.0, 0.0),
            run(BASELINE, 800.0, 200.0, 0.0),
            run("upstream-2.20.2-qps100", 100.0, 210.0, 0.0),
        ];
        let r = ratios(&runs);
        let get = |f: &str| r.iter().find(|(k, _)| *k == f).and_then(|(_, v)| *v);
        assert_eq!(get("ready_s"), Some(0.025));
        assert_eq!(get("rss_mib"), Some(0.25));
        // 0 ÷ 0 and unmeasured fields have no ratio.
        assert_eq!(get("api_writes_per_s"), None);
        assert_eq!(get("webhook_p99_ms"), None);
        // Without the baseline run there is nothing to divide by.
        assert!(ratios(&runs[..1]).iter().all(|(_, v)| v.is_none()));
    }

    #[test]
    fn json_has_the_issue_shape_with_nulls_for_unmeasured_fields() {
        let mut k = run(KEDA_RS, 18.6, 57.8, 0.0);
        k.set("drift_p99_ms", f64::NAN);
        let j = to_json(1000, 30, &[k, run(BASELINE, 784.0, 211.0, 0.5)]);
        assert_eq!(j["objects"], 1000);
        assert_eq!(j["polling_s"], 30);
        let runs = j["runs"].as_array().unwrap();
        assert_eq!(runs[0]["impl"], "keda-rs");
        assert_eq!(runs[0]["ready_s"], 18.6);
        assert_eq!(runs[0]["drift_p99_ms"], Value::Null);
        // Every field present, in every run and in the ratios.
        for f in FIELDS.iter().map(|(f, _)| *f) {
            assert!(runs[1].as_object().unwrap().contains_key(f), "{f}");
            assert!(j["ratios"].as_object().unwrap().contains_key(f), "{f}");
        }
        assert_eq!(runs[1].as_object().unwrap().len(), FIELDS.len() + 1);
        assert_eq!(j["ratios"]["ready_s"], 0.024);
        assert_eq!(j["ratios"]["api_writes_per_s"], 0.0);
    }

    #[test]
    fn reads_and_writes_leave_leases_out() {
        let mut c = crate::apicount::Counts::new();
        let mut add = |v: &str, r: &str, n: f64| {
            c.insert((v.to_owned(), r.to_owned()), n);
        };
        add("LIST", "scaledobjects.keda.sh", 2.0);
        add("WATCH", "deployments.apps", 3.0);
        add("GET", "deployments.apps/scale", 5.0);
        add("PATCH", "scaledobjects.keda.sh/status", 7.0);
        add("APPLY", "horizontalpodautoscalers.autoscaling", 11.0);
        add("PUT", "leases.coordination.k8s.io", 100.0);
        add("GET", "leases.coordination.k8s.io", 100.0);
        assert_eq!(reads_writes(&c), (10.0, 18.0));
    }

    #[test]
    fn previous_runs_come_back_only_for_the_same_settings() {
        let runs = [
            run(KEDA_RS, 18.6, 57.8, 0.0),
            run(BASELINE, 784.0, 211.0, 0.5),
        ];
        let j = to_json(1000, 30, &runs);
        assert_eq!(previous_runs(&j, 1000, 30), runs.to_vec());
        assert!(previous_runs(&j, 1000, 1).is_empty());
        assert!(previous_runs(&j, 10, 30).is_empty());
        assert!(previous_runs(&json!({"objects": 1000}), 1000, 30).is_empty());
    }

    #[test]
    fn table_and_chart_show_each_field() {
        let runs = [
            run(KEDA_RS, 20.0, 50.0, 0.0),
            run(BASELINE, 800.0, 200.0, 1.0),
        ];
        let t = table(&runs);
        let ready = t.lines().find(|l| l.starts_with("all Ready")).unwrap();
        assert!(ready.ends_with("0.025"), "{ready}");
        assert!(t.lines().next().unwrap().contains("upstream-2.20.2"));
        let s = svg(1000, 30, &runs);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains(">0.025</text>") && s.contains(">0.250</text>"));
        assert_eq!(s.matches("not measured").count(), FIELDS.len() - 3);
    }
}
