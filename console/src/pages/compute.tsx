// Compute targets (named pools of nodes) and their nodes: per node its
// capacity, what its runs hold and what is free (GPU indexes, CPUs, memory),
// the runs on it, its state and health, and for administrators cordon, drain
// and ready; per target its queue, with why each run waits. The compute page
// also lists every run waiting to start, on a target or on the server's own
// engine, with the reason the scheduler gave.

import { useState } from "preact/hooks";
import { call, get, query, wsPath } from "../api";
import { Chips, ErrorNote, Facts, Loading, Section, TableWrap } from "../components/ui";
import { durationBetween, formatCpus, formatMemory, formatTime, shortId } from "../format";
import { useAsync, useInterval } from "../hooks";
import { href } from "../router";
import { executes } from "../run-spec";
import { allows, useSession } from "../session";
import type { ComputeNode, ComputeTarget, Page, QueueEntry, Resources, Run } from "../types";

/** How often the nodes, queues and waiting runs are read again. */
const REFRESH_MS = 5000;
const ACTIVE = "Preparing,Starting,Running,Finalizing";

function resources(r: Resources): string {
  const parts = [r.gpus ? `${r.gpus} GPU` : null, r.cpus ? `${r.cpus} CPU` : null, r.memory_mb ? formatMemory(r.memory_mb) : null];
  return parts.filter(Boolean).join(", ") || "defaults";
}

/** `3/8 free (0,4,7)`: free of all, with the free indexes while some are held. */
export function gpusFree(node: ComputeNode): string {
  const total = node.capacity.gpus;
  if (total === 0) return "none";
  const free = node.free.gpus;
  const some = free.length > 0 && free.length < total;
  return `${free.length}/${total} free${some ? ` (${free.join(",")})` : ""}`;
}

function WaitReason({ reason }: { reason?: string | null }) {
  return reason ? <span class="wait-reason">{reason}</span> : <span class="muted">not looked at by the scheduler yet</span>;
}

export function ComputePage({ workspace }: { workspace: string }) {
  const targets = useAsync((signal) => get<{ items: ComputeTarget[] }>(wsPath(workspace, "/compute"), signal), [workspace]);
  return (
    <>
      <div class="page-head">
        <h1>Compute</h1>
      </div>
      <ErrorNote error={targets.error} />
      {!targets.data ? (
        <Loading />
      ) : targets.data.items.length === 0 ? (
        <p class="muted">
          No compute targets: runs go to the server's own Docker engine. An administrator creates one with{" "}
          <code>POST …/compute</code> or <code>ComputeTarget.create(ws, name, AmlCompute.provisioning_configuration(...))</code>.
        </p>
      ) : (
        <TableWrap>
          <table class="list">
            <thead>
              <tr>
                <th>Name</th>
                <th class="num">Most nodes</th>
                <th>A run gets by default</th>
                <th>Labels</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {targets.data.items.map((t) => (
                <tr key={t.id}>
                  <td>
                    <a href={href("w", workspace, "compute", t.name)}>{t.name}</a>
                  </td>
                  <td class="num">{t.max_nodes}</td>
                  <td>{resources(t.default_resources)}</td>
                  <td>
                    <Chips entries={t.labels} />
                  </td>
                  <td class="nowrap">{formatTime(t.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      <WaitingRuns workspace={workspace} />
    </>
  );
}

export function ComputeTargetPage({ workspace, name }: { workspace: string; name: string }) {
  const { identity } = useSession();
  const base = wsPath(workspace, `/compute/${encodeURIComponent(name)}`);
  const target = useAsync((signal) => get<ComputeTarget>(base, signal), [base]);
  const nodes = useAsync((signal) => get<{ items: ComputeNode[] }>(`${base}/nodes`, signal), [base]);
  const queue = useAsync((signal) => get<{ runs: QueueEntry[] }>(`${base}/queue`, signal), [base]);
  // The names of the runs on the nodes (the nodes give their ids only).
  const active = useAsync((signal) => get<Page<Run>>(wsPath(workspace, "/runs" + query({ status: ACTIVE, limit: 100 })), signal), [workspace]);
  useInterval(
    () => {
      nodes.reload();
      queue.reload();
      active.reload();
    },
    REFRESH_MS,
    !!target.data,
  );
  const [error, setError] = useState<Error>();
  if (!target.data) return target.error ? <ErrorNote error={target.error} /> : <Loading what="the compute target" />;
  const t = target.data;
  const setState = async (node: ComputeNode, state: string) => {
    const reason = state === "ready" ? undefined : prompt(`Why is ${node.name} ${state}? (shown with the node)`) ?? undefined;
    try {
      await call("PUT", `${base}/nodes/${encodeURIComponent(node.name)}/state`, { state, reason: reason || undefined });
      nodes.reload();
    } catch (e) {
      setError(e as Error);
    }
  };
  const items = nodes.data?.items ?? [];
  const total = items.reduce(
    (sum, n) => ({ gpus: sum.gpus + n.capacity.gpus, cpus: sum.cpus + n.capacity.cpus, memory_mb: sum.memory_mb + n.capacity.memory_mb }),
    { gpus: 0, cpus: 0, memory_mb: 0 },
  );
  const free = items.reduce(
    (sum, n) => ({ gpus: sum.gpus + n.free.gpus.length, cpus: sum.cpus + n.free.cpus, memory_mb: sum.memory_mb + n.free.memory_mb }),
    { gpus: 0, cpus: 0, memory_mb: 0 },
  );
  const names = new Map((active.data?.items ?? []).map((r) => [r.id, r.display_name || shortId(r.id)]));
  const waiting = queue.data?.runs ?? [];
  return (
    <>
      <div class="page-head">
        <div>
          <p class="crumbs">
            <a href={href("w", workspace, "compute")}>Compute</a>
          </p>
          <h1>{t.name}</h1>
        </div>
      </div>
      <Section title="Target">
        <Facts
          rows={[
            ["Nodes", `${nodes.data?.items.length ?? "…"} of at most ${t.max_nodes}`],
            ["Capacity", nodes.data ? resources(total) : "…"],
            [
              "Free",
              nodes.data
                ? `${free.gpus} of ${total.gpus} GPUs, ${formatCpus(free.cpus)} of ${formatCpus(total.cpus)} CPUs, ${formatMemory(free.memory_mb)} of ${formatMemory(total.memory_mb)}`
                : "…",
            ],
            ["Waiting runs", queue.data ? String(waiting.length) : "…"],
            ["A run gets by default", resources(t.default_resources)],
            ["Labels", <Chips entries={t.labels} />],
            ["Created", formatTime(t.created_at)],
          ]}
        />
      </Section>
      <ErrorNote error={nodes.error ?? error} />
      {nodes.data &&
        (items.length === 0 ? (
          <p class="muted">No nodes registered in this target.</p>
        ) : (
          <TableWrap>
            <table class="list nodes">
              <thead>
                <tr>
                  <th>Node</th>
                  <th>State</th>
                  <th>Health</th>
                  <th class="num">GPUs</th>
                  <th class="num">CPUs</th>
                  <th class="num">Memory</th>
                  <th>Runs on it</th>
                  <th>Engine</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {items.map((n) => (
                  <tr key={n.id} data-node={n.name}>
                    <td>{n.name}</td>
                    <td>
                      <span class={`build node-${n.state}`}>{n.state}</span>
                      {n.state_reason && <span class="muted small"> {n.state_reason}</span>}
                    </td>
                    <td>
                      <span class={`build health-${n.health}`} title={n.last_seen_at ? `last answered ${formatTime(n.last_seen_at)}` : undefined}>
                        {n.health}
                      </span>
                      {n.health_reason && <span class="muted small"> {n.health_reason}</span>}
                    </td>
                    <td class="num nowrap" data-testid="node-gpus">
                      {gpusFree(n)} <span class="muted small">{n.gpu_mode}</span>
                      {n.allocated.gpus.length > 0 && <div class="muted small">in use: {n.allocated.gpus.join(",")}</div>}
                    </td>
                    <td class="num nowrap" data-testid="node-cpus">
                      {formatCpus(n.free.cpus)}/{formatCpus(n.capacity.cpus)} free
                      {n.allocated.cpus > 0 && <div class="muted small">in use: {formatCpus(n.allocated.cpus)}</div>}
                    </td>
                    <td class="num nowrap" data-testid="node-memory">
                      {formatMemory(n.free.memory_mb)} of {formatMemory(n.capacity.memory_mb)} free
                      {n.allocated.memory_mb > 0 && <div class="muted small">in use: {formatMemory(n.allocated.memory_mb)}</div>}
                    </td>
                    <td>
                      {n.running_runs.length === 0 ? (
                        <span class="muted">—</span>
                      ) : (
                        <ul class="plain">
                          {n.running_runs.map((id) => (
                            <li key={id}>
                              <a href={href("w", workspace, "runs", id)}>{names.get(id) ?? shortId(id)}</a>
                            </li>
                          ))}
                        </ul>
                      )}
                    </td>
                    <td class="mono small">
                      {n.endpoint}
                      {n.tls ? " (TLS)" : ""}
                      {n.engine_version && <div class="muted">Docker {n.engine_version}</div>}
                    </td>
                    <td class="nowrap">
                      {allows(identity, "admin") &&
                        (n.state === "ready" ? (
                          <>
                            <button class="link" onClick={() => setState(n, "cordoned")}>
                              Cordon
                            </button>{" "}
                            <button class="link" onClick={() => setState(n, "draining")}>
                              Drain
                            </button>
                          </>
                        ) : (
                          <button class="link" onClick={() => setState(n, "ready")}>
                            Make ready
                          </button>
                        ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        ))}
      <Section title={`Queue (${queue.data ? waiting.length : "…"})`}>
        <ErrorNote error={queue.error} />
        {!queue.data ? (
          <Loading what="the queue" />
        ) : waiting.length === 0 ? (
          <p class="muted">No run is waiting for this target.</p>
        ) : (
          <TableWrap>
            <table class="list queue">
              <thead>
                <tr>
                  <th>Run</th>
                  <th class="num">Priority</th>
                  <th>Submitted</th>
                  <th class="num">Waiting</th>
                  <th>Why it waits</th>
                </tr>
              </thead>
              <tbody>
                {waiting.map((entry) => (
                  <tr key={entry.run_id} data-run={entry.run_id}>
                    <td>
                      <a href={href("w", workspace, "runs", entry.run_id)}>{entry.display_name || shortId(entry.run_id)}</a>
                    </td>
                    <td class="num">{entry.priority}</td>
                    <td class="nowrap">{formatTime(entry.created_at)}</td>
                    <td class="num">{durationBetween(entry.created_at, null)}</td>
                    <td>
                      <WaitReason reason={entry.wait_reason} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Section>
    </>
  );
}

/** Runs waiting to start (the newest 100 of them), with the target each asks for and why it waits. */
function WaitingRuns({ workspace }: { workspace: string }) {
  const queued = useAsync((signal) => get<Page<Run>>(wsPath(workspace, "/runs" + query({ status: "Queued", limit: 100 })), signal), [workspace]);
  useInterval(queued.reload, REFRESH_MS, true);
  // Runs that only record stay Queued for good and never wait for a node.
  const waiting = (queued.data?.items ?? []).filter(executes);
  return (
    <Section title={`Waiting to start (${waiting.length}${queued.data?.next_cursor ? "+" : ""})`}>
      <ErrorNote error={queued.error} />
      {waiting.length === 0 ? (
        <p class="muted">No run is waiting.</p>
      ) : (
        <TableWrap>
          <table class="list">
            <thead>
              <tr>
                <th>Run</th>
                <th>Compute target</th>
                <th>Asks for</th>
                <th class="num">Waiting</th>
                <th>Why it waits</th>
              </tr>
            </thead>
            <tbody>
              {waiting.map((run) => (
                <tr key={run.id} data-run={run.id}>
                  <td>
                    <a href={href("w", workspace, "runs", run.id)}>{run.display_name || shortId(run.id)}</a>
                  </td>
                  <td>
                    {run.spec.compute_target ? (
                      <a href={href("w", workspace, "compute", run.spec.compute_target)}>{run.spec.compute_target}</a>
                    ) : (
                      "local"
                    )}
                  </td>
                  <td>{resources({ gpus: run.spec.resources?.gpus, cpus: run.spec.resources?.cpus ?? undefined, memory_mb: run.spec.resources?.memory_mb ?? undefined })}</td>
                  <td class="num">{durationBetween(run.created_at, null)}</td>
                  <td>
                    {run.spec.compute_target || run.wait_reason ? <WaitReason reason={run.wait_reason} /> : <span class="muted">—</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </Section>
  );
}
