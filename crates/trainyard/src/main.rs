//! `trainyard`: the server (`serve`, `migrate`, `openapi`) and its
//! command-line client (`run`, `env`, `images`).

mod cli;
mod config;
mod serve;
mod telemetry;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

// The server allocates many short-lived buffers per request (bodies, rows,
// JSON); mimalloc serves them with less CPU than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Self-hosted training orchestration.
#[derive(Debug, Parser)]
#[command(name = "trainyard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the server.
    Serve(config::ServerArgs),
    /// Applies the database migrations and exits.
    Migrate(config::ServerArgs),
    /// Writes the OpenAPI document.
    Openapi {
        /// Where to write it; standard output if absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Submits, follows, inspects and cancels runs.
    #[command(subcommand)]
    Run(cli::run::RunCommand),
    /// Manages compute targets, their nodes (cordon, drain) and shows their queues.
    #[command(subcommand)]
    Compute(cli::compute::ComputeCommand),
    /// Lists datastores, uploads folders to them and downloads their files.
    #[command(subcommand)]
    Datastore(cli::datastore::DatastoreCommand),
    /// Registers and shows environments.
    #[command(subcommand)]
    Env(cli::env::EnvCommand),
    /// Builds the default base images with the local Docker engine.
    #[command(subcommand)]
    Images(cli::images::ImagesCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi { out } => write_openapi(out),
        Command::Serve(args) => {
            let config = config::Config::load(&args)?;
            telemetry::init(config.log_format);
            runtime()?.block_on(serve::serve(config))
        }
        Command::Migrate(args) => {
            let config = config::Config::load(&args)?;
            telemetry::init(config.log_format);
            runtime()?.block_on(serve::migrate(config))
        }
        Command::Run(command) => cli::exit(runtime()?.block_on(cli::run::execute(command))),
        Command::Compute(command) => cli::exit(runtime()?.block_on(cli::compute::execute(command))),
        Command::Datastore(command) => {
            cli::exit(runtime()?.block_on(cli::datastore::execute(command)))
        }
        Command::Env(command) => cli::exit(runtime()?.block_on(cli::env::execute(command))),
        Command::Images(command) => cli::exit(cli::images::execute(command)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn write_openapi(out: Option<PathBuf>) -> anyhow::Result<()> {
    let mut text = trainyard_api::openapi_document()
        .to_pretty_json()
        .context("serializing the OpenAPI document")?;
    text.push('\n');
    match out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}
