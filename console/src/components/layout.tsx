// The frame around every workspace page: brand, workspace switcher, sections.

import type { ComponentChildren } from "preact";
import { href, navigate } from "../router";
import { allows, useSession } from "../session";

const SECTIONS: [string, string][] = [
  ["experiments", "Experiments"],
  ["runs", "Runs"],
  ["models", "Models"],
  ["datasets", "Datasets"],
  ["environments", "Environments"],
  ["compute", "Compute"],
];

export function Layout({ workspace, section, children }: { workspace?: string; section: string; children: ComponentChildren }) {
  const { identity, workspaces, signOut } = useSession();
  const known = workspaces.some((w) => w.name === workspace);
  return (
    <>
      <header class="topbar">
        <a class="brand" href="#/">
          <img src="/favicon.svg" alt="" width="22" height="22" />
          Trainyard
        </a>
        {workspaces.length > 0 && (
          <label class="switcher">
            <span class="sr-only">Workspace</span>
            <select
              aria-label="Workspace"
              value={known ? workspace : ""}
              onChange={(e) => navigate(href("w", (e.target as HTMLSelectElement).value, "experiments"))}
            >
              {!known && <option value="">Choose a workspace</option>}
              {workspaces.map((w) => (
                <option key={w.id} value={w.name}>
                  {w.name}
                </option>
              ))}
            </select>
          </label>
        )}
        <nav class="sections">
          {workspace &&
            SECTIONS.map(([id, label]) => (
              <a key={id} href={href("w", workspace, id)} class={section === id ? "active" : ""}>
                {label}
              </a>
            ))}
          {workspace && allows(identity, "admin") && (
            <a href={href("w", workspace, "tokens")} class={section === "tokens" ? "active" : ""}>
              Tokens
            </a>
          )}
          {identity.server_admin && (
            <a href={href("workspaces")} class={section === "workspaces" ? "active" : ""}>
              Workspaces
            </a>
          )}
        </nav>
        <span class="whoami muted" title={`token ${identity.token_id}`}>
          {identity.server_admin ? "server admin" : identity.role}
        </span>
        <button class="link" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>{children}</main>
    </>
  );
}
