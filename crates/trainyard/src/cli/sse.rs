//! Following a run's log over Server-Sent Events (`…/logs/follow`): a small
//! `text/event-stream` parser, and a follower that reconnects when the
//! connection drops without printing a line twice.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

use super::client::{ApiProblem, Client};

/// Reconnections tried in a row before giving up.
const MAX_RECONNECTS: u32 = 5;

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its type (`line`, `status`, `end`); `message` when the server named none.
    pub event: String,
    /// Its data lines, joined with newlines.
    pub data: String,
}

/// Turns bytes as they arrive into events; a blank line ends an event.
#[derive(Debug, Default)]
pub struct Parser {
    buffer: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl Parser {
    /// Takes the next bytes, returning the events they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                events.push(event);
            }
        }
        events
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let event = self.event.take();
            if self.data.is_empty() {
                return None;
            }
            let data = std::mem::take(&mut self.data).join("\n");
            return Some(Event {
                event: event.unwrap_or_else(|| "message".to_string()),
                data,
            });
        }
        if line.starts_with(':') {
            return None; // a comment: the server's keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
        None
    }
}

/// One line of a run's log, as the API sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct LogLine {
    /// `stdout`, `stderr`, `build`, `logs/<file>`.
    pub source: String,
    /// Its position in its source.
    pub seq: i64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Its text.
    pub line: String,
}

/// What the follower reports as it goes.
#[derive(Debug)]
pub enum Update {
    /// A log line.
    Line(LogLine),
    /// The run's status, when it changed (the first one is the current status).
    Status(String),
}

enum Outcome {
    Ended(String),
    Lost(String),
}

/// Follows a run's log until the run has ended and every line was sent;
/// returns the final status. `sources` empty follows every source.
pub async fn follow(
    client: &Client,
    run_id: Uuid,
    sources: &[String],
    mut on_update: impl FnMut(Update) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let mut next_seq: HashMap<String, i64> = HashMap::new();
    let mut last_status: Option<String> = None;
    let mut failures = 0;
    loop {
        let mut progressed = false;
        let outcome = follow_once(client, run_id, sources, |update| {
            progressed = true;
            match update {
                // After a reconnection the stream starts over: skip what was shown.
                Update::Line(line) => {
                    let next = next_seq.entry(line.source.clone()).or_insert(0);
                    if line.seq < *next {
                        return Ok(());
                    }
                    *next = line.seq + 1;
                    on_update(Update::Line(line))
                }
                Update::Status(status) => {
                    if last_status.as_deref() == Some(status.as_str()) {
                        return Ok(());
                    }
                    last_status = Some(status.clone());
                    on_update(Update::Status(status))
                }
            }
        })
        .await?;
        match outcome {
            Outcome::Ended(status) => return Ok(status),
            Outcome::Lost(reason) => {
                failures = if progressed { 1 } else { failures + 1 };
                if failures > MAX_RECONNECTS {
                    anyhow::bail!("lost the connection to the server: {reason}");
                }
                eprintln!("warning: {reason}; reconnecting");
                tokio::time::sleep(Duration::from_secs(u64::from(failures))).await;
            }
        }
    }
}

/// One connection: events until `end` (Ended) or until the connection
/// fails (Lost). Errors are those not worth retrying.
async fn follow_once(
    client: &Client,
    run_id: Uuid,
    sources: &[String],
    mut on_update: impl FnMut(Update) -> anyhow::Result<()>,
) -> anyhow::Result<Outcome> {
    let id = run_id.to_string();
    let query: Vec<(&str, &str)> = sources.iter().map(|s| ("source", s.as_str())).collect();
    let request = client
        .request(Method::GET, client.url(&["runs", &id, "logs", "follow"]))
        .header("Accept", "text/event-stream")
        .query(&query);
    let mut response = match client.send(request).await {
        Ok(response) => response,
        Err(err) if err.downcast_ref::<ApiProblem>().is_some() => return Err(err),
        Err(err) => return Ok(Outcome::Lost(err.to_string())),
    };
    let mut parser = Parser::default();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(Outcome::Lost("the log stream ended early".into())),
            Err(err) => return Ok(Outcome::Lost(format!("reading the log stream: {err}"))),
        };
        for event in parser.feed(&chunk) {
            match event.event.as_str() {
                "line" => {
                    let line: LogLine = serde_json::from_str(&event.data).map_err(|e| {
                        anyhow::anyhow!("a log line from the server is malformed: {e}")
                    })?;
                    on_update(Update::Line(line))?;
                }
                "status" => on_update(Update::Status(event.data))?,
                "end" => return Ok(Outcome::Ended(event.data)),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_end_at_a_blank_line_whatever_the_chunking() {
        let text = b": keep-alive\n\nevent: line\ndata: {\"a\":1}\n\nevent:status\r\ndata:Running\r\n\r\ndata: x\ndata: y\n\n";
        for split in 0..text.len() {
            let mut parser = Parser::default();
            let mut events = parser.feed(&text[..split]);
            events.extend(parser.feed(&text[split..]));
            assert_eq!(
                events,
                vec![
                    Event {
                        event: "line".into(),
                        data: "{\"a\":1}".into()
                    },
                    Event {
                        event: "status".into(),
                        data: "Running".into()
                    },
                    Event {
                        event: "message".into(),
                        data: "x\ny".into()
                    },
                ],
                "split at {split}"
            );
        }
    }
}
