// A line chart over steps, drawn by uPlot: drag to zoom into a range of
// steps, double-click to see all of them again.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { useDarkMode } from "../hooks";

/** Series colours, distinguishable on light and dark backgrounds. */
export const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#db2777", "#65a30d", "#7c3aed", "#ea580c"];

export interface ChartProps {
  /** x (steps) then one array per series, aligned on the steps; null where a series has no point. */
  data: uPlot.AlignedData;
  labels: string[];
  height?: number;
  /** Told the step range in view after a zoom, or null once zoomed out to everything. */
  onZoom?: (range: [number, number] | null) => void;
}

function cssColor(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

function pointCount(data: uPlot.AlignedData): number {
  let count = 0;
  for (let s = 1; s < data.length; s++) for (const v of data[s]) if (v !== null && v !== undefined) count++;
  return count;
}

export function Chart({ data, labels, height = 240, onZoom }: ChartProps) {
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const zoomHandler = useRef(onZoom);
  zoomHandler.current = onZoom;
  const dark = useDarkMode();

  useEffect(() => {
    const element = holder.current!;
    const text = cssColor("--fg");
    const grid = cssColor("--grid");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const options: uPlot.Options = {
      width: element.clientWidth || 600,
      height,
      scales: { x: { time: false } },
      axes: [{ ...axis, label: "step", labelSize: 20 }, { ...axis, size: 64 }],
      series: [
        { label: "step" },
        ...labels.map((label, i) => ({ label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true })),
      ],
      cursor: { drag: { x: true, y: false, setScale: true } },
      hooks: {
        setScale: [
          (u, key) => {
            if (key !== "x" || !zoomHandler.current) return;
            const steps = u.data[0];
            const { min, max } = u.scales.x;
            if (min == null || max == null || !steps.length) return;
            const everything = min <= steps[0] && max >= steps[steps.length - 1];
            zoomHandler.current(everything ? null : [min, max]);
          },
        ],
      },
    };
    plot.current = new uPlot(options, data, element);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: element.clientWidth, height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [dark, height, labels.join("\n")]);

  useEffect(() => {
    const u = plot.current!;
    const { min, max } = u.scales.x;
    const steps = u.data[0];
    // Scales are null until the first draw.
    const zoomed = min != null && max != null && steps.length > 0 && (min > steps[0] || max < steps[steps.length - 1]);
    // New points (a live run, finer detail after a zoom) keep the range in view.
    u.setData(data, !zoomed);
    if (zoomed) u.setScale("x", { min, max });
  }, [data]);

  return <div class="chart" ref={holder} data-points={pointCount(data)} data-series={labels.length} />;
}
