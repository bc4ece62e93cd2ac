// A run's files (outputs/…, logs/…) as folders to browse, each file or
// folder downloadable (fetched with the token, saved from a blob).

import { useState } from "preact/hooks";
import { download, get, query, wsPath } from "../api";
import { ErrorNote, Loading, TableWrap } from "../components/ui";
import { formatBytes, formatTime } from "../format";
import { useAsync } from "../hooks";
import type { RunFile } from "../types";

export function RunFiles({ workspace, runId, ended }: { workspace: string; runId: string; ended: boolean }) {
  const files = useAsync((signal) => get<{ items: RunFile[] }>(wsPath(workspace, `/runs/${runId}/files`), signal), [workspace, runId, ended]);
  const [folder, setFolder] = useState("");
  const [error, setError] = useState<Error>();
  if (!files.data) return files.error ? <ErrorNote error={files.error} /> : <Loading what="files" />;
  if (!files.data.items.length) {
    return <p class="muted">{ended ? "The run kept no files." : "Files are kept when the run finalizes (./outputs and ./logs)."}</p>;
  }
  const prefix = folder ? `${folder}/` : "";
  const folders = new Map<string, number>();
  const here: RunFile[] = [];
  for (const file of files.data.items) {
    if (!file.path.startsWith(prefix)) continue;
    const rest = file.path.slice(prefix.length);
    const slash = rest.indexOf("/");
    if (slash < 0) here.push(file);
    else folders.set(rest.slice(0, slash), (folders.get(rest.slice(0, slash)) ?? 0) + file.size);
  }
  const save = (path: string, name: string) => download(path, name).catch(setError);
  const base = `/runs/${runId}/files`;
  const crumbs = folder ? folder.split("/") : [];
  return (
    <>
      <div class="page-head">
        <nav class="crumbs" aria-label="Folder">
          <button class="link" onClick={() => setFolder("")}>
            files
          </button>
          {crumbs.map((part, i) => (
            <span key={i}>
              {" / "}
              <button class="link" onClick={() => setFolder(crumbs.slice(0, i + 1).join("/"))}>
                {part}
              </button>
            </span>
          ))}
        </nav>
        <button onClick={() => save(wsPath(workspace, `${base}/archive${query({ prefix: folder })}`), `${runId.slice(0, 8)}${folder ? `-${folder.replace(/\//g, "-")}` : ""}.tar.gz`)}>
          Download {folder ? "this folder" : "all"} (.tar.gz)
        </button>
      </div>
      <ErrorNote error={error} />
      <TableWrap>
        <table class="list files">
          <thead>
            <tr>
              <th>Name</th>
              <th class="num">Size</th>
              <th>Stored</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {[...folders].map(([name, size]) => (
              <tr key={`d-${name}`}>
                <td>
                  <button class="link" onClick={() => setFolder(prefix + name)}>
                    📁 {name}/
                  </button>
                </td>
                <td class="num">{formatBytes(size)}</td>
                <td />
                <td />
              </tr>
            ))}
            {here.map((file) => {
              const name = file.path.slice(prefix.length);
              return (
                <tr key={file.path}>
                  <td>{name}</td>
                  <td class="num">{formatBytes(file.size)}</td>
                  <td class="nowrap">{formatTime(file.modified)}</td>
                  <td>
                    <button class="link" onClick={() => save(wsPath(workspace, `${base}/download${query({ path: file.path })}`), name)}>
                      Download
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </TableWrap>
    </>
  );
}
