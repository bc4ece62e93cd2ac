// The runs table: server-side filters, sort and pages (the API's cursors), so
// a workspace with tens of thousands of runs loads one page at a time. The
// latest values of chosen metrics come from one /metrics/compare call per page.

import { useMemo, useState } from "preact/hooks";
import { get, query, wsPath } from "../api";
import { Chips, ErrorNote, Loading, StatusBadge, TableWrap } from "../components/ui";
import { durationBetween, formatMetric, formatTime, shortId } from "../format";
import { useAsync, useInterval } from "../hooks";
import { href, hrefWith, navigate } from "../router";
import { ENDED, RUN_STATUSES, type ComparedRun, type Experiment, type Page, type Run } from "../types";

/** Most runs one comparison call takes. */
const COMPARE_LIMIT = 100;
const PAGE_SIZES = ["25", "50", "100", "250"];
const ACTIVE = RUN_STATUSES.filter((s) => !ENDED.includes(s)).join(",");

/** Splits `a=1, b` into ["a=1", "b"]. */
function list(text: string | null): string[] {
  return (text ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A run's latest metric values by name. */
type MetricRow = Record<string, unknown>;

async function latestMetrics(workspace: string, runs: Run[], signal: AbortSignal): Promise<Map<string, MetricRow>> {
  const values = new Map<string, MetricRow>();
  for (let i = 0; i < runs.length; i += COMPARE_LIMIT) {
    const ids = runs.slice(i, i + COMPARE_LIMIT).map((r) => r.id);
    const answer = await get<{ runs: ComparedRun[] }>(wsPath(workspace, "/metrics/compare" + query({ run: ids })), signal);
    for (const run of answer.runs) {
      values.set(run.run_id, Object.fromEntries(run.metrics.map((m) => [m.name, m.latest.value])));
    }
  }
  return values;
}

export function RunsPage({ workspace, query: params }: { workspace: string; query: URLSearchParams }) {
  const filterKey = params.toString();
  const experiment = params.get("experiment") ?? "";
  const orderBy = params.get("order_by") ?? "";
  const order = params.get("order") ?? "desc";
  const limit = params.get("limit") ?? "50";
  const columns = list(params.get("cols"));
  // Cursors belong to the filters they were issued for: new filters start at page 1.
  const [paging, setPaging] = useState<{ key: string; cursors: string[]; cursor?: string }>({ key: filterKey, cursors: [] });
  const { cursors, cursor } = paging.key === filterKey ? paging : { cursors: [], cursor: undefined };
  const [selected, setSelected] = useState<Set<string>>(new Set());

  const experiments = useAsync(
    (signal) => get<Page<Experiment>>(wsPath(workspace, "/experiments?limit=1000&include_archived=true"), signal),
    [workspace],
  );
  const experimentNames = useMemo(
    () => new Map((experiments.data?.items ?? []).map((e) => [e.id, e.name])),
    [experiments.data],
  );

  const page = useAsync(
    async (signal) => {
      const runs = await get<Page<Run>>(
        wsPath(
          workspace,
          "/runs" +
            query({
              experiment,
              status: params.get("status"),
              tag: list(params.get("tag")),
              property: list(params.get("property")),
              metric: list(params.get("metric")),
              created_after: params.get("created_after"),
              created_before: params.get("created_before"),
              order_by: orderBy,
              order: orderBy ? order : undefined,
              limit,
              cursor,
            }),
        ),
        signal,
      );
      const metrics = runs.items.length ? await latestMetrics(workspace, runs.items, signal) : new Map<string, MetricRow>();
      return { runs, metrics };
    },
    [workspace, filterKey, cursor],
  );
  const anyActive = page.data?.runs.items.some((r) => !ENDED.includes(r.status)) ?? false;
  useInterval(page.reload, 5000, anyActive);

  const metricNames = useMemo(() => {
    const names = new Set(columns);
    page.data?.metrics.forEach((row) => Object.keys(row).forEach((n) => names.add(n)));
    return [...names].sort();
  }, [page.data, filterKey]);

  const setParams = (changes: Record<string, string | undefined>) => {
    const next: Record<string, string> = Object.fromEntries(params.entries());
    for (const [key, value] of Object.entries(changes)) {
      if (value) next[key] = value;
      else delete next[key];
    }
    navigate(hrefWith(["w", workspace, "runs"], next));
  };
  const toggleColumn = (name: string) => {
    const next = columns.includes(name) ? columns.filter((c) => c !== name) : [...columns, name];
    setParams({ cols: next.join(",") });
  };
  const sortBy = (name: string) => {
    // Descending, then ascending, then back to newest first.
    const current = orderBy === `metric:${name}`;
    if (!current) setParams({ order_by: `metric:${name}`, order: "desc" });
    else if (order === "desc") setParams({ order: "asc" });
    else setParams({ order_by: undefined, order: undefined });
  };
  const toggleRun = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };
  const runs = page.data?.runs.items ?? [];

  return (
    <>
      <div class="page-head">
        <h1>{experiment ? <>Runs of {experiment}</> : "Runs"}</h1>
        <div class="actions">
          <button
            class="primary"
            disabled={selected.size < 2}
            onClick={() => navigate(hrefWith(["w", workspace, "compare"], { run: [...selected] }))}
          >
            Compare selected ({selected.size})
          </button>
          {selected.size > 0 && <button onClick={() => setSelected(new Set())}>Clear selection</button>}
        </div>
      </div>
      <Filters params={params} experiments={experiments.data?.items ?? []} onApply={setParams} />
      <details class="columns">
        <summary>Metric columns ({columns.length})</summary>
        {metricNames.length === 0 ? (
          <p class="muted">No run on this page has logged a metric.</p>
        ) : (
          metricNames.map((name) => (
            <label class="check" key={name}>
              <input type="checkbox" checked={columns.includes(name)} onChange={() => toggleColumn(name)} />
              {name}
            </label>
          ))
        )}
      </details>
      <ErrorNote error={page.error} />
      {!page.data ? (
        <Loading what="runs" />
      ) : runs.length === 0 ? (
        <p class="muted">No runs match.</p>
      ) : (
        <TableWrap>
          <table class="list runs">
            <thead>
              <tr>
                <th class="select">
                  <span class="sr-only">Select</span>
                </th>
                <th>Run</th>
                <th>Status</th>
                {!experiment && <th>Experiment</th>}
                <th>Submitted</th>
                <th>Duration</th>
                <th>Compute</th>
                <th>Tags</th>
                {columns.map((name) => (
                  <th key={name} class="metric">
                    <button class="link" onClick={() => sortBy(name)} title="Sort by this metric's latest value">
                      {name}
                      {orderBy === `metric:${name}` ? (order === "asc" ? " ▲" : " ▼") : ""}
                    </button>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {runs.map((run) => (
                <tr key={run.id} data-run-id={run.id} class={selected.has(run.id) ? "selected" : ""}>
                  <td class="select">
                    <input
                      type="checkbox"
                      aria-label={`Select run ${run.display_name ?? shortId(run.id)}`}
                      checked={selected.has(run.id)}
                      onChange={() => toggleRun(run.id)}
                    />
                  </td>
                  <td class="nowrap">
                    <a href={href("w", workspace, "runs", run.id)}>{run.display_name || shortId(run.id)}</a>
                  </td>
                  <td>
                    <StatusBadge status={run.status} cancelling={run.cancel_requested && !ENDED.includes(run.status)} />
                  </td>
                  {!experiment && <td>{experimentNames.get(run.experiment_id) ?? shortId(run.experiment_id)}</td>}
                  <td class="nowrap">{formatTime(run.created_at)}</td>
                  <td class="nowrap num">{durationBetween(run.started_at, run.ended_at)}</td>
                  <td>{run.spec.script || run.spec.command ? (run.spec.compute_target ?? "local") : <span class="muted">records only</span>}</td>
                  <td>
                    <Chips entries={run.tags} />
                  </td>
                  {columns.map((name) => (
                    <td key={name} class="num">
                      {formatMetric(page.data!.metrics.get(run.id)?.[name])}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
      <div class="pager">
        <button
          disabled={!cursors.length}
          onClick={() =>
            setPaging({ key: filterKey, cursors: cursors.slice(0, -1), cursor: cursors[cursors.length - 1] || undefined })
          }
        >
          Previous
        </button>
        <span class="muted">Page {cursors.length + 1}</span>
        <button
          disabled={!page.data?.runs.next_cursor}
          onClick={() => setPaging({ key: filterKey, cursors: [...cursors, cursor ?? ""], cursor: page.data!.runs.next_cursor! })}
        >
          Next
        </button>
        <label>
          Per page{" "}
          <select value={limit} onChange={(e) => setParams({ limit: (e.target as HTMLSelectElement).value })}>
            {PAGE_SIZES.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
      </div>
    </>
  );
}

/** `2026-11-23T12:00` (a datetime-local field, local time) to RFC 3339 and back. */
const toRfc3339 = (local: string) => (local ? new Date(local).toISOString() : undefined);
const toLocalField = (iso: string | null) => {
  if (!iso) return "";
  const t = new Date(iso);
  return new Date(t.getTime() - t.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

function Filters({
  params,
  experiments,
  onApply,
}: {
  params: URLSearchParams;
  experiments: Experiment[];
  onApply: (changes: Record<string, string | undefined>) => void;
}) {
  const submit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const text = (name: string) => String(form.get(name) ?? "").trim() || undefined;
    onApply({
      experiment: text("experiment"),
      status: text("status"),
      tag: text("tag"),
      property: text("property"),
      metric: text("metric"),
      created_after: toRfc3339(String(form.get("created_after") ?? "")),
      created_before: toRfc3339(String(form.get("created_before") ?? "")),
    });
  };
  const experiment = params.get("experiment") ?? "";
  const names = experiments.map((e) => e.name);
  // One named in the URL stays a choice even when it is not among those listed (an id, say).
  if (experiment && !names.includes(experiment)) names.unshift(experiment);
  // Keyed on the query and the choices, so the fields show what the URL says once both are known.
  return (
    <form class="filters" onSubmit={submit} key={`${params}|${names.length}`}>
      <label>
        Experiment
        {/* `selected` on the options: a select has no default value of its own to set. */}
        <select name="experiment">
          <option value="">All</option>
          {names.map((name) => (
            <option key={name} value={name} selected={name === experiment}>
              {name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Status
        <select name="status">
          <option value="">Any</option>
          <option value={ACTIVE} selected={params.get("status") === ACTIVE}>
            Active
          </option>
          {RUN_STATUSES.map((s) => (
            <option key={s} value={s} selected={params.get("status") === s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <label>
        Tags
        <input name="tag" placeholder="team=vision, stage" defaultValue={params.get("tag") ?? ""} />
      </label>
      <label>
        Properties
        <input name="property" placeholder="arch=cnn" defaultValue={params.get("property") ?? ""} />
      </label>
      <label>
        Metrics
        <input name="metric" placeholder="accuracy>=0.9" defaultValue={params.get("metric") ?? ""} />
      </label>
      <label>
        Submitted after
        <input type="datetime-local" name="created_after" defaultValue={toLocalField(params.get("created_after"))} />
      </label>
      <label>
        before
        <input type="datetime-local" name="created_before" defaultValue={toLocalField(params.get("created_before"))} />
      </label>
      <button type="submit">Apply</button>
    </form>
  );
}
