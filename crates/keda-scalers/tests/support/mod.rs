//! Real backend servers for scaler tests, run as child processes on loopback (no containers here).
//! Each test file that needs one declares `mod support;` and starts what it needs; the process is
//! killed when the guard drops. The Debian packages are listed in `tests/backends/debian-packages.txt`
//! at the workspace root and installed by `cargo xtask test`.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback TCP port (bind to :0, read it back, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("keda-rs-{prefix}-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server process; killed (and its scratch dir removed) on drop.
pub struct ServerProcess {
    pub name: String,
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
    pub dir: TempDir,
}

impl ServerProcess {
    /// Starts `program args…` (logging to a file in its scratch dir) and waits until `port` accepts TCP
    /// connections. Panics with the log's tail if the process exits or never listens.
    pub fn start(name: &str, program: &str, args: &[String], port: u16, dir: TempDir, timeout: Duration) -> ServerProcess {
        let log = dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("create log");
        let err = out.try_clone().expect("clone log handle");
        let child = Command::new(program)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e} (is its Debian package installed? see tests/backends/debian-packages.txt)"));
        let mut server = ServerProcess { name: name.to_owned(), addr: SocketAddr::from(([127, 0, 0, 1], port)), child, log, dir };
        server.wait_listening(timeout);
        server
    }

    fn wait_listening(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited early with {status}:\n{}", self.name, self.log_tail());
            }
            if Instant::now() > deadline {
                panic!("{} did not listen on {} within {timeout:?}:\n{}", self.name, self.addr, self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last 30 lines the server logged.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Stops the server now (to test backend failures).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a command to completion, panicking with its output if it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
