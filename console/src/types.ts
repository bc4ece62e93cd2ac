// The API's documents as the console reads them: a subset of the schemas in
// openapi/openapi.json, by the same names.

export type Role = "reader" | "contributor" | "admin";

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  field?: string | null;
}

export interface Identity {
  token_id: string;
  role: Role;
  server_admin: boolean;
  workspace_id?: string | null;
}

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

export interface Workspace {
  id: string;
  name: string;
  description?: string | null;
  created_at: string;
}

export interface Experiment {
  id: string;
  name: string;
  description?: string | null;
  tags: Record<string, string>;
  archived: boolean;
  created_at: string;
}

export const RUN_STATUSES = [
  "Queued",
  "Preparing",
  "Starting",
  "Running",
  "Finalizing",
  "Completed",
  "Failed",
  "Canceled",
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const ENDED: readonly RunStatus[] = ["Completed", "Failed", "Canceled"];

export interface EnvironmentSpec {
  base_image?: string | null;
  dockerfile?: string | null;
  apt_packages?: string[];
  pip_packages?: string[];
  pip_requirements?: string | null;
  conda_specification?: string | null;
  environment_variables?: Record<string, string>;
}

export interface RunInput {
  name: string;
  dataset: string;
  version: number;
  mode: "mount" | "download";
  path: string;
}

/** What a run executes, as stored with it; `{}` for a run that only records. */
export interface RunSpec {
  snapshot?: string;
  script?: string;
  command?: string[];
  arguments?: string[];
  environment?: { name?: string; version?: number; spec: EnvironmentSpec };
  compute_target?: string;
  resources?: { gpus?: number; cpus?: number | null; memory_mb?: number | null };
  environment_variables?: Record<string, string>;
  time_limit_seconds?: number;
  inputs?: RunInput[];
  /** Higher goes first on its compute target; absent when 0. */
  priority?: number;
  /** Nodes a distributed run spans; absent when 1. */
  node_count?: number;
  /** Processes (ranks) on each node; absent when 1. `resources` are per node, split evenly between them. */
  process_count_per_node?: number;
  /** How a distributed run's processes find each other. */
  distribution?: Distribution;
}

/** How the processes of a distributed run find each other. */
export type Distribution =
  | { type: "pytorch" }
  | { type: "mpi" }
  | { type: "tensorflow"; worker_count?: number | null; parameter_server_count?: number; chief?: boolean };

export interface Run {
  id: string;
  experiment_id: string;
  display_name?: string | null;
  status: RunStatus;
  tags: Record<string, string>;
  properties: Record<string, string>;
  spec: RunSpec;
  cancel_requested: boolean;
  created_at: string;
  started_at?: string | null;
  ended_at?: string | null;
  exit_code?: number | null;
  error?: string | null;
  /** Why it still waits, while it is Queued on a compute target; null until the scheduler's first pass. */
  wait_reason?: string | null;
  /** Its node and what it holds there, once a compute target's scheduler placed it. */
  placement?: RunPlacement | null;
}

/** Where the scheduler placed a run: its node and what it holds there. */
export interface RunPlacement {
  node_id: string;
  node: string;
  compute_target: string;
  /** GPU indexes on the node, ascending. */
  gpus: number[];
  gpu_mode: string;
  cpus?: number | null;
  memory_mb?: number | null;
  /** For a distributed run: where each rank goes, in rank order (rank 0 is also the fields above). */
  ranks?: RankPlacement[];
}

/** Where one rank (process) of a distributed run goes. */
export interface RankPlacement {
  node_id: string;
  node: string;
  gpus: number[];
  gpu_mode: string;
  cpus?: number | null;
  memory_mb?: number | null;
  /** The node's address, as the other ranks reach it. */
  address: string;
  /** The port allocated to the rank on that address. */
  port: number;
}

export interface RunEvent {
  from?: RunStatus | null;
  to: RunStatus;
  reason: string;
  at: string;
}

export interface LogLine {
  source: string;
  seq: number;
  at: string;
  line: string;
}

export interface LogPage {
  /** The source read: the one asked for, else `stdout` (`stdout/rank-0` for a distributed run). */
  source?: string;
  sources: string[];
  lines: LogLine[];
  next_seq: number;
}

export interface RunFile {
  path: string;
  size: number;
  modified: string;
}

/** A metric value: a number, "NaN"/"Infinity"/"-Infinity", or JSON of a list, row, table or image. */
export type MetricValue = unknown;

export interface Point {
  step: number;
  timestamp: string;
  value: MetricValue;
}

export interface Metric {
  name: string;
  kind: "scalar" | "list" | "row" | "table" | "image";
  count: number;
  latest: { step?: number | null; timestamp?: string | null; value: MetricValue };
}

export interface History {
  points: Point[];
  next_after_step?: number | null;
}

export interface ComparedRun {
  run_id: string;
  metrics: (Metric & { history?: Point[] | null })[];
}

export interface Environment {
  id: string;
  name: string;
  version: number;
  description?: string | null;
  spec: EnvironmentSpec;
  image: string;
  build_state: "not_built" | "building" | "ready" | "failed";
  build_error?: string | null;
  created_at: string;
}

export interface Dataset {
  id: string;
  name: string;
  version: number;
  description?: string | null;
  datastore?: string | null;
  tags: Record<string, string>;
  paths: string[];
  file_count: number;
  total_bytes: number;
  created_at: string;
}

export interface DatasetFile {
  path: string;
  size: number;
  sha256: string;
}

export interface Model {
  id: string;
  name: string;
  version: number;
  description?: string | null;
  framework?: string | null;
  framework_version?: string | null;
  tags: Record<string, string>;
  properties: Record<string, string>;
  resource_configuration?: Record<string, unknown> | null;
  run_id?: string | null;
  /** The environment of the run it came from, when that run named one. */
  environment?: { name: string; version?: number | null } | null;
  /** The dataset versions that run read. */
  datasets: { input: string; name: string; version: number }[];
  files: { path: string; size: number }[];
  aliases: string[];
  created_at: string;
}

export interface Token {
  id: string;
  name: string;
  role: Role;
  prefix: string;
  workspace_id?: string | null;
  created_at: string;
  expires_at?: string | null;
  last_used_at?: string | null;
  revoked_at?: string | null;
}

export interface CreatedToken extends Token {
  secret: string;
}

export interface Resources {
  gpus?: number;
  cpus?: number;
  memory_mb?: number;
}

export interface ComputeTarget {
  id: string;
  name: string;
  labels: Record<string, string>;
  max_nodes: number;
  default_resources: Resources;
  created_at: string;
}

export interface ComputeNode {
  id: string;
  compute_target: string;
  name: string;
  endpoint: string;
  tls: boolean;
  gpu_mode: string;
  state: "ready" | "cordoned" | "draining" | "down";
  state_reason?: string | null;
  /** `unknown` (not checked yet), `up` or `down`: whether its engine answered the node monitor. */
  health: "unknown" | "up" | "down";
  health_reason?: string | null;
  last_seen_at?: string | null;
  engine_version?: string | null;
  capacity: { gpus: number; cpus: number; memory_mb: number };
  /** What its active runs hold. */
  allocated: NodeAllocation;
  /** What is left for new runs. */
  free: NodeAllocation;
  /** The runs that hold it now (preparing, starting, running or finalizing). */
  running_runs: string[];
  created_at: string;
}

/** Resources of a node held by runs, or free: GPU indexes (ascending), CPU cores, MiB. */
export interface NodeAllocation {
  gpus: number[];
  cpus: number;
  memory_mb: number;
}

/** A run waiting on a compute target (GET …/compute/{name}/queue). */
export interface QueueEntry {
  run_id: string;
  display_name?: string | null;
  priority: number;
  created_at: string;
  /** Null until the scheduler's first pass over it. */
  wait_reason?: string | null;
}
