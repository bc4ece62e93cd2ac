// A run's metrics: a chart per scalar metric over its steps, and the latest
// value of the others (lists, rows, tables, images). Charts load the whole
// history downsampled by the server; zooming into a range reads that range's
// points in full when it holds at most one page of them.

import { useEffect, useMemo, useState } from "preact/hooks";
import type uPlot from "uplot";
import { blobUrl, get, query, wsPath } from "../api";
import { Chart } from "../components/chart";
import { ErrorNote, Loading } from "../components/ui";
import { formatMetric, metricNumber } from "../format";
import { useAsync, useInterval } from "../hooks";
import type { History, Metric, Point } from "../types";

/** Points asked for the whole-history view. */
const OVERVIEW_POINTS = 1000;
/** The API's largest history page: a zoomed range with more stays downsampled. */
const DETAIL_PAGE = 10_000;

/** Steps and values for uPlot; NaN and infinities become gaps. */
export function toSeries(points: Point[]): [number[], (number | null)[]] {
  const steps = points.map((p) => p.step);
  const values = points.map((p) => {
    const n = metricNumber(p.value);
    return n !== null && Number.isFinite(n) ? n : null;
  });
  return [steps, values];
}

export function RunMetrics({ workspace, runId, active }: { workspace: string; runId: string; active: boolean }) {
  const metrics = useAsync(
    (signal) => get<{ items: Metric[] }>(wsPath(workspace, `/runs/${runId}/metrics`), signal),
    [workspace, runId],
  );
  useInterval(metrics.reload, 3000, active);
  if (!metrics.data) return metrics.error ? <ErrorNote error={metrics.error} /> : <Loading what="metrics" />;
  const items = metrics.data.items;
  if (!items.length) {
    return (
      <p class="muted">
        No metrics logged. A script logs them with <code>Run.get_context().log("loss", 0.3)</code>.
      </p>
    );
  }
  const scalars = items.filter((m) => m.kind === "scalar");
  const others = items.filter((m) => m.kind !== "scalar");
  return (
    <>
      <div class="charts">
        {scalars.map((m) => (
          <MetricChart key={m.name} workspace={workspace} runId={runId} metric={m} />
        ))}
      </div>
      {others.map((m) => (
        <OtherMetric key={m.name} workspace={workspace} runId={runId} metric={m} />
      ))}
    </>
  );
}

function MetricChart({ workspace, runId, metric }: { workspace: string; runId: string; metric: Metric }) {
  const history = (params: Record<string, string | number>, signal: AbortSignal) =>
    get<History>(wsPath(workspace, `/runs/${runId}/metrics/history${query({ name: metric.name, ...params })}`), signal);
  // Read again whenever the run logged more points.
  const overview = useAsync((signal) => history({ max_points: OVERVIEW_POINTS }, signal), [workspace, runId, metric.name, metric.count]);
  const [range, setRange] = useState<[number, number] | null>(null);
  const [detail, setDetail] = useState<{ range: [number, number]; points: Point[] } | null>(null);
  const downsampled = (overview.data?.points.length ?? 0) < metric.count;

  useEffect(() => {
    if (!range || !downsampled) return setDetail(null);
    const controller = new AbortController();
    const [from, to] = range;
    history({ after_step: Math.floor(from) - 1, limit: DETAIL_PAGE }, controller.signal).then(
      (page) => {
        const inRange = page.points.filter((p) => p.step <= to);
        // A page that ends before the range does means the range is denser than one page.
        const whole = !page.next_after_step || page.points[page.points.length - 1].step >= to;
        setDetail(whole ? { range, points: inRange } : null);
      },
      () => setDetail(null),
    );
    return () => controller.abort();
  }, [range?.[0], range?.[1], downsampled, metric.count]);

  const data = useMemo<uPlot.AlignedData | null>(() => {
    if (!overview.data) return null;
    let points = overview.data.points;
    if (detail) {
      const [from, to] = detail.range;
      points = [...points.filter((p) => p.step < from), ...detail.points, ...points.filter((p) => p.step > to)];
    }
    return toSeries(points);
  }, [overview.data, detail]);

  const onZoom = (next: [number, number] | null) => {
    // Redrawing with the same range reports it again: only a new range counts.
    if (next?.[0] === range?.[0] && next?.[1] === range?.[1]) return;
    setRange(next);
  };

  return (
    <figure class="card chart-card" data-metric={metric.name}>
      <figcaption>
        <strong>{metric.name}</strong>
        <span class="muted">
          {" "}
          latest {formatMetric(metric.latest.value)} · {metric.count.toLocaleString()} points
          {downsampled && !detail ? ` · drawn from ${overview.data?.points.length.toLocaleString() ?? "…"}` : ""}
          {detail ? ` · zoomed: every point` : ""}
        </span>
      </figcaption>
      <ErrorNote error={overview.error} />
      {data ? <Chart data={data} labels={[metric.name]} onZoom={onZoom} /> : <Loading />}
    </figure>
  );
}

function OtherMetric({ workspace, runId, metric }: { workspace: string; runId: string; metric: Metric }) {
  const value = metric.latest.value;
  const imagePath = metric.kind === "image" ? (value as { path?: string }).path : undefined;
  const image = useAsync(
    async () =>
      imagePath ? blobUrl(wsPath(workspace, `/runs/${runId}/files/download${query({ path: imagePath })}`)) : undefined,
    [imagePath],
  );
  useEffect(() => () => void (image.data && URL.revokeObjectURL(image.data)), [image.data]);
  return (
    <section class="card" data-metric={metric.name}>
      <h3>
        {metric.name} <span class="muted">({metric.kind})</span>
      </h3>
      {imagePath ? (
        image.data ? (
          <img class="metric-image" src={image.data} alt={metric.name} />
        ) : (
          <ErrorNote error={image.error} />
        )
      ) : (
        <pre class="json">{JSON.stringify(value, null, 2)}</pre>
      )}
    </section>
  );
}
