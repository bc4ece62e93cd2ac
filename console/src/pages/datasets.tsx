// Datasets: every dataset's latest version, and a version's files to download.

import { useState } from "preact/hooks";
import { download, get, query, wsPath } from "../api";
import { VersionPicker } from "../components/versions";
import { Chips, ErrorNote, Facts, Loading, Section, TableWrap } from "../components/ui";
import { formatBytes, formatTime } from "../format";
import { useAsync } from "../hooks";
import { href } from "../router";
import type { Dataset, DatasetFile } from "../types";

export function DatasetsPage({ workspace }: { workspace: string }) {
  const datasets = useAsync((signal) => get<{ items: Dataset[] }>(wsPath(workspace, "/datasets"), signal), [workspace]);
  return (
    <>
      <div class="page-head">
        <h1>Datasets</h1>
      </div>
      <ErrorNote error={datasets.error} />
      {!datasets.data ? (
        <Loading />
      ) : datasets.data.items.length === 0 ? (
        <p class="muted">
          No datasets registered. Upload files to a datastore, then register them with <code>POST …/datasets</code> or{" "}
          <code>Dataset.File.from_files(...).register(...)</code>.
        </p>
      ) : (
        <TableWrap>
          <table class="list">
            <thead>
              <tr>
                <th>Name</th>
                <th class="num">Latest version</th>
                <th class="num">Files</th>
                <th class="num">Size</th>
                <th>Tags</th>
                <th>Registered</th>
              </tr>
            </thead>
            <tbody>
              {datasets.data.items.map((d) => (
                <tr key={d.id}>
                  <td>
                    <a href={href("w", workspace, "datasets", d.name)}>{d.name}</a>
                  </td>
                  <td class="num">{d.version}</td>
                  <td class="num">{d.file_count.toLocaleString()}</td>
                  <td class="num">{formatBytes(d.total_bytes)}</td>
                  <td>
                    <Chips entries={d.tags} />
                  </td>
                  <td class="nowrap">{formatTime(d.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </>
  );
}

export function DatasetPage({ workspace, name, version }: { workspace: string; name: string; version: string | null }) {
  const base = wsPath(workspace, `/datasets/${encodeURIComponent(name)}`);
  const latest = useAsync((signal) => get<Dataset>(base, signal), [base]);
  const shown = useAsync((signal) => get<Dataset>(base + query({ version }), signal), [base, version]);
  const files = useAsync((signal) => get<{ items: DatasetFile[] }>(`${base}/files${query({ version })}`, signal), [base, version]);
  const [error, setError] = useState<Error>();
  if (!shown.data || !latest.data) return <>{shown.error ? <ErrorNote error={shown.error} /> : <Loading what="the dataset" />}</>;
  const d = shown.data;
  const save = (path: string) =>
    download(`${base}/files/download${query({ path, version: d.version })}`, path.split("/").pop()!).catch(setError);
  return (
    <>
      <div class="page-head">
        <div>
          <p class="crumbs">
            <a href={href("w", workspace, "datasets")}>Datasets</a>
          </p>
          <h1>{name}</h1>
        </div>
        <VersionPicker parts={["w", workspace, "datasets", name]} latest={latest.data.version} current={d.version} />
      </div>
      <Section title={`Version ${d.version}`}>
        <Facts
          rows={[
            ["Description", d.description ?? null],
            ["Datastore", d.datastore ?? null],
            ["Registered from", <span class="mono small">{d.paths.join(", ")}</span>],
            ["Files", `${d.file_count.toLocaleString()} (${formatBytes(d.total_bytes)})`],
            ["Tags", <Chips entries={d.tags} />],
            ["Registered", formatTime(d.created_at)],
          ]}
        />
      </Section>
      <Section title="Files">
        <ErrorNote error={files.error ?? error} />
        {files.data && (
          <TableWrap>
            <table class="list files">
              <thead>
                <tr>
                  <th>Path</th>
                  <th class="num">Size</th>
                  <th>SHA-256</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {files.data.items.map((f) => (
                  <tr key={f.path}>
                    <td class="mono">{f.path}</td>
                    <td class="num">{formatBytes(f.size)}</td>
                    <td class="mono small muted" title={f.sha256}>
                      {f.sha256.slice(0, 16)}…
                    </td>
                    <td>
                      <button class="link" onClick={() => save(f.path)}>
                        Download
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Section>
    </>
  );
}
