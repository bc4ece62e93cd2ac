// A run's stages from its status history: each stage it went through with
// when it began and how long it lasted, then the stages still ahead.

import { durationBetween, formatClock, formatTime } from "../format";
import { ENDED, type RunEvent, type RunStatus } from "../types";

const PATH: RunStatus[] = ["Queued", "Preparing", "Starting", "Running", "Finalizing"];

export function Timeline({ events, status, executes }: { events: RunEvent[]; status: RunStatus; executes: boolean }) {
  const ended = ENDED.includes(status);
  const reached = new Set(events.map((e) => e.to));
  // A run that only records is never placed on a node: no stages lie ahead of it.
  const ahead = ended || !executes ? [] : [...PATH.filter((s) => !reached.has(s) && PATH.indexOf(s) > PATH.indexOf(status)), "Completed" as RunStatus];
  return (
    <ol class="timeline" aria-label="Stages">
      {events.map((event, i) => {
        const next = events[i + 1];
        const current = !next && !ended;
        return (
          <li key={i} class={`stage done status-${event.to.toLowerCase()}${current ? " current" : ""}`} title={event.reason}>
            <span class="stage-name">{event.to}</span>
            <time class="stage-time" dateTime={event.at} title={formatTime(event.at)}>
              {formatClock(event.at)}
            </time>
            {!ENDED.includes(event.to) && <span class="stage-duration">{durationBetween(event.at, next?.at)}</span>}
            <span class="stage-reason">{event.reason}</span>
          </li>
        );
      })}
      {ahead.map((stage) => (
        <li key={stage} class="stage ahead">
          <span class="stage-name">{stage}</span>
        </li>
      ))}
    </ol>
  );
}
