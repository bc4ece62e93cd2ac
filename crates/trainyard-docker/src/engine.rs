//! A connection to one Docker engine.

use bollard::Docker;

/// What can go wrong talking to Docker.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine refused or failed a call.
    #[error("docker: {0}")]
    Api(#[from] bollard::errors::Error),
    /// An image build failed; the text is the build's last lines.
    #[error("image build failed:\n{0}")]
    Build(String),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

/// Longest a single Docker API request may take.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// A Docker engine: the local socket, or one named by `DOCKER_HOST`.
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) docker: Docker,
}

impl Engine {
    /// Connects to the engine named by `DOCKER_HOST`, or the local socket.
    pub fn connect_local() -> Result<Engine, DockerError> {
        // bollard's default (120 s) bounds a whole request, upload included:
        // copying a large dataset into a container takes longer than that.
        Ok(Engine {
            docker: Docker::connect_with_local_defaults()?.with_timeout(REQUEST_TIMEOUT),
        })
    }

    /// Whether the engine runs on this machine, so it sees this machine's
    /// folders (for bind mounts).
    pub fn is_local(&self) -> bool {
        std::env::var("DOCKER_HOST").map_or(true, |host| host.starts_with("unix://"))
    }

    /// Whether the engine answers.
    pub async fn ping(&self) -> bool {
        self.docker.ping().await.is_ok()
    }

    /// The id and creation time of an image, if it is present.
    pub async fn image_identity(
        &self,
        reference: &str,
    ) -> Result<Option<(String, String)>, DockerError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some((
                image.id.unwrap_or_default(),
                image.created.unwrap_or_default(),
            ))),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Whether an image with this reference is present.
    pub async fn has_image(&self, reference: &str) -> Result<bool, DockerError> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

/// The client certificate files of a TCP engine with TLS.
#[derive(Debug, Clone)]
pub struct EngineTls {
    /// The CA that signed the engine's certificate.
    pub ca: std::path::PathBuf,
    /// The client certificate.
    pub cert: std::path::PathBuf,
    /// The client key.
    pub key: std::path::PathBuf,
}

impl Engine {
    /// Connects to a node's engine: `unix:///path/docker.sock`, or
    /// `tcp://host:port` (with `tls`, mutual TLS; without, plain HTTP).
    pub fn connect(endpoint: &str, tls: Option<&EngineTls>) -> Result<Engine, DockerError> {
        let timeout = REQUEST_TIMEOUT.as_secs();
        let version = bollard::API_DEFAULT_VERSION;
        let docker = match (endpoint.split_once("://"), tls) {
            (Some(("unix", _)), None) => Docker::connect_with_socket(endpoint, timeout, version)?,
            (Some(("tcp", address)), Some(tls)) => Docker::connect_with_ssl(
                &format!("https://{address}"),
                &tls.key,
                &tls.cert,
                &tls.ca,
                timeout,
                version,
            )?,
            (Some(("tcp", address)), None) => {
                Docker::connect_with_http(&format!("http://{address}"), timeout, version)?
            }
            _ => {
                return Err(DockerError::Other(format!(
                    "{endpoint:?} is not a Docker endpoint (unix:///…/docker.sock, or tcp://host:port with TLS only on tcp)"
                )))
            }
        };
        Ok(Engine { docker })
    }

    /// The CPUs and memory (MiB) of the engine's machine, as it reports them.
    pub async fn capacity(&self) -> Result<(f64, u64), DockerError> {
        let info = self.docker.info().await?;
        match (info.ncpu, info.mem_total) {
            (Some(cpus), Some(bytes)) if cpus > 0 && bytes > 0 => {
                Ok((cpus as f64, bytes as u64 / (1024 * 1024)))
            }
            _ => Err(DockerError::Other(
                "the engine did not report its CPUs and memory".to_string(),
            )),
        }
    }

    /// The engine's version, which also proves it answers.
    pub async fn version(&self) -> Result<String, DockerError> {
        Ok(self.docker.version().await?.version.unwrap_or_default())
    }
}
