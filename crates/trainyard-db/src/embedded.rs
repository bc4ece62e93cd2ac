//! A private PostgreSQL cluster run from the system's own binaries inside the
//! server's data directory, for when no `DATABASE_URL` is given.
//!
//! The cluster listens only on a unix socket in its own directory. It is
//! created on first start, reused on later starts (adopted if a previous server
//! died and left it running), and stopped by [`EmbeddedPostgres::stop`]. A lock
//! file keeps two servers off one data directory. PostgreSQL refuses to run as
//! root, so when started as root the cluster runs as the `postgres` account.

use nix::unistd::{Uid, User};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use tokio::process::Command;

/// The account that owns the cluster when the server runs as root.
const UNPRIVILEGED_ACCOUNT: &str = "postgres";
/// Unix sockets have a short path limit (108 bytes on Linux).
const MAX_SOCKET_PATH: usize = 100;
/// Port number in the socket's file name; nothing listens on TCP.
const PORT: u16 = 5432;
/// Database and role that the server uses.
const DATABASE: &str = "trainyard";

const INSTALL_HINT: &str = "install them with `apt-get install postgresql` (Debian, Ubuntu), \
     or point the server at an existing PostgreSQL with DATABASE_URL";

/// Why the embedded cluster could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// initdb / pg_ctl are not installed.
    #[error("PostgreSQL server binaries (initdb, pg_ctl) were not found: {INSTALL_HINT}")]
    BinariesMissing,
    /// Another server holds the data directory.
    #[error("data directory {dir} is in use by another trainyard server{holder}; stop it or choose another --data-dir")]
    InUse {
        /// The data directory.
        dir: String,
        /// " (pid N)" when the lock file names it.
        holder: String,
    },
    /// Running as root with no unprivileged account to run PostgreSQL as.
    #[error("PostgreSQL refuses to run as root and there is no '{UNPRIVILEGED_ACCOUNT}' account to run it as: {INSTALL_HINT}")]
    NoAccount,
    /// The unprivileged account cannot reach the data directory.
    #[error("the '{UNPRIVILEGED_ACCOUNT}' account cannot reach {dir}: {blocker} is not searchable by other users; choose a --data-dir under a world-searchable path such as /var/lib/trainyard")]
    Unreachable {
        /// The data directory.
        dir: String,
        /// The ancestor that blocks it.
        blocker: String,
    },
    /// The socket path would be too long for the system.
    #[error("data directory path {0} is too long for a unix socket; choose a shorter --data-dir")]
    PathTooLong(String),
    /// A PostgreSQL command failed.
    #[error("`{command}` failed: {output}")]
    Command {
        /// The command that failed.
        command: String,
        /// What it printed.
        output: String,
    },
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let context = context.into();
    move |source| EmbeddedError::Io { context, source }
}

/// A running private PostgreSQL cluster.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    cluster_dir: PathBuf,
    owner: Option<User>,
    // Held for as long as the server uses the data directory.
    _lock: File,
}

impl EmbeddedPostgres {
    /// Starts (creating on first use, adopting if already running) the cluster
    /// under `data_dir/postgres`. `bin_dir` overrides where initdb and pg_ctl
    /// are looked for.
    pub async fn start(
        data_dir: &Path,
        bin_dir: Option<&Path>,
    ) -> Result<EmbeddedPostgres, EmbeddedError> {
        let bin_dir = match bin_dir {
            Some(dir) => dir.to_path_buf(),
            None => find_bin_dir().ok_or(EmbeddedError::BinariesMissing)?,
        };
        if !bin_dir.join("initdb").exists() || !bin_dir.join("pg_ctl").exists() {
            return Err(EmbeddedError::BinariesMissing);
        }
        std::fs::create_dir_all(data_dir)
            .map_err(io(format!("creating {}", data_dir.display())))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(io(format!("resolving {}", data_dir.display())))?;
        let lock = lock_data_dir(&data_dir)?;
        let cluster_dir = data_dir.join("postgres");
        if cluster_dir.join(".s.PGSQL.5432").as_os_str().len() > MAX_SOCKET_PATH {
            return Err(EmbeddedError::PathTooLong(data_dir.display().to_string()));
        }
        let owner = if Uid::effective().is_root() {
            let user = User::from_name(UNPRIVILEGED_ACCOUNT)
                .ok()
                .flatten()
                .ok_or(EmbeddedError::NoAccount)?;
            check_reachable(&data_dir)?;
            Some(user)
        } else {
            None
        };
        let cluster = EmbeddedPostgres {
            bin_dir,
            cluster_dir,
            owner,
            _lock: lock,
        };
        if !cluster.cluster_dir.join("PG_VERSION").exists() {
            cluster.init().await?;
        } else if cluster.is_running().await {
            tracing::info!(dir = %cluster.cluster_dir.display(), "adopting the embedded PostgreSQL left running");
        } else {
            cluster.start_server().await?;
        }
        Ok(cluster)
    }

    /// A connection URL for the server's database, over the unix socket.
    pub fn url(&self) -> String {
        format!(
            "postgres://{DATABASE}@localhost/{DATABASE}?host={}&port={PORT}",
            self.cluster_dir.display()
        )
    }

    /// A connection URL for another database of the cluster.
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://{DATABASE}@localhost/{database}?host={}&port={PORT}",
            self.cluster_dir.display()
        )
    }

    /// Stops the cluster, waiting for it to shut down cleanly.
    pub async fn stop(self) -> Result<(), EmbeddedError> {
        let dir = self.cluster_dir.display().to_string();
        self.pg_ctl(&["stop", "-D", &dir, "-m", "fast", "-w", "-t", "60"])
            .await
            .map(|_| ())
    }

    async fn init(&self) -> Result<(), EmbeddedError> {
        tracing::info!(dir = %self.cluster_dir.display(), "creating the embedded PostgreSQL cluster");
        std::fs::create_dir_all(&self.cluster_dir)
            .map_err(io(format!("creating {}", self.cluster_dir.display())))?;
        std::fs::set_permissions(&self.cluster_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("restricting the cluster directory"))?;
        if let Some(owner) = &self.owner {
            chown(
                &self.cluster_dir,
                Some(owner.uid.as_raw()),
                Some(owner.gid.as_raw()),
            )
            .map_err(io("handing the cluster directory to the postgres account"))?;
        }
        let dir = self.cluster_dir.display().to_string();
        // Only the server's own account can reach the socket directory, so
        // trust authentication admits nobody else.
        let output = self
            .command("initdb")
            .args([
                "-D",
                &dir,
                "-U",
                DATABASE,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ])
            .output()
            .await
            .map_err(io("running initdb"))?;
        check("initdb", output)?;
        self.start_server().await?;
        let output = self
            .command("createdb")
            .args([
                "-h",
                &dir,
                "-p",
                &PORT.to_string(),
                "-U",
                DATABASE,
                DATABASE,
            ])
            .output()
            .await
            .map_err(io("running createdb"))?;
        check("createdb", output).map(|_| ())
    }

    async fn start_server(&self) -> Result<(), EmbeddedError> {
        let dir = self.cluster_dir.display().to_string();
        let log = self.cluster_dir.join("server.log").display().to_string();
        let options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{dir}' -p {PORT} -c max_connections=200"
        );
        self.pg_ctl(&[
            "start", "-D", &dir, "-l", &log, "-w", "-t", "60", "-o", &options,
        ])
        .await
        .map(|_| ())
    }

    async fn is_running(&self) -> bool {
        let dir = self.cluster_dir.display().to_string();
        self.pg_ctl(&["status", "-D", &dir]).await.is_ok()
    }

    async fn pg_ctl(&self, args: &[&str]) -> Result<Output, EmbeddedError> {
        let output = self
            .command("pg_ctl")
            .args(args)
            .output()
            .await
            .map_err(io("running pg_ctl"))?;
        check(&format!("pg_ctl {}", args[0]), output)
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command.current_dir(&self.cluster_dir).env("LC_ALL", "C");
        if let Some(owner) = &self.owner {
            command
                .uid(owner.uid.as_raw())
                .gid(owner.gid.as_raw())
                .env("HOME", &self.cluster_dir)
                .env("USER", UNPRIVILEGED_ACCOUNT);
        }
        command
    }
}

fn check(command: &str, output: Output) -> Result<Output, EmbeddedError> {
    if output.status.success() {
        return Ok(output);
    }
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if text.is_empty() {
        text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    }
    Err(EmbeddedError::Command {
        command: command.to_string(),
        output: text,
    })
}

/// Looks for initdb and pg_ctl: Debian keeps them per major version under
/// /usr/lib/postgresql; elsewhere they are on the PATH.
fn find_bin_dir() -> Option<PathBuf> {
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versioned.sort();
    if let Some((_, bin)) = versioned.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|dir| dir.join("pg_ctl").exists() && dir.join("initdb").exists())
    })
}

/// Takes the data directory's lock, or says who holds it.
fn lock_data_dir(data_dir: &Path) -> Result<File, EmbeddedError> {
    let path = data_dir.join("trainyard.lock");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io(format!("opening {}", path.display())))?;
    if file.try_lock().is_err() {
        let holder = std::fs::read_to_string(&path)
            .ok()
            .map(|pid| pid.trim().to_string())
            .filter(|pid| !pid.is_empty())
            .map(|pid| format!(" (pid {pid})"))
            .unwrap_or_default();
        return Err(EmbeddedError::InUse {
            dir: data_dir.display().to_string(),
            holder,
        });
    }
    file.set_len(0).map_err(io("writing the lock file"))?;
    write!(file, "{}", std::process::id()).map_err(io("writing the lock file"))?;
    Ok(file)
}

/// Makes sure the unprivileged account can reach `data_dir`: every ancestor
/// must be searchable by others. The data directory itself is made so.
fn check_reachable(data_dir: &Path) -> Result<(), EmbeddedError> {
    let mode = |path: &Path| std::fs::metadata(path).map(|m| m.permissions().mode());
    for ancestor in data_dir.ancestors().skip(1) {
        let searchable = mode(ancestor).map(|m| m & 0o001 != 0).unwrap_or(false);
        if !searchable {
            return Err(EmbeddedError::Unreachable {
                dir: data_dir.display().to_string(),
                blocker: ancestor.display().to_string(),
            });
        }
    }
    let current = mode(data_dir).map_err(io("reading the data directory"))?;
    if current & 0o001 == 0 {
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(current | 0o001))
            .map_err(io("making the data directory searchable"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_data_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _held = lock_data_dir(dir.path()).unwrap();
        let err = lock_data_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by another trainyard server"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
    }

    #[tokio::test]
    async fn missing_binaries_give_the_install_hint() {
        let dir = tempfile::tempdir().unwrap();
        let empty = tempfile::tempdir().unwrap();
        let err = EmbeddedPostgres::start(dir.path(), Some(empty.path()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("apt-get install postgresql"), "{err}");
    }
}
