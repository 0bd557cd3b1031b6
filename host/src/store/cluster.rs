//! A throwaway PostgreSQL cluster: made in a temporary folder, listening on
//! a free loopback port, run as a non-root user, stopped and deleted when
//! dropped. The tests and `klar bench` start one; nothing needs a system
//! service.
//!
//! It uses Debian's PostgreSQL binaries (`/usr/lib/postgresql/<n>/bin`, or
//! wherever `pg_config --bindir` says). PostgreSQL refuses to run as root;
//! run as root, the cluster runs as the user `postgres` (made by Debian's
//! package) or else `nobody`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Location;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL's server programs (initdb, pg_ctl) are not installed; on Debian: apt-get install postgresql"
    )]
    NotInstalled,
    #[error("running as root, and there is no user `postgres` or `nobody` to run PostgreSQL as")]
    NoUser,
    #[error("{what} failed: {detail}")]
    Failed { what: String, detail: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A running cluster; stopped and deleted on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// (uid, gid) to run the server's programs as, when we are root.
    user: Option<(u32, u32)>,
}

/// The role every cluster's databases belong to.
const ROLE: &str = "klar";

impl Cluster {
    /// Initialises and starts a cluster with settings for tests: no fsync
    /// (a test's data does not outlive it).
    pub fn start() -> Result<Cluster, ClusterError> {
        Cluster::start_with(&["-c", "fsync=off", "-c", "full_page_writes=off"])
    }

    /// Like [`Cluster::start`], with PostgreSQL's durable defaults: for
    /// benchmarks, whose figures should hold for a real server.
    pub fn start_durable() -> Result<Cluster, ClusterError> {
        Cluster::start_with(&[])
    }

    fn start_with(settings: &[&str]) -> Result<Cluster, ClusterError> {
        let bin = binaries().ok_or(ClusterError::NotInstalled)?;
        let user = if unsafe { libc::geteuid() } == 0 {
            Some(
                ["postgres", "nobody"]
                    .iter()
                    .find_map(|name| user_ids(name))
                    .ok_or(ClusterError::NoUser)?,
            )
        } else {
            None
        };
        let dir = tempfile::Builder::new().prefix("klar-pg-").tempdir()?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let port = free_port()?;
        let cluster = Cluster {
            dir,
            bin,
            port,
            user,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-A",
                "trust",
                "-U",
                ROLE,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
                &data.to_string_lossy(),
            ],
        )?;
        let mut options = format!(
            "-k {} -p {port} -h 127.0.0.1 -c max_connections=200",
            cluster.dir.path().display()
        );
        for setting in settings {
            options.push(' ');
            options.push_str(setting);
        }
        let log = cluster.dir.path().join("server.log");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-o",
                &options,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "start",
            ],
        )?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of PostgreSQL's programs (as the cluster's user).
    fn run(&self, program: &str, args: &[&str]) -> Result<(), ClusterError> {
        let mut command = Command::new(self.bin.join(program));
        command
            .args(args)
            .stdin(Stdio::null())
            .current_dir(self.dir.path());
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        let output = command.output()?;
        if output.status.success() {
            return Ok(());
        }
        let mut detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if let Ok(log) = std::fs::read_to_string(self.dir.path().join("server.log")) {
            detail.push_str("\nserver log:\n");
            detail.push_str(log.trim());
        }
        Err(ClusterError::Failed {
            what: format!("{program} {}", args.join(" ")),
            detail,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{name}", self.port)
    }

    /// Makes a new, empty database and returns where it is.
    pub fn create_database(&self, name: &str) -> Result<Location, ClusterError> {
        let mut client = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .map_err(|e| ClusterError::Failed {
                what: "connecting to the cluster".into(),
                detail: e.to_string(),
            })?;
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|e| ClusterError::Failed {
                what: format!("CREATE DATABASE {name}"),
                detail: e.to_string(),
            })?;
        Ok(Location::Postgres(self.url(name)))
    }

    /// Deletes the cluster's files (drop does this too; for a cluster that
    /// is never dropped, such as one in a `static`).
    pub fn remove_files(&self) {
        let _ = std::fs::remove_dir_all(self.dir.path());
    }

    /// Stops the server now (drop does the same, ignoring failure).
    pub fn stop(&self) -> Result<(), ClusterError> {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists()
            && let Err(err) = self.stop()
        {
            tracing::warn!(%err, "could not stop the PostgreSQL cluster");
        }
    }
}

/// Where PostgreSQL's server programs are.
fn binaries() -> Option<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&dir) {
            return Some(dir);
        }
    }
    // Debian keeps them per major version, off PATH; take the newest.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_initdb(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// A user's (uid, gid), if it exists.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam returns NULL or a pointer to a static record, read
    // here at once; the tests and benchmarks call this from one thread.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return None;
    }
    let entry = unsafe { &*entry };
    Some((entry.pw_uid, entry.pw_gid))
}

/// A loopback port nothing listens on now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One cluster for the whole process (the tests'), started on first use
/// and stopped, its files deleted, when the process exits: a `static` is
/// never dropped.
pub fn for_this_process() -> Result<&'static Cluster, ClusterError> {
    static CLUSTER: std::sync::OnceLock<Cluster> = std::sync::OnceLock::new();
    static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    extern "C" fn stop() {
        if let Some(cluster) = CLUSTER.get() {
            let _ = cluster.stop();
            cluster.remove_files();
        }
    }
    let _one_at_a_time = STARTING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(cluster) = CLUSTER.get() {
        return Ok(cluster);
    }
    let cluster = Cluster::start()?;
    // SAFETY: `stop` is a plain function; atexit only keeps its address.
    unsafe { libc::atexit(stop) };
    Ok(CLUSTER.get_or_init(|| cluster))
}

/// Whether this machine can start a cluster (the tests that need one say
/// so and fail when it cannot: CI installs PostgreSQL).
pub fn available() -> bool {
    binaries().is_some()
}
