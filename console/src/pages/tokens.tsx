// The workspace's tokens: create one (its secret is shown here once) and
// revoke them. Needs an admin token of the workspace, or a server admin's.

import { useState } from "preact/hooks";
import { call, get, wsPath } from "../api";
import { ErrorNote, Loading, Section, TableWrap } from "../components/ui";
import { formatTime } from "../format";
import { useAsync } from "../hooks";
import { useSession } from "../session";
import type { CreatedToken, Page, Role, Token } from "../types";

const ROLES: Role[] = ["reader", "contributor", "admin"];

export function TokensPage({ workspace }: { workspace: string }) {
  const { identity } = useSession();
  const tokens = useAsync((signal) => get<Page<Token>>(wsPath(workspace, "/tokens?limit=1000"), signal), [workspace]);
  const [created, setCreated] = useState<CreatedToken>();
  const [error, setError] = useState<Error>();

  const create = async (event: Event) => {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const fields = new FormData(form);
    const expires = String(fields.get("expires_at") ?? "");
    setError(undefined);
    try {
      const token = await call<CreatedToken>("POST", wsPath(workspace, "/tokens"), {
        name: String(fields.get("name")).trim(),
        role: fields.get("role"),
        expires_at: expires ? new Date(expires).toISOString() : undefined,
      });
      setCreated(token);
      form.reset();
      tokens.reload();
    } catch (e) {
      setError(e as Error);
    }
  };
  const revoke = async (token: Token) => {
    const self = token.id === identity.token_id ? " This is the token you are signed in with." : "";
    if (!confirm(`Revoke the token "${token.name}"? Clients using it are refused at once.${self}`)) return;
    try {
      await call("DELETE", wsPath(workspace, `/tokens/${token.id}`));
      tokens.reload();
    } catch (e) {
      setError(e as Error);
    }
  };

  return (
    <>
      <div class="page-head">
        <h1>Tokens</h1>
      </div>
      <Section title="New token">
        <form class="inline-form" onSubmit={create}>
          <label>
            Name
            <input name="name" required placeholder="alice-laptop" />
          </label>
          <label>
            Role
            <select name="role">
              {ROLES.map((r) => (
                <option key={r} selected={r === "contributor"}>
                  {r}
                </option>
              ))}
            </select>
          </label>
          <label>
            Expires (optional)
            <input type="datetime-local" name="expires_at" />
          </label>
          <button type="submit" class="primary">
            Create token
          </button>
        </form>
        {created && (
          <div class="secret" role="status">
            <p>
              The secret of <strong>{created.name}</strong> ({created.role}). Copy it now: it is shown only once.
            </p>
            <code class="secret-value" data-testid="new-secret">
              {created.secret}
            </code>
            <button onClick={() => navigator.clipboard?.writeText(created.secret)}>Copy</button>
            <button class="link" onClick={() => setCreated(undefined)}>
              Done
            </button>
          </div>
        )}
      </Section>
      <ErrorNote error={error} />
      {!tokens.data ? (
        tokens.error ? <ErrorNote error={tokens.error} /> : <Loading what="tokens" />
      ) : (
        <TableWrap>
          <table class="list tokens">
            <thead>
              <tr>
                <th>Name</th>
                <th>Role</th>
                <th>Starts with</th>
                <th>Created</th>
                <th>Last used</th>
                <th>Expires</th>
                <th>State</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {tokens.data.items.map((t) => (
                <tr key={t.id} data-token-name={t.name} class={t.revoked_at ? "revoked" : ""}>
                  <td>{t.name}</td>
                  <td>{t.role}</td>
                  <td class="mono">{t.prefix}…</td>
                  <td class="nowrap">{formatTime(t.created_at)}</td>
                  <td class="nowrap">{formatTime(t.last_used_at)}</td>
                  <td class="nowrap">{t.expires_at ? formatTime(t.expires_at) : "never"}</td>
                  <td class="token-state">{t.revoked_at ? `revoked ${formatTime(t.revoked_at)}` : "active"}</td>
                  <td>
                    {!t.revoked_at && (
                      <button class="link danger" onClick={() => revoke(t)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </>
  );
}
