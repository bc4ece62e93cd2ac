// How times, durations, sizes and metric values read on the page.

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

export function formatTime(iso?: string | null): string {
  return iso ? dateTime.format(new Date(iso)) : "—";
}

/** The time alone, for stages of one run that mostly share a day. */
export function formatClock(iso: string): string {
  return timeOfDay.format(new Date(iso));
}

/** `1h 02m`, `3m 05s`, `12.3s`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "—";
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const s = Math.floor(seconds) % 60;
  const m = Math.floor(seconds / 60) % 60;
  const h = Math.floor(seconds / 3600);
  const pad = (n: number) => String(n).padStart(2, "0");
  return h ? `${h}h ${pad(m)}m` : `${m}m ${pad(s)}s`;
}

/** From `start` to `end`, or to now while it has not ended. */
export function durationBetween(start?: string | null, end?: string | null): string {
  if (!start) return "—";
  const until = end ? Date.parse(end) : Date.now();
  return formatDuration(until - Date.parse(start));
}

/** Memory given in MiB, as the API gives it: `8.0 GiB`. */
export function formatMemory(mb: number): string {
  return `${(mb / 1024).toFixed(1)} GiB`;
}

/** CPU cores, which may be fractions: `8`, `0.5`, `1.25`. */
export function formatCpus(cpus: number): string {
  return String(Math.round(cpus * 100) / 100);
}

/** What a run placed on a node holds there: `GPUs 0,3, 8 CPUs, 64.0 GiB`. */
export function formatHolding(gpus: number[], cpus?: number | null, memoryMb?: number | null): string {
  const parts = [
    gpus.length ? `${gpus.length === 1 ? "GPU" : "GPUs"} ${gpus.join(",")}` : "no GPU",
    cpus ? `${formatCpus(cpus)} ${cpus === 1 ? "CPU" : "CPUs"}` : null,
    memoryMb ? formatMemory(memoryMb) : null,
  ];
  return parts.filter(Boolean).join(", ");
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** A metric value as a number for charts: the API sends NaN and ±Infinity as strings. */
export function metricNumber(value: unknown): number | null {
  if (typeof value === "number") return value;
  if (value === "NaN") return NaN;
  if (value === "Infinity") return Infinity;
  if (value === "-Infinity") return -Infinity;
  return null;
}

/** A metric value in a table cell: numbers to 6 significant digits, the rest as JSON. */
export function formatMetric(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(6).replace(/\.?0+(e|$)/, "$1");
  if (typeof value === "string") return value;
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

/** The short form of an id, as in git. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}
