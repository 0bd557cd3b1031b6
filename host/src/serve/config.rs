//! `klar serve`'s settings: built-in defaults, then a TOML file (`--config`),
//! then environment variables, then command-line flags — each overriding the
//! one before. The store is `--db` or `KLAR_DB` as for every command, else
//! the file's `db`, else `klar.db`.
//!
//! ```toml
//! db = "postgres://klar@db.internal/klar"   # or a SQLite file
//! addr = "127.0.0.1:8080"      # KLAR_ADDR
//! tick_seconds = 60            # KLAR_TICK_SECONDS; 0 turns the scheduler off
//! public_url = "https://consent.example.de"   # KLAR_PUBLIC_URL, for links
//! deliver_ms = 2000            # KLAR_DELIVER_MS: how often webhooks are sent
//! webhook_retry_ms = 1000      # KLAR_WEBHOOK_RETRY_MS: first wait after a failure
//! webhook_attempts = 8         # KLAR_WEBHOOK_ATTEMPTS: failures before parking
//! # Webhooks go to public addresses only; these named hosts may be private
//! # (an on-premises CRM). KLAR_WEBHOOK_ALLOW_PRIVATE="crm.intern,10.0.0.5"
//! webhook_allow_private = ["crm.intern"]
//! header_timeout_ms = 10000    # KLAR_HEADER_TIMEOUT_MS: to send a request's headers
//!                              # (also how long an idle connection stays open)
//! body_timeout_ms = 30000      # KLAR_BODY_TIMEOUT_MS: to send a request's body
//! max_body_bytes = 33554432    # KLAR_MAX_BODY_BYTES: the largest body (32 MiB)
//! auth_failures_per_minute = 20  # KLAR_AUTH_FAILURES_PER_MINUTE: wrong keys from one
//!                              # address before it gets 429 for the rest of the minute
//!
//! # Optional: klar mails the e-mail requests of the tenants listed under
//! # [smtp.from] itself (their webhook, if any, gets every other action).
//! [smtp]
//! url = "smtp://user:password@mail.example.de:587?tls=required"   # KLAR_SMTP_URL
//! [smtp.from]
//! acme = "Acme GmbH <datenschutz@acme.example>"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub addr: SocketAddr,
    pub db: crate::store::Location,
    pub tick_every: Option<Duration>,
    pub public_url: Option<String>,
    pub deliver_every: Duration,
    pub retry: crate::delivery::webhook::Retry,
    /// Where webhooks may point.
    pub targets: crate::delivery::target::Targets,
    /// Timeouts and the body limit of every request.
    pub limits: super::guard::Limits,
    /// SMTP delivery of e-mail requests, if configured.
    pub smtp: Option<crate::delivery::mail::MailConfig>,
    /// A fixed clock (tests, demos).
    pub now: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    addr: Option<String>,
    /// The store, as `--db` takes it (a file or a PostgreSQL URL).
    db: Option<String>,
    tick_seconds: Option<u64>,
    public_url: Option<String>,
    deliver_ms: Option<u64>,
    webhook_retry_ms: Option<u64>,
    webhook_attempts: Option<u32>,
    webhook_allow_private: Option<Vec<String>>,
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    max_body_bytes: Option<u64>,
    auth_failures_per_minute: Option<u64>,
    smtp: Option<SmtpFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpFile {
    url: Option<String>,
    #[serde(default)]
    from: std::collections::BTreeMap<String, String>,
}

/// What the command line gave.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub addr: Option<String>,
    /// `--db` or `KLAR_DB`, if given: before the file's `db`.
    pub db: Option<crate::store::Location>,
    pub config: Option<PathBuf>,
    pub tick_seconds: Option<u64>,
    pub now: Option<DateTime<Utc>>,
}

/// The private hosts webhooks may reach: `KLAR_WEBHOOK_ALLOW_PRIVATE`
/// (comma-separated) if set, else the file's `webhook_allow_private`.
pub fn allowed_targets(
    file: Option<&[String]>,
    env: impl Fn(&str) -> Option<String>,
) -> crate::delivery::target::Targets {
    match env("KLAR_WEBHOOK_ALLOW_PRIVATE") {
        Some(list) => crate::delivery::target::Targets::allowing(list.split(',')),
        None => crate::delivery::target::Targets::allowing(file.unwrap_or_default()),
    }
}

fn parse_addr(text: &str, from: &str) -> Result<SocketAddr> {
    text.parse()
        .with_context(|| format!("{from}: {text:?} is not an address like 127.0.0.1:8080"))
}

impl Config {
    /// Reads the file (if any) and the environment, then applies the flags.
    pub fn load(flags: &Flags, env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let file: File = match &flags.config {
            Some(path) => read(path)?,
            None => File::default(),
        };
        let mut config = Config {
            addr: parse_addr("127.0.0.1:8080", "default")?,
            db: flags
                .db
                .clone()
                .or_else(|| file.db.as_deref().map(crate::store::Location::from))
                .unwrap_or_default(),
            tick_every: Some(Duration::from_secs(60)),
            public_url: None,
            deliver_every: Duration::from_millis(2_000),
            retry: crate::delivery::webhook::Retry::default(),
            targets: allowed_targets(file.webhook_allow_private.as_deref(), &env),
            limits: super::guard::Limits::default(),
            smtp: None,
            now: None,
        };
        let smtp = file.smtp.unwrap_or_default();
        if let Some(url) = env("KLAR_SMTP_URL").or(smtp.url) {
            config.smtp = Some(crate::delivery::mail::MailConfig {
                url,
                from: smtp.from,
            });
        } else if !smtp.from.is_empty() {
            anyhow::bail!("config file: [smtp.from] is set but no smtp.url (or KLAR_SMTP_URL)");
        }
        if let Some(addr) = &file.addr {
            config.addr = parse_addr(addr, "config file: addr")?;
        }
        if let Some(s) = file.tick_seconds {
            config.tick_every = Some(Duration::from_secs(s));
        }
        config.public_url = file.public_url;
        if let Some(ms) = file.deliver_ms {
            config.deliver_every = Duration::from_millis(ms);
        }
        if let Some(ms) = file.webhook_retry_ms {
            config.retry.base_ms = ms;
        }
        if let Some(n) = file.webhook_attempts {
            config.retry.max_attempts = n;
        }
        let number = |name: &str| -> Result<Option<u64>> {
            env(name)
                .map(|v| {
                    v.parse::<u64>()
                        .with_context(|| format!("{name}: {v:?} is not a whole number"))
                })
                .transpose()
        };
        let limits = &mut config.limits;
        for (from_env, from_file, target) in [
            (
                number("KLAR_HEADER_TIMEOUT_MS")?,
                file.header_timeout_ms,
                &mut limits.header_timeout,
            ),
            (
                number("KLAR_BODY_TIMEOUT_MS")?,
                file.body_timeout_ms,
                &mut limits.body_timeout,
            ),
        ] {
            if let Some(ms) = from_env.or(from_file) {
                *target = Duration::from_millis(ms.max(1));
            }
        }
        if let Some(n) = number("KLAR_AUTH_FAILURES_PER_MINUTE")?.or(file.auth_failures_per_minute)
        {
            limits.auth_failures = u32::try_from(n).unwrap_or(u32::MAX).max(1);
        }
        if let Some(bytes) = number("KLAR_MAX_BODY_BYTES")?.or(file.max_body_bytes) {
            limits.max_body = usize::try_from(bytes).unwrap_or(usize::MAX).max(1024);
        }
        if let Some(ms) = number("KLAR_DELIVER_MS")? {
            config.deliver_every = Duration::from_millis(ms);
        }
        if let Some(ms) = number("KLAR_WEBHOOK_RETRY_MS")? {
            config.retry.base_ms = ms;
        }
        if let Some(n) = number("KLAR_WEBHOOK_ATTEMPTS")? {
            config.retry.max_attempts = u32::try_from(n).unwrap_or(u32::MAX).max(1);
        }
        if let Some(addr) = env("KLAR_ADDR") {
            config.addr = parse_addr(&addr, "KLAR_ADDR")?;
        }
        if let Some(s) = env("KLAR_TICK_SECONDS") {
            let s: u64 = s
                .parse()
                .with_context(|| format!("KLAR_TICK_SECONDS: {s:?} is not a whole number"))?;
            config.tick_every = Some(Duration::from_secs(s));
        }
        if let Some(url) = env("KLAR_PUBLIC_URL") {
            config.public_url = Some(url);
        }
        if let Some(addr) = &flags.addr {
            config.addr = parse_addr(addr, "--addr")?;
        }
        if let Some(s) = flags.tick_seconds {
            config.tick_every = Some(Duration::from_secs(s));
        }
        config.now = flags.now;
        if let Some(url) = &config.public_url {
            config.public_url = Some(url.trim_end_matches('/').to_owned());
        }
        Ok(config)
    }
}

fn read(path: &Path) -> Result<File> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: not a valid klar config", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_environment_which_overrides_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("klar.toml");
        std::fs::write(&file, "addr = \"127.0.0.1:9000\"\ntick_seconds = 5\n").expect("write");
        let env = |k: &str| (k == "KLAR_TICK_SECONDS").then(|| "7".to_owned());
        let flags = Flags {
            config: Some(file.clone()),
            ..Flags::default()
        };
        let c = Config::load(&flags, env).expect("loads");
        assert_eq!(c.addr.port(), 9000);
        assert_eq!(c.tick_every, Some(Duration::from_secs(7)));
        let flags = Flags {
            config: Some(file),
            addr: Some("127.0.0.1:0".into()),
            tick_seconds: Some(0),
            ..Flags::default()
        };
        let c = Config::load(&flags, env).expect("loads");
        assert_eq!((c.addr.port(), c.tick_every), (0, Some(Duration::ZERO)));
        std::fs::write(dir.path().join("bad.toml"), "adr = 1\n").expect("write");
        let bad = Flags {
            config: Some(dir.path().join("bad.toml")),
            ..Flags::default()
        };
        assert!(Config::load(&bad, |_| None).is_err());
    }
}
