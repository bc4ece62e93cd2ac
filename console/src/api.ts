// The REST API under /api/v1, as the console uses it. Every call sends the
// token kept in sessionStorage; the API has no cookies, so downloads are
// fetched with the header too and saved from a blob.

import type { Problem } from "./types";

const TOKEN_KEY = "trainyard.token";

/** The token of this browser tab's session, if signed in. */
export function sessionToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setSessionToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** A refused request, with the API's problem document when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** Called when the token stops working (revoked, expired), to sign out. */
let onUnauthenticated: () => void = () => {};
export function whenUnauthenticated(handler: () => void): void {
  onUnauthenticated = handler;
}

type QueryValue = string | number | boolean | null | undefined | readonly string[];

/** Builds `?a=1&b=x&b=y`; arrays repeat the key, empty values are left out. */
export function query(params: Record<string, QueryValue>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => search.append(key, v));
    else search.append(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** `/api/v1/workspaces/{ws}` plus `rest`, with the workspace escaped. */
export function wsPath(workspace: string, rest = ""): string {
  return `/workspaces/${encodeURIComponent(workspace)}${rest}`;
}

async function send(path: string, init: RequestInit = {}, token = sessionToken()): Promise<Response> {
  const headers = new Headers(init.headers);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  const response = await fetch(`/api/v1${path}`, { ...init, headers });
  if (response.ok) return response;
  let problem: Partial<Problem> = {};
  try {
    problem = await response.json();
  } catch {
    // Not a problem document (a proxy's error page): the status says enough.
  }
  if (response.status === 401 && token === sessionToken()) onUnauthenticated();
  throw new ApiError(
    response.status,
    problem.code ?? "http_error",
    problem.detail ?? `${response.status} ${response.statusText}`,
    problem.field ?? undefined,
  );
}

/** GET a JSON document. */
export async function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await send(path, { signal })).json();
}

/** A JSON request with a JSON answer (or none, for 204). */
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "Content-Type": "application/json" };
  }
  const response = await send(path, init);
  return response.status === 204 ? (undefined as T) : response.json();
}

/** Checks a token before keeping it: answers who it is. */
export async function whoAmI<T>(token: string): Promise<T> {
  return (await send("/whoami", {}, token)).json();
}

/** Downloads `path` with the token and hands it to the browser as a file. */
export async function download(path: string, filename: string): Promise<void> {
  const blob = await (await send(path)).blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  // The click has handed the blob to the download manager; give it a moment.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Fetches a file as a blob URL (images logged as metrics); the caller revokes it. */
export async function blobUrl(path: string): Promise<string> {
  return URL.createObjectURL(await (await send(path)).blob());
}

/**
 * Reads a Server-Sent Events stream. EventSource cannot send an
 * Authorization header, so this is fetch and a small parser of the format.
 * Resolves when the server closes the stream; rejects on network errors.
 */
export async function readEvents(
  path: string,
  onEvent: (event: string, data: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const response = await send(path, { signal, headers: { Accept: "text/event-stream" } });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "message";
  let data: string[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // Walk the chunk with an index and cut the rest once: slicing the buffer
    // at every line would copy a big chunk hundreds of times.
    let start = 0;
    let newline: number;
    while ((newline = buffer.indexOf("\n", start)) >= 0) {
      const line = buffer.slice(start, newline).replace(/\r$/, "");
      start = newline + 1;
      if (line === "") {
        if (data.length) onEvent(event, data.join("\n"));
        event = "message";
        data = [];
      } else if (line.startsWith("event:")) {
        event = line.slice(6).trim();
      } else if (line.startsWith("data:")) {
        data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
      // Lines starting with ':' are keep-alives; `id:` and `retry:` are not used.
    }
    buffer = buffer.slice(start);
  }
}
