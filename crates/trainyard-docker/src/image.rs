//! Environment images: built once per spec from an in-memory build context.

use bollard::image::BuildImageOptions;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::VecDeque;
use trainyard_core::environment::{CA_FILE, CONDA_FILE, REQUIREMENTS_FILE};
use trainyard_core::EnvironmentSpec;

use crate::lines::LineSplitter;
use crate::{DockerError, Engine};

/// How many of a failed build's last lines its error keeps.
const ERROR_TAIL_LINES: usize = 30;

/// Whether [`Engine::ensure_image`] had to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageOutcome {
    /// The image was already on the engine.
    Present,
    /// It was built now.
    Built,
}

impl Engine {
    /// Makes sure the image `tag` of `spec` exists, building it if it does
    /// not. Every line of the build's output goes to `on_line` as it comes.
    pub async fn ensure_image(
        &self,
        tag: &str,
        spec: &EnvironmentSpec,
        extra_ca: &[u8],
        mut on_line: impl FnMut(String),
    ) -> Result<ImageOutcome, DockerError> {
        if self.has_image(tag).await? {
            return Ok(ImageOutcome::Present);
        }
        let context = build_context(spec, extra_ca)
            .map_err(|e| DockerError::Other(format!("writing the build context: {e}")))?;
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".to_string(),
            t: tag.to_string(),
            rm: true,
            forcerm: true,
            ..Default::default()
        };
        let mut stream = self
            .docker
            .build_image(options, None, Some(Bytes::from(context)));
        let mut splitter = LineSplitter::default();
        let mut log = BuildLog::default();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    log.push(error, &mut on_line);
                    return Err(log.failure());
                }
                Err(err) => return Err(err.into()),
            };
            if let Some(text) = info.stream {
                for line in splitter.push(text.as_bytes()) {
                    log.push(line, &mut on_line);
                }
            }
            if let Some(error) = info.error {
                log.push(error, &mut on_line);
                return Err(log.failure());
            }
        }
        if let Some(rest) = splitter.finish() {
            log.push(rest, &mut on_line);
        }
        if !self.has_image(tag).await? {
            return Err(log.failure());
        }
        Ok(ImageOutcome::Built)
    }
}

/// The last lines of a build, for its error.
#[derive(Default)]
struct BuildLog {
    tail: VecDeque<String>,
}

impl BuildLog {
    fn push(&mut self, line: String, on_line: &mut impl FnMut(String)) {
        if self.tail.len() == ERROR_TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.clone());
        on_line(line);
    }

    fn failure(self) -> DockerError {
        DockerError::Build(Vec::from(self.tail).join("\n"))
    }
}

/// The tar of the build: the Dockerfile and the files it copies.
fn build_context(spec: &EnvironmentSpec, extra_ca: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, bytes)
    };
    add(
        "Dockerfile",
        spec.dockerfile(!extra_ca.is_empty()).as_bytes(),
    )?;
    if spec.dockerfile.is_none() {
        if !extra_ca.is_empty() {
            add(CA_FILE, extra_ca)?;
        }
        if let Some(requirements) = spec.requirements_file() {
            add(REQUIREMENTS_FILE, requirements.as_bytes())?;
        }
        if let Some(conda) = &spec.conda_specification {
            add(CONDA_FILE, conda.as_bytes())?;
        }
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_holds_the_dockerfile_and_its_files() {
        let spec = EnvironmentSpec {
            pip_packages: vec!["six".into()],
            ..EnvironmentSpec::default()
        };
        let context = build_context(&spec, b"CERT").unwrap();
        let mut archive = tar::Archive::new(&context[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["Dockerfile", CA_FILE, REQUIREMENTS_FILE]);
    }
}
