//! Configuration: command-line flags over environment variables over an
//! optional TOML file over built-in defaults.

use anyhow::Context;
use clap::Args;
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::telemetry::LogFormat;

/// Flags of `serve` and `migrate`; each can also come from its environment variable.
#[derive(Debug, Args, Serialize, Default)]
pub struct ServerArgs {
    /// A TOML file with any of the settings below (by their snake_case names).
    #[arg(long, env = "TRAINYARD_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "TRAINYARD_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// PostgreSQL URL; without it a private cluster is run in the data directory.
    #[arg(long, env = "DATABASE_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Where the server keeps its files (and its private PostgreSQL).
    #[arg(long, env = "TRAINYARD_DATA_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Directory holding initdb and pg_ctl, when they are not found by themselves.
    #[arg(long, env = "TRAINYARD_POSTGRES_BIN_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_bin_dir: Option<PathBuf>,
    /// Most database connections the server opens.
    #[arg(long, env = "TRAINYARD_DB_MAX_CONNECTIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_max_connections: Option<u32>,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "TRAINYARD_MAX_REQUEST_BODY_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_body_bytes: Option<usize>,
    /// A server administrator token to accept (instead of generating one at first start).
    #[arg(long, env = "TRAINYARD_ADMIN_TOKEN", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// `human` or `json`.
    #[arg(long, env = "TRAINYARD_LOG_FORMAT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// Largest source snapshot accepted, uncompressed, in bytes.
    #[arg(long, env = "TRAINYARD_MAX_SNAPSHOT_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_snapshot_bytes: Option<u64>,
    /// PEM files of CA certificates that image builds must trust (apt, pip); repeat for several.
    #[arg(
        long = "extra-ca-certificate",
        env = "TRAINYARD_EXTRA_CA_CERTIFICATES",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_ca_certificates: Option<Vec<PathBuf>>,
    /// Docker network mode of run containers.
    #[arg(long, env = "TRAINYARD_CONTAINER_NETWORK")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_network: Option<String>,
    /// The API's URL as run containers see it.
    #[arg(long, env = "TRAINYARD_CONTAINER_API_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_api_url: Option<String>,
    /// Seconds between SIGTERM and SIGKILL when a run is canceled.
    #[arg(long, env = "TRAINYARD_STOP_GRACE_SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_seconds: Option<i64>,
    /// Keep run containers after their run ended.
    #[arg(long, env = "TRAINYARD_KEEP_CONTAINERS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_containers: Option<bool>,
    /// Most runs executed at once on this node.
    #[arg(long, env = "TRAINYARD_MAX_CONCURRENT_RUNS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_runs: Option<usize>,
    /// Run the scheduler and Docker executor (off for API-only replicas).
    #[arg(long, env = "TRAINYARD_EXECUTOR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor: Option<bool>,
    /// This replica's name; it owns the runs it executes.
    #[arg(long, env = "TRAINYARD_REPLICA_NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_name: Option<String>,
}

/// The settings in force.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// PostgreSQL URL; `None` runs the embedded cluster.
    pub database_url: Option<String>,
    /// Where the server keeps its files.
    pub data_dir: PathBuf,
    /// Directory holding initdb and pg_ctl.
    pub postgres_bin_dir: Option<PathBuf>,
    /// Most database connections.
    pub db_max_connections: u32,
    /// Largest request body accepted, in bytes.
    pub max_request_body_bytes: usize,
    /// Server administrator token to accept.
    pub admin_token: Option<String>,
    /// Log line format.
    pub log_format: LogFormat,
    /// Largest source snapshot accepted, uncompressed, in bytes.
    pub max_snapshot_bytes: u64,
    /// PEM files that image builds must trust.
    pub extra_ca_certificates: Vec<PathBuf>,
    /// Docker network mode of run containers.
    pub container_network: String,
    /// The API's URL as run containers see it; derived from `listen` when absent.
    pub container_api_url: Option<String>,
    /// Seconds between SIGTERM and SIGKILL when a run is canceled.
    pub stop_grace_seconds: i64,
    /// Keep run containers after their run ended.
    pub keep_containers: bool,
    /// Most runs executed at once on this node.
    pub max_concurrent_runs: usize,
    /// Run the scheduler and Docker executor.
    pub executor: bool,
    /// This replica's name.
    pub replica_name: String,
}

impl std::fmt::Debug for Config {
    // Written by hand so that secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("data_dir", &self.data_dir)
            .field("postgres_bin_dir", &self.postgres_bin_dir)
            .field("db_max_connections", &self.db_max_connections)
            .field("max_request_body_bytes", &self.max_request_body_bytes)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("log_format", &self.log_format)
            .field("max_snapshot_bytes", &self.max_snapshot_bytes)
            .field("extra_ca_certificates", &self.extra_ca_certificates)
            .field("container_network", &self.container_network)
            .field("container_api_url", &self.container_api_url)
            .field("stop_grace_seconds", &self.stop_grace_seconds)
            .field("keep_containers", &self.keep_containers)
            .field("max_concurrent_runs", &self.max_concurrent_runs)
            .field("executor", &self.executor)
            .field("replica_name", &self.replica_name)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8420)),
            database_url: None,
            data_dir: default_data_dir(),
            postgres_bin_dir: None,
            db_max_connections: 20,
            max_request_body_bytes: 1024 * 1024,
            admin_token: None,
            log_format: LogFormat::Human,
            max_snapshot_bytes: 300 * 1024 * 1024,
            extra_ca_certificates: Vec::new(),
            container_network: "host".to_string(),
            container_api_url: None,
            stop_grace_seconds: 10,
            keep_containers: false,
            max_concurrent_runs: 4,
            executor: true,
            replica_name: default_replica_name(),
        }
    }
}

impl Config {
    /// Merges defaults, the TOML file, and the flags / environment.
    pub fn load(args: &ServerArgs) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &args.config {
            anyhow::ensure!(
                path.exists(),
                "config file {} does not exist",
                path.display()
            );
            figment = figment.merge(Toml::file(path));
        }
        figment
            .merge(Serialized::defaults(args))
            .extract()
            .context("reading the configuration")
    }
}

impl Config {
    /// The API's URL as run containers see it: the configured one, or the
    /// listen address (loopback when listening on every address).
    pub fn container_api_url(&self) -> String {
        if let Some(url) = &self.container_api_url {
            return url.clone();
        }
        let mut address = self.listen;
        if address.ip().is_unspecified() {
            address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{address}")
    }
}

fn default_replica_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "trainyard".to_string())
}

/// `/var/lib/trainyard` for root (a path the postgres account can reach),
/// `$XDG_DATA_HOME/trainyard` or `~/.local/share/trainyard` otherwise.
fn default_data_dir() -> PathBuf {
    if nix::unistd::Uid::effective().is_root() {
        return PathBuf::from("/var/lib/trainyard");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("trainyard");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/trainyard"),
        None => PathBuf::from("trainyard-data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "listen = \"127.0.0.1:9000\"\ndb_max_connections = 7").unwrap();
        let args = ServerArgs {
            config: Some(file.path().to_path_buf()),
            db_max_connections: Some(3),
            ..ServerArgs::default()
        };
        let config = Config::load(&args).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.db_max_connections, 3);
        assert_eq!(config.max_request_body_bytes, 1024 * 1024);
    }

    #[test]
    fn unknown_settings_in_the_file_are_refused() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "lisen = \"127.0.0.1:9000\"").unwrap();
        let args = ServerArgs {
            config: Some(file.path().to_path_buf()),
            ..ServerArgs::default()
        };
        let err = format!("{:#}", Config::load(&args).unwrap_err());
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn the_debug_form_hides_secrets() {
        let config = Config {
            admin_token: Some("tyd_secret".into()),
            database_url: Some("postgres://u:pw@h/db".into()),
            ..Config::default()
        };
        let text = format!("{config:?}");
        assert!(
            !text.contains("tyd_secret") && !text.contains("pw"),
            "{text}"
        );
    }
}
