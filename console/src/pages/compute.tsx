// Compute targets (named pools of nodes) and their nodes: capacity, state,
// and for administrators cordon, drain and ready. The runs waiting to start
// are listed with the target each asks for and how long it has waited; the
// API does not yet say how much of a node is allocated or why a run waits.

import { useState } from "preact/hooks";
import { call, get, query, wsPath } from "../api";
import { Chips, ErrorNote, Facts, Loading, Section, TableWrap } from "../components/ui";
import { durationBetween, formatTime, shortId } from "../format";
import { useAsync, useInterval } from "../hooks";
import { href } from "../router";
import { executes } from "../run-spec";
import { allows, useSession } from "../session";
import type { ComputeNode, ComputeTarget, Page, Resources, Run } from "../types";

function resources(r: Resources): string {
  const parts = [r.gpus ? `${r.gpus} GPU` : null, r.cpus ? `${r.cpus} CPU` : null, r.memory_mb ? `${(r.memory_mb / 1024).toFixed(1)} GiB` : null];
  return parts.filter(Boolean).join(", ") || "defaults";
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
  const total = (nodes.data?.items ?? []).reduce(
    (sum, n) => ({ gpus: sum.gpus + n.capacity.gpus, cpus: sum.cpus + n.capacity.cpus, memory_mb: sum.memory_mb + n.capacity.memory_mb }),
    { gpus: 0, cpus: 0, memory_mb: 0 },
  );
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
            ["A run gets by default", resources(t.default_resources)],
            ["Labels", <Chips entries={t.labels} />],
            ["Created", formatTime(t.created_at)],
          ]}
        />
      </Section>
      <ErrorNote error={nodes.error ?? error} />
      {nodes.data &&
        (nodes.data.items.length === 0 ? (
          <p class="muted">No nodes registered in this target.</p>
        ) : (
          <TableWrap>
            <table class="list nodes">
              <thead>
                <tr>
                  <th>Node</th>
                  <th>State</th>
                  <th class="num">GPUs</th>
                  <th class="num">CPUs</th>
                  <th class="num">Memory</th>
                  <th>Engine</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {nodes.data.items.map((n) => (
                  <tr key={n.id} data-node={n.name}>
                    <td>{n.name}</td>
                    <td>
                      <span class={`build node-${n.state}`}>{n.state}</span>
                      {n.state_reason && <span class="muted small"> {n.state_reason}</span>}
                    </td>
                    <td class="num">
                      {n.capacity.gpus} <span class="muted small">{n.gpu_mode}</span>
                    </td>
                    <td class="num">{n.capacity.cpus}</td>
                    <td class="num nowrap">{(n.capacity.memory_mb / 1024).toFixed(1)} GiB</td>
                    <td class="mono small">
                      {n.endpoint}
                      {n.tls ? " (TLS)" : ""}
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
    </>
  );
}

/** Runs waiting to start (the newest 100 of them), with the target each asks for. */
function WaitingRuns({ workspace }: { workspace: string }) {
  const queued = useAsync((signal) => get<Page<Run>>(wsPath(workspace, "/runs" + query({ status: "Queued", limit: 100 })), signal), [workspace]);
  useInterval(queued.reload, 5000, true);
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
              </tr>
            </thead>
            <tbody>
              {waiting.map((run) => (
                <tr key={run.id}>
                  <td>
                    <a href={href("w", workspace, "runs", run.id)}>{run.display_name || shortId(run.id)}</a>
                  </td>
                  <td>{run.spec.compute_target ?? "local"}</td>
                  <td>{resources({ gpus: run.spec.resources?.gpus, cpus: run.spec.resources?.cpus ?? undefined, memory_mb: run.spec.resources?.memory_mb ?? undefined })}</td>
                  <td class="num">{durationBetween(run.created_at, null)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </Section>
  );
}
