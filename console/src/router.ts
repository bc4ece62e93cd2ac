// Routes live in the URL's fragment (`#/w/vision/runs/…`), so the server
// serves one page at `/` and needs no fallback for deep links.

import { useEffect, useState } from "preact/hooks";

export interface Route {
  /** The path's parts: `#/w/vision/runs` is ["w", "vision", "runs"]. */
  parts: string[];
  query: URLSearchParams;
}

function current(): Route {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = hash.split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(search) };
}

/** The current route, updated on every navigation. */
export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const update = () => setRoute(current());
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}

/** A fragment link: `href("w", ws, "runs", id)` is `#/w/<ws>/runs/<id>`. */
export function href(...parts: (string | number)[]): string {
  return "#/" + parts.map((p) => encodeURIComponent(String(p))).join("/");
}

/** The same with a query: arrays repeat the key, empty values are left out. */
export function hrefWith(parts: (string | number)[], params: Record<string, string | string[] | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (Array.isArray(value)) value.forEach((v) => search.append(key, v));
    else if (value) search.set(key, value);
  }
  const text = search.toString();
  return href(...parts) + (text ? `?${text}` : "");
}

export function navigate(target: string, replace = false): void {
  if (replace) history.replaceState(null, "", target);
  else history.pushState(null, "", target);
  dispatchEvent(new HashChangeEvent("hashchange"));
}
