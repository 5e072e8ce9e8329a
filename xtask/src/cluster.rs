//! `cargo xtask cluster …`: the local control plane. The recipe itself is `hack/cluster.sh` (upstream
//! binaries built from pinned Go modules by `hack/build-k8s.sh`, run in a network namespace); this module
//! only gives it the project's command-line shape.

use anyhow::Result;
use clap::Subcommand;
use std::path::Path;
use std::process::Command;

#[derive(Subcommand, Clone, Debug)]
pub enum Action {
    /// Build the binaries if needed, start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
    /// kwok in the `keda-rs` network namespace, print `export KUBECONFIG=…`. Reuses a running cluster.
    Up,
    /// Stop every process started by `up` and remove the namespace and state.
    Down,
    /// Report which processes run and whether the API server is ready.
    Status,
    /// Run a command inside the network namespace with KUBECONFIG and the cluster's binaries on PATH.
    Exec {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
}

pub fn run(root: &Path, action: Action) -> Result<()> {
    let script = root.join("hack/cluster.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script);
    match action {
        Action::Up => cmd.arg("up"),
        Action::Down => cmd.arg("down"),
        Action::Status => cmd.arg("status"),
        Action::Exec { command } => cmd.arg("exec").arg("--").args(command),
    };
    crate::run(&mut cmd)
}
