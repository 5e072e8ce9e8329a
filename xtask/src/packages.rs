//! Installs the Debian packages the tests need (backend servers), so a fresh machine can run
//! `cargo xtask test` with nothing installed by hand.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub fn ensure(list: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(list).with_context(|| format!("reading {}", list.display()))?;
    let wanted: Vec<&str> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    let missing: Vec<&str> = wanted.into_iter().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "the tests need these Debian packages: {}\ninstall them with: sudo apt-get install -y {}",
            missing.join(" "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    // Services must not be started by package scripts: the tests start their own instances.
    if !Path::new("/usr/sbin/policy-rc.d").exists() {
        std::fs::write("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n").ok();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            "/usr/sbin/policy-rc.d",
            std::fs::Permissions::from_mode(0o755),
        )
        .ok();
    }
    crate::run(Command::new("apt-get").args(["update", "-qq"]))?;
    crate::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing),
    )?;
    Ok(())
}

/// Runs every `hack/backends/*.sh` (sorted by name): each installs one backend server that Debian does not
/// carry (from Maven Central, the Go module proxy, PyPI or npm) into `~/.cache/keda-rs/` and returns at once
/// when it is already there, so only a cold machine pays for the download or build.
pub fn ensure_scripted(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut scripts: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .collect();
    scripts.sort();
    for script in scripts {
        crate::run(Command::new("bash").arg(&script))?;
    }
    Ok(())
}
