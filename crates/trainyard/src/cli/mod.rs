//! The command-line client: `trainyard run …`, `trainyard compute …`,
//! `trainyard env …` and `trainyard images …`. Results go to standard output, progress and errors
//! to standard error, so that `RUN=$(trainyard run submit …)` works.

pub mod client;
pub mod compute;
pub mod datastore;
pub mod env;
mod files;
pub mod images;
mod logs;
pub mod run;
mod sse;
mod submit;

use std::io::Write;

use client::ApiProblem;

/// Reports the outcome of a client command and ends the process: errors are
/// printed as `error: …` (a server's problem as `error: <detail> (field: <field>)`)
/// with exit code 1.
pub fn exit(result: anyhow::Result<i32>) -> ! {
    let code = match result {
        Ok(code) => code,
        Err(err) => report(&err),
    };
    std::process::exit(code)
}

fn report(err: &anyhow::Error) -> i32 {
    // A reader that went away (`trainyard run logs … | head`) is not a failure.
    let broken_pipe = err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return 0;
    }
    match err.chain().find_map(|e| e.downcast_ref::<ApiProblem>()) {
        Some(problem) => {
            eprintln!("error: {problem}");
            if problem.status == 401 {
                eprintln!(
                    "hint: check --token, TRAINYARD_TOKEN or \"token\" in .trainyard/config.json"
                );
            }
        }
        None => eprintln!("error: {err:#}"),
    }
    1
}

/// Writes one line to standard output, reporting a closed pipe as an error
/// instead of panicking like `println!`.
fn out(line: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

/// Parses `KEY=VALUE` (the value may contain `=` and be empty).
fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// An environment named as `NAME` or `NAME:VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRef {
    /// The registered name.
    pub name: String,
    /// The version; the latest when absent.
    pub version: Option<i32>,
}

/// Parses `NAME[:VERSION]`, VERSION a whole number from 1.
fn env_ref(text: &str) -> Result<EnvRef, String> {
    let (name, version) = match text.rsplit_once(':') {
        Some((name, version)) => {
            let version = version
                .parse::<i32>()
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| format!("the version in {text:?} must be a whole number from 1"))?;
            (name, Some(version))
        }
        None => (text, None),
    };
    if name.is_empty() {
        return Err("expected NAME or NAME:VERSION".to_string());
    }
    Ok(EnvRef {
        name: name.to_string(),
        version,
    })
}

/// Prints rows under headers, each column as wide as its widest cell.
fn table(headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text
    };
    out(line(headers.to_vec()).trim_end())?;
    for row in rows {
        out(line(row.iter().map(String::as_str).collect()).trim_end())?;
    }
    Ok(())
}

/// An RFC 3339 time from the server, shortened to `YYYY-MM-DD HH:MM:SS` (UTC).
fn short_time(value: &serde_json::Value) -> String {
    let text = value.as_str().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(key_value("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(key_value("A="), Ok(("A".into(), String::new())));
        assert!(key_value("A").is_err());
        assert!(key_value("=x").is_err());
    }

    #[test]
    fn environments_are_named_with_an_optional_version() {
        assert_eq!(
            env_ref("torch:3"),
            Ok(EnvRef {
                name: "torch".into(),
                version: Some(3)
            })
        );
        assert_eq!(env_ref("torch").map(|e| e.version), Ok(None));
        assert!(env_ref("torch:0").is_err());
        assert!(env_ref("torch:x").is_err());
        assert!(env_ref(":2").is_err());
    }
}
