//! Command-line shape (SPEC 11).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use mangaassist_emulator::faults::{FaultPlan, parse_region_fault};

fn parse_fault(s: &str) -> Result<(String, FaultPlan), String> {
    parse_region_fault(s)
}

/// mangaassist: checks, cache keys and Claude bodies for a manga store's chat,
/// over JSON Lines (one answer line per input line).
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Which implementation of the core answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// The core compiled into this binary.
    Native,
    /// The core compiled to WebAssembly, run in wasmtime.
    Wasm,
}

/// A batch task of `enrich`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Task {
    /// A spoiler-free product-page synopsis per item.
    Synopsis,
    /// Catalog labels per item (genres, audience, keywords) as JSON.
    Enrich,
}

/// `jobs` subcommands.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum JobsCommand {
    /// Create the SQS queue and its dead-letter queue (jobs_sqs) and the
    /// DynamoDB jobs table (jobs_table); existing ones are kept.
    Setup,
    /// Print the dead letters, one JSON line each (the item and its last error).
    DeadLetters,
    /// Move every dead letter back to the queue, to be tried again.
    Redrive,
    /// Print how many items are waiting, in flight and dead.
    Depth,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read {"message": s} lines; answer {"valid","code","detail","sanitized","estimatedTokens"}.
    Check {
        /// Engine that runs the core.
        #[arg(long, value_enum, default_value_t = Engine::Native)]
        engine: Engine,
        /// Message policy as JSON ({"maxMessageBytes","disallowedPatterns","maxControlRatio"},
        /// each optional); SPEC defaults when absent.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// With --engine wasm: policy component to run instead of the embedded one.
        #[arg(long)]
        policy_wasm: Option<PathBuf>,
    },
    /// Read Claude bodies; answer {"cacheKey": "<16 hex>"}.
    CacheKey {
        /// Engine that runs the core.
        #[arg(long, value_enum, default_value_t = Engine::Native)]
        engine: Engine,
        /// With --engine wasm: policy component to run instead of the embedded one.
        #[arg(long)]
        policy_wasm: Option<PathBuf>,
    },
    /// Read {"message","history"?,"system"?,"maxTokens"?,"temperature"?,"modelPreference"?};
    /// answer {"model","body","cacheKey"}.
    Body,
    /// Print the draft-04 JSON Schema of a chat request.
    Schema,
    /// Fit the calibrated token estimator's weights from USAGE (JSON Lines:
    /// {"body","inputTokens"}, {"text","inputTokens"}, or Bedrock
    /// model-invocation log records); print them as one JSON line with
    /// both estimators' errors per script, and a [calibration] section for
    /// the service's configuration on stderr.
    Calibrate {
        /// The usage file.
        usage: PathBuf,
    },
    /// Run the chat service (HTTP + WebSocket). Environment: MANGA_ENV
    /// (dev|staging|prod, default dev), MANGAASSIST_<KEY> overrides any
    /// configuration key, MANGAASSIST_LOG filters logs. With no configuration
    /// it answers from the embedded Bedrock emulator, offline.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080, or the configuration's `listen`].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Configuration file (TOML, with optional [env.dev|staging|prod] sections).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Read API keys, one per line; answer {"sha256": "<hex>"}, the form
    /// `api_keys` stores (the service never keeps a key itself).
    HashKey,
    /// Read a user-token secret on stdin and print a user token (an HS256
    /// JWT) for SUBJECT: what the store's backend does for its web users.
    UserToken {
        /// The user's id in the store (the identity is user:SUBJECT).
        #[arg(long)]
        subject: String,
        /// Seconds until it expires (the service refuses more than its
        /// user_token_max_ttl_secs, 3600 by default).
        #[arg(long, default_value_t = 600)]
        ttl_secs: u64,
    },
    /// Create the DynamoDB table replicas share sessions in (on-demand
    /// billing, `sessionId` key, TTL on `expiresAt`) and wait until it is
    /// active; an existing table is left as it is. Region, credentials and
    /// endpoint: the AWS SDK's standard settings (AWS_REGION, AWS_PROFILE,
    /// AWS_ENDPOINT_URL_DYNAMODB, ...).
    SessionsTable {
        /// Table name (the service's `sessions_table`).
        #[arg(long, default_value = "mangaassist-sessions")]
        table: String,
    },
    /// Run a catalog (JSON Lines of {"id","title","author"?,"description"?})
    /// through a batch task, with a progress bar; answers are appended to
    /// --out as they come, so Ctrl-C loses nothing and the same command
    /// resumes. Failed items go to <out>.failed.jsonl and are retried by
    /// the next run. Bedrock as `serve` is configured (the embedded
    /// emulator by default).
    Enrich {
        /// The catalog file.
        catalog: PathBuf,
        /// The task.
        #[arg(long, value_enum)]
        task: Task,
        /// Results file (JSON Lines, one line per item).
        #[arg(long)]
        out: PathBuf,
        /// Language of the answers.
        #[arg(long, default_value = "ja", value_parser = ["ja", "en", "zh"])]
        language: String,
        /// Items in flight at once.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
        concurrency: u16,
        /// The service's configuration file (Bedrock mode, regions, catalog).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run job workers until SIGTERM or Ctrl-C: items from the job queue
    /// answered through Bedrock, results into the job store, as `serve`
    /// is configured (jobs_* keys; the embedded queue and store in
    /// jobs_dir by default). In-flight items finish before it stops.
    Worker {
        /// The service's configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Operate the batch path's queue and store, as `serve` is configured.
    Jobs {
        /// What to do.
        #[command(subcommand)]
        command: JobsCommand,
        /// The service's configuration file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Run the local Bedrock emulator (deterministic, clearly labelled replies).
    Emulator {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: SocketAddr,
        /// Time to first token, milliseconds.
        #[arg(long, default_value_t = 0)]
        ttft_ms: u64,
        /// Time between tokens, milliseconds.
        #[arg(long, default_value_t = 0)]
        per_token_ms: u64,
        /// A fault for one emulated region, REGION=KIND[:N]; KIND is throttle,
        /// error500, error503, model_timeout, validation, drop, stall, cut:N or pause:N.
        /// Repeatable; change at run time with PUT /_emulator/faults/REGION
        /// on the control port.
        #[arg(long = "fault", value_parser = parse_fault)]
        faults: Vec<(String, FaultPlan)>,
        /// Loopback port of the control API (faults, latency, state), which
        /// needs the token printed at start; 0 picks a free one.
        #[arg(long, default_value_t = 8788)]
        control_port: u16,
    },
}
