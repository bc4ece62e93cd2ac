// Sign-in with an API token. The token is checked with /whoami and kept in
// sessionStorage: it lives as long as this tab, and no cookie is involved.

import { useState } from "preact/hooks";
import { whoAmI } from "../api";
import { ErrorNote } from "../components/ui";

export function SignIn({ notice, onSignedIn }: { notice?: string; onSignedIn: (token: string) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await whoAmI(token.trim());
      onSignedIn(token.trim());
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form class="card" onSubmit={submit}>
        <h1>
          <img src="/favicon.svg" alt="" width="28" height="28" /> Trainyard
        </h1>
        {notice && <p class="notice">{notice}</p>}
        <label>
          API token
          <input
            type="password"
            name="token"
            autocomplete="off"
            placeholder="tyd_…"
            value={token}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)}
            required
          />
        </label>
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy || !token.trim()}>
          Sign in
        </button>
        <p class="muted small">
          The token stays in this browser tab only (session storage) and is sent as <code>Authorization: Bearer</code> on
          every API call. A server administrator's token is printed at first start and saved in{" "}
          <code>&lt;data dir&gt;/admin-token</code>.
        </p>
      </form>
    </main>
  );
}
