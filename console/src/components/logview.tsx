// The run page's log: a tab per source (rank by rank for a distributed run),
// search, jump to the end, and the virtualised view underneath.

import { useEffect, useRef, useState } from "preact/hooks";
import { defaultSource, sourceRank, type LogFeed } from "../logs";
import { VirtualLog, type LogViewState } from "./virtual-log";

const EMPTY: LogViewState = { lines: 0, matches: 0, current: -1, searching: false, following: true };

export function LogView({ feed }: { feed: LogFeed }) {
  const [sources, setSources] = useState(feed.sources);
  const [source, setSource] = useState<string>();
  const [state, setState] = useState(EMPTY);
  const [term, setTerm] = useState("");
  // The term typed, until the view has been told (searches wait for a pause in typing).
  const [pending, setPending] = useState(false);
  const [onlyMatches, setOnlyMatches] = useState(false);
  const [, setTick] = useState(0);
  const viewport = useRef<HTMLDivElement>(null);
  const view = useRef<VirtualLog | null>(null);

  useEffect(() => feed.onSources(setSources), [feed]);
  const shown = source && sources.includes(source) ? source : defaultSource(sources, feed.preferred);

  useEffect(() => {
    view.current = new VirtualLog(viewport.current!, setState);
    return () => view.current?.destroy();
  }, []);

  useEffect(() => {
    if (!shown) return;
    feed.load(shown);
    const buffer = feed.buffer(shown);
    view.current!.show(buffer);
    // The status line (complete, failed) follows the buffer too.
    return buffer.subscribe(() => setTick((t) => t + 1));
  }, [feed, shown]);

  useEffect(() => {
    const timer = setTimeout(() => {
      view.current!.search(term, onlyMatches);
      setPending(false);
    }, 150);
    return () => clearTimeout(timer);
  }, [term, onlyMatches, shown]);

  const buffer = shown ? feed.buffer(shown) : undefined;
  const progress = buffer?.error
    ? `stopped: ${buffer.error.message}`
    : buffer?.complete
      ? "complete"
      : feed.live
        ? "live"
        : "loading…";

  return (
    <div class="logs">
      <div class="log-sources" role="tablist" aria-label="Log sources">
        {sources.length === 0 && <span class="muted">{feed.live ? "No log lines yet." : "This run has no log lines."}</span>}
        {sources.map((s, i) => {
          // A distributed run's sources come rank by rank; a rule marks where the next rank's begin.
          const rank = sourceRank(s);
          const nextRank = i > 0 && rank !== undefined && rank !== (sourceRank(sources[i - 1]) ?? 0);
          return (
            <button
              key={s}
              role="tab"
              aria-selected={s === shown}
              class={[s === shown ? "active" : "", nextRank ? "next-rank" : ""].filter(Boolean).join(" ")}
              data-rank={rank}
              onClick={() => setSource(s)}
            >
              {s}
            </button>
          );
        })}
      </div>
      <div class="log-tools">
        <input
          type="search"
          placeholder="Search the log"
          aria-label="Search the log"
          value={term}
          onInput={(e) => {
            setTerm((e.target as HTMLInputElement).value);
            setPending(true);
          }}
          onKeyDown={(e) => e.key === "Enter" && view.current!.step(e.shiftKey ? -1 : 1)}
        />
        <button onClick={() => view.current!.step(-1)} disabled={!state.matches} aria-label="Previous match">
          ↑
        </button>
        <button onClick={() => view.current!.step(1)} disabled={!state.matches} aria-label="Next match">
          ↓
        </button>
        <label class="check">
          <input type="checkbox" checked={onlyMatches} onChange={(e) => setOnlyMatches((e.target as HTMLInputElement).checked)} />
          Only matching lines
        </label>
        <span class="muted log-count">
          {term ? `${state.current >= 0 ? `${state.current + 1} of ` : ""}${state.matches.toLocaleString()} matches${state.searching || pending ? "…" : ""} · ` : ""}
          <span data-testid="log-line-count">{state.lines.toLocaleString()}</span> lines · {progress}
        </span>
        <span class="spacer-flex" />
        <button onClick={() => view.current!.jumpToStart()}>Top</button>
        <button class={state.following ? "" : "primary"} onClick={() => view.current!.jumpToEnd()}>
          Jump to end
        </button>
      </div>
      <div class="log-viewport" ref={viewport} tabIndex={0} aria-label="Log lines" />
    </div>
  );
}
