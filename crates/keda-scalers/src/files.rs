//! Files of the operator's own filesystem that tenants name: postgresql `sslrootcert`/`sslcert`/`sslkey`
//! and Unix-socket hosts, mysql `unix(…)` sockets, a ClusterTriggerAuthentication's `filePath`. The
//! operator opens them with its own privileges, so each one must lie under the directory the cluster
//! admin allowed with `--filepath-auth-root-path` (upstream's flag); without the flag none is opened.
//! Otherwise a ScaledObject could make the operator present its own gRPC client certificate to a server
//! of the tenant's choosing, or probe which files exist.
//!
//! Two checks, one type ([`FileRoot`]):
//! * [`FileRoot::check`] is pure: the path as written (relative paths are taken from the root), with `.`
//!   and `..` applied, must lie under the root. The admission webhook and `keda lint` run it through
//!   [`crate::parse_trigger_confined`], as the operator's reconcile does, so all three give one error.
//! * [`FileRoot::resolve`] and [`FileRoot::read`] are what the operator does before opening anything:
//!   the same check, then the path with every symbolic link followed must still lie under the root with
//!   its links followed. The file is opened by that resolved path and checked again once open.
//!
//! Errors name the path and the reason, never the file's contents nor where a link points.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The operator flag that sets the root, as errors name it.
pub const ROOT_FLAG: &str = "--filepath-auth-root-path";
/// The most read from one file (certificates and parameter files are a few KiB).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The directory tenant-named files must lie under; unset refuses every path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileRoot {
    /// Absolute, with `.` and `..` applied.
    root: Option<PathBuf>,
}

/// Why a path is refused or cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FileRefused {
    #[error("no file may be read: the operator runs without {ROOT_FLAG}")]
    NoRoot,
    #[error("the path is empty")]
    Empty,
    #[error("{path:?} is outside {ROOT_FLAG} ({root})")]
    Outside { path: String, root: String },
    #[error("{path:?} leads outside {ROOT_FLAG} ({root}) through a symbolic link")]
    LinkOutside { path: String, root: String },
    #[error("{path:?} cannot be read: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path:?} is not a regular file")]
    NotAFile { path: String },
    #[error("{path:?} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: String },
}

/// A file a parsed trigger would open, as written, and the metadata or connection-string field that
/// names it (see [`crate::TriggerConfig::files`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileUse {
    pub field: &'static str,
    pub path: String,
}

/// `path` with `.` and `..` applied without looking at the filesystem (`..` at `/` stays at `/`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => out.push(c.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    out
}

impl FileRoot {
    /// The root `--filepath-auth-root-path` names; empty (or only blanks) leaves it unset. A relative root
    /// is taken from the working directory.
    pub fn new(root: &str) -> FileRoot {
        let root = root.trim();
        if root.is_empty() {
            return FileRoot::unset();
        }
        let absolute = std::path::absolute(root).unwrap_or_else(|_| PathBuf::from(root));
        FileRoot {
            root: Some(normalize(&absolute)),
        }
    }

    /// No root: every path is refused.
    pub fn unset() -> FileRoot {
        FileRoot { root: None }
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    fn root_text(root: &Path) -> String {
        root.display().to_string()
    }

    /// Pure: where `path` points (relative paths from the root), `.` and `..` applied, if that lies under
    /// the root.
    pub fn check(&self, path: &str) -> Result<PathBuf, FileRefused> {
        let root = self.root.as_deref().ok_or(FileRefused::NoRoot)?;
        if path.is_empty() {
            return Err(FileRefused::Empty);
        }
        let normalized = normalize(&root.join(path));
        if normalized.starts_with(root) {
            Ok(normalized)
        } else {
            Err(FileRefused::Outside {
                path: path.to_owned(),
                root: Self::root_text(root),
            })
        }
    }

    /// [`FileRoot::check`], then the path with its symbolic links (and the `..` after them) followed must
    /// lie under the root with its own links followed. Returns that resolved path. Reads the filesystem.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, FileRefused> {
        self.check(path)?;
        let root = self.root.as_deref().ok_or(FileRefused::NoRoot)?;
        let real_root = std::fs::canonicalize(root).map_err(|e| FileRefused::Unreadable {
            path: path.to_owned(),
            reason: format!("the root {}: {e}", Self::root_text(root)),
        })?;
        // The path as the kernel would walk it (a `..` after a link leaves the link's target).
        let real = std::fs::canonicalize(root.join(path)).map_err(|e| FileRefused::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if real.starts_with(&real_root) {
            Ok(real)
        } else {
            Err(FileRefused::LinkOutside {
                path: path.to_owned(),
                root: Self::root_text(root),
            })
        }
    }

    /// The contents of the regular file at `path` (at most [`MAX_FILE_BYTES`]), after
    /// [`FileRoot::resolve`]. The file is opened by its resolved path and, where `/proc` tells, checked
    /// again once open, so a link swapped in between is noticed.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, FileRefused> {
        let real = self.resolve(path)?;
        let unreadable = |e: std::io::Error| FileRefused::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let file = std::fs::File::open(&real).map_err(unreadable)?;
        if !file.metadata().map_err(unreadable)?.is_file() {
            return Err(FileRefused::NotAFile {
                path: path.to_owned(),
            });
        }
        if let Some(opened) = opened_path(&file)
            && let Some(root) = self.root.as_deref()
            && let Ok(real_root) = std::fs::canonicalize(root)
            && !opened.starts_with(&real_root)
        {
            return Err(FileRefused::LinkOutside {
                path: path.to_owned(),
                root: Self::root_text(root),
            });
        }
        let mut data = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(unreadable)?;
        if data.len() as u64 > MAX_FILE_BYTES {
            return Err(FileRefused::TooLarge {
                path: path.to_owned(),
            });
        }
        Ok(data)
    }
}

/// The path an open file was reached by, from `/proc/self/fd` (Linux); `None` elsewhere.
fn opened_path(file: &std::fs::File) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory: `root/` (with `ca.pem`, `sub/`, links) and `outside/secret.pem` next to it.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "keda-files-{name}-{}-{}",
                std::process::id(),
                fastrand_suffix()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("root/sub")).expect("root");
            std::fs::create_dir_all(dir.join("outside")).expect("outside");
            std::fs::write(dir.join("root/ca.pem"), "CA").expect("ca");
            std::fs::write(dir.join("root/sub/c.pem"), "C").expect("c");
            std::fs::write(dir.join("outside/secret.pem"), "SECRET").expect("secret");
            std::os::unix::fs::symlink(dir.join("outside/secret.pem"), dir.join("root/escape.pem"))
                .expect("link");
            std::os::unix::fs::symlink(dir.join("outside"), dir.join("root/outdir"))
                .expect("dir link");
            std::os::unix::fs::symlink("sub/c.pem", dir.join("root/inside.pem")).expect("link");
            Scratch(dir)
        }

        fn root(&self) -> FileRoot {
            FileRoot::new(&self.0.join("root").display().to_string())
        }

        fn path(&self, rel: &str) -> String {
            self.0.join(rel).display().to_string()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn fastrand_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    }

    #[test]
    fn normalize_applies_dots_lexically() {
        for (input, want) in [
            ("/a/b/../c", "/a/c"),
            ("/a/./b/", "/a/b"),
            ("/../../etc", "/etc"),
            ("a/../../b", "b"),
            ("/a/b/c/../../..", "/"),
        ] {
            assert_eq!(normalize(Path::new(input)), PathBuf::from(want), "{input}");
        }
    }

    #[test]
    fn lexical_check_table() {
        let root = FileRoot::new("/mnt/auth");
        let outside = |p: &str| {
            Err(FileRefused::Outside {
                path: p.to_owned(),
                root: "/mnt/auth".to_owned(),
            })
        };
        let cases: Vec<(&str, Result<PathBuf, FileRefused>)> = vec![
            ("/mnt/auth/ca.pem", Ok("/mnt/auth/ca.pem".into())),
            ("ca.pem", Ok("/mnt/auth/ca.pem".into())),
            ("./tls/../ca.pem", Ok("/mnt/auth/ca.pem".into())),
            ("/mnt/auth/tls/../ca.pem", Ok("/mnt/auth/ca.pem".into())),
            ("/mnt/auth", Ok("/mnt/auth".into())),
            ("/mnt/auth/../auth/x", Ok("/mnt/auth/x".into())),
            ("../etc/passwd", outside("../etc/passwd")),
            (
                "/mnt/auth/../../etc/passwd",
                outside("/mnt/auth/../../etc/passwd"),
            ),
            ("/mnt/authx/ca.pem", outside("/mnt/authx/ca.pem")),
            ("/certs/tls.key", outside("/certs/tls.key")),
            (
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
                outside("/var/run/secrets/kubernetes.io/serviceaccount/token"),
            ),
            ("/", outside("/")),
            ("..", outside("..")),
            ("", Err(FileRefused::Empty)),
        ];
        for (path, want) in cases {
            assert_eq!(root.check(path), want, "{path:?}");
        }
        // A root written with dots or a trailing slash means the same directory.
        assert_eq!(FileRoot::new("/mnt/x/../auth/"), root);
    }

    #[test]
    fn an_empty_root_refuses_everything() {
        for root in [FileRoot::unset(), FileRoot::new(""), FileRoot::new("  ")] {
            assert_eq!(root.root(), None);
            for path in ["/mnt/auth/ca.pem", "ca.pem", ""] {
                assert_eq!(root.check(path), Err(FileRefused::NoRoot), "{path:?}");
                assert_eq!(root.read(path), Err(FileRefused::NoRoot), "{path:?}");
            }
        }
        assert_eq!(
            FileRefused::NoRoot.to_string(),
            "no file may be read: the operator runs without --filepath-auth-root-path"
        );
    }

    #[test]
    fn symbolic_links_are_followed_before_the_check() {
        let s = Scratch::new("links");
        let root = s.root();
        // Inside, by absolute and relative path, through a link that stays inside.
        assert_eq!(root.read(&s.path("root/ca.pem")), Ok(b"CA".to_vec()));
        assert_eq!(root.read("sub/../ca.pem"), Ok(b"CA".to_vec()));
        assert_eq!(root.read("inside.pem"), Ok(b"C".to_vec()));
        // A link (to a file or to a directory) that leaves the root: refused, the target not named.
        for path in [
            s.path("root/escape.pem"),
            "escape.pem".to_owned(),
            "outdir/secret.pem".to_owned(),
            // `..` after a link is taken from the link's target, as the kernel does.
            "outdir/../outside/secret.pem".to_owned(),
        ] {
            let err = root.read(&path).expect_err(&path);
            assert!(
                matches!(err, FileRefused::LinkOutside { .. }),
                "{path}: {err}"
            );
            let text = err.to_string();
            assert!(
                !text.contains("SECRET") && !text.contains(&s.path("outside")),
                "{text}"
            );
        }
        // Lexically outside: refused before the filesystem is looked at.
        let err = root
            .read(&s.path("outside/secret.pem"))
            .expect_err("outside");
        assert!(matches!(err, FileRefused::Outside { .. }), "{err}");
        let err = root.read("../outside/secret.pem").expect_err("dots");
        assert!(matches!(err, FileRefused::Outside { .. }), "{err}");
        // Missing files and directories inside the root: an error naming the path, not its contents.
        let err = root.read("missing.pem").expect_err("missing");
        assert!(matches!(err, FileRefused::Unreadable { .. }), "{err}");
        assert_eq!(
            root.read("sub"),
            Err(FileRefused::NotAFile { path: "sub".into() })
        );
        // resolve accepts directories (Unix socket directories) under the root.
        assert!(root.resolve("sub").is_ok());
        assert!(matches!(
            root.resolve("outdir"),
            Err(FileRefused::LinkOutside { .. })
        ));
    }

    #[test]
    fn a_root_that_is_itself_a_link_is_resolved_too() {
        let s = Scratch::new("rootlink");
        std::os::unix::fs::symlink(s.0.join("root"), s.0.join("via")).expect("root link");
        let root = FileRoot::new(&s.path("via"));
        assert_eq!(root.read("ca.pem"), Ok(b"CA".to_vec()));
        assert_eq!(root.read(&s.path("via/sub/c.pem")), Ok(b"C".to_vec()));
        assert!(matches!(
            root.read("escape.pem"),
            Err(FileRefused::LinkOutside { .. })
        ));
    }

    #[test]
    fn large_files_are_refused() {
        let s = Scratch::new("large");
        let big = s.0.join("root/big");
        std::fs::write(&big, vec![b'x'; MAX_FILE_BYTES as usize + 1]).expect("big");
        assert_eq!(
            s.root().read("big"),
            Err(FileRefused::TooLarge { path: "big".into() })
        );
    }
}
