// Experiments of the workspace, each a link to its runs.

import { useState } from "preact/hooks";
import { get, query, wsPath } from "../api";
import { Chips, ErrorNote, Loading, TableWrap } from "../components/ui";
import { formatTime } from "../format";
import { useAsync } from "../hooks";
import { href, hrefWith } from "../router";
import type { Experiment, Page } from "../types";

const PAGE_SIZE = 100;

export function ExperimentsPage({ workspace }: { workspace: string }) {
  const [archived, setArchived] = useState(false);
  // Cursors of the pages before this one, for the Previous button.
  const [cursors, setCursors] = useState<string[]>([]);
  const [cursor, setCursor] = useState<string>();
  const page = useAsync(
    (signal) =>
      get<Page<Experiment>>(wsPath(workspace, "/experiments" + query({ include_archived: archived, limit: PAGE_SIZE, cursor })), signal),
    [workspace, archived, cursor],
  );
  return (
    <>
      <div class="page-head">
        <h1>Experiments</h1>
        <div class="actions">
          <label class="check">
            <input
              type="checkbox"
              checked={archived}
              onChange={(e) => {
                setArchived((e.target as HTMLInputElement).checked);
                setCursors([]);
                setCursor(undefined);
              }}
            />
            Show archived
          </label>
          <a class="button" href={href("w", workspace, "runs")}>
            All runs
          </a>
        </div>
      </div>
      <ErrorNote error={page.error} />
      {!page.data ? (
        <Loading />
      ) : page.data.items.length === 0 && !cursor ? (
        <p class="muted">
          No experiments yet. Submitting a run creates its experiment (<code>Experiment(ws, "name")</code> in the SDK,{" "}
          <code>trainyard run submit --experiment name</code>).
        </p>
      ) : (
        <>
          <TableWrap>
            <table class="list">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Description</th>
                  <th>Tags</th>
                  <th>Created</th>
                </tr>
              </thead>
              <tbody>
                {page.data.items.map((e) => (
                  <tr key={e.id} class={e.archived ? "archived" : ""}>
                    <td>
                      <a href={hrefWith(["w", workspace, "runs"], { experiment: e.name })}>{e.name}</a>
                      {e.archived && <span class="muted"> (archived)</span>}
                    </td>
                    <td>{e.description ?? ""}</td>
                    <td>
                      <Chips entries={e.tags} />
                    </td>
                    <td class="nowrap">{formatTime(e.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          <div class="pager">
            <button
              disabled={!cursors.length}
              onClick={() => {
                setCursor(cursors[cursors.length - 1] || undefined);
                setCursors(cursors.slice(0, -1));
              }}
            >
              Previous
            </button>
            <button
              disabled={!page.data.next_cursor}
              onClick={() => {
                setCursors([...cursors, cursor ?? ""]);
                setCursor(page.data!.next_cursor!);
              }}
            >
              Next
            </button>
          </div>
        </>
      )}
    </>
  );
}
