//! Environment specs: what goes into a run's image, how the image's tag is
//! derived from the spec, and the Dockerfile that builds it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::validate::FieldError;

/// The base image used when a spec names none: Debian's Python with pip and
/// numpy, built offline by `trainyard images init`.
pub const DEFAULT_BASE_IMAGE: &str = "trainyard/python:3.11-bookworm";
/// Bumped whenever [`EnvironmentSpec::dockerfile`] changes what it writes, so
/// images built by an older recipe are not reused.
const RECIPE_VERSION: &str = "1";
/// Repository of every environment image; the tag is the spec's hash.
pub const IMAGE_REPOSITORY: &str = "trainyard/env";

/// What a run's image contains. Either a whole `dockerfile`, or a base image
/// with packages and variables on top.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// The image to start from; default `trainyard/python:3.11-bookworm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
    /// Debian packages installed with apt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apt_packages: Vec<String>,
    /// Python packages installed with pip, in requirement syntax (`numpy==1.26`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pip_packages: Vec<String>,
    /// The text of a pip requirements file, installed after `pip_packages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pip_requirements: Option<String>,
    /// The text of a conda environment file, applied with `conda env update`
    /// (the base image must have conda).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conda_specification: Option<String>,
    /// Variables set in the image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment_variables: BTreeMap<String, String>,
    /// A whole Dockerfile; when given, no other field may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
}

/// Files the build context carries besides the Dockerfile.
pub const REQUIREMENTS_FILE: &str = "trainyard-requirements.txt";
/// The conda environment file in the build context.
pub const CONDA_FILE: &str = "trainyard-conda.yml";
/// The extra CA certificates in the build context.
pub const CA_FILE: &str = "trainyard-extra-ca.crt";

impl EnvironmentSpec {
    /// Checks the spec, naming the field at fault under `field`.
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        let at = |name: &str| format!("{field}.{name}");
        if let Some(dockerfile) = &self.dockerfile {
            if dockerfile.trim().is_empty() {
                return Err(FieldError::new(at("dockerfile"), "must not be empty"));
            }
            let others = self.base_image.is_some()
                || !self.apt_packages.is_empty()
                || !self.pip_packages.is_empty()
                || self.pip_requirements.is_some()
                || self.conda_specification.is_some()
                || !self.environment_variables.is_empty();
            if others {
                return Err(FieldError::new(
                    at("dockerfile"),
                    "a whole Dockerfile cannot be combined with base_image, packages or variables",
                ));
            }
        }
        if let Some(image) = &self.base_image {
            if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(FieldError::new(
                    at("base_image"),
                    "must be an image reference without spaces",
                ));
            }
        }
        for (i, package) in self.apt_packages.iter().enumerate() {
            let ok = !package.is_empty()
                && package
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.:=~_".contains(c));
            if !ok {
                return Err(FieldError::new(
                    format!("{field}.apt_packages[{i}]"),
                    "must be a Debian package name, optionally with =version",
                ));
            }
        }
        for (i, package) in self.pip_packages.iter().enumerate() {
            if package.trim().is_empty() || package.contains('\n') || package.starts_with('-') {
                return Err(FieldError::new(
                    format!("{field}.pip_packages[{i}]"),
                    "must be one requirement such as numpy==1.26",
                ));
            }
        }
        for key in self.environment_variables.keys() {
            let ok = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(FieldError::new(
                    format!("{field}.environment_variables.{key}"),
                    "must be a variable name: letters, digits and '_', not starting with a digit",
                ));
            }
        }
        Ok(())
    }

    /// The image tag for this spec built with `extra_ca` certificates: a hash
    /// of the canonical spec, so the same spec is built once and any change
    /// builds a new image.
    pub fn image_tag(&self, extra_ca: &[u8]) -> String {
        let canonical = serde_json::to_vec(self).expect("a spec serializes");
        let mut hasher = Sha256::new();
        hasher.update(RECIPE_VERSION.as_bytes());
        hasher.update([0]);
        hasher.update(&canonical);
        hasher.update([0]);
        hasher.update(extra_ca);
        let digest = hex::encode(hasher.finalize());
        format!("{IMAGE_REPOSITORY}:{}", &digest[..24])
    }

    /// The Dockerfile that builds this spec. With `with_extra_ca`, the build
    /// context carries [`CA_FILE`] and the image trusts it (apt, pip, requests).
    pub fn dockerfile(&self, with_extra_ca: bool) -> String {
        if let Some(dockerfile) = &self.dockerfile {
            return dockerfile.clone();
        }
        let base = self.base_image.as_deref().unwrap_or(DEFAULT_BASE_IMAGE);
        let mut lines = vec![format!("FROM {base}")];
        if with_extra_ca {
            lines.push(format!(
                "COPY {CA_FILE} /usr/local/share/ca-certificates/{CA_FILE}"
            ));
            // Without update-ca-certificates in the image, append to the bundle.
            lines.push(format!(
                "RUN if command -v update-ca-certificates >/dev/null 2>&1; then update-ca-certificates; \
                 else mkdir -p /etc/ssl/certs && cat /usr/local/share/ca-certificates/{CA_FILE} >> /etc/ssl/certs/ca-certificates.crt; fi"
            ));
            lines.push(
                "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
                    .to_string(),
            );
        }
        if !self.apt_packages.is_empty() {
            lines.push(format!(
                "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {} && rm -rf /var/lib/apt/lists/*",
                self.apt_packages.join(" ")
            ));
        }
        if self.conda_specification.is_some() {
            lines.push(format!("COPY {CONDA_FILE} /tmp/{CONDA_FILE}"));
            lines.push(format!("RUN conda env update -n base -f /tmp/{CONDA_FILE}"));
        }
        if !self.pip_packages.is_empty() || self.pip_requirements.is_some() {
            lines.push(format!("COPY {REQUIREMENTS_FILE} /tmp/{REQUIREMENTS_FILE}"));
            lines.push(format!(
                "RUN python3 -m pip install --no-cache-dir --disable-pip-version-check -r /tmp/{REQUIREMENTS_FILE}"
            ));
        }
        for (key, value) in &self.environment_variables {
            lines.push(format!(
                "ENV {key}={}",
                serde_json::Value::String(value.clone())
            ));
        }
        lines.push(String::new());
        lines.join("\n")
    }

    /// The requirements file of the build context, if pip has work to do.
    pub fn requirements_file(&self) -> Option<String> {
        if self.pip_packages.is_empty() && self.pip_requirements.is_none() {
            return None;
        }
        let mut text = self.pip_packages.join("\n");
        if let Some(extra) = &self.pip_requirements {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(extra);
        }
        text.push('\n');
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EnvironmentSpec {
        EnvironmentSpec {
            pip_packages: vec!["six==1.16.0".into()],
            environment_variables: BTreeMap::from([("MODE".into(), "train".into())]),
            ..EnvironmentSpec::default()
        }
    }

    #[test]
    fn the_same_spec_gives_the_same_tag_and_any_change_a_new_one() {
        let a = spec();
        assert_eq!(a.image_tag(b""), spec().image_tag(b""));
        assert!(a.image_tag(b"").starts_with("trainyard/env:"));
        let mut b = spec();
        b.pip_packages.push("numpy".into());
        assert_ne!(a.image_tag(b""), b.image_tag(b""));
        assert_ne!(
            a.image_tag(b""),
            a.image_tag(b"-----BEGIN CERTIFICATE-----")
        );
    }

    #[test]
    fn the_dockerfile_installs_what_the_spec_names() {
        let mut s = spec();
        s.apt_packages = vec!["curl".into()];
        let text = s.dockerfile(true);
        assert!(text.starts_with(&format!("FROM {DEFAULT_BASE_IMAGE}\n")));
        assert!(text.contains("apt-get install -y --no-install-recommends curl"));
        assert!(text.contains(&format!("-r /tmp/{REQUIREMENTS_FILE}")));
        assert!(text.contains("ENV MODE=\"train\""));
        assert!(text.contains("update-ca-certificates"));
        assert!(!spec().dockerfile(false).contains("ca-certificates"));
        assert_eq!(s.requirements_file().unwrap(), "six==1.16.0\n");
    }

    #[test]
    fn a_whole_dockerfile_stands_alone() {
        let s = EnvironmentSpec {
            dockerfile: Some("FROM busybox\n".into()),
            ..EnvironmentSpec::default()
        };
        assert!(s.validate("environment").is_ok());
        assert_eq!(s.dockerfile(true), "FROM busybox\n");
        let mixed = EnvironmentSpec {
            pip_packages: vec!["six".into()],
            ..s
        };
        assert_eq!(
            mixed.validate("environment").unwrap_err().field,
            "environment.dockerfile"
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                EnvironmentSpec {
                    apt_packages: vec!["curl; rm -rf /".into()],
                    ..Default::default()
                },
                "env.apt_packages[0]",
            ),
            (
                EnvironmentSpec {
                    pip_packages: vec!["-r x".into()],
                    ..Default::default()
                },
                "env.pip_packages[0]",
            ),
            (
                EnvironmentSpec {
                    base_image: Some("a b".into()),
                    ..Default::default()
                },
                "env.base_image",
            ),
            (
                EnvironmentSpec {
                    environment_variables: BTreeMap::from([("1X".into(), "v".into())]),
                    ..Default::default()
                },
                "env.environment_variables.1X",
            ),
        ];
        for (spec, field) in cases {
            assert_eq!(spec.validate("env").unwrap_err().field, field);
        }
    }
}
