//! `trainyard env …`: register and show environments (named, versioned image specs).

use anyhow::Context;
use clap::{ArgGroup, Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::client::ConnectionArgs;
use super::{env_ref, key_value, out, EnvRef};

/// Commands on environments.
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Registers a new version of an environment (version 1 for a new name);
    /// prints NAME:VERSION.
    ///
    /// The image is built on the server when a run first needs it.
    ///
    /// Example: trainyard env register torch --pip torch==2.3 numpy -e OMP_NUM_THREADS=4
    Register(RegisterArgs),
    /// Prints an environment version as JSON, with its image and build state.
    Show(ShowArgs),
}

/// What the environment's image contains.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("contents")
        .required(true)
        .multiple(true)
        .args(["base_image", "pip", "apt", "requirements", "conda", "dockerfile"])
))]
pub struct RegisterArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The environment's name: letters, digits, `_`, `-`, `.`.
    name: String,
    /// The image to start from [default: trainyard/python:3.11-bookworm].
    #[arg(long, value_name = "IMAGE")]
    base_image: Option<String>,
    /// Python packages to pip install, in requirement syntax (`numpy==1.26`).
    #[arg(long, value_name = "PKG", num_args = 1..)]
    pip: Vec<String>,
    /// Debian packages to apt install.
    #[arg(long, value_name = "PKG", num_args = 1..)]
    apt: Vec<String>,
    /// A pip requirements file, installed after --pip.
    #[arg(long, value_name = "FILE")]
    requirements: Option<PathBuf>,
    /// A conda environment file (the base image must have conda).
    #[arg(long, value_name = "FILE")]
    conda: Option<PathBuf>,
    /// A whole Dockerfile, instead of any of the above.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["base_image", "pip", "apt", "requirements", "conda", "env_vars"]
    )]
    dockerfile: Option<PathBuf>,
    /// A variable set in the image; repeat for several.
    #[arg(short = 'e', long = "env-var", value_name = "KEY=VALUE", value_parser = key_value)]
    env_vars: Vec<(String, String)>,
    /// Free text describing the environment.
    #[arg(long)]
    description: Option<String>,
}

/// Which environment to show.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// NAME, or NAME:VERSION (the latest version by default).
    #[arg(value_name = "NAME[:VERSION]", value_parser = env_ref)]
    environment: EnvRef,
}

/// Runs a `trainyard env …` command; returns the exit code.
pub async fn execute(command: EnvCommand) -> anyhow::Result<i32> {
    match command {
        EnvCommand::Register(args) => register(args).await,
        EnvCommand::Show(args) => show(args).await,
    }
}

fn read_text(flag: &str, path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{flag} {}", path.display()))
}

async fn register(args: RegisterArgs) -> anyhow::Result<i32> {
    // Files are read before connecting, so a wrong path fails fast.
    let mut spec = Map::new();
    if let Some(image) = &args.base_image {
        spec.insert("base_image".into(), json!(image));
    }
    if !args.pip.is_empty() {
        spec.insert("pip_packages".into(), json!(args.pip));
    }
    if !args.apt.is_empty() {
        spec.insert("apt_packages".into(), json!(args.apt));
    }
    if let Some(path) = &args.requirements {
        spec.insert(
            "pip_requirements".into(),
            json!(read_text("--requirements", path)?),
        );
    }
    if let Some(path) = &args.conda {
        spec.insert(
            "conda_specification".into(),
            json!(read_text("--conda", path)?),
        );
    }
    if let Some(path) = &args.dockerfile {
        spec.insert("dockerfile".into(), json!(read_text("--dockerfile", path)?));
    }
    if !args.env_vars.is_empty() {
        let variables: BTreeMap<_, _> = args.env_vars.iter().cloned().collect();
        spec.insert("environment_variables".into(), json!(variables));
    }
    let mut body = json!({"name": args.name, "spec": spec});
    if let Some(description) = &args.description {
        body["description"] = json!(description);
    }
    let client = args.connection.connect()?;
    let registered: Value = client
        .send_json(Method::POST, &["environments"], &body)
        .await?;
    let name = registered["name"].as_str().unwrap_or(&args.name);
    let version = registered["version"].as_i64().unwrap_or_default();
    eprintln!(
        "registered {name} version {version} (image {}; built when a run first needs it)",
        registered["image"].as_str().unwrap_or("?")
    );
    out(&format!("{name}:{version}"))?;
    Ok(0)
}

async fn show(args: ShowArgs) -> anyhow::Result<i32> {
    let client = args.connection.connect()?;
    let query: Vec<(&str, String)> = args
        .environment
        .version
        .map(|v| ("version", v.to_string()))
        .into_iter()
        .collect();
    let environment: Value = client
        .get(&["environments", &args.environment.name], &query)
        .await?;
    out(&serde_json::to_string_pretty(&environment)?)?;
    Ok(0)
}
