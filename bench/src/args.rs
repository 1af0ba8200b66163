//! The bench's command line.
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Orders beside the orchestration floor, on the running stack"
)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Orders per run (each run is one kind at one concurrency).
    #[arg(long, default_value_t = 200)]
    pub(crate) orders: usize,
    /// Concurrencies to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,50")]
    pub(crate) concurrency: Vec<usize>,
    /// How orders are sent (`none`: the floor only).
    #[arg(long, value_enum, default_value_t = Via::Both)]
    pub(crate) via: Via,
    /// Skip the floor.
    #[arg(long)]
    pub(crate) no_floor: bool,
    /// Skip the scale-out runs (1 and 2 workers of the bench's own, the codec off and on, a
    /// hot product), which run through the Temporal client at the highest concurrency.
    #[arg(long)]
    pub(crate) no_scale_out: bool,
    /// Customers to spread the orders over (through the API each may send RATE_LIMIT, 20/s by
    /// default: a few customers at high concurrency are refused 429 `RATE_LIMITED`).
    #[arg(long, default_value_t = 50)]
    pub(crate) users: usize,
    /// Products to spread the lines over.
    #[arg(long, default_value_t = 20)]
    pub(crate) products: usize,
    /// Unmeasured orders before each run.
    #[arg(long, default_value_t = 10)]
    pub(crate) warmup: usize,
    /// Rounds each concurrency's runs take turns in (floor, client, API, floor, ...), each
    /// with its share of `--orders`: a drift of the machine during the runs then weighs on
    /// every kind alike.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Closed workflows per run whose history length is read.
    #[arg(long, default_value_t = 5)]
    pub(crate) history_samples: usize,
    /// Where results.json and chart.png go.
    #[arg(long, default_value = "target/bench")]
    pub(crate) out_dir: PathBuf,
    /// The Temporal dev server's Prometheus metrics (host:port), whose persistence requests
    /// are counted per order; `off` for none. Default: the server's host and its port + 2233,
    /// as `scripts/temporal.sh` starts it (TEMPORAL_METRICS_PORT there).
    #[arg(long)]
    pub(crate) server_metrics: Option<String>,
    /// Where `make up` keeps the pid files (worker.pid, api.pid, temporal.pid).
    #[arg(long, default_value = ".local")]
    pub(crate) pid_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// The floor's worker, which the bench starts as its child process for the floor runs.
    #[command(hide = true)]
    FloorWorker {
        #[arg(long)]
        task_queue: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Via {
    Api,
    Temporal,
    Both,
    None,
}
