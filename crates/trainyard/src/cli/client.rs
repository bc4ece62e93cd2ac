//! The HTTP side of the command-line client: where the server is, which
//! token and workspace to use, and turning error answers into messages.

use anyhow::Context;
use clap::Args;
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The server used when neither a flag, the environment nor a config file names one.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8420";
/// The per-project settings file, searched from the current directory upwards.
pub const CONFIG_FILE: &str = ".trainyard/config.json";

/// Where the server is and who is calling; shared by every client command.
#[derive(Debug, Args, Clone, Default)]
pub struct ConnectionArgs {
    /// The server's URL [default: http://127.0.0.1:8420, or `url` in .trainyard/config.json].
    #[arg(long, env = "TRAINYARD_URL", value_name = "URL")]
    pub url: Option<String>,
    /// API token (`tyd_…`) [default: `token` in .trainyard/config.json].
    #[arg(
        long,
        env = "TRAINYARD_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Workspace name or id [default: `workspace` in .trainyard/config.json].
    #[arg(long, env = "TRAINYARD_WORKSPACE", value_name = "NAME")]
    pub workspace: Option<String>,
}

/// The keys of `.trainyard/config.json`; all optional.
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    url: Option<String>,
    token: Option<String>,
    workspace: Option<String>,
}

impl ConnectionArgs {
    /// Fills what the flags and environment left out from the nearest
    /// `.trainyard/config.json`, then builds a client.
    pub fn connect(&self) -> anyhow::Result<Client> {
        let mut url = self.url.clone().filter(|s| !s.is_empty());
        let mut token = self.token.clone().filter(|s| !s.is_empty());
        let mut workspace = self.workspace.clone().filter(|s| !s.is_empty());
        let mut found_at = None;
        if url.is_none() || token.is_none() || workspace.is_none() {
            let cwd = std::env::current_dir().context("reading the current directory")?;
            if let Some(path) = find_config(&cwd) {
                let file = read_config(&path)?;
                url = url.or(file.url);
                token = token.or(file.token);
                workspace = workspace.or(file.workspace);
                found_at = Some(path);
            }
        }
        let searched = match &found_at {
            Some(path) => format!("{} has none", path.display()),
            None => format!("no {CONFIG_FILE} was found here or above"),
        };
        let token = token.with_context(|| {
            format!("no API token: pass --token, set TRAINYARD_TOKEN, or put \"token\" in {CONFIG_FILE} ({searched})")
        })?;
        let workspace = workspace.with_context(|| {
            format!("no workspace: pass --workspace, set TRAINYARD_WORKSPACE, or put \"workspace\" in {CONFIG_FILE} ({searched})")
        })?;
        let url = url.unwrap_or_else(|| DEFAULT_URL.to_string());
        Client::new(&url, token, workspace)
    }
}

/// The nearest `.trainyard/config.json` at or above `start`.
fn find_config(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(CONFIG_FILE))
        .find(|path| path.is_file())
}

fn read_config(path: &Path) -> anyhow::Result<ConfigFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// An RFC 9457 problem answer from the server.
#[derive(Debug, Clone)]
pub struct ApiProblem {
    /// The HTTP status.
    pub status: u16,
    /// What went wrong.
    pub detail: String,
    /// The input at fault.
    pub field: Option<String>,
}

impl std::fmt::Display for ApiProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.detail)?;
        if let Some(field) = &self.field {
            write!(f, " (field: {field})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiProblem {}

#[derive(Deserialize)]
struct ProblemBody {
    detail: Option<String>,
    title: Option<String>,
    field: Option<String>,
}

impl ApiProblem {
    async fn from_response(response: Response) -> ApiProblem {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<ProblemBody>(&text) {
            Ok(body) => ApiProblem {
                status: status.as_u16(),
                detail: body
                    .detail
                    .or(body.title)
                    .unwrap_or_else(|| status.to_string()),
                field: body.field,
            },
            // Not a problem document (a proxy's page, say): show its start.
            Err(_) => {
                let snippet: String = text.trim().chars().take(200).collect();
                ApiProblem {
                    status: status.as_u16(),
                    detail: if snippet.is_empty() {
                        format!("the server answered {status}")
                    } else {
                        format!("the server answered {status}: {snippet}")
                    },
                    field: None,
                }
            }
        }
    }
}

/// A connection to one workspace of one server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: String,
    workspace: String,
}

impl Client {
    /// A client for `url` (the server's root, e.g. `http://host:8420`).
    pub fn new(url: &str, token: String, workspace: String) -> anyhow::Result<Client> {
        let base = Url::parse(url).with_context(|| format!("--url {url:?} is not a URL"))?;
        anyhow::ensure!(
            base.scheme() == "http",
            "--url {url:?}: this client speaks plain http:// only (it is built without TLS)"
        );
        anyhow::ensure!(
            !base.cannot_be_a_base(),
            "--url {url:?} is not a server URL"
        );
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("trainyard-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("setting up the HTTP client")?;
        Ok(Client {
            http,
            base,
            token,
            workspace,
        })
    }

    /// `…/api/v1/workspaces/{workspace}/{segments…}`, each segment escaped.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "v1", "workspaces", &self.workspace])
                .extend(segments);
        }
        url
    }

    /// A request with the token attached.
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http.request(method, url).bearer_auth(&self.token)
    }

    /// Sends a request; a non-2xx answer becomes an [`ApiProblem`] error.
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request.send().await.map_err(|err| {
            anyhow::anyhow!(
                "cannot reach the server at {}: {} (is `trainyard serve` running there? see --url / TRAINYARD_URL)",
                self.base,
                error_chain(&err)
            )
        })?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(ApiProblem::from_response(response).await.into())
        }
    }

    /// Sends a request and reads a JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> anyhow::Result<T> {
        let response = self.send(request).await?;
        response
            .json::<T>()
            .await
            .context("the server's answer is not the JSON expected")
    }

    /// `GET` of a workspace path, JSON answer.
    pub async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        let request = self.request(Method::GET, self.url(segments)).query(query);
        self.json(request).await
    }

    /// A JSON body sent with `method` to a workspace path, JSON answer.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &serde_json::Value,
    ) -> anyhow::Result<T> {
        let request = self.request(method, self.url(segments)).json(body);
        self.json(request).await
    }
}

/// The causes of an error on one line: reqwest's own message only repeats
/// the URL, the useful part ("Connection refused") is in its sources.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_urls_escape_each_segment_and_keep_a_path_prefix() {
        let client = Client::new("http://h:1/prefix/", "t".into(), "my ws".into()).unwrap();
        let url = client.url(&["runs", "a/b"]);
        assert_eq!(
            url.as_str(),
            "http://h:1/prefix/api/v1/workspaces/my%20ws/runs/a%2Fb"
        );
    }

    #[test]
    fn the_nearest_config_file_wins() {
        let root = tempfile::tempdir().unwrap();
        let inner = root.path().join("a/b");
        std::fs::create_dir_all(inner.join(".trainyard")).unwrap();
        std::fs::create_dir_all(root.path().join(".trainyard")).unwrap();
        std::fs::write(root.path().join(CONFIG_FILE), "{}").unwrap();
        std::fs::write(inner.join(CONFIG_FILE), "{}").unwrap();
        assert_eq!(find_config(&inner.join("c")), Some(inner.join(CONFIG_FILE)));
        assert_eq!(
            find_config(&root.path().join("a")),
            Some(root.path().join(CONFIG_FILE))
        );
    }

    #[test]
    fn problems_show_the_field() {
        let problem = ApiProblem {
            status: 422,
            detail: "must be more than 0".into(),
            field: Some("resources.cpus".into()),
        };
        assert_eq!(
            problem.to_string(),
            "must be more than 0 (field: resources.cpus)"
        );
    }
}
