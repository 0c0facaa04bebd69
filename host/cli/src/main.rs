//! `mangaassist`: the command line (SPEC 11). `main` parses the arguments
//! ([`args`]) and runs one subcommand: the JSON Lines tools ([`commands`]
//! over the [`lines`] loop), or the service and emulator ([`serve`]).

mod args;
mod calibrate;
mod commands;
mod enrich;
mod jobs;
mod lines;
mod serve;
mod stores;

use std::io::{self, BufReader, BufWriter};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mangaassist_emulator::{EmulatorConfig, Latency};
use mangaassist_sandbox::{ActivePolicy, Limits, PolicySource, Runtime, answers};

use crate::args::{Cli, Command, Engine};
use crate::serve::{run_emulator, run_service};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A progress bar owns the terminal during `enrich`: only errors log.
    let quiet = matches!(cli.command, Command::Enrich { .. });
    init_logs(
        matches!(cli.command, Command::Serve { .. } | Command::Worker { .. }),
        quiet,
    );
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mangaassist: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let stdin = io::stdin().lock();
    let stdout = io::stdout().lock();
    let reader = BufReader::with_capacity(64 * 1024, stdin);
    let writer = BufWriter::with_capacity(64 * 1024, stdout);
    let io_err = |e: io::Error| format!("I/O error: {e}");
    match cli.command {
        Command::Check {
            engine,
            policy,
            policy_wasm,
        } => {
            let handler = match engine {
                Engine::Native => commands::Check::native(policy.as_deref())?,
                Engine::Wasm if policy.is_some() => {
                    return Err("--policy applies to --engine native; a policy component \
                                carries its own policy (use --policy-wasm)"
                        .to_string());
                }
                Engine::Wasm => commands::Check::Wasm(active_policy(policy_wasm.as_deref())?),
            };
            // A file policy is swapped on SIGHUP or change while lines flow.
            let _watch = match &handler {
                commands::Check::Wasm(active) if policy_wasm.is_some() => Some(
                    active
                        .watch(Duration::from_millis(200))
                        .map_err(|e| format!("cannot watch the policy component: {e}"))?,
                ),
                _ => None,
            };
            lines::process(reader, writer, |line| handler.answer(line)).map_err(io_err)
        }
        Command::CacheKey {
            engine,
            policy_wasm,
        } => match engine {
            Engine::Native => lines::process(reader, writer, commands::cache_key).map_err(io_err),
            Engine::Wasm => {
                let active = active_policy(policy_wasm.as_deref())?;
                let sandbox = &active.current().sandbox;
                lines::process(reader, writer, |line| answers::cache_key(sandbox, line))
                    .map_err(io_err)
            }
        },
        Command::Body => {
            let handler = commands::Body::new()?;
            lines::process(reader, writer, |line| handler.answer(line)).map_err(io_err)
        }
        Command::Schema => commands::print_schema(writer).map_err(io_err),
        Command::Calibrate { usage } => calibrate::run(&usage, writer),
        Command::HashKey => lines::process(reader, writer, commands::hash_key).map_err(io_err),
        Command::UserToken { subject, ttl_secs } => {
            commands::user_token(reader, writer, &subject, ttl_secs)
        }
        Command::Emulator {
            listen,
            ttft_ms,
            per_token_ms,
            faults,
            control_port,
        } => run_emulator(
            EmulatorConfig {
                latency: Latency {
                    ttft_ms,
                    per_token_ms,
                },
                faults: faults.into_iter().collect(),
                control_port,
            },
            listen,
        ),
        Command::Serve { listen, config } => run_service(listen, config.as_deref()),
        Command::SessionsTable { table } => stores::create_sessions_table(&table),
        Command::Worker { config } => jobs::run_worker(config.as_deref()),
        Command::Jobs { command, config } => jobs::run(command, config.as_deref(), writer),
        Command::Enrich {
            catalog,
            task,
            out,
            language,
            concurrency,
            config,
        } => enrich::run(&enrich::EnrichArgs {
            catalog,
            task: match task {
                args::Task::Synopsis => mangaassist_core::jobs::JobTask::Synopsis,
                args::Task::Enrich => mangaassist_core::jobs::JobTask::Enrich,
            },
            out,
            language,
            concurrency: usize::from(concurrency),
            config,
        }),
    }
}

/// The policy component (embedded, or from `path`), self-tested.
fn active_policy(path: Option<&Path>) -> Result<Arc<ActivePolicy>, String> {
    let runtime = Runtime::new(Limits::default()).map_err(|e| e.to_string())?;
    let source = path.map_or(PolicySource::Embedded, |p| {
        PolicySource::File(p.to_path_buf())
    });
    ActivePolicy::start(runtime, source, 1)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Logs go to stderr (stdout carries the answers); `MANGAASSIST_LOG`
/// filters. The service logs JSON in staging and prod, for log pipelines.
fn init_logs(service: bool, quiet: bool) {
    let default = if quiet { "error" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MANGAASSIST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let json = service && std::env::var("MANGA_ENV").is_ok_and(|e| e == "prod" || e == "staging");
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(false)
        .with_target(false);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
}
