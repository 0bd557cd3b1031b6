//! `klar bench`: speed figures, each printed next to a baseline measured in
//! the same run, because the machines are shared and noisy and only ratios
//! compare across runs.
//!
//! - `steps` (the default): policy steps through the component vs the same
//!   library compiled natively.
//! - `import`: a generated CSV through `klar import` vs SQLite's own `.import`.
//! - `sweep`: one `tick` over many due cases vs SQLite updating as many rows.
//! - `api`: "may I use?" under load vs the same server's `/health`.
//! - `cockpit`: the overview and the queue on many cases vs `/health`.
//! - `list`: a campaign list in one `POST /v1/use` vs one call per id.

mod api;
mod cockpit;
mod list;
mod postgres;
mod steps;
mod store;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

pub use api::{ApiArgs, Load, parse_wrk};
pub use cockpit::CockpitArgs;
pub use list::ListArgs;
pub use postgres::PostgresArgs;
pub use steps::{StepsArgs, workload};
pub use store::{ImportArgs, SweepArgs};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCli {
    #[command(subcommand)]
    pub what: Option<BenchWhat>,
    #[command(flatten)]
    pub steps: StepsArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum BenchWhat {
    /// Policy steps per second, WASM vs native (the default).
    Steps(StepsArgs),
    /// Import a generated CSV, vs `sqlite3 .import` of the same file.
    Import(ImportArgs),
    /// Sweep many due cases with one tick, vs a bulk SQLite UPDATE.
    Sweep(SweepArgs),
    /// "May I use?" over HTTP under wrk's load, vs the same server's /health.
    Api(ApiArgs),
    /// The cockpit's overview and queue on many cases, vs the same server's /health.
    Cockpit(CockpitArgs),
    /// A campaign list in one POST /v1/use, vs one "may I use?" call per id.
    List(ListArgs),
    /// The sweep on PostgreSQL, by one instance and by two, vs SQLite.
    Postgres(PostgresArgs),
}

pub fn run(plugin: Option<&Path>, cli: &BenchCli) -> Result<ExitCode> {
    match &cli.what {
        None => steps::run(plugin, &cli.steps),
        Some(BenchWhat::Steps(args)) => steps::run(plugin, args),
        Some(BenchWhat::Import(args)) => store::import(plugin, args),
        Some(BenchWhat::Sweep(args)) => store::sweep(plugin, args),
        Some(BenchWhat::Api(args)) => api::run(args),
        Some(BenchWhat::Cockpit(args)) => cockpit::run(args),
        Some(BenchWhat::List(args)) => list::run(args),
        Some(BenchWhat::Postgres(args)) => postgres::run(plugin, args),
    }
}
