//! Run containers: create with labels and limits, copy files in and out,
//! start, stop, inspect, list, and read their output streams.

use bollard::container::{
    Config, CreateContainerOptions, DownloadFromContainerOptions, ListContainersOptions, LogOutput,
    LogsOptions, NetworkingConfig, RemoveContainerOptions, StopContainerOptions,
    UploadToContainerOptions,
};
use bollard::models::{DeviceRequest, EndpointSettings, HostConfig};
use bollard::network::{ConnectNetworkOptions, CreateNetworkOptions};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use std::collections::HashMap;

use crate::{DockerError, Engine, LABEL_NODE, LABEL_OWNER, LABEL_RUN_ID};

/// What a run's container is made of.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// The process and its arguments.
    pub process: Vec<String>,
    /// `KEY=value` variables.
    pub env: Vec<String>,
    /// Labels (the run's id and workspace at least).
    pub labels: HashMap<String, String>,
    /// Working directory.
    pub workdir: String,
    /// CPU limit in cores.
    pub cpus: Option<f64>,
    /// Memory limit in MiB.
    pub memory_mb: Option<u64>,
    /// GPUs to pass through the NVIDIA runtime, by index; empty for none.
    pub gpu_device_ids: Vec<String>,
    /// Docker network mode (`host`, `bridge`, a network name).
    pub network_mode: Option<String>,
    /// Bind mounts, `host:container:ro`.
    pub binds: Vec<String>,
    /// `/etc/hosts` entries, `name:address` (the ranks of a distributed run).
    pub extra_hosts: Vec<String>,
    /// Names the container has on its network (`network_mode`), e.g.
    /// `rank-2` on a distributed run's own network.
    pub network_aliases: Vec<String>,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerState {
    /// Whether its process still runs.
    pub running: bool,
    /// Its exit code once it exited.
    pub exit_code: Option<i64>,
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A chunk of a container's output with the engine's timestamp.
#[derive(Debug, Clone)]
pub struct OutputChunk {
    /// Its stream.
    pub stream: OutputStream,
    /// When the engine received it.
    pub at: DateTime<Utc>,
    /// Its bytes (a line, or part of a long one).
    pub bytes: Bytes,
}

fn not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Engine {
    /// Creates (does not start) a container.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String, DockerError> {
        let device_requests = (!spec.gpu_device_ids.is_empty()).then(|| {
            vec![DeviceRequest {
                driver: Some("nvidia".to_string()),
                device_ids: Some(spec.gpu_device_ids.clone()),
                capabilities: Some(vec![vec!["gpu".to_string()]]),
                ..Default::default()
            }]
        });
        let host_config = HostConfig {
            nano_cpus: spec.cpus.map(|c| (c * 1e9) as i64),
            memory: spec.memory_mb.map(|m| (m * 1024 * 1024) as i64),
            device_requests,
            network_mode: spec.network_mode.clone(),
            binds: (!spec.binds.is_empty()).then(|| spec.binds.clone()),
            extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
            init: Some(true),
            ..Default::default()
        };
        let networking_config = match (&spec.network_mode, spec.network_aliases.is_empty()) {
            (Some(network), false) => Some(NetworkingConfig {
                endpoints_config: HashMap::from([(
                    network.clone(),
                    EndpointSettings {
                        aliases: Some(spec.network_aliases.clone()),
                        ..Default::default()
                    },
                )]),
            }),
            _ => None,
        };
        let config = Config {
            image: Some(spec.image.clone()),
            cmd: Some(spec.process.clone()),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone()),
            working_dir: Some(spec.workdir.clone()),
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: spec.name.clone(),
            platform: None,
        };
        Ok(self
            .docker
            .create_container(Some(options), config)
            .await?
            .id)
    }

    /// Creates a bridge network of a run's own, labelled with its id.
    pub async fn create_run_network(
        &self,
        name: &str,
        run_id: uuid::Uuid,
    ) -> Result<(), DockerError> {
        let options = CreateNetworkOptions {
            name: name.to_string(),
            driver: "bridge".to_string(),
            labels: HashMap::from([(LABEL_RUN_ID.to_string(), run_id.to_string())]),
            ..Default::default()
        };
        self.docker.create_network(options).await?;
        Ok(())
    }

    /// Connects a container to one more network.
    pub async fn connect_network(&self, network: &str, container: &str) -> Result<(), DockerError> {
        let options = ConnectNetworkOptions {
            container: container.to_string(),
            endpoint_config: EndpointSettings::default(),
        };
        Ok(self.docker.connect_network(network, options).await?)
    }

    /// Removes a network; one that is gone is fine.
    pub async fn remove_network(&self, name: &str) -> Result<(), DockerError> {
        match self.docker.remove_network(name).await {
            Err(err) if not_found(&err) => Ok(()),
            other => Ok(other?),
        }
    }

    /// Whether a network of that name exists.
    pub async fn has_network(&self, name: &str) -> Result<bool, DockerError> {
        match self.docker.inspect_network::<String>(name, None).await {
            Ok(_) => Ok(true),
            Err(err) if not_found(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Copies a tar (optionally gzip-compressed) into a directory of the container.
    pub async fn upload_archive(
        &self,
        id: &str,
        path: &str,
        archive: Bytes,
    ) -> Result<(), DockerError> {
        let options = UploadToContainerOptions {
            path: path.to_string(),
            no_overwrite_dir_non_dir: String::new(),
        };
        Ok(self
            .docker
            .upload_to_container(id, Some(options), archive)
            .await?)
    }

    /// Copies a tar file into a directory of the container, streamed from disk.
    pub async fn upload_archive_file(
        &self,
        id: &str,
        path: &str,
        archive: &std::path::Path,
    ) -> Result<(), DockerError> {
        let file = tokio::fs::File::open(archive)
            .await
            .map_err(|e| DockerError::Other(format!("reading {}: {e}", archive.display())))?;
        let stream =
            tokio_util::io::ReaderStream::new(file).filter_map(|chunk| async move { chunk.ok() });
        let options = UploadToContainerOptions {
            path: path.to_string(),
            no_overwrite_dir_non_dir: String::new(),
        };
        Ok(self
            .docker
            .upload_to_container_streaming(id, Some(options), stream)
            .await?)
    }

    /// Starts a created container.
    pub async fn start_container(&self, id: &str) -> Result<(), DockerError> {
        Ok(self.docker.start_container::<String>(id, None).await?)
    }

    /// Sends SIGTERM, then SIGKILL after `grace_seconds`; a container that has
    /// already stopped is fine.
    pub async fn stop_container(&self, id: &str, grace_seconds: i64) -> Result<(), DockerError> {
        match self
            .docker
            .stop_container(id, Some(StopContainerOptions { t: grace_seconds }))
            .await
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Removes a container (and its anonymous volumes); a missing one is fine.
    pub async fn remove_container(&self, id: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(id, Some(options)).await {
            Err(err) if not_found(&err) => Ok(()),
            other => Ok(other?),
        }
    }

    /// The container's state, or `None` if it does not exist.
    pub async fn container_state(&self, id: &str) -> Result<Option<ContainerState>, DockerError> {
        match self.docker.inspect_container(id, None).await {
            Ok(info) => {
                let state = info.state.unwrap_or_default();
                let running = state.running.unwrap_or(false) || state.restarting.unwrap_or(false);
                Ok(Some(ContainerState {
                    running,
                    exit_code: if running { None } else { state.exit_code },
                }))
            }
            Err(err) if not_found(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The device requests a container was created with, as (driver, device ids).
    pub async fn container_gpu_requests(
        &self,
        id: &str,
    ) -> Result<Vec<(String, Vec<String>)>, DockerError> {
        let info = self.docker.inspect_container(id, None).await?;
        Ok(info
            .host_config
            .and_then(|h| h.device_requests)
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                (
                    r.driver.unwrap_or_default(),
                    r.device_ids.unwrap_or_default(),
                )
            })
            .collect())
    }

    /// Every container of `owner` carrying a run label: (container id, run id, running).
    pub async fn run_containers(
        &self,
        owner: &str,
    ) -> Result<Vec<(String, String, bool)>, DockerError> {
        self.labeled_run_containers(vec![
            LABEL_RUN_ID.to_string(),
            format!("{LABEL_OWNER}={owner}"),
        ])
        .await
    }

    /// The containers of one run on this engine (the ranks of a distributed
    /// run): (container id, run id, running).
    pub async fn containers_of_run(
        &self,
        run_id: uuid::Uuid,
    ) -> Result<Vec<(String, String, bool)>, DockerError> {
        self.labeled_run_containers(vec![format!("{LABEL_RUN_ID}={run_id}")])
            .await
    }

    /// Every container placed on a compute target's node, whichever server
    /// replica started it: (container id, run id, running).
    pub async fn node_run_containers(&self) -> Result<Vec<(String, String, bool)>, DockerError> {
        self.labeled_run_containers(vec![LABEL_RUN_ID.to_string(), LABEL_NODE.to_string()])
            .await
    }

    /// Containers placed on nodes that were created more than `age` ago:
    /// (container id, run id).
    pub async fn node_run_containers_older_than(
        &self,
        age: std::time::Duration,
    ) -> Result<Vec<(String, String)>, DockerError> {
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![LABEL_RUN_ID.to_string(), LABEL_NODE.to_string()],
        );
        let options = ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        };
        let before = Utc::now().timestamp() - age.as_secs() as i64;
        Ok(self
            .docker
            .list_containers(Some(options))
            .await?
            .into_iter()
            .filter(|c| c.created.is_some_and(|t| t < before))
            .filter_map(|c| Some((c.id?, c.labels?.get(LABEL_RUN_ID)?.clone())))
            .collect())
    }

    async fn labeled_run_containers(
        &self,
        labels: Vec<String>,
    ) -> Result<Vec<(String, String, bool)>, DockerError> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), labels);
        let options = ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        };
        Ok(self
            .docker
            .list_containers(Some(options))
            .await?
            .into_iter()
            .filter_map(|c| {
                let run = c.labels.as_ref()?.get(LABEL_RUN_ID)?.clone();
                Some((c.id?, run, c.state.as_deref() == Some("running")))
            })
            .collect())
    }

    /// What the running containers of `owner` were given, read from the
    /// engine itself: (run id, node label, `NVIDIA_VISIBLE_DEVICES`). Lets a
    /// check of GPU sharing rely on the engine, not on the scheduler's tables.
    pub async fn running_gpu_holders(
        &self,
        owner: &str,
    ) -> Result<Vec<(String, Option<String>, Option<String>)>, DockerError> {
        let mut holders = Vec::new();
        for (id, run, running) in self.run_containers(owner).await? {
            if !running {
                continue;
            }
            let info = match self.docker.inspect_container(&id, None).await {
                Ok(info) => info,
                // Gone between the listing and the inspection.
                Err(err) if not_found(&err) => continue,
                Err(err) => return Err(err.into()),
            };
            if !info.state.and_then(|s| s.running).unwrap_or(false) {
                continue;
            }
            let config = info.config.unwrap_or_default();
            let node = config.labels.unwrap_or_default().remove(LABEL_NODE);
            let visible = config.env.unwrap_or_default().into_iter().find_map(|var| {
                var.strip_prefix("NVIDIA_VISIBLE_DEVICES=")
                    .map(str::to_string)
            });
            holders.push((run, node, visible));
        }
        Ok(holders)
    }

    /// A directory of the container as an (uncompressed) tar, or `None` when
    /// the directory does not exist.
    pub async fn download_dir(&self, id: &str, path: &str) -> Result<Option<Vec<u8>>, DockerError> {
        let options = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let mut stream = self.docker.download_from_container(id, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(err) if not_found(&err) => return Ok(None),
                Err(err) => return Err(err.into()),
            }
        }
        Ok(Some(archive))
    }

    /// The container's stdout and stderr from `since` (Unix seconds; 0 for
    /// the start), with timestamps; with `follow`, the stream goes on until
    /// the container exits.
    pub fn output(
        &self,
        id: &str,
        follow: bool,
        since: i64,
    ) -> impl Stream<Item = Result<OutputChunk, DockerError>> + '_ {
        let options = LogsOptions::<String> {
            follow,
            since,
            stdout: true,
            stderr: true,
            timestamps: true,
            ..Default::default()
        };
        self.docker
            .logs(id, Some(options))
            .filter_map(|item| async move {
                let (stream, message) = match item {
                    Ok(LogOutput::StdOut { message }) => (OutputStream::Stdout, message),
                    Ok(LogOutput::StdErr { message }) => (OutputStream::Stderr, message),
                    Ok(_) => return None,
                    Err(err) => return Some(Err(err.into())),
                };
                Some(Ok(split_timestamp(stream, message)))
            })
    }
}

/// The engine prefixes each entry with an RFC 3339 time and a space.
fn split_timestamp(stream: OutputStream, message: Bytes) -> OutputChunk {
    if let Some(space) = message.iter().position(|b| *b == b' ') {
        if let Some(at) = std::str::from_utf8(&message[..space])
            .ok()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        {
            return OutputChunk {
                stream,
                at: at.with_timezone(&Utc),
                bytes: message.slice(space + 1..),
            };
        }
    }
    OutputChunk {
        stream,
        at: Utc::now(),
        bytes: message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_timestamp_is_split_off() {
        let chunk = split_timestamp(
            OutputStream::Stdout,
            Bytes::from_static(b"2026-11-23T12:00:00.123456789Z hello world\n"),
        );
        assert_eq!(&chunk.bytes[..], b"hello world\n");
        assert_eq!(chunk.at.timestamp_subsec_nanos(), 123_456_789);
        let plain = split_timestamp(OutputStream::Stderr, Bytes::from_static(b"no stamp\n"));
        assert_eq!(&plain.bytes[..], b"no stamp\n");
    }
}
