//! `keda simulate` end to end: the built binary on the guide's New Relic ScaledObject and series, its three
//! outputs, and the errors bad input gets.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn keda_simulate(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_keda"))
        .arg("simulate")
        .args(args)
        .env_remove("KEDA_CLUSTER_OBJECT_NAMESPACE")
        .output()
        .expect("keda simulate runs");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn example(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/new-relic")
        .join(file)
        .to_string_lossy()
        .into_owned()
}

/// A scratch directory with `files`, removed by the caller.
fn scratch(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keda-simulate-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (f, text) in files {
        std::fs::write(dir.join(f), text).expect("write");
    }
    dir
}

#[test]
fn the_guide_example_bursts_holds_then_sleeps_through_the_quiet_hour() {
    let run = keda_simulate(&[
        &example("scaledobject.yaml"),
        "--series",
        &example("burst-then-quiet.csv"),
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let timeline = doc["timeline"].as_array().expect("timeline");
    let replicas_at = |t: i64| {
        timeline
            .iter()
            .take_while(|e| e["t"].as_i64().expect("t") <= t)
            .last()
            .and_then(|e| e["replicas"].as_i64())
            .expect("an entry")
    };
    // Burst to max 5; the 600 s window holds 5 until the last 6-recommendation (t=390) is 600 s old; the
    // HPA then goes to 2; KEDA's 300 s cooldown on the 120 s poll grid ends it at 1320; back at 4680.
    for (t, r) in [
        (90, 1),
        (105, 5),
        (975, 5),
        (990, 2),
        (1305, 2),
        (1320, 0),
        (4665, 0),
        (4680, 2),
    ] {
        assert_eq!(replicas_at(t), r, "t={t}");
    }
    for e in timeline {
        for key in ["t", "replicas", "hpa_desired", "metrics", "reason"] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
        assert!(e["metrics"]["s0-new-relic"].is_number(), "{e}");
    }
    // Every HPA sync from 15 s to the end (4800 s) has an entry.
    let syncs = timeline
        .iter()
        .filter(|e| e["reason"].as_str().is_some_and(|r| r.starts_with("HPA")))
        .count();
    assert_eq!(syncs, 4800 / 15);
    assert!(
        run.stderr.contains("[assumed-reference]"),
        "lint's warnings: {}",
        run.stderr
    );
}

#[test]
fn table_and_svg_outputs() {
    let args = [
        &example("scaledobject.yaml"),
        "--series",
        &example("burst-then-quiet.csv"),
    ];
    let table = keda_simulate(&[args[0], args[1], args[2]]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    let header = table.stdout.lines().next().expect("header");
    for col in ["t", "replicas", "hpa_desired", "s0-new-relic", "reason"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(
        table.stdout.contains("KEDAScaleTargetDeactivated"),
        "{}",
        table.stdout
    );

    let svg = keda_simulate(&[args[0], args[1], args[2], "-o", "svg"]);
    assert_eq!(svg.code, 0, "{}", svg.stderr);
    assert!(
        svg.stdout
            .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"")
    );
    assert!(svg.stdout.trim_end().ends_with("</svg>"));
    assert_eq!(
        svg.stdout.matches("<polyline").count(),
        2,
        "one metric and the replicas"
    );
    assert!(svg.stdout.contains("s0-new-relic (left axis)"));
}

#[test]
fn a_failed_sample_below_the_threshold_reaches_the_fallback() {
    // failureThreshold 2, replicas 3 in the example: an empty cell is a failed query.
    let dir = scratch(
        "fallback",
        &[("s.csv", "t,s0-new-relic\n0,50\n200,\n600,50\n700,50\n")],
    );
    let run = keda_simulate(&[
        &example("scaledobject.yaml"),
        "--series",
        dir.join("s.csv").to_str().expect("path"),
        "-o",
        "json",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let at = |t: i64| {
        doc["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .rfind(|e| e["t"] == t)
            .cloned()
            .expect("entry")
    };
    assert!(at(210)["metrics"]["s0-new-relic"].is_null());
    assert!(
        at(210)["reason"]
            .as_str()
            .expect("reason")
            .contains("FailedGetExternalMetric")
    );
    assert_eq!(at(240)["replicas"], 3, "{}", at(240));
}

#[test]
fn bad_input_is_named() {
    let so = example("scaledobject.yaml");
    let dir = scratch(
        "bad",
        &[
            ("bad.csv", "t,s0-new-relic\n0,50\n15,lots\n"),
            ("other.csv", "t,queue\n0,1\n"),
            (
                "two.yaml",
                &format!(
                    "{}\n---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: second, namespace: default}}\nspec:\n  scaleTargetRef: {{name: other}}\n  triggers: [{{type: cron, metadata: {{timezone: UTC, start: '0 * * * *', end: '30 * * * *', desiredReplicas: '2'}}}}]\n",
                    std::fs::read_to_string(&so).expect("read example")
                ),
            ),
            (
                "cpu.yaml",
                "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: c, namespace: default}\nspec:\n  scaleTargetRef: {name: w}\n  triggers: [{type: cpu, metricType: Utilization, metadata: {value: '50'}}]\n",
            ),
            (
                "broken.yaml",
                "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: b, namespace: default}\nspec:\n  scaleTargetRef: {name: w}\n  minReplicaCount: 5\n  maxReplicaCount: 2\n  triggers: [{type: metrics-api, metadata: {url: 'http://x/', valueLocation: v, targetValue: '1'}}]\n",
            ),
            (
                "rabbit.yaml",
                "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: r, namespace: default}\nspec:\n  scaleTargetRef: {name: w}\n  triggers: [{type: rabbitmq, metadata: {host: 'http://rabbitmq:15672/', queueName: jobs, mode: MessageRate, value: '5'}}]\n",
            ),
            ("ok.csv", "t,s0-cpu,s0-cron,s0-rabbitmq-jobs\n0,1,1,1\n"),
        ],
    );
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![so.clone(), "--series".into(), p("bad.csv")],
            2,
            "line 3, column s0-new-relic: \"lots\" is not a number",
        ),
        (
            vec![so.clone(), "--series".into(), p("other.csv")],
            2,
            "no column for trigger 0 (new-relic): name one \"s0-new-relic\"",
        ),
        (
            vec![so.clone(), "--series".into(), p("missing.csv")],
            2,
            "missing.csv",
        ),
        (
            vec![
                so.clone(),
                "--series".into(),
                p("other.csv"),
                "--scaled-object".into(),
                "nope".into(),
            ],
            2,
            "no ScaledObject named \"nope\" in the input (ScaledObjects: default/example-app-newrelic-throughput-scaler)",
        ),
        (
            vec![p("two.yaml"), "--series".into(), p("other.csv")],
            2,
            "choose one with --scaled-object NAME",
        ),
        (
            vec![
                p("two.yaml"),
                "--series".into(),
                p("ok.csv"),
                "--scaled-object".into(),
                "second".into(),
            ],
            2,
            "trigger 0 (cron): its scaler decides activity by its own rule",
        ),
        (
            vec![p("rabbit.yaml"), "--series".into(), p("ok.csv")],
            2,
            "trigger 0 (rabbitmq): its scaler decides activity by its own rule",
        ),
        (
            vec![p("cpu.yaml"), "--series".into(), p("ok.csv")],
            2,
            "trigger 0 (cpu) is measured by the HPA from the pods' usage",
        ),
        (
            vec![p("broken.yaml"), "--series".into(), p("ok.csv")],
            1,
            "[incorrect-replicas]",
        ),
    ];
    let mut failures = Vec::new();
    for (args, code, want) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = keda_simulate(&args);
        if run.code != *code || !run.stderr.contains(want) {
            failures.push(format!(
                "{args:?}: exit {} stderr {:?}, wanted {code} and {want:?}",
                run.code, run.stderr
            ));
        }
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A Redis list replayed: the activation threshold (`activationListLength: 3`) is the scaler's own,
/// compared strictly, so a length of 3 leaves the target at zero and 4 wakes it.
#[test]
fn a_redis_list_activates_above_its_activation_list_length() {
    let dir = scratch(
        "redis",
        &[
            (
                "so.yaml",
                "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: jobs, namespace: default}\nspec:\n  scaleTargetRef: {name: worker}\n  pollingInterval: 15\n  cooldownPeriod: 30\n  minReplicaCount: 0\n  maxReplicaCount: 8\n  triggers:\n  - type: redis\n    metadata: {address: 'redis:6379', listName: jobs, listLength: '10', activationListLength: '3'}\n",
            ),
            (
                "s.csv",
                "t,s0-redis-jobs\n0,0\n60,3\n120,4\n240,45\n600,0\n700,0\n",
            ),
        ],
    );
    let run = keda_simulate(&[
        dir.join("so.yaml").to_str().expect("path"),
        "--series",
        dir.join("s.csv").to_str().expect("path"),
        "-o",
        "json",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let timeline = doc["timeline"].as_array().expect("timeline");
    let replicas_at = |t: i64| {
        timeline
            .iter()
            .take_while(|e| e["t"].as_i64().expect("t") <= t)
            .last()
            .and_then(|e| e["replicas"].as_i64())
            .expect("an entry")
    };
    // 3 is not above 3: still asleep at 119. 4 at the poll at 120 activates (1 replica); 45 over a target
    // of 10 per replica: the HPA asks for 5, the default scale-up limit (4 pods) gives 4, then 5. At 0 from
    // 600, KEDA's 30 s cooldown after the last active poll (585) ends it at 615, while the HPA's default
    // 300 s window still holds 5.
    for (t, r) in [
        (0, 0),
        (119, 0),
        (120, 1),
        (239, 1),
        (240, 4),
        (255, 5),
        (614, 5),
        (615, 0),
    ] {
        assert_eq!(replicas_at(t), r, "t={t}: {timeline:#?}");
    }
}
