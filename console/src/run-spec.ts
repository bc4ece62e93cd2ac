// What the console reads out of a run's stored spec.

import type { Run, RunSpec } from "./types";

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
    priority: spec.priority,
    node_count: spec.node_count,
    process_count_per_node: spec.process_count_per_node,
    distribution: spec.distribution,
  };
}

/** Whether the run's processes are ranks that find each other (a container and a port each), as the server decides. */
export function distributed(spec: RunSpec): boolean {
  return !!spec.distribution || (spec.node_count ?? 1) * (spec.process_count_per_node ?? 1) > 1;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** A distributed run's shape: `2 nodes × 2 processes, pytorch`, `1 node × 3 processes, tensorflow: chief, 2 workers`. */
export function shapeOf(spec: RunSpec): string {
  const nodes = spec.node_count ?? 1;
  const perNode = spec.process_count_per_node ?? 1;
  const text = `${plural(nodes, "node")} × ${plural(perNode, "process", "processes")}`;
  const distribution = spec.distribution;
  if (!distribution) return text;
  if (distribution.type !== "tensorflow") return `${text}, ${distribution.type}`;
  const tasks = tensorflowTasks(spec);
  const count = (kind: string) => tasks.filter((t) => t.startsWith(kind)).length;
  const roles = [
    count("chief") ? "chief" : null,
    count("worker") ? plural(count("worker"), "worker") : null,
    count("ps") ? plural(count("ps"), "parameter server") : null,
  ];
  return `${text}, tensorflow: ${roles.filter(Boolean).join(", ")}`;
}

/**
 * Each rank's TensorFlow task, as the server writes it into TF_CONFIG: the
 * chief (when asked), then the workers, then the parameter servers
 * (`chief`, `worker 0`, `worker 1`, `ps 0`); empty for other distributions.
 */
export function tensorflowTasks(spec: RunSpec): string[] {
  const distribution = spec.distribution;
  if (distribution?.type !== "tensorflow") return [];
  const total = (spec.node_count ?? 1) * (spec.process_count_per_node ?? 1);
  const chiefs = distribution.chief ? 1 : 0;
  const servers = distribution.parameter_server_count ?? 0;
  const workers = distribution.worker_count ?? Math.max(0, total - chiefs - servers);
  return [
    ...Array.from({ length: chiefs }, () => "chief"),
    ...Array.from({ length: workers }, (_, i) => `worker ${i}`),
    ...Array.from({ length: servers }, (_, i) => `ps ${i}`),
  ];
}
