// A version picker for things numbered 1..latest (datasets, environments).

import { hrefWith, navigate } from "../router";

export function VersionPicker({ parts, latest, current }: { parts: string[]; latest: number; current: number }) {
  return (
    <label>
      Version{" "}
      <select value={String(current)} onChange={(e) => navigate(hrefWith(parts, { version: (e.target as HTMLSelectElement).value }))}>
        {Array.from({ length: latest }, (_, i) => latest - i).map((v) => (
          <option key={v} value={String(v)}>
            {v}
            {v === latest ? " (latest)" : ""}
          </option>
        ))}
      </select>
    </label>
  );
}
