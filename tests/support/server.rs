//! `klar serve` on a free loopback port against a real SQLite file, and a
//! plain HTTP client for it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use serde_json::Value;

use super::{Workspace, klar};

pub const NOW: &str = "2026-12-01T08:00:00Z";

pub struct Server {
    pub child: Child,
    pub url: String,
    pub ws: Workspace,
    pub keys: (String, String),
}

impl Server {
    /// Tenants `acme` and `other`, one key each, and `klar serve` on a free port.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let ws = Workspace::new(&[]);
        ws.ok(&[
            "tenant",
            "add",
            "acme",
            "--name",
            "Müller GmbH",
            "--now",
            NOW,
        ]);
        ws.ok(&["tenant", "add", "other", "--name", "Other AG", "--now", NOW]);
        Server::launch(ws, env, &["--tick-seconds", "0"])
    }

    /// `klar serve` in a prepared workspace with tenants `acme` and `other`:
    /// creates a key for each and starts the server with `args` added.
    pub fn launch(ws: Workspace, env: &[(&str, &str)], args: &[&str]) -> Server {
        Server::launch_at(ws, env, args, NOW)
    }

    /// [`Server::launch`] with the server's clock fixed at `now`.
    pub fn launch_at(ws: Workspace, env: &[(&str, &str)], args: &[&str], now: &str) -> Server {
        // Admin keys, so that a test may use every operation; the scope tests
        // make `crm` keys of their own.
        let admin = |tenant: &str| {
            ws.ok(&[
                "apikey", "create", tenant, "--name", "admin", "--scope", "admin", "--now", NOW,
            ])
        };
        let (acme, other) = (admin("acme"), admin("other"));
        let (child, url) = Server::spawn(&ws, env, args, now);
        Server {
            child,
            url,
            ws,
            keys: (acme.trim().to_owned(), other.trim().to_owned()),
        }
    }

    /// Stops the server and starts it again on the same store, its clock
    /// fixed at `now` (a later day of a scenario).
    #[allow(dead_code)]
    pub fn restart_at(&mut self, env: &[(&str, &str)], args: &[&str], now: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, url) = Server::spawn(&self.ws, env, args, now);
        self.child = child;
        self.url = url;
    }

    fn spawn(ws: &Workspace, env: &[(&str, &str)], args: &[&str], now: &str) -> (Child, String) {
        let mut child = klar()
            .current_dir(ws.path())
            .env("KLAR_DB", &ws.db)
            .envs(env.iter().copied())
            .args(["serve", "--addr", "127.0.0.1:0", "--now", now])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("klar serve starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).expect("the listening line");
        let url = line
            .trim()
            .strip_prefix("klar serve: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        // Keep reading both pipes so the server never blocks on a full one;
        // the log goes to the test's output, shown when a test fails.
        std::thread::spawn(move || {
            let mut rest = String::new();
            while reader.read_line(&mut rest).unwrap_or(0) > 0 {}
        });
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    println!("klar serve: {line}");
                }
            });
        }
        (child, url)
    }

    pub fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into()
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let (status, text) = self.raw(method, path, key, body.map(Value::to_string), &[]);
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub fn raw(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let (status, _, text) = self.full(method, path, key, body, headers);
        (status, text)
    }

    /// Like [`Server::raw`], with the answer's headers (names in lower case).
    #[allow(dead_code)]
    pub fn full(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, String) {
        let url = format!("{}{path}", self.url);
        let agent = Server::agent();
        let auth = key.map(|k| format!("Bearer {k}"));
        let response = match method {
            "GET" | "DELETE" => {
                let mut r = if method == "GET" {
                    agent.get(&url)
                } else {
                    agent.delete(&url)
                };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                for (k, v) in headers {
                    r = r.header(*k, *v);
                }
                r.call()
            }
            _ => {
                let mut r = match method {
                    "PUT" => agent.put(&url),
                    "PATCH" => agent.patch(&url),
                    _ => agent.post(&url),
                };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                let mut content_type = "application/json";
                for (k, v) in headers {
                    if k.eq_ignore_ascii_case("content-type") {
                        content_type = v;
                    } else {
                        r = r.header(*k, *v);
                    }
                }
                r.header("Content-Type", content_type)
                    .send(body.unwrap_or_default())
            }
        }
        .expect("the server answers");
        let status = response.status().as_u16();
        let answer_headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let text = response.into_body().read_to_string().expect("a text body");
        (status, answer_headers, text)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
