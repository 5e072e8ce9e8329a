//! The crate map of docs/ARCHITECTURE.md, enforced: each workspace crate may depend (normal
//! dependencies) only on the crates of ours listed for it here. A new edge is a decision: change this
//! table and the page together.

use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::process::Command;

/// (crate, the crates of ours it may depend on). Crates not listed (the binary, xtask, the e2e crate)
/// may depend on anything.
const ALLOWED: &[(&str, &[&str])] = &[
    ("keda-api", &[]),
    ("keda-core", &["keda-api"]),
    ("keda-tls", &[]),
    ("keda-kube", &[]),
    ("keda-proto", &[]),
    (
        "keda-scalers",
        &[
            "keda-api",
            "keda-core",
            "keda-tls",
            "keda-proto",
            "keda-kube",
        ],
    ),
    ("keda-resolver", &["keda-api", "keda-scalers"]),
    (
        "keda-check",
        &["keda-api", "keda-core", "keda-scalers", "keda-resolver"],
    ),
    (
        "keda-metrics-apiserver",
        &["keda-api", "keda-kube", "keda-proto", "keda-tls"],
    ),
    (
        "keda-webhooks",
        &[
            "keda-api",
            "keda-kube",
            "keda-check",
            "keda-resolver",
            "keda-scalers",
            "keda-tls",
        ],
    ),
    (
        "keda-operator",
        &[
            "keda-api",
            "keda-core",
            "keda-tls",
            "keda-kube",
            "keda-proto",
            "keda-scalers",
            "keda-resolver",
            "keda-check",
        ],
    ),
];

/// Fails naming every dependency edge the table does not allow.
pub fn check() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(crate::root())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let ours: BTreeSet<&str> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let mut wrong = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        let Some((_, allowed)) = ALLOWED.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            let normal = dep["kind"].is_null();
            if normal && ours.contains(dep_name) && !allowed.contains(&dep_name) {
                wrong.push(format!("{name} → {dep_name}"));
            }
        }
    }
    if !wrong.is_empty() {
        bail!(
            "dependencies outside the crate map (docs/ARCHITECTURE.md, xtask/src/layers.rs): {}",
            wrong.join(", ")
        );
    }
    Ok(())
}
