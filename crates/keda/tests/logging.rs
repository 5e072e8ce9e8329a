//! The logs of a `keda` process written to a pipe: `--zap-encoder=json` gives one JSON object per line
//! with zap's keys, `console` gives text; neither holds an escape sequence (colour is for terminals).
//! The processes run without a reachable cluster, so they log their start, the settings they accept
//! without effect, and the error they stop on.

use std::process::{Command, Stdio};

/// Runs `keda <args>` with no cluster configured and returns what it wrote to stderr (and stdout).
/// Its environment has settings named in the warning at start: `OTEL_EXPORTER_OTLP_ENDPOINT` (the
/// operator has no OpenTelemetry exporter) and `KEDA_SERVICE_MIN_TLS_VERSION=TLS11` (all three
/// processes' servers speak TLS 1.2 then).
fn run(args: &[&str]) -> String {
    run_with(args, &[])
}

/// [`run`] with `env` added.
fn run_with(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_keda"))
        .args(args)
        .env("KUBECONFIG", "/nonexistent/keda-rs-test-kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("KEDA_HTTP_MIN_TLS_VERSION")
        .env_remove("KEDA_HTTP_TLS_CIPHER_LIST")
        .env_remove("KEDA_SERVICE_TLS_CIPHER_LIST")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
        .env("KEDA_SERVICE_MIN_TLS_VERSION", "TLS11")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("running keda: {e}"),
    };
    assert!(!out.status.success(), "keda should stop without a cluster");
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    text
}

fn json_lines(text: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    text.lines()
        .map(
            |line| match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(map)) => map,
                other => panic!("not a JSON object: {line:?} ({other:?})\n--- output ---\n{text}"),
            },
        )
        .collect()
}

#[test]
fn json_logs_are_one_object_per_line_with_zaps_keys() {
    for process in ["operator", "metrics-apiserver", "admission-webhooks"] {
        let text = run(&[
            process,
            "--zap-encoder=json",
            "--zap-log-level=info",
            "--zap-time-encoding=rfc3339",
            "--profiling-bind-address=:8082",
        ]);
        assert!(!text.contains('\u{1b}'), "{process}: escape in {text:?}");
        let lines = json_lines(&text);
        assert!(lines.len() >= 3, "{process}: {text}");
        for l in &lines {
            for key in ["level", "ts", "logger", "msg"] {
                assert!(
                    l.get(key).is_some_and(|v| v.is_string()),
                    "{process}: no {key} in {l:?}"
                );
            }
            let ts = l["ts"].as_str().unwrap_or_default();
            assert!(
                chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'),
                "{process}: ts {ts:?}"
            );
        }
        let msg = |i: usize| lines[i]["msg"].as_str().unwrap_or_default().to_owned();
        assert_eq!(msg(0), format!("Starting keda-rs {process}"));
        assert_eq!(lines[0]["version"], env!("CARGO_PKG_VERSION"));
        // One warning names every setting accepted without effect or honoured only in part.
        let warnings: Vec<String> = lines
            .iter()
            .filter(|l| l["level"] == "warn" && msg_of(l).starts_with("accepted without effect"))
            .map(msg_of)
            .collect();
        assert_eq!(warnings.len(), 1, "{process}: {text}");
        assert!(
            warnings[0].contains("--profiling-bind-address=:8082")
                && warnings[0]
                    .contains("KEDA_SERVICE_MIN_TLS_VERSION=TLS11 (rustls speaks no TLS below 1.2"),
            "{process}: {}",
            warnings[0]
        );
        assert_eq!(
            warnings[0].contains("OTEL_EXPORTER_OTLP_ENDPOINT (no OpenTelemetry exporter)"),
            process == "operator",
            "{process}: {}",
            warnings[0]
        );
        // The error it stops on is a log line too, not bare text.
        let last = &lines[lines.len() - 1];
        assert_eq!(last["level"], "error", "{process}: {text}");
        assert!(last.get("error").is_some_and(|e| e.is_string()), "{last:?}");
    }
}

fn msg_of(l: &serde_json::Map<String, serde_json::Value>) -> String {
    l["msg"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn epoch_time_encodings_are_numbers() {
    let text = run(&[
        "operator",
        "--zap-encoder=json",
        "--zap-time-encoding=epoch",
    ]);
    let lines = json_lines(&text);
    assert!(lines.iter().all(|l| l["ts"].is_f64()), "{text}");
    let text = run(&[
        "operator",
        "--zap-encoder=json",
        "--zap-time-encoding=nanos",
    ]);
    let lines = json_lines(&text);
    assert!(lines.iter().all(|l| l["ts"].is_u64()), "{text}");
}

#[test]
fn console_logs_to_a_pipe_have_no_colour() {
    for args in [
        &[
            "operator",
            "--zap-encoder=console",
            "--enable-opentelemetry-metrics",
        ][..],
        &["operator"][..],
        &["admission-webhooks", "--zap-log-level=debug"][..],
    ] {
        let text = run(args);
        assert!(!text.contains('\u{1b}'), "{args:?}: escape in {text:?}");
        assert!(text.contains("Starting keda-rs"), "{args:?}: {text}");
        assert!(text.contains(" WARN "), "{args:?}: {text}");
        assert!(text.contains(" ERROR "), "{args:?}: {text}");
    }
}

#[test]
fn zap_levels_filter() {
    // At error, the start line (info) and the warning are not written; the final error is.
    let text = run(&["operator", "--zap-encoder=json", "--zap-log-level=error"]);
    let lines = json_lines(&text);
    assert!(!lines.is_empty(), "{text}");
    assert!(lines.iter().all(|l| l["level"] == "error"), "{text}");
}

#[test]
fn invalid_logging_values_are_refused_before_anything_runs() {
    let out = Command::new(env!("CARGO_BIN_EXE_keda"))
        .args(["operator", "--zap-log-level=0"])
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("running keda: {e}"),
    };
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid log level"));
}

#[test]
fn an_invalid_service_tls_version_stops_each_process_naming_the_variable() {
    for process in ["operator", "metrics-apiserver", "admission-webhooks"] {
        let text = run_with(
            &[process, "--zap-encoder=json"],
            &[("KEDA_SERVICE_MIN_TLS_VERSION", "TLS1.3")],
        );
        let lines = json_lines(&text);
        let last = &lines[lines.len() - 1];
        assert_eq!(last["level"], "error", "{process}: {text}");
        let error = last["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("KEDA_SERVICE_MIN_TLS_VERSION: \"TLS1.3\" is not one of"),
            "{process}: {text}"
        );
    }
}
