//! tongban benchmarks. Each subcommand prints one JSON object on stdout:
//! - `http`: authenticated page and API requests per second, p50/p99 latency, 64 connections;
//! - `audit`: audited state changes per second beside bare single-row insert transactions on the
//!   same database in the same run (SQLite, and PostgreSQL when `--postgres URL` is given);
//! - `startup`: time from process start to the first healthy response, and idle RSS;
//! - `workflow-engine`: the in-process engine beside SpiffWorkflow on the same BPMN file (ratio);
//! - `workflow-service`: instances completed per second through the persisted service;
//! - `calendar`: deadline computations per second;
//! - `intake`: online applications submitted per second over HTTP by concurrent citizens;
//! - `tasks`: workflow tasks claimed and completed per second over the HTTP API;
//! - `lists`: the to-do list and the supervision dashboard with 100,000 open tasks (latency).
//!
//! Run them all with `bench/run.sh` (release build); numbers go into BENCHMARKS.md.

mod audit;
mod exchange;
mod http;
mod intake;
mod lists;
mod national;
mod oidc;
mod server;
mod startup;
mod tasks;
mod workflow;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "tongban benchmarks (JSON on stdout)")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Authenticated page and API throughput and latency.
    Http {
        /// The tongban binary to start.
        #[arg(long, default_value = "target/release/tongban")]
        bin: String,
        /// Concurrent connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds per endpoint.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Audited state changes vs bare inserts.
    Audit {
        /// Changes per measurement.
        #[arg(long, default_value_t = 2000)]
        count: usize,
        /// A PostgreSQL URL whose role may create databases; SQLite only when absent.
        #[arg(long, env = "TONGBAN_BENCH_POSTGRES")]
        postgres: Option<String>,
    },
    /// Start-up time and idle memory of `serve --demo`.
    Startup {
        /// The tongban binary to start.
        #[arg(long, default_value = "target/release/tongban")]
        bin: String,
    },
    /// The workflow engine in-process, beside SpiffWorkflow.
    WorkflowEngine {
        /// Instances for tongban.
        #[arg(long, default_value_t = 100_000)]
        count: usize,
        /// The Python with SpiffWorkflow installed.
        #[arg(long, default_value = "bench/.venv/bin/python")]
        python: String,
        /// Instances for SpiffWorkflow.
        #[arg(long, default_value_t = 1000)]
        spiff_count: usize,
    },
    /// The workflow service, persisted.
    WorkflowService {
        /// Instances per database.
        #[arg(long, default_value_t = 300)]
        count: usize,
        /// A PostgreSQL URL whose role may create databases; SQLite only when absent.
        #[arg(long, env = "TONGBAN_BENCH_POSTGRES")]
        postgres: Option<String>,
    },
    /// Online applications submitted per second by concurrent citizens.
    Intake {
        /// The tongban binary to start.
        #[arg(long, default_value = "target/release/tongban")]
        bin: String,
        /// Concurrent citizens.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Seconds of load.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Also on PostgreSQL: an admin URL whose role may create databases.
        #[arg(long, env = "TONGBAN_BENCH_POSTGRES")]
        postgres: Option<String>,
    },
    /// Tasks completed per second over the HTTP API.
    Tasks {
        /// The tongban binary to start.
        #[arg(long, default_value = "target/release/tongban")]
        bin: String,
        /// Tasks to create and complete.
        #[arg(long, default_value_t = 2000)]
        tasks: usize,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Also on PostgreSQL: an admin URL whose role may create databases.
        #[arg(long, env = "TONGBAN_BENCH_POSTGRES")]
        postgres: Option<String>,
    },
    /// To-do list and supervision dashboard latency with many open tasks.
    Lists {
        /// The tongban binary to start.
        #[arg(long, default_value = "target/release/tongban")]
        bin: String,
        /// Open tasks to seed.
        #[arg(long, default_value_t = 100_000)]
        tasks: usize,
        /// Concurrent connections.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Seconds per page.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Also on PostgreSQL: an admin URL whose role may create databases.
        #[arg(long, env = "TONGBAN_BENCH_POSTGRES")]
        postgres: Option<String>,
    },
    /// OpenID Connect token endpoint, discovery and JWKS, side by side with oidc-provider (npm).
    Oidc {
        /// The tongban binary to start.
        #[arg(long, default_value = "target/release/tongban")]
        bin: String,
        /// Node.js, for the peer.
        #[arg(long, default_value = "node")]
        node: String,
        /// The peer's start script.
        #[arg(long, default_value = "bench/node/oidc-provider/server.mjs")]
        script: String,
        /// Concurrent connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds per endpoint.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Distributing one sealed document to N units: until every inbox has it.
    Exchange {
        /// Recipient units.
        #[arg(long, default_value_t = 200)]
        recipients: usize,
        /// Documents sent (the median is reported).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Also on PostgreSQL: an admin URL whose role may create databases.
        #[arg(long, env = "TONGBAN_BENCH_POSTGRES")]
        postgres: Option<String>,
    },
    /// SM2 sign/verify per second and SM3 MB/s, side by side with OpenSSL (`openssl speed`).
    National {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// Working-day deadline computations.
    Calendar {
        /// Computations.
        #[arg(long, default_value_t = 1_000_000)]
        count: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = match Cli::parse().bench {
        Bench::Http { bin, connections, seconds } => http::run(&bin, connections, seconds).await?,
        Bench::Audit { count, postgres } => audit::run(count, postgres.as_deref()).await?,
        Bench::Startup { bin } => startup::run(&bin).await?,
        Bench::WorkflowEngine { count, python, spiff_count } => workflow::engine(count, &python, spiff_count)?,
        Bench::WorkflowService { count, postgres } => workflow::service(count, postgres.as_deref()).await?,
        Bench::Calendar { count } => workflow::calendar(count)?,
        Bench::National { seconds } => national::run(seconds)?,
        Bench::Exchange { recipients, rounds, postgres } => exchange::run(recipients, rounds, postgres.as_deref()).await?,
        Bench::Intake { bin, clients, seconds, postgres } => intake::run(&bin, clients, seconds, postgres.as_deref()).await?,
        Bench::Tasks { bin, tasks, connections, postgres } => tasks::run(&bin, tasks, connections, postgres.as_deref()).await?,
        Bench::Oidc { bin, node, script, connections, seconds } => oidc::run(&bin, &node, &script, connections, seconds).await?,
        Bench::Lists { bin, tasks, connections, seconds, postgres } => {
            lists::run(&bin, tasks, connections, seconds, postgres.as_deref()).await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
