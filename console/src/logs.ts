// A run's log in the browser: one buffer of lines per source, filled from the
// paged log endpoint for a run that has ended, or from the live SSE follow
// while it runs. Lines are kept as bare strings (their seq is their index),
// so a million lines cost the strings and little else.

import { get, query, readEvents, wsPath } from "./api";
import type { LogLine, LogPage } from "./types";

/** Lines per paged request: the API's largest page. */
const PAGE_LINES = 10_000;
/** The first request is smaller, so the first screen of a big log shows sooner. */
const FIRST_PAGE_LINES = 500;
/** Pages requested at once while loading a finished log. */
const PAGES_IN_FLIGHT = 4;
/** Wait before following again after the stream broke. */
const RETRY_MS = 2000;

export class LogBuffer {
  readonly lines: string[] = [];
  /** Every line is here: the run has ended and its log was read to the end. */
  complete = false;
  /** Why loading stopped short, if it did. */
  error?: Error;
  private listeners = new Set<() => void>();

  /** Adds the line at `seq`; lines already held (a resent stream) are skipped. */
  add(seq: number, text: string): void {
    if (seq >= this.lines.length) this.lines.push(text);
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(): void {
    this.listeners.forEach((listener) => listener());
  }
}

/**
 * The rank a source belongs to in a distributed run (`stdout/rank-2`,
 * `stderr/rank-2`, `logs/rank-2/train.log`), or undefined for a source of
 * the whole run (`stdout` of a single process, `build`).
 */
export function sourceRank(source: string): number | undefined {
  const match = /^(?:stdout|stderr)\/rank-(\d+)$|^logs\/rank-(\d+)\//.exec(source);
  return match ? Number(match[1] ?? match[2]) : undefined;
}

const byName = new Intl.Collator(undefined, { numeric: true });

/**
 * Rank by rank (rank 10 after rank 9; a source of the whole run goes with
 * rank 0's), and within a rank the well-known sources first, then the files
 * under ./logs by name: `stdout`, `stderr`, `build`, `logs/…` for a single
 * process; `stdout/rank-0`, `stderr/rank-0`, `build`, `logs/rank-0/…`,
 * `stdout/rank-1`, … for a distributed run.
 */
export function sourceOrder(a: string, b: string): number {
  const kind = (s: string) => ["stdout", "stderr", "build"].indexOf(s.replace(/\/rank-\d+$/, "")) >>> 0;
  return (sourceRank(a) ?? 0) - (sourceRank(b) ?? 0) || kind(a) - kind(b) || byName.compare(a, b);
}

/** The source shown first: the API's default (rank 0's output for a distributed run), else the first there is. */
export function defaultSource(sources: string[], preferred?: string): string | undefined {
  return [preferred, "stdout", "stdout/rank-0"].find((s) => s !== undefined && sources.includes(s)) ?? sources[0];
}

export class LogFeed {
  private buffers = new Map<string, LogBuffer>();
  private loading = new Set<string>();
  private controller = new AbortController();
  private sourceListeners = new Set<(sources: string[]) => void>();
  /** Whether the live follow is open (the run had not ended when it began). */
  live = false;
  /** The source the API reads when none is named: `stdout`, or `stdout/rank-0` for a distributed run. */
  preferred?: string;

  constructor(
    private readonly workspace: string,
    private readonly runId: string,
    /** Told about `status` events, so the page can refresh the run. */
    private readonly onStatus: (status: string) => void,
  ) {}

  get sources(): string[] {
    return [...this.buffers.keys()].sort(sourceOrder);
  }

  onSources(listener: (sources: string[]) => void): () => void {
    this.sourceListeners.add(listener);
    return () => this.sourceListeners.delete(listener);
  }

  buffer(source: string): LogBuffer {
    let buffer = this.buffers.get(source);
    if (!buffer) {
      buffer = new LogBuffer();
      this.buffers.set(source, buffer);
      const sources = this.sources;
      this.sourceListeners.forEach((listener) => listener(sources));
    }
    return buffer;
  }

  /** Starts reading: live over SSE while the run is active, else page by page on demand. */
  async start(active: boolean): Promise<void> {
    const first = await get<LogPage>(this.path("/logs", { limit: 1 }), this.controller.signal);
    this.preferred = first.source;
    first.sources.forEach((source) => this.buffer(source));
    if (active) void this.follow();
  }

  stop(): void {
    this.controller.abort();
  }

  /** Makes sure `source` is being read (a finished run's source loads when first shown). */
  load(source: string): void {
    if (this.live || this.loading.has(source)) return;
    this.loading.add(source);
    const buffer = this.buffer(source);
    this.readPages(source, buffer).catch((error) => {
      if (this.controller.signal.aborted) return;
      buffer.error = error;
      buffer.changed();
    });
  }

  private path(rest: string, params: Record<string, string | number | string[]>): string {
    return wsPath(this.workspace, `/runs/${this.runId}${rest}${query(params)}`);
  }

  /** Reads a finished source in order, a few pages in flight at once. */
  private async readPages(source: string, buffer: LogBuffer): Promise<void> {
    let next = buffer.lines.length;
    const request = (limit: number) => {
      const page = get<LogPage>(this.path("/logs", { source, from_seq: next, limit }), this.controller.signal);
      next += limit;
      // Requests past the end are dropped unread; keep their failure quiet.
      page.catch(() => {});
      return { page, limit };
    };
    const inFlight = [request(FIRST_PAGE_LINES)];
    while (inFlight.length < PAGES_IN_FLIGHT) inFlight.push(request(PAGE_LINES));
    for (;;) {
      const { page, limit } = inFlight.shift()!;
      const lines = (await page).lines;
      for (const line of lines) buffer.add(line.seq, line.line);
      buffer.changed();
      if (lines.length < limit) break;
      inFlight.push(request(PAGE_LINES));
    }
    buffer.complete = true;
    buffer.changed();
  }

  /** Follows every source live until the `end` event, reconnecting when the stream breaks. */
  private async follow(): Promise<void> {
    this.live = true;
    const signal = this.controller.signal;
    let ended = false;
    while (!ended && !signal.aborted) {
      const touched = new Set<LogBuffer>();
      let flush = 0;
      try {
        await readEvents(
          this.path("/logs/follow", {}),
          (event, data) => {
            if (event === "line") {
              const line: LogLine = JSON.parse(data);
              const buffer = this.buffer(line.source);
              buffer.add(line.seq, line.line);
              touched.add(buffer);
              // Tell the views once per burst of events, not once per line.
              flush ||= requestAnimationFrame(() => {
                flush = 0;
                touched.forEach((b) => b.changed());
                touched.clear();
              });
            } else if (event === "status") {
              this.onStatus(data);
            } else if (event === "end") {
              ended = true;
            }
          },
          signal,
        );
      } catch (error) {
        if (signal.aborted) return;
        console.warn("log follow broke; following again", error);
      }
      touched.forEach((b) => b.changed());
      if (!ended) await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
    this.live = false;
    for (const buffer of this.buffers.values()) {
      buffer.complete = true;
      buffer.changed();
    }
  }
}
