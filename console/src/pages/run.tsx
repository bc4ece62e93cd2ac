// One run: its stages, log, metrics, files and what it was made of, with
// cancel and resubmit.

import { useEffect, useMemo, useState } from "preact/hooks";
import { call, get, wsPath } from "../api";
import { LogView } from "../components/logview";
import { Timeline } from "../components/timeline";
import { Chips, ErrorNote, Facts, Loading, Section, StatusBadge, TableWrap, Tabs } from "../components/ui";
import { durationBetween, formatCpus, formatHolding, formatMemory, formatTime, shortId } from "../format";
import { useAsync, useInterval } from "../hooks";
import { LogFeed } from "../logs";
import { href, hrefWith, navigate } from "../router";
import { distributed, executes, parameters, resubmission, shapeOf, tensorflowTasks } from "../run-spec";
import { allows, useSession } from "../session";
import { ENDED, type Experiment, type RankPlacement, type Run, type RunEvent, type RunPlacement } from "../types";
import { RunFiles } from "./run-files";
import { RunMetrics } from "./run-metrics";

type Tab = "overview" | "logs" | "metrics" | "files";
const TABS: [Tab, string][] = [
  ["overview", "Overview"],
  ["logs", "Logs"],
  ["metrics", "Metrics"],
  ["files", "Files"],
];

export function RunPage({ workspace, runId, tab }: { workspace: string; runId: string; tab: string | null }) {
  const { identity } = useSession();
  const run = useAsync((signal) => get<Run>(wsPath(workspace, `/runs/${runId}`), signal), [workspace, runId]);
  const events = useAsync((signal) => get<{ items: RunEvent[] }>(wsPath(workspace, `/runs/${runId}/events`), signal), [workspace, runId]);
  const experiment = useAsync(
    async (signal) => (run.data ? get<Experiment>(wsPath(workspace, `/experiments/${run.data.experiment_id}`), signal) : undefined),
    [workspace, run.data?.experiment_id],
  );
  const [actionError, setActionError] = useState<Error>();
  const active = !!run.data && !ENDED.includes(run.data.status);
  const refresh = () => {
    run.reload();
    events.reload();
  };
  // The log's status events refresh the page at once; this catches the rest (duration, cancel requested).
  useInterval(refresh, 5000, active);

  const [feed, setFeed] = useState<LogFeed>();
  const firstStatus = run.data?.status;
  useEffect(() => {
    if (!firstStatus) return;
    const created = new LogFeed(workspace, runId, refresh);
    setFeed(created);
    created.start(!ENDED.includes(firstStatus)).catch(setActionError);
    return () => created.stop();
    // One feed per run: it follows the log itself from here on.
  }, [workspace, runId, !!firstStatus]);

  const current: Tab = TABS.some(([id]) => id === tab) ? (tab as Tab) : "overview";
  if (!run.data) return run.error ? <ErrorNote error={run.error} /> : <Loading what="the run" />;
  const r = run.data;

  const cancel = async () => {
    const containers = distributed(r.spec) ? "Its containers are" : "Its container is";
    if (!confirm(`Cancel this run? ${containers} stopped (SIGTERM, then SIGKILL).`)) return;
    try {
      await call("POST", wsPath(workspace, `/runs/${runId}/cancel`));
      refresh();
    } catch (e) {
      setActionError(e as Error);
    }
  };
  const resubmit = async () => {
    try {
      const created = await call<Run>("POST", wsPath(workspace, "/runs"), resubmission(r));
      navigate(href("w", workspace, "runs", created.id));
    } catch (e) {
      setActionError(e as Error);
    }
  };

  return (
    <>
      <div class="page-head">
        <div>
          <p class="crumbs">
            <a href={href("w", workspace, "experiments")}>Experiments</a> /{" "}
            {experiment.data ? (
              <a href={hrefWith(["w", workspace, "runs"], { experiment: experiment.data.name })}>{experiment.data.name}</a>
            ) : (
              "…"
            )}
          </p>
          <h1>
            {r.display_name || `Run ${shortId(r.id)}`} <StatusBadge status={r.status} cancelling={r.cancel_requested && active} />
          </h1>
          <p class="muted small mono">{r.id}</p>
        </div>
        {allows(identity, "contributor") && (
          <div class="actions">
            {active && (
              <button class="danger" onClick={cancel} disabled={r.cancel_requested}>
                Cancel run
              </button>
            )}
            {executes(r) && <button onClick={resubmit}>Resubmit</button>}
          </div>
        )}
      </div>
      <ErrorNote error={actionError} />
      {r.error && <p class="error">{r.error}</p>}
      {r.status === "Queued" && executes(r) && <Waiting workspace={workspace} run={r} />}
      {events.data && <Timeline events={events.data.items} status={r.status} executes={executes(r)} />}
      <Tabs tabs={TABS} current={current} onSelect={(t) => navigate(hrefWith(["w", workspace, "runs", runId], { tab: t }), true)} />
      {current === "overview" && <Overview workspace={workspace} run={r} />}
      {current === "logs" && (feed ? <LogView feed={feed} /> : <Loading what="the log" />)}
      {current === "metrics" && <RunMetrics workspace={workspace} runId={runId} active={active} />}
      {current === "files" && <RunFiles workspace={workspace} runId={runId} ended={!active} />}
    </>
  );
}

function Overview({ workspace, run }: { workspace: string; run: Run }) {
  const spec = run.spec;
  const params = useMemo(() => parameters(spec.arguments), [spec.arguments]);
  const environment = spec.environment;
  const resources = spec.resources;
  const isDistributed = distributed(spec);
  const perNode = spec.process_count_per_node ?? 1;
  const ranks = run.placement?.ranks ?? [];
  return (
    <div class="grid">
      <Section title="Run">
        <Facts
          rows={[
            ["Submitted", formatTime(run.created_at)],
            ["Started", formatTime(run.started_at)],
            ["Ended", formatTime(run.ended_at)],
            ["Duration", durationBetween(run.started_at, run.ended_at)],
            ["Exit code", run.exit_code ?? null],
            [
              "Compute target",
              !executes(run) ? (
                "none (records only)"
              ) : spec.compute_target ? (
                <a href={href("w", workspace, "compute", spec.compute_target)}>{spec.compute_target}</a>
              ) : (
                "local (the server's Docker engine)"
              ),
            ],
            ["Distribution", isDistributed ? <span data-testid="shape">{shapeOf(spec)}</span> : null],
            [
              isDistributed ? "Resources per node" : "Resources",
              resources ? resourcesText(resources, isDistributed ? perNode : 1) : null,
            ],
            [
              "Placed on",
              run.placement ? (
                ranks.length ? (
                  <RanksSummary workspace={workspace} placement={run.placement} />
                ) : (
                  <Placement workspace={workspace} placement={run.placement} />
                )
              ) : null,
            ],
            ["Time limit", spec.time_limit_seconds ? `${spec.time_limit_seconds} s` : null],
          ]}
        />
      </Section>
      {ranks.length > 0 && (
        <Section title={`Ranks (${ranks.length})`} wide>
          <Ranks workspace={workspace} run={run} ranks={ranks} />
        </Section>
      )}
      <Section title="Parameters">
        {params.length ? <Facts rows={params.map(([k, v]) => [k, <code>{v}</code>])} /> : <p class="muted">No parameters.</p>}
        {spec.script && (
          <p class="mono small">
            {spec.script} {(spec.arguments ?? []).join(" ")}
          </p>
        )}
        {spec.command && <p class="mono small">{[...spec.command, ...(spec.arguments ?? [])].join(" ")}</p>}
      </Section>
      <Section title="Tags">
        <Chips entries={run.tags} />
      </Section>
      <Section title="Properties">
        {Object.keys(run.properties).length ? <Facts rows={Object.entries(run.properties)} /> : <p class="muted">None.</p>}
      </Section>
      <Section title="Environment">
        {!environment ? (
          <p class="muted">None: the run only records.</p>
        ) : environment.name ? (
          <p>
            <a href={hrefWith(["w", workspace, "environments", environment.name], { version: String(environment.version ?? "") })}>
              {environment.name} version {environment.version}
            </a>
          </p>
        ) : (
          <pre class="json">{JSON.stringify(environment.spec, null, 2)}</pre>
        )}
        {spec.snapshot && <p class="muted small mono">source snapshot {spec.snapshot.slice(0, 16)}…</p>}
      </Section>
      <Section title="Datasets">
        {spec.inputs?.length ? (
          <Facts
            rows={spec.inputs.map((input) => [
              input.name,
              <>
                <a href={hrefWith(["w", workspace, "datasets", input.dataset], { version: String(input.version) })}>
                  {input.dataset} version {input.version}
                </a>{" "}
                <span class="muted">
                  ({input.mode} at {input.path})
                </span>
              </>,
            ])}
          />
        ) : (
          <p class="muted">No dataset inputs.</p>
        )}
      </Section>
    </div>
  );
}

/** `2 GPU, 4 CPU, 8192 MiB`; on a node shared by several processes of a distributed run, how they share it. */
function resourcesText(resources: NonNullable<Run["spec"]["resources"]>, processesPerNode: number): string {
  const parts = [
    resources.gpus ? `${resources.gpus} GPU` : null,
    resources.cpus ? `${resources.cpus} CPU` : null,
    resources.memory_mb ? `${resources.memory_mb} MiB` : null,
  ].filter(Boolean);
  if (!parts.length) return "unlimited";
  return parts.join(", ") + (processesPerNode > 1 ? `, split evenly between its ${processesPerNode} processes` : "");
}

/** Why a Queued run has not started: the scheduler's reason on a compute target. */
function Waiting({ workspace, run }: { workspace: string; run: Run }) {
  const target = run.spec.compute_target;
  return (
    <p class="notice" data-testid="wait-reason">
      <strong>Waiting to start:</strong>{" "}
      {run.wait_reason ? (
        run.wait_reason
      ) : target ? (
        <span class="muted">the scheduler has not looked at it yet</span>
      ) : (
        <span class="muted">for the server's own Docker engine</span>
      )}
      {target && (
        <>
          {" "}
          (<a href={href("w", workspace, "compute", target)}>{target}'s queue</a>)
        </>
      )}
    </p>
  );
}

/** The node a run was placed on and what it holds there: `gpu-1 (gpucluster): GPUs 0,3, 8 CPUs, 64.0 GiB`. */
function Placement({ workspace, placement }: { workspace: string; placement: RunPlacement }) {
  return (
    <span data-testid="placement">
      {placement.node} (<a href={href("w", workspace, "compute", placement.compute_target)}>{placement.compute_target}</a>):{" "}
      {formatHolding(placement.gpus, placement.cpus, placement.memory_mb)}
      {placement.gpus.length > 0 && <span class="muted small"> {placement.gpu_mode}</span>}
    </span>
  );
}

/** Where a distributed run's ranks went: `2 ranks on 2 nodes of gpucluster: node-1, node-2`. */
function RanksSummary({ workspace, placement }: { workspace: string; placement: RunPlacement }) {
  const ranks = placement.ranks ?? [];
  const nodes = [...new Set(ranks.map((r) => r.node))];
  return (
    <span data-testid="placement">
      {ranks.length} {ranks.length === 1 ? "rank" : "ranks"} on {nodes.length} {nodes.length === 1 ? "node" : "nodes"} of{" "}
      <a href={href("w", workspace, "compute", placement.compute_target)}>{placement.compute_target}</a>: {nodes.join(", ")}
    </span>
  );
}

/** A distributed run's ranks, in rank order: the node each went to, what it holds there, and where its peers reach it. */
function Ranks({ workspace, run, ranks }: { workspace: string; run: Run; ranks: RankPlacement[] }) {
  const tasks = tensorflowTasks(run.spec);
  const target = run.placement?.compute_target;
  return (
    <TableWrap>
      <table class="list ranks" data-testid="ranks">
        <thead>
          <tr>
            <th class="num">Rank</th>
            {tasks.length > 0 && <th>Task</th>}
            <th>Node</th>
            <th>GPUs</th>
            <th class="num">CPUs</th>
            <th class="num">Memory</th>
            <th>Address</th>
          </tr>
        </thead>
        <tbody>
          {ranks.map((rank, i) => (
            <tr key={i} data-rank={i}>
              <td class="num">{i}</td>
              {tasks.length > 0 && <td>{tasks[i] ?? "—"}</td>}
              <td>{target ? <a href={href("w", workspace, "compute", target)}>{rank.node}</a> : rank.node}</td>
              <td>
                {rank.gpus.length ? rank.gpus.join(",") : <span class="muted">none</span>}
                {rank.gpus.length > 0 && <span class="muted small"> {rank.gpu_mode}</span>}
              </td>
              <td class="num">{rank.cpus ? formatCpus(rank.cpus) : <span class="muted">unlimited</span>}</td>
              <td class="num nowrap">{rank.memory_mb ? formatMemory(rank.memory_mb) : <span class="muted">unlimited</span>}</td>
              <td class="mono">{rank.address.includes(":") ? `[${rank.address}]:${rank.port}` : `${rank.address}:${rank.port}`}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}
