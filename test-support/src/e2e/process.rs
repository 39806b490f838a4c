//! Long-running helper processes (containerd, dockerd) and the clean-up they need: each is
//! stopped by PID when dropped (also on panic), and every mount left under its temp dir is
//! unmounted before the dir is removed.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Panics with an install hint unless `binary` is on `PATH`. A client that cannot start is a
/// test failure, never a skip.
#[track_caller]
pub fn require_binary(binary: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{binary}` is not installed (Debian package `{package}`): \
         run `bash scripts/test.sh`, which installs it, or `apt-get install {package}`"
    );
}

/// The first line `binary --version` prints (for failure messages).
pub fn version_of(binary: &str) -> String {
    Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_else(|e| format!("<{binary} --version failed: {e}>"))
}

/// A daemon spawned with stdout+stderr to a log file. `Drop` sends SIGTERM by PID, waits up to
/// `grace`, then SIGKILLs and reaps it.
pub struct Daemon {
    name: &'static str,
    child: Option<Child>,
    log_path: PathBuf,
    grace: Duration,
}

impl Daemon {
    /// Spawns `cmd` (stdin closed, output to `log_path`). Panics with a clear message when the
    /// binary cannot be started.
    pub fn spawn(
        name: &'static str,
        mut cmd: Command,
        log_path: PathBuf,
        grace: Duration,
    ) -> Daemon {
        let log = File::create(&log_path).expect("create daemon log");
        let log_err = log.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{name}`: {e}"));
        Daemon {
            name,
            child: Some(child),
            log_path,
            grace,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path.display()))
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits (≤ `limit`) until `ready()` holds. Panics with the log if the process exits first
    /// or the time runs out.
    pub fn wait_until(&mut self, limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "`{}` exited while starting ({status}); log:\n{}",
                        self.name,
                        self.log()
                    );
                }
            }
            if ready() {
                return;
            }
            if Instant::now() >= deadline {
                self.stop();
                panic!(
                    "`{}` did not become ready ({what}) within {limit:?}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGTERM by PID, wait up to the grace period, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + self.grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Mount points at or below `dir`, deepest first (from `/proc/self/mountinfo`).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts (lazily, deepest first) everything mounted at or below `dir`. Returns what was
/// still mounted afterwards (empty when all went well).
pub fn unmount_all_under(dir: &Path) -> Vec<PathBuf> {
    for _round in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return mounts;
        }
        for mount in mounts {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&mount)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    mounts_under(dir)
}

/// A temp dir that unmounts whatever is still mounted below it before it is removed.
pub struct MountedTempDir {
    dir: Option<tempfile::TempDir>,
}

impl MountedTempDir {
    pub fn new(prefix: &str) -> MountedTempDir {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("create temp dir");
        MountedTempDir { dir: Some(dir) }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("temp dir").path()
    }
}

impl Drop for MountedTempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let left = unmount_all_under(dir.path());
            if left.is_empty() {
                drop(dir);
            } else {
                // Never delete through a live mount: keep the dir and say so.
                let path = dir.keep();
                eprintln!(
                    "warning: could not unmount {left:?}; leaving {} in place",
                    path.display()
                );
            }
        }
    }
}
