//! MPI over SSH: every rank's container serves SSH on its port with a key
//! pair made for this run alone; rank 0 waits until each answers, then
//! launches the run's processes on all of them with `mpirun` and a hostfile
//! of the ranks. Each process writes to its own container's output (not
//! through `mpirun`, which interleaves partial lines of different ranks), so
//! rank N's lines are `stdout/rank-N` like in any distributed run. The key
//! reaches the containers as files, never as variables, and is not kept
//! anywhere else.

use base64::Engine as _;
use rand::RngCore;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use trainyard_core::distribution::rank_host;
use trainyard_core::RankPlacement;

use super::Stop;

/// Where the run's SSH and MPI files land in each container.
pub(crate) const MPI_DIR: &str = "/etc/trainyard/mpi";

/// What every rank runs: serve SSH, and on rank 0 launch `mpirun`.
const START_SCRIPT: &str = r#"#!/bin/sh
# Every rank serves SSH on its port; rank 0 then launches the processes.
set -e
dir=/etc/trainyard/mpi
mkdir -p "$HOME/.ssh" /run/sshd
chmod 700 "$HOME/.ssh"
cp "$dir/ssh_config" "$HOME/.ssh/config"
cp "$dir/authorized_keys" "$HOME/.ssh/authorized_keys"
chmod 600 "$HOME/.ssh/config" "$HOME/.ssh/authorized_keys"
ssh-keygen -A >/dev/null
sshd=$(command -v sshd || echo /usr/sbin/sshd)
if [ "$TRAINYARD_RANK" != 0 ]; then
    exec "$sshd" -D -e -p "$TRAINYARD_PORT" -o LogLevel=ERROR -o PasswordAuthentication=no
fi
"$sshd" -e -p "$TRAINYARD_PORT" -o LogLevel=ERROR -o PasswordAuthentication=no
for host in $(cut -d' ' -f1 "$dir/hostfile"); do
    tries=0
    until ssh -o BatchMode=yes -o ConnectTimeout=2 "$host" true 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -ge 240 ]; then
            echo "trainyard: $host does not answer over SSH" >&2
            exit 1
        fi
        sleep 0.5
    done
done
exec mpirun --allow-run-as-root --hostfile "$dir/hostfile" -np "$TRAINYARD_WORLD_SIZE" \
    -wdir "$PWD" sh "$dir/rank.sh" "$@"
"#;

/// What `mpirun` starts on each rank (over SSH, which passes no variables):
/// the process with its own container's variables (its rank's token, rank
/// and GPUs), its output going to its own container's (PID 1's) rather than
/// back through `mpirun`.
const RANK_SCRIPT: &str = r#"#!/bin/sh
. /etc/trainyard/mpi/rank.env
exec "$@" >/proc/1/fd/1 2>/proc/1/fd/2
"#;

/// An SSH key pair in OpenSSH's formats.
pub(crate) struct KeyPair {
    /// `-----BEGIN OPENSSH PRIVATE KEY-----` …
    pub private: String,
    /// `ssh-ed25519 AAAA… comment`
    pub public: String,
}

fn put_string(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

/// A new Ed25519 key pair, unencrypted (it lives only in the run's
/// containers, for the run's life).
pub(crate) fn generate_key_pair(comment: &str) -> Result<KeyPair, Stop> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|_| Stop::Failed("generating the run's SSH key failed".into()))?;
    let public_key = pair.public_key().as_ref();
    let mut public_blob = Vec::new();
    put_string(&mut public_blob, b"ssh-ed25519");
    put_string(&mut public_blob, public_key);

    let check = rand::rngs::OsRng.next_u32().to_be_bytes();
    let mut private = Vec::new();
    private.extend_from_slice(&check);
    private.extend_from_slice(&check);
    put_string(&mut private, b"ssh-ed25519");
    put_string(&mut private, public_key);
    let mut secret = seed.to_vec();
    secret.extend_from_slice(public_key);
    put_string(&mut private, &secret);
    put_string(&mut private, comment.as_bytes());
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }

    let mut key = b"openssh-key-v1\0".to_vec();
    put_string(&mut key, b"none");
    put_string(&mut key, b"none");
    put_string(&mut key, b"");
    key.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut key, &public_blob);
    put_string(&mut key, &private);

    let encoded = base64::engine::general_purpose::STANDARD.encode(&key);
    let mut pem = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for chunk in encoded.as_bytes().chunks(70) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    let public = format!(
        "ssh-ed25519 {} {comment}\n",
        base64::engine::general_purpose::STANDARD.encode(&public_blob)
    );
    Ok(KeyPair {
        private: pem,
        public,
    })
}

/// The files every rank gets under [`MPI_DIR`]: the key pair, the SSH
/// client settings naming each rank's address and port, the hostfile and
/// the start script. A tar to unpack at `/`.
pub(crate) fn rank_files(keys: &KeyPair, ranks: &[RankPlacement]) -> Result<Vec<u8>, Stop> {
    let mut ssh_config = String::new();
    let mut hostfile = String::new();
    for (i, rank) in ranks.iter().enumerate() {
        let host = rank_host(i as u32);
        ssh_config.push_str(&format!(
            "Host {host}\n  HostName {}\n  Port {}\n",
            rank.address, rank.port
        ));
        hostfile.push_str(&format!("{host} slots=1\n"));
    }
    ssh_config.push_str(&format!(
        "Host *\n  IdentityFile {MPI_DIR}/id_ed25519\n  StrictHostKeyChecking no\n  \
         UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
    ));
    let files: [(&str, &[u8], u32); 6] = [
        ("id_ed25519", keys.private.as_bytes(), 0o600),
        ("authorized_keys", keys.public.as_bytes(), 0o600),
        ("ssh_config", ssh_config.as_bytes(), 0o644),
        ("hostfile", hostfile.as_bytes(), 0o644),
        ("start.sh", START_SCRIPT.as_bytes(), 0o755),
        ("rank.sh", RANK_SCRIPT.as_bytes(), 0o755),
    ];
    let fail = |e: std::io::Error| Stop::Failed(format!("preparing the MPI files: {e}"));
    let mut builder = tar::Builder::new(Vec::new());
    let root = MPI_DIR.trim_start_matches('/');
    for (name, bytes, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("{root}/{name}"), bytes)
            .map_err(fail)?;
    }
    builder.into_inner().map_err(fail)
}

/// The process of an MPI rank: the start script, then the run's own process
/// (which rank 0 hands to `mpirun`).
pub(crate) fn rank_process(process: Vec<String>) -> Vec<String> {
    let mut wrapped = vec!["sh".to_string(), format!("{MPI_DIR}/start.sh")];
    wrapped.extend(process);
    wrapped
}

/// A rank's own variables as a shell file for `rank.sh` to read: a tar
/// holding `rank.env` under [`MPI_DIR`], to unpack at `/`.
pub(crate) fn rank_env_file(env: &[String]) -> Result<Vec<u8>, Stop> {
    let mut text = String::new();
    for var in env {
        if let Some((name, value)) = var.split_once('=') {
            // Single quotes keep everything literal but a quote itself.
            let quoted = value.replace('\'', "'\\''");
            text.push_str(&format!("export {name}='{quoted}'\n"));
        }
    }
    let fail = |e: std::io::Error| Stop::Failed(format!("preparing the MPI files: {e}"));
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    let path = format!("{}/rank.env", MPI_DIR.trim_start_matches('/'));
    builder
        .append_data(&mut header, path, text.as_bytes())
        .map_err(fail)?;
    builder.into_inner().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_in_openssh_formats_and_never_repeat() {
        let a = generate_key_pair("run").unwrap();
        let b = generate_key_pair("run").unwrap();
        assert!(a
            .private
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert!(a.private.ends_with("-----END OPENSSH PRIVATE KEY-----\n"));
        assert!(a.public.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"));
        assert_ne!(a.public, b.public);
        assert_ne!(a.private, b.private);
    }

    #[test]
    fn rank_variables_are_quoted_for_the_shell() {
        let env = ["A=it's".to_string(), "B=$HOME `x`".to_string()];
        let tar = rank_env_file(&env).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(
            entry.path().unwrap().to_str(),
            Some("etc/trainyard/mpi/rank.env")
        );
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        assert_eq!(text, "export A='it'\\''s'\nexport B='$HOME `x`'\n");
    }
}
