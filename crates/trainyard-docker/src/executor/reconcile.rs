//! After a restart: the active runs this replica owned are taken over again.

use std::collections::HashSet;
use trainyard_core::RunStatus;
use trainyard_db::runs::Run;

use super::outcome::{outcome, Ended, StopReason};
use super::Executor;
use crate::DockerError;

impl Executor {
    /// After a restart: re-adopts active runs this replica took over (see
    /// `Db::adopt_active_runs`) whose containers are on this executor's
    /// engine. Running containers are followed again from the
    /// last stored log line; containers that exited meanwhile are finalized;
    /// runs with no container fail with the reason; containers of runs that
    /// are not active are removed.
    pub async fn reconcile(
        &self,
        runs: Vec<Run>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, DockerError> {
        // A node's engine may hold runs another replica started and lost
        // the lease of; the server's own engine holds only this replica's.
        let containers = match self.node {
            Some(_) => self.engine.node_run_containers().await?,
            None => self.engine.run_containers(&self.config.owner).await?,
        };
        let active: HashSet<String> = runs.iter().map(|r| r.id.to_string()).collect();
        for (container, run_id, _) in &containers {
            if !active.contains(run_id) {
                let run = uuid::Uuid::parse_str(run_id).ok();
                // Only a run known here to have ended gives its container
                // up: an engine may be shared with another server.
                let ended = match run {
                    Some(id) => self
                        .db
                        .get_run_for_executor(id)
                        .await
                        .is_ok_and(|r| r.status().is_terminal()),
                    None => false,
                };
                if ended {
                    tracing::info!(%container, %run_id, "removing a container of no active run");
                    let _ = self.engine.remove_container(container).await;
                }
            }
        }
        let mut tasks = Vec::new();
        for run in runs {
            let container = run
                .container_id
                .clone()
                .filter(|id| containers.iter().any(|(c, _, _)| c == id));
            let executor = self.clone();
            tasks.push(tokio::spawn(async move {
                executor.readopt(run, container).await
            }));
        }
        Ok(tasks)
    }

    #[tracing::instrument(skip_all, fields(run_id = %run.id))]
    async fn readopt(&self, run: Run, container: Option<String>) {
        let Some(container) = container else {
            // Placed on a node but never created: it simply goes back in line.
            if run.placement.is_some() && run.container_id.is_none() {
                let reason =
                    "the server stopped between placing the run and starting it; queued again";
                match self
                    .db
                    .requeue_unstarted(run.workspace_id, run.id, None, reason)
                    .await
                {
                    Ok(true) => {
                        self.cleanup(&run, None).await;
                        return;
                    }
                    Ok(false) => {}
                    Err(err) => tracing::warn!(error = %err, "queueing a run again failed"),
                }
            }
            let reason = format!(
                "the server stopped while the run was {}, and its container is gone; submit it again",
                run.status()
            );
            self.fail_lost_in_restart(&run, &reason).await;
            return;
        };
        tracing::info!(%container, status = %run.status(), "re-adopting the run's container");
        match run.status() {
            RunStatus::Preparing | RunStatus::Starting => {
                // Created but maybe not started: start it unless it already ran.
                let state = self.engine.container_state(&container).await.ok().flatten();
                if run.status() == RunStatus::Preparing {
                    let _ = self
                        .transition(&run, RunStatus::Starting, "image ready", None)
                        .await;
                }
                if state.is_some_and(|s| !s.running && s.exit_code == Some(0)) || state.is_none() {
                    let _ = self.engine.start_container(&container).await;
                }
                if self
                    .transition(&run, RunStatus::Running, "container started", None)
                    .await
                    .is_err()
                {
                    return;
                }
                self.supervise_and_finish(&run, &container).await;
            }
            RunStatus::Running => self.supervise_and_finish(&run, &container).await,
            RunStatus::Finalizing => {
                let state = self.engine.container_state(&container).await.ok().flatten();
                let ended = Ended {
                    exit_code: state.and_then(|s| s.exit_code),
                    stopped: self
                        .db
                        .cancel_requested_at(run.id)
                        .await
                        .ok()
                        .flatten()
                        .map(|_| StopReason::Canceled),
                };
                // Finalizing → Finalizing is not a transition: go straight to the end.
                self.finish_from_finalizing(&run, &container, ended).await;
            }
            _ => {}
        }
    }

    /// Fails a run that a restart lost, with `reason`, and revokes its tokens.
    pub(super) async fn fail_lost_in_restart(&self, run: &Run, reason: &str) {
        let _ = self
            .transition(
                run,
                RunStatus::Failed,
                "lost during a server restart",
                Some(reason),
            )
            .await;
        self.cleanup(run, None).await;
    }

    async fn finish_from_finalizing(&self, run: &Run, container: &str, ended: Ended) {
        let kept =
            super::files::collect_files(&self.engine, &self.storage, container, run.id, None).await;
        let (status, _, error) = outcome(run, ended, kept.map(|_| ()));
        let _ = self
            .transition(
                run,
                status,
                "finalized after a server restart",
                error.as_deref(),
            )
            .await;
        self.cleanup(run, Some(container)).await;
    }
}
