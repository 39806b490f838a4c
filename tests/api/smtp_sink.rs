//! A real SMTP server for tests: Python's aiosmtpd on a free 127.0.0.1 port, writing each
//! message it accepts to a JSON file (headers and body decoded by Python's `email`).
//! Killed by PID when dropped. `scripts/test.sh` installs aiosmtpd when it is missing.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const SINK_PY: &str = r#"
import asyncio, email, email.policy, json, os, sys
from aiosmtpd.smtp import SMTP

outdir = sys.argv[1]
count = 0

class Sink:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # Addresses listed in <outdir>/reject are refused, to simulate a failed delivery.
        reject = os.path.join(outdir, "reject")
        if os.path.exists(reject) and address in open(reject).read().split():
            return "550 5.1.1 mailbox unavailable (test)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_to": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "body": message.get_content(),
        }
        path = os.path.join(outdir, "mail-%06d.json" % count)
        with open(path + ".tmp", "w") as out:
            json.dump(record, out)
        os.rename(path + ".tmp", path)
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink(), hostname="sink.test"), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

/// One mail as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub rcpt_to: Vec<String>,
    pub to: String,
    pub from: String,
    pub subject: String,
    pub body: String,
}

pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("sink.py");
        std::fs::write(&script, SINK_PY).unwrap();
        std::fs::create_dir(dir.path().join("mail")).unwrap();
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(dir.path().join("mail"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the SMTP tests");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "the test SMTP server did not start (is aiosmtpd installed? `pip install aiosmtpd`; \
                 scripts/test.sh does it): {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        SmtpSink { child, port, dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Every mail received so far, in order.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.mail_dir())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                let value: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
                let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
                ReceivedMail {
                    rcpt_to: value["rcpt_to"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_owned())
                        .collect(),
                    to: text("to"),
                    from: text("from"),
                    subject: text("subject"),
                    body: text("body"),
                }
            })
            .collect()
    }

    /// Refuse mail to these addresses (550) until [`SmtpSink::accept_all`].
    pub fn reject(&self, addresses: &[&str]) {
        std::fs::write(self.mail_dir().join("reject"), addresses.join("\n")).unwrap();
    }

    pub fn accept_all(&self) {
        let _ = std::fs::remove_file(self.mail_dir().join("reject"));
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
