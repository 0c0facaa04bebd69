//! `mangaassist`: JSON Lines tools over the core (SPEC 11).

mod cli;
mod commands;
mod lines;
mod sandbox;

use std::io::{self, BufReader, BufWriter};
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, Engine};

fn main() -> ExitCode {
    let cli = Cli::parse();
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
                Engine::Wasm => commands::Check::wasm(commands::load_sandbox(policy_wasm.as_deref())?),
            };
            lines::process(reader, writer, |line| handler.answer(line)).map_err(io_err)
        }
        Command::CacheKey {
            engine,
            policy_wasm,
        } => match engine {
            Engine::Native => lines::process(reader, writer, commands::cache_key).map_err(io_err),
            Engine::Wasm => {
                let sandbox = commands::load_sandbox(policy_wasm.as_deref())?;
                lines::process(reader, writer, |line| commands::cache_key_wasm(&sandbox, line))
                    .map_err(io_err)
            }
        },
        Command::Body => {
            let handler = commands::Body::new()?;
            lines::process(reader, writer, |line| handler.answer(line)).map_err(io_err)
        }
        Command::Schema => commands::print_schema(writer).map_err(io_err),
        Command::Serve { .. } | Command::Emulator { .. } => Err(
            "this subcommand is not built yet: the service arrives with issue 6, the emulator with issue 5"
                .to_string(),
        ),
    }
}
