//! A real SMTP server for the mail tests: Python's aiosmtpd (Debian's
//! `python3-aiosmtpd`, installed by `scripts/test`) on a free loopback port,
//! storing every mail it accepts in a Maildir.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::MessageParser;

use super::Workspace;
use super::server::{NOW, Server};

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
}

/// A Python that has aiosmtpd: `KLAR_TEST_PYTHON`, Debian's, or the one on PATH.
fn python() -> String {
    let candidates = std::env::var("KLAR_TEST_PYTHON")
        .into_iter()
        .chain(["/usr/bin/python3".to_owned(), "python3".to_owned()]);
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return python;
        }
    }
    panic!(
        "the mail tests need a real SMTP server: install aiosmtpd \
         (`apt-get install python3-aiosmtpd`, as scripts/test does) or set KLAR_TEST_PYTHON"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        SmtpSink::start_on(free_port())
    }

    pub fn start_on(port: u16) -> SmtpSink {
        let maildir = tempfile::tempdir().expect("a maildir");
        let child = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let sink = SmtpSink {
            child,
            port,
            maildir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn new_mails(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.maildir.path().join("mail/new"))
            .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
    }

    /// Waits until `n` mails arrived; returns them raw.
    pub fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let files = self.new_mails();
            if files.len() >= n {
                return files
                    .iter()
                    .map(|f| std::fs::read(f).expect("a mail file"))
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} mails arrived",
                files.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const CSV: &str = "external_id,first_name,last_name,email,phone,owner,source,created_at,language\n\
C1,Jürgen,Groß,j.gross@example.de,,jk,web,2026-10-01,de\n\
C2,Zoë,Hart,zoe.hart@example.com,,jk,web,2026-10-01,en\n";

/// Tenants, contacts and a config naming the relay; then `klar serve` ticking
/// and delivering every few hundred milliseconds.
pub fn serve_with_smtp(smtp_url: &str, env: &[(&str, &str)]) -> Server {
    serve_with_smtp_purposes(smtp_url, env, &[])
}

/// As [`serve_with_smtp`], with more purposes (`id`, description) than
/// `contact-data` added before the import.
pub fn serve_with_smtp_purposes(
    smtp_url: &str,
    env: &[(&str, &str)],
    purposes: &[(&str, &str)],
) -> Server {
    serve_with_smtp_prepared(smtp_url, env, purposes, &|_| {})
}

/// As [`serve_with_smtp_purposes`], with `prepare` run on the workspace
/// after the import and before the server starts (to set texts, say).
pub fn serve_with_smtp_prepared(
    smtp_url: &str,
    env: &[(&str, &str)],
    purposes: &[(&str, &str)],
    prepare: &dyn Fn(&Workspace),
) -> Server {
    let ws = Workspace::new(&[("contacts.csv", CSV)]);
    ws.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "Müller & Söhne GmbH",
        "--now",
        NOW,
    ]);
    ws.ok(&["tenant", "add", "other", "--name", "Other AG", "--now", NOW]);
    for (id, description) in purposes {
        ws.ok(&[
            "purpose",
            "add",
            "acme",
            id,
            "--description",
            description,
            "--now",
            NOW,
        ]);
    }
    ws.ok(&["import", "acme", "contacts.csv", "--now", NOW]);
    prepare(&ws);
    ws.write(
        "klar.toml",
        &format!(
            "deliver_ms = 200\n[smtp]\nurl = \"{smtp_url}\"\n[smtp.from]\nacme = \"Müller & Söhne GmbH <datenschutz@mueller.example>\"\n"
        ),
    );
    Server::launch(ws, env, &["--config", "klar.toml", "--tick-seconds", "1"])
}

pub fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    MessageParser::default()
        .parse(raw)
        .expect("a well-formed mail")
}

/// The personal link in a text: `http://…/r/TOKEN`.
pub fn link_in(text: &str, base: &str) -> String {
    let start = text
        .find(&format!("{base}/r/"))
        .unwrap_or_else(|| panic!("no response link in {text}"));
    text[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .unwrap_or_default()
        .to_owned()
}

pub fn mail_to<'a>(mails: &'a [Vec<u8>], address: &str) -> &'a [u8] {
    mails
        .iter()
        .find(|m| {
            parse(m)
                .to()
                .and_then(|t| t.first())
                .and_then(|a| a.address())
                == Some(address)
        })
        .unwrap_or_else(|| panic!("no mail to {address}"))
}
