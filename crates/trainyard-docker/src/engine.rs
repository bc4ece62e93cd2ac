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
