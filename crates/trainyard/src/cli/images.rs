//! `trainyard images init`: builds the default base images with the
//! repository's scripts, embedded in the binary so that an installed
//! `trainyard` works outside a checkout.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

/// The scripts, by their path under `docker/` (their layout matters: each
/// finds the others relative to itself), and whether each is executable.
const SCRIPTS: [(&str, &str, bool); 5] = [
    (
        "common.sh",
        include_str!("../../../../docker/common.sh"),
        false,
    ),
    (
        "build-base-images.sh",
        include_str!("../../../../docker/build-base-images.sh"),
        true,
    ),
    (
        "busybox/build.sh",
        include_str!("../../../../docker/busybox/build.sh"),
        true,
    ),
    (
        "busybox/Dockerfile",
        include_str!("../../../../docker/busybox/Dockerfile"),
        false,
    ),
    (
        "python/build.sh",
        include_str!("../../../../docker/python/build.sh"),
        true,
    ),
];

/// Commands on the base images.
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Builds the default base images offline with the local Docker engine.
    ///
    /// trainyard/busybox:latest takes seconds (needs Debian's busybox-static);
    /// trainyard/python:3.11-bookworm takes a few minutes (needs root and
    /// debootstrap; skipped when it exists, unless --force). No registry is used.
    Init(InitArgs),
}

/// Which images to build.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Rebuild images that already exist.
    #[arg(long)]
    force: bool,
    /// Build only this image.
    #[arg(long, value_enum, value_name = "IMAGE")]
    only: Option<BaseImage>,
}

/// A default base image.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BaseImage {
    /// trainyard/busybox:latest
    Busybox,
    /// trainyard/python:3.11-bookworm
    Python,
}

/// Runs a `trainyard images …` command; returns the exit code.
pub fn execute(command: ImagesCommand) -> anyhow::Result<i32> {
    match command {
        ImagesCommand::Init(args) => init(args),
    }
}

fn init(args: InitArgs) -> anyhow::Result<i32> {
    let dir = tempfile::Builder::new()
        .prefix("trainyard-images.")
        .tempdir()
        .context("creating a temporary directory for the build scripts")?;
    write_scripts(dir.path())?;
    let mut command = Command::new("bash");
    command.arg(dir.path().join("build-base-images.sh"));
    if args.force {
        command.arg("--force");
    }
    if let Some(only) = args.only {
        command.args(["--only", only_name(only)]);
    }
    let status = command
        .status()
        .context("running bash (is it installed?)")?;
    // Mirror the script's outcome, a signal as the shell reports one.
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(1)))
}

fn only_name(image: BaseImage) -> &'static str {
    match image {
        BaseImage::Busybox => "busybox",
        BaseImage::Python => "python",
    }
}

/// Writes the embedded scripts under `root` in their repository layout.
fn write_scripts(root: &Path) -> anyhow::Result<()> {
    for (relative, text, executable) in SCRIPTS {
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        let mode = if executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_keep_their_layout_and_the_entry_point_runs() {
        let dir = tempfile::tempdir().unwrap();
        write_scripts(dir.path()).unwrap();
        let busybox = dir.path().join("busybox/build.sh");
        let mode = std::fs::metadata(&busybox).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert!(dir.path().join("busybox/Dockerfile").is_file());
        // --help exits before anything needs Docker.
        let output = Command::new("bash")
            .arg(dir.path().join("build-base-images.sh"))
            .arg("--help")
            .output()
            .unwrap();
        assert!(output.status.success());
        assert!(String::from_utf8_lossy(&output.stdout).contains("--only"));
    }
}
