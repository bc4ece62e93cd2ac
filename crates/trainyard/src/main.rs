//! `trainyard`: the server (`serve`, `migrate`, `openapi`).

mod config;
mod serve;
mod telemetry;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
