// What the console reads out of a run's stored spec.

import type { Run } from "./types";

/**
 * The script's parameters from its arguments: `--lr 0.01`, `--lr=0.01` and
 * bare flags (`--fast`, read as "true"), as the guides' scripts take them.
 */
export function parameters(args: string[] = []): [string, string][] {
  const found: [string, string][] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!/^--?[A-Za-z_]/.test(arg)) continue;
    const name = arg.replace(/^--?/, "");
    const eq = name.indexOf("=");
    if (eq > 0) found.push([name.slice(0, eq), name.slice(eq + 1)]);
    else if (i + 1 < args.length && !/^--?[A-Za-z_]/.test(args[i + 1])) found.push([name, args[++i]]);
    else found.push([name, "true"]);
  }
  return found;
}

/** Whether the run executes something (a run that only records has an empty spec). */
export function executes(run: Run): boolean {
  return !!(run.spec.script || run.spec.command?.length);
}

/** The submission that runs the same thing again: same source, environment version, inputs and settings. */
export function resubmission(run: Run): Record<string, unknown> {
  const spec = run.spec;
  const environment = spec.environment;
  return {
    experiment: run.experiment_id,
    display_name: run.display_name ?? undefined,
    tags: run.tags,
    properties: run.properties,
    snapshot: spec.snapshot,
    script: spec.script,
    command: spec.command,
    arguments: spec.arguments,
    environment: environment?.name ? { name: environment.name, version: environment.version } : environment ? { spec: environment.spec } : undefined,
    compute_target: spec.compute_target,
    resources: spec.resources,
    environment_variables: spec.environment_variables,
    time_limit_seconds: spec.time_limit_seconds,
    inputs: spec.inputs?.map(({ name, dataset, version, mode, path }) => ({ name, dataset, version, mode, path })),
  };
}
