//! `regauth serve` as a real process: for what only a whole process shows (logs on stderr,
//! signals, the database file after a stop).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ServerProcess {
    child: Option<Child>,
    pub port: u16,
    pub address: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl ServerProcess {
    /// Starts `regauth serve` in `dir` with `env` and waits for its "listening" line: on stdout
    /// in text mode, in a JSON event on stderr with `REGAUTH_LOG_FORMAT=json`.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
        let stdout_path = dir.join("serve.stdout");
        let stderr_path = dir.join("serve.stderr");
        let mut command = Command::new(crate::regauth_binary());
        command
            .arg("serve")
            .current_dir(dir)
            .env_remove("REGAUTH_CONFIG")
            .env_remove("RUST_LOG")
            .env("REGAUTH_LISTEN", "127.0.0.1:0")
            .env("REGAUTH_KEYS_DIR", dir.join("keys"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        for (key, value) in env {
            command.env(key, value);
        }
        // Owned at once, so that Drop kills it whatever happens below.
        let mut server = ServerProcess {
            child: Some(command.spawn().unwrap()),
            port: 0,
            address: String::new(),
            stdout_path: stdout_path.clone(),
            stderr_path,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
            let output = format!("{stdout}\n{}", server.stderr());
            if let Some(rest) = output.split("regauth listening on 127.0.0.1:").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                server.port = digits.parse().unwrap();
                server.address = format!("http://127.0.0.1:{}", server.port);
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "regauth serve did not start:\n{stdout}\n{}",
                server.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Sends a signal (`HUP`, `TERM`, ...) to the server by its PID.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit; its exit status.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "regauth did not stop within {limit:?}\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
