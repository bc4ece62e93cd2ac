// Who is signed in: the token's identity and the workspaces it can open.

import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Identity, Role, Workspace } from "./types";

export interface Session {
  identity: Identity;
  /** Every workspace a server administrator sees, or the token's own one. */
  workspaces: Workspace[];
  /** Reads the workspace list again (after one was created). */
  refreshWorkspaces: () => Promise<void>;
  signOut: () => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in page");
  return session;
}

const RANK: Record<Role, number> = { reader: 0, contributor: 1, admin: 2 };

/** Whether the token may do what `role` may (a server administrator may do all). */
export function allows(identity: Identity, role: Role): boolean {
  return identity.server_admin || RANK[identity.role] >= RANK[role];
}
