// Workspaces, for a server administrator: list and create.

import { useState } from "preact/hooks";
import { call } from "../api";
import { ErrorNote, Section, TableWrap } from "../components/ui";
import { formatTime } from "../format";
import { href } from "../router";
import { useSession } from "../session";
import type { Workspace } from "../types";

export function WorkspacesPage() {
  const { identity, workspaces, refreshWorkspaces } = useSession();
  const [error, setError] = useState<Error>();
  if (!identity.server_admin) return <p class="error">Only a server administrator's token manages workspaces.</p>;
  const create = async (event: Event) => {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const fields = new FormData(form);
    setError(undefined);
    try {
      await call<Workspace>("POST", "/workspaces", {
        name: String(fields.get("name")).trim(),
        description: String(fields.get("description") ?? "").trim() || undefined,
      });
      form.reset();
      await refreshWorkspaces();
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <>
      <div class="page-head">
        <h1>Workspaces</h1>
      </div>
      <Section title="New workspace">
        <form class="inline-form" onSubmit={create}>
          <label>
            Name
            <input name="name" required placeholder="vision" />
          </label>
          <label>
            Description
            <input name="description" />
          </label>
          <button type="submit" class="primary">
            Create workspace
          </button>
        </form>
        <ErrorNote error={error} />
      </Section>
      <TableWrap>
        <table class="list">
          <thead>
            <tr>
              <th>Name</th>
              <th>Description</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {workspaces.map((w) => (
              <tr key={w.id}>
                <td>
                  <a href={href("w", w.name, "experiments")}>{w.name}</a>
                </td>
                <td>{w.description ?? ""}</td>
                <td class="nowrap">{formatTime(w.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </>
  );
}
