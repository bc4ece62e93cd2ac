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
