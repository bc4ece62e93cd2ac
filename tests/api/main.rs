//! End-to-end tests of the HTTP API: the real server over HTTP, on a real
//! PostgreSQL, one fresh database per test.

mod compute;
mod console;
mod data;
mod distributed;
mod errors;
mod execution;
mod experiments;
mod health;
mod isolation;
mod metrics;
mod mlflow;
mod openapi;
mod runs;
mod scheduling;
mod tokens;
mod workspaces;
