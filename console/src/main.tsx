// The console's entry: sign-in, the signed-in session, and the page for the
// current route.

import "uplot/dist/uPlot.min.css";
import "./styles.css";
import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { get, sessionToken, setSessionToken, whenUnauthenticated, wsPath } from "./api";
import { Layout } from "./components/layout";
import { ErrorNote, Loading } from "./components/ui";
import { useAsync } from "./hooks";
import { ComparePage } from "./pages/compare";
import { ComputePage, ComputeTargetPage } from "./pages/compute";
import { DatasetPage, DatasetsPage } from "./pages/datasets";
import { EnvironmentPage, EnvironmentsPage } from "./pages/environments";
import { ExperimentsPage } from "./pages/experiments";
import { ModelPage, ModelsPage } from "./pages/models";
import { RunPage } from "./pages/run";
import { RunsPage } from "./pages/runs";
import { SignIn } from "./pages/signin";
import { TokensPage } from "./pages/tokens";
import { WorkspacesPage } from "./pages/workspaces";
import { href, navigate, useRoute, type Route } from "./router";
import { SessionContext, useSession, type Session } from "./session";
import type { Identity, Page, Workspace } from "./types";

const LAST_WORKSPACE_KEY = "trainyard.workspace";

function App() {
  const [token, setToken] = useState(sessionToken());
  const [notice, setNotice] = useState<string>();
  useEffect(
    () =>
      whenUnauthenticated(() => {
        setSessionToken(null);
        setToken(null);
        setNotice("The server no longer accepts this token (revoked or expired). Sign in again.");
      }),
    [],
  );
  if (!token) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(accepted) => {
          setSessionToken(accepted);
          setNotice(undefined);
          setToken(accepted);
        }}
      />
    );
  }
  const signOut = () => {
    setSessionToken(null);
    setToken(null);
    navigate("#/", true);
  };
  return <SignedIn key={token} signOut={signOut} />;
}

async function loadWorkspaces(identity: Identity): Promise<Workspace[]> {
  if (identity.server_admin) return (await get<Page<Workspace>>("/workspaces?limit=1000")).items;
  return [await get<Workspace>(wsPath(identity.workspace_id!))];
}

function SignedIn({ signOut }: { signOut: () => void }) {
  const [workspaces, setWorkspaces] = useState<Workspace[]>();
  const identity = useAsync(async () => {
    const who = await get<Identity>("/whoami");
    setWorkspaces(await loadWorkspaces(who));
    return who;
  }, []);
  const route = useRoute();
  const session = useMemo<Session | null>(
    () =>
      identity.data && workspaces
        ? {
            identity: identity.data,
            workspaces,
            refreshWorkspaces: async () => setWorkspaces(await loadWorkspaces(identity.data!)),
            signOut,
          }
        : null,
    [identity.data, workspaces],
  );
  if (identity.error) {
    return (
      <main class="narrow">
        <ErrorNote error={identity.error} />
        <button onClick={signOut}>Sign out</button>
      </main>
    );
  }
  if (!session) return <Loading what="your session" />;
  return (
    <SessionContext.Provider value={session}>
      <Pages route={route} />
    </SessionContext.Provider>
  );
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, true), [to]);
  return null;
}

function Pages({ route }: { route: Route }) {
  const { workspaces } = useSession();
  const [first, workspace, section = "experiments", id] = route.parts;
  // The workspace to open next time this tab lands on `/`.
  useEffect(() => {
    if (first === "w" && workspace) sessionStorage.setItem(LAST_WORKSPACE_KEY, workspace);
  }, [first, workspace]);
  if (first === "workspaces") {
    return (
      <Layout section="workspaces" workspace={sessionStorage.getItem(LAST_WORKSPACE_KEY) ?? undefined}>
        <WorkspacesPage />
      </Layout>
    );
  }
  if (first !== "w" || !workspace) {
    const last = sessionStorage.getItem(LAST_WORKSPACE_KEY);
    const home = workspaces.find((w) => w.name === last) ?? workspaces[0];
    return <Redirect to={home ? href("w", home.name, "experiments") : href("workspaces")} />;
  }
  const page = (() => {
    switch (section) {
      case "experiments":
        return <ExperimentsPage workspace={workspace} />;
      case "runs":
        // Keyed, so another run (after a resubmit) starts with nothing of the last one.
        return id ? (
          <RunPage key={`${workspace}/${id}`} workspace={workspace} runId={id} tab={route.query.get("tab")} />
        ) : (
          <RunsPage workspace={workspace} query={route.query} />
        );
      case "compare":
        return <ComparePage workspace={workspace} runIds={route.query.getAll("run")} />;
      case "models":
        return id ? <ModelPage workspace={workspace} name={id} /> : <ModelsPage workspace={workspace} />;
      case "datasets":
        return id ? <DatasetPage workspace={workspace} name={id} version={route.query.get("version")} /> : <DatasetsPage workspace={workspace} />;
      case "environments":
        return id ? <EnvironmentPage workspace={workspace} name={id} version={route.query.get("version")} /> : <EnvironmentsPage workspace={workspace} />;
      case "compute":
        return id ? <ComputeTargetPage workspace={workspace} name={id} /> : <ComputePage workspace={workspace} />;
      case "tokens":
        return <TokensPage workspace={workspace} />;
      default:
        return <p class="error">No such page.</p>;
    }
  })();
  return (
    <Layout workspace={workspace} section={section}>
      {page}
    </Layout>
  );
}

render(<App />, document.getElementById("app")!);
