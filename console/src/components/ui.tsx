// Small pieces every page uses.

import type { ComponentChildren } from "preact";
import { ApiError } from "../api";
import type { RunStatus } from "../types";

export function Loading({ what = "" }: { what?: string }) {
  return <p class="muted loading">Loading{what ? ` ${what}` : ""}…</p>;
}

export function ErrorNote({ error }: { error?: Error | null }) {
  if (!error) return null;
  const field = error instanceof ApiError && error.field ? ` (${error.field})` : "";
  return (
    <p class="error" role="alert">
      {error.message}
      {field}
    </p>
  );
}

export function StatusBadge({ status, cancelling }: { status: RunStatus; cancelling?: boolean }) {
  return (
    <span class={`status status-${status.toLowerCase()}`} data-status={status}>
      {status}
      {cancelling ? " (cancelling)" : ""}
    </span>
  );
}

/** Key-value labels as chips: `lr: 0.01`. */
export function Chips({ entries }: { entries: Record<string, string> }) {
  const keys = Object.keys(entries);
  if (!keys.length) return <span class="muted">—</span>;
  return (
    <span class="chips">
      {keys.map((key) => (
        <span class="chip" key={key} title={`${key}: ${entries[key]}`}>
          {entries[key] ? `${key}: ${entries[key]}` : key}
        </span>
      ))}
    </span>
  );
}

/** A two-column table of names and values. */
export function Facts({ rows }: { rows: [string, ComponentChildren][] }) {
  return (
    <dl class="facts">
      {rows.map(([name, value]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>{value ?? <span class="muted">—</span>}</dd>
        </div>
      ))}
    </dl>
  );
}

/** A card with a title; `wide` spans every column of a `.grid`. */
export function Section({ title, wide, children }: { title: string; wide?: boolean; children: ComponentChildren }) {
  return (
    <section class={wide ? "card wide" : "card"}>
      <header class="card-head">
        <h2>{title}</h2>
      </header>
      {children}
    </section>
  );
}

/** A table that scrolls sideways in a narrow window instead of squeezing. */
export function TableWrap({ children }: { children: ComponentChildren }) {
  return <div class="table-wrap">{children}</div>;
}

export function Tabs<T extends string>({ tabs, current, onSelect }: { tabs: [T, string][]; current: T; onSelect: (tab: T) => void }) {
  return (
    <nav class="tabs" role="tablist">
      {tabs.map(([id, label]) => (
        <button key={id} role="tab" aria-selected={id === current} class={id === current ? "active" : ""} onClick={() => onSelect(id)}>
          {label}
        </button>
      ))}
    </nav>
  );
}
