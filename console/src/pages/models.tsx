// The model registry: every model's latest version, and a model's versions
// with their lineage (run, environment, datasets), files and download.

import { useState } from "preact/hooks";
import { download, get, wsPath } from "../api";
import { Chips, ErrorNote, Facts, Loading, Section, TableWrap } from "../components/ui";
import { formatBytes, formatTime, shortId } from "../format";
import { useAsync } from "../hooks";
import { href, hrefWith } from "../router";
import type { Model } from "../types";

export function ModelsPage({ workspace }: { workspace: string }) {
  const models = useAsync((signal) => get<{ items: Model[] }>(wsPath(workspace, "/models"), signal), [workspace]);
  return (
    <>
      <div class="page-head">
        <h1>Models</h1>
      </div>
      <ErrorNote error={models.error} />
      {!models.data ? (
        <Loading />
      ) : models.data.items.length === 0 ? (
        <p class="muted">
          No models registered. Register one from a run's outputs with <code>run.register_model(...)</code>.
        </p>
      ) : (
        <TableWrap>
          <table class="list">
            <thead>
              <tr>
                <th>Name</th>
                <th class="num">Latest version</th>
                <th>Framework</th>
                <th>Aliases</th>
                <th>Tags</th>
                <th>Registered</th>
              </tr>
            </thead>
            <tbody>
              {models.data.items.map((m) => (
                <tr key={m.id}>
                  <td>
                    <a href={href("w", workspace, "models", m.name)}>{m.name}</a>
                  </td>
                  <td class="num">{m.version}</td>
                  <td>{[m.framework, m.framework_version].filter(Boolean).join(" ")}</td>
                  <td>{m.aliases.join(", ")}</td>
                  <td>
                    <Chips entries={m.tags} />
                  </td>
                  <td class="nowrap">{formatTime(m.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </>
  );
}

export function ModelPage({ workspace, name }: { workspace: string; name: string }) {
  const versions = useAsync(
    (signal) => get<{ items: Model[] }>(wsPath(workspace, `/models/${encodeURIComponent(name)}/versions`), signal),
    [workspace, name],
  );
  const [chosen, setChosen] = useState<number>();
  const [error, setError] = useState<Error>();
  if (!versions.data) return versions.error ? <ErrorNote error={versions.error} /> : <Loading what="the model" />;
  const items = versions.data.items;
  const model = items.find((m) => m.version === chosen) ?? items[0];
  if (!model) return <p class="muted">This model has no versions left.</p>;
  const save = (m: Model) =>
    download(wsPath(workspace, `/models/${encodeURIComponent(m.name)}/versions/${m.version}/download`), `${m.name}-${m.version}.tar.gz`).catch(setError);
  return (
    <>
      <div class="page-head">
        <div>
          <p class="crumbs">
            <a href={href("w", workspace, "models")}>Models</a>
          </p>
          <h1>{name}</h1>
        </div>
      </div>
      <ErrorNote error={error} />
      <TableWrap>
        <table class="list">
          <thead>
            <tr>
              <th class="num">Version</th>
              <th>Aliases</th>
              <th>From run</th>
              <th>Files</th>
              <th>Registered</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((m) => (
              <tr key={m.id} class={m === model ? "selected" : ""}>
                <td class="num">
                  <button class="link" onClick={() => setChosen(m.version)}>
                    {m.version}
                  </button>
                </td>
                <td>{m.aliases.join(", ")}</td>
                <td>{m.run_id ? <a href={href("w", workspace, "runs", m.run_id)}>{shortId(m.run_id)}</a> : <span class="muted">uploaded</span>}</td>
                <td class="nowrap">
                  {m.files.length} ({formatBytes(m.files.reduce((sum, f) => sum + f.size, 0))})
                </td>
                <td class="nowrap">{formatTime(m.created_at)}</td>
                <td>
                  <button class="link" onClick={() => save(m)}>
                    Download
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      <div class="grid">
        <Section title={`Version ${model.version}`}>
          <Facts
            rows={[
              ["Description", model.description ?? null],
              ["Framework", [model.framework, model.framework_version].filter(Boolean).join(" ") || null],
              ["Serving needs", model.resource_configuration ? <code>{JSON.stringify(model.resource_configuration)}</code> : null],
              ["Tags", <Chips entries={model.tags} />],
              ["Properties", <Chips entries={model.properties} />],
            ]}
          />
        </Section>
        <Section title="Lineage">
          <Facts
            rows={[
              ["Run", model.run_id ? <a href={href("w", workspace, "runs", model.run_id)}>{model.run_id}</a> : "uploaded files, no run"],
              [
                "Environment",
                model.environment?.name ? (
                  <a href={hrefWith(["w", workspace, "environments", model.environment.name], { version: String(model.environment.version ?? "") })}>
                    {model.environment.name} version {model.environment.version}
                  </a>
                ) : null,
              ],
              [
                "Datasets",
                model.datasets.length ? (
                  <ul class="plain">
                    {model.datasets.map((d) => (
                      <li key={d.input}>
                        {d.input}:{" "}
                        <a href={hrefWith(["w", workspace, "datasets", d.name], { version: String(d.version) })}>
                          {d.name} version {d.version}
                        </a>
                      </li>
                    ))}
                  </ul>
                ) : null,
              ],
            ]}
          />
        </Section>
        <Section title="Files">
          <ul class="plain mono small">
            {model.files.map((f) => (
              <li key={f.path}>
                {f.path} <span class="muted">{formatBytes(f.size)}</span>
              </li>
            ))}
          </ul>
        </Section>
      </div>
    </>
  );
}
