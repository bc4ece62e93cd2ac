// Environments: every environment's latest version, and a version's spec,
// image, build state and build log (the `build` source of the log of the run
// whose preparation built the image).

import { get, query, wsPath } from "../api";
import { VersionPicker } from "../components/versions";
import { ErrorNote, Facts, Loading, Section, TableWrap } from "../components/ui";
import { formatTime } from "../format";
import { useAsync } from "../hooks";
import { href } from "../router";
import type { Environment, LogLine } from "../types";

/** An environment version's build log, as `GET …/build-log` returns it. */
interface BuildLog {
  image: string;
  build_state: Environment["build_state"];
  run_id: string | null;
  lines: LogLine[];
  next_seq: number;
}

/** Lines shown at most; the rest are in the building run's log. */
const BUILD_LOG_LINES = 10000;

function BuildLogSection({ workspace, base, version }: { workspace: string; base: string; version: number }) {
  const log = useAsync(
    (signal) => get<BuildLog>(base + "/build-log" + query({ version: String(version), limit: String(BUILD_LOG_LINES) }), signal),
    [base, version],
  );
  return (
    <Section title="Build log">
      <ErrorNote error={log.error} />
      {!log.data ? (
        <Loading what="the build log" />
      ) : log.data.lines.length === 0 ? (
        <p class="muted small">
          {log.data.build_state === "not_built"
            ? "Not built yet: the first run that uses this version builds its image."
            : "No build log to show here (the image was built before build logs were kept, or for another workspace)."}
        </p>
      ) : (
        <>
          <pre class="log-block" data-testid="build-log">
            {log.data.lines.map((l) => l.line).join("\n")}
          </pre>
          {log.data.run_id && (
            <p class="muted small">
              Built by run <a href={href("w", workspace, "runs", log.data.run_id)}>{log.data.run_id.slice(0, 8)}</a>
              {log.data.lines.length >= BUILD_LOG_LINES ? ", whose log has the rest (source build)." : "."}
            </p>
          )}
        </>
      )}
    </Section>
  );
}

function BuildState({ state }: { state: Environment["build_state"] }) {
  return <span class={`build build-${state}`}>{state.replace("_", " ")}</span>;
}

export function EnvironmentsPage({ workspace }: { workspace: string }) {
  const environments = useAsync((signal) => get<{ items: Environment[] }>(wsPath(workspace, "/environments"), signal), [workspace]);
  return (
    <>
      <div class="page-head">
        <h1>Environments</h1>
      </div>
      <ErrorNote error={environments.error} />
      {!environments.data ? (
        <Loading />
      ) : environments.data.items.length === 0 ? (
        <p class="muted">
          No environments registered (<code>trainyard env register</code> or <code>Environment(...).register(ws)</code>).
        </p>
      ) : (
        <TableWrap>
          <table class="list">
            <thead>
              <tr>
                <th>Name</th>
                <th class="num">Latest version</th>
                <th>Build</th>
                <th>Image</th>
                <th>Registered</th>
              </tr>
            </thead>
            <tbody>
              {environments.data.items.map((e) => (
                <tr key={e.id}>
                  <td>
                    <a href={href("w", workspace, "environments", e.name)}>{e.name}</a>
                  </td>
                  <td class="num">{e.version}</td>
                  <td>
                    <BuildState state={e.build_state} />
                  </td>
                  <td class="mono small">{e.image}</td>
                  <td class="nowrap">{formatTime(e.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </>
  );
}

export function EnvironmentPage({ workspace, name, version }: { workspace: string; name: string; version: string | null }) {
  const base = wsPath(workspace, `/environments/${encodeURIComponent(name)}`);
  const latest = useAsync((signal) => get<Environment>(base, signal), [base]);
  const shown = useAsync((signal) => get<Environment>(base + query({ version }), signal), [base, version]);
  if (!shown.data || !latest.data) return <>{shown.error ? <ErrorNote error={shown.error} /> : <Loading what="the environment" />}</>;
  const e = shown.data;
  const { dockerfile, pip_requirements, conda_specification, ...rest } = e.spec;
  return (
    <>
      <div class="page-head">
        <div>
          <p class="crumbs">
            <a href={href("w", workspace, "environments")}>Environments</a>
          </p>
          <h1>{name}</h1>
        </div>
        <VersionPicker parts={["w", workspace, "environments", name]} latest={latest.data.version} current={e.version} />
      </div>
      <div class="grid">
        <Section title={`Version ${e.version}`}>
          <Facts
            rows={[
              ["Build", <BuildState state={e.build_state} />],
              ["Image", <span class="mono small">{e.image}</span>],
              ["Description", e.description ?? null],
              ["Registered", formatTime(e.created_at)],
            ]}
          />
          {e.build_error && <pre class="error-block">{e.build_error}</pre>}
        </Section>
        <Section title="Spec">
          <pre class="json">{JSON.stringify(rest, null, 2)}</pre>
          {dockerfile && (
            <>
              <h3>Dockerfile</h3>
              <pre class="json">{dockerfile}</pre>
            </>
          )}
          {pip_requirements && (
            <>
              <h3>pip requirements</h3>
              <pre class="json">{pip_requirements}</pre>
            </>
          )}
          {conda_specification && (
            <>
              <h3>conda specification</h3>
              <pre class="json">{conda_specification}</pre>
            </>
          )}
        </Section>
        <BuildLogSection workspace={workspace} base={base} version={e.version} />
      </div>
    </>
  );
}
