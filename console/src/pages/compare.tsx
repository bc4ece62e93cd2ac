// Several runs side by side: one chart per metric with a line per run (from
// /metrics/compare, downsampled by the server), and a table of their
// parameters, tags, properties and latest metric values with differences marked.

import { useMemo } from "preact/hooks";
import uPlot from "uplot";
import { get, query, wsPath } from "../api";
import { Chart, PALETTE } from "../components/chart";
import { ErrorNote, Loading, Section, StatusBadge, TableWrap } from "../components/ui";
import { formatMetric, shortId } from "../format";
import { useAsync } from "../hooks";
import { href } from "../router";
import { parameters } from "../run-spec";
import type { ComparedRun, Run } from "../types";
import { toSeries } from "./run-metrics";

/** Points per run and metric in the overlaid charts. */
const CHART_POINTS = 500;

const runLabel = (run: Run) => run.display_name || shortId(run.id);

export function ComparePage({ workspace, runIds }: { workspace: string; runIds: string[] }) {
  const loaded = useAsync(
    async (signal) => {
      if (!runIds.length) return null;
      const [runs, comparison] = await Promise.all([
        Promise.all(runIds.map((id) => get<Run>(wsPath(workspace, `/runs/${id}`), signal))),
        get<{ runs: ComparedRun[] }>(wsPath(workspace, "/metrics/compare" + query({ run: runIds, max_points: CHART_POINTS })), signal),
      ]);
      return { runs, comparison: comparison.runs };
    },
    [workspace, runIds.join(",")],
  );

  const charts = useMemo(() => {
    if (!loaded.data) return [];
    const names = new Set<string>();
    for (const run of loaded.data.comparison) for (const m of run.metrics) if (m.kind === "scalar") names.add(m.name);
    return [...names].sort().map((name) => {
      // One table per run, joined on the steps; a run without the metric gets an empty line.
      const tables = loaded.data!.comparison.map((run) => {
        const history = run.metrics.find((m) => m.name === name)?.history ?? [];
        return toSeries(history) as uPlot.AlignedData;
      });
      return { name, data: uPlot.join(tables) };
    });
  }, [loaded.data]);

  if (runIds.length < 2) {
    return (
      <p class="muted">
        Choose two runs or more in the <a href={href("w", workspace, "runs")}>runs table</a> and press Compare.
      </p>
    );
  }
  if (!loaded.data) return loaded.error ? <ErrorNote error={loaded.error} /> : <Loading what="the runs" />;
  const { runs, comparison } = loaded.data;
  const labels = runs.map(runLabel);
  return (
    <>
      <div class="page-head">
        <h1>Compare {runs.length} runs</h1>
      </div>
      <p class="legend">
        {runs.map((run, i) => (
          <a key={run.id} href={href("w", workspace, "runs", run.id)} class="legend-item">
            <span class="swatch" style={{ background: PALETTE[i % PALETTE.length] }} />
            {runLabel(run)} <StatusBadge status={run.status} />
          </a>
        ))}
      </p>
      <div class="charts">
        {charts.length === 0 && <p class="muted">These runs logged no scalar metrics.</p>}
        {charts.map((chart) => (
          <figure class="card chart-card" key={chart.name} data-metric={chart.name}>
            <figcaption>
              <strong>{chart.name}</strong>
            </figcaption>
            <Chart data={chart.data} labels={labels} />
          </figure>
        ))}
      </div>
      <Section title="Side by side">
        <CompareTable runs={runs} comparison={comparison} />
      </Section>
    </>
  );
}

function CompareTable({ runs, comparison }: { runs: Run[]; comparison: ComparedRun[] }) {
  const rows = useMemo(() => {
    const sections: [string, (run: Run, i: number) => Record<string, string>][] = [
      ["parameter", (run) => Object.fromEntries(parameters(run.spec.arguments))],
      ["tag", (run) => run.tags],
      ["property", (run) => run.properties],
      ["metric", (_, i) => Object.fromEntries(comparison[i].metrics.map((m) => [m.name, formatMetric(m.latest.value)]))],
    ];
    return sections.flatMap(([kind, read]) => {
      const values = runs.map(read);
      const keys = [...new Set(values.flatMap((v) => Object.keys(v)))].sort();
      return keys.map((key) => ({ kind, key, cells: values.map((v) => v[key]) }));
    });
  }, [runs, comparison]);
  return (
    <TableWrap>
      <table class="list compare">
        <thead>
          <tr>
            <th />
            <th />
            {runs.map((run, i) => (
              <th key={run.id}>
                <span class="swatch" style={{ background: PALETTE[i % PALETTE.length] }} /> {runLabel(run)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => {
            const differs = new Set(row.cells).size > 1;
            return (
              <tr key={`${row.kind}:${row.key}`} class={differs ? "differs" : ""}>
                <td class="muted">{row.kind}</td>
                <th scope="row">{row.key}</th>
                {row.cells.map((cell, i) => (
                  <td key={i} class="num">
                    {cell ?? <span class="muted">—</span>}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
    </TableWrap>
  );
}
