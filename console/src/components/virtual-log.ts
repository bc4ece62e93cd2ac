// A log view that draws only the rows in sight, so a million lines scroll
// like a hundred: a spacer gives the scroll bar its length, and a few dozen
// row elements are reused for whatever is visible. Search runs in slices
// between frames, so typing never freezes the tab.

import type { LogBuffer } from "../logs";

/**
 * Tallest spacer used: browsers cap an element's height (Firefox near 17.9
 * million pixels). Past it the scroll bar maps onto the lines in proportion.
 */
const MAX_SPACER_PX = 15_000_000;
/** Lines searched per slice before yielding to the browser. */
const SEARCH_SLICE = 50_000;
/** Longer lines are cut on screen (search still sees all of them). */
const MAX_SHOWN_CHARS = 4000;

export interface LogViewState {
  lines: number;
  matches: number;
  /** Index in the matches of the one last jumped to, or -1. */
  current: number;
  searching: boolean;
  following: boolean;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export class VirtualLog {
  private readonly spacer = document.createElement("div");
  private readonly window = document.createElement("div");
  private readonly rows: HTMLDivElement[] = [];
  private rowHeight = 16;
  private buffer?: LogBuffer;
  private unsubscribe = () => {};
  private frame = 0;
  private following = true;
  // Search state: the pattern, the matching line indices found so far, and how far the scan got.
  private pattern?: RegExp;
  private matches: number[] = [];
  private scanned = 0;
  private scanTimer = 0;
  private onlyMatches = false;
  private current = -1;
  private lastReported = "";
  private readonly resizeObserver = new ResizeObserver(() => this.schedule());

  constructor(
    private readonly viewport: HTMLElement,
    private readonly report: (state: LogViewState) => void,
  ) {
    viewport.classList.add("virtual-log");
    this.spacer.className = "spacer";
    this.window.className = "window";
    // The rows sit inside the spacer, which clips them, so a row drawn past
    // the last line never lengthens the scroll range.
    this.spacer.append(this.window);
    viewport.append(this.spacer);
    this.rowHeight = this.measureRow();
    viewport.addEventListener("scroll", this.onScroll, { passive: true });
    viewport.addEventListener("wheel", this.onWheel, { passive: false });
    this.resizeObserver.observe(viewport);
  }

  show(buffer: LogBuffer): void {
    this.unsubscribe();
    this.buffer = buffer;
    this.unsubscribe = buffer.subscribe(() => {
      this.continueSearch();
      this.schedule();
    });
    this.following = true;
    this.restartSearch();
    this.schedule();
  }

  destroy(): void {
    this.unsubscribe();
    cancelAnimationFrame(this.frame);
    clearTimeout(this.scanTimer);
    this.resizeObserver.disconnect();
    this.viewport.removeEventListener("scroll", this.onScroll);
    this.viewport.removeEventListener("wheel", this.onWheel);
    this.viewport.replaceChildren();
  }

  search(text: string, onlyMatches: boolean): void {
    this.pattern = text ? new RegExp(escapeRegExp(text), "i") : undefined;
    this.onlyMatches = onlyMatches && !!this.pattern;
    this.restartSearch();
    this.schedule();
  }

  /** Scrolls to the next (or previous) match and marks it. */
  step(direction: 1 | -1): void {
    if (!this.matches.length) return;
    const count = this.matches.length;
    this.current = this.current < 0 ? (direction > 0 ? 0 : count - 1) : (this.current + direction + count) % count;
    this.following = false;
    this.scrollToRow(this.onlyMatches ? this.current : this.matches[this.current]);
  }

  jumpToEnd(): void {
    this.following = true;
    this.schedule();
  }

  jumpToStart(): void {
    this.following = false;
    this.viewport.scrollTop = 0;
    this.schedule();
  }

  private measureRow(): number {
    const probe = this.makeRow();
    probe.textContent = "0";
    this.window.append(probe);
    const height = probe.getBoundingClientRect().height;
    probe.remove();
    return height > 0 ? height : 16;
  }

  private makeRow(): HTMLDivElement {
    const row = document.createElement("div");
    row.className = "log-row";
    return row;
  }

  /** How many rows the view scrolls over: every line, or only the matches. */
  private rowCount(): number {
    return this.onlyMatches ? this.matches.length : (this.buffer?.lines.length ?? 0);
  }

  /** Virtual pixels (rows × row height) per pixel of scroll bar. */
  private scale(): number {
    const full = this.rowCount() * this.rowHeight;
    const shown = Math.min(full, MAX_SPACER_PX);
    const view = this.viewport.clientHeight;
    return full > shown && shown > view ? (full - view) / (shown - view) : 1;
  }

  private scrollToRow(row: number): void {
    const view = this.viewport.clientHeight;
    const target = row * this.rowHeight - view / 2 + this.rowHeight / 2;
    this.viewport.scrollTop = Math.max(0, target / this.scale());
    this.schedule();
  }

  private onScroll = () => {
    const { scrollTop, clientHeight, scrollHeight } = this.viewport;
    this.following = scrollTop + clientHeight >= scrollHeight - this.rowHeight;
    this.schedule();
  };

  /** With a scaled scroll bar, one wheel notch would skip many lines: move by the real distance. */
  private onWheel = (event: WheelEvent) => {
    const scale = this.scale();
    if (scale === 1 || event.deltaY === 0) return;
    event.preventDefault();
    const pixels = event.deltaMode === 1 ? event.deltaY * this.rowHeight : event.deltaMode === 2 ? event.deltaY * this.viewport.clientHeight : event.deltaY;
    this.viewport.scrollTop += pixels / scale;
  };

  private schedule(): void {
    this.frame ||= requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private render(): void {
    const lines = this.buffer?.lines ?? [];
    const count = this.rowCount();
    const spacerHeight = Math.min(count * this.rowHeight, MAX_SPACER_PX);
    this.spacer.style.height = `${spacerHeight}px`;
    if (this.following) this.viewport.scrollTop = this.viewport.scrollHeight;
    const view = this.viewport.clientHeight;
    const scrollTop = this.viewport.scrollTop;
    const virtualTop = scrollTop * this.scale();
    const first = Math.max(0, Math.floor(virtualTop / this.rowHeight));
    const visible = Math.min(count - first, Math.ceil(view / this.rowHeight) + 1);
    while (this.rows.length < visible) this.rows.push(this.window.appendChild(this.makeRow()));
    this.window.style.transform = `translateY(${scrollTop - (virtualTop - first * this.rowHeight)}px)`;
    const marked = this.current >= 0 ? this.matches[this.current] : -1;
    for (let i = 0; i < this.rows.length; i++) {
      const row = this.rows[i];
      if (i >= visible) {
        row.hidden = true;
        continue;
      }
      const index = this.onlyMatches ? this.matches[first + i] : first + i;
      row.hidden = false;
      row.dataset.line = String(index + 1);
      row.classList.toggle("current", index === marked);
      this.fill(row, lines[index] ?? "");
    }
    this.reportState();
  }

  /** Writes a line as text (never as HTML: logs are whatever a script printed), marking matches. */
  private fill(row: HTMLDivElement, line: string): void {
    const text = line.length > MAX_SHOWN_CHARS ? `${line.slice(0, MAX_SHOWN_CHARS)} … (${line.length - MAX_SHOWN_CHARS} more characters)` : line;
    if (!this.pattern) {
      row.textContent = text;
      return;
    }
    const global = new RegExp(this.pattern.source, "gi");
    const parts: (string | HTMLElement)[] = [];
    let last = 0;
    for (const match of text.matchAll(global)) {
      if (!match[0]) break;
      parts.push(text.slice(last, match.index));
      const mark = document.createElement("mark");
      mark.textContent = match[0];
      parts.push(mark);
      last = match.index! + match[0].length;
    }
    parts.push(text.slice(last));
    row.replaceChildren(...parts);
  }

  private restartSearch(): void {
    clearTimeout(this.scanTimer);
    this.scanTimer = 0;
    this.matches = [];
    this.scanned = 0;
    this.current = -1;
    this.continueSearch();
  }

  /** Scans the lines not searched yet, one slice per task. */
  private continueSearch(): void {
    if (!this.pattern || this.scanTimer || !this.buffer) return;
    const lines = this.buffer.lines;
    const pattern = this.pattern;
    const end = Math.min(lines.length, this.scanned + SEARCH_SLICE);
    for (let i = this.scanned; i < end; i++) if (pattern.test(lines[i])) this.matches.push(i);
    this.scanned = end;
    if (end < lines.length) {
      this.scanTimer = setTimeout(() => {
        this.scanTimer = 0;
        this.continueSearch();
      });
    }
    this.schedule();
  }

  private reportState(): void {
    const state: LogViewState = {
      lines: this.buffer?.lines.length ?? 0,
      matches: this.matches.length,
      current: this.current,
      searching: !!this.pattern && this.scanned < (this.buffer?.lines.length ?? 0),
      following: this.following,
    };
    const key = JSON.stringify(state);
    if (key !== this.lastReported) {
      this.lastReported = key;
      this.report(state);
    }
  }
}
