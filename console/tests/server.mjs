// A real Trainyard server for the browser tests: the debug binary with its
// embedded PostgreSQL in a fresh data directory under /tmp and the local
// Docker engine as its node, as deploy/test-python.sh starts one.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, openSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repository = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

/** Whether a Docker engine answers (runs need one to leave Queued). */
export function dockerAnswers() {
  return spawnSync("docker", ["info"], { stdio: "ignore" }).status === 0;
}

export async function startServer() {
  const binary = process.env.TRAINYARD_BIN ?? join(repository, "target/debug/trainyard");
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run cargo build -p trainyard first`);
  const dataDir = mkdtempSync("/tmp/trainyard-console-test.");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const log = openSync(join(dataDir, "server.log"), "w");
  const extraCa = existsSync("/etc/ssl/certs/ca-certificates.crt") ? ["--extra-ca-certificate", "/etc/ssl/certs/ca-certificates.crt"] : [];
  const child = spawn(
    binary,
    ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--replica-name", `console-test-${process.pid}`, "--stop-grace-seconds", "2", ...extraCa],
    { stdio: ["ignore", log, log] },
  );
  const exited = new Promise((done) => child.once("exit", done));
  // A first start runs initdb, which takes a while on a busy machine.
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      const how = child.exitCode !== null ? `exited with ${child.exitCode}` : "was not ready after 180 s";
      child.kill("SIGTERM");
      await exited;
      const log = readFileSync(join(dataDir, "server.log"), "utf8");
      rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`the server ${how}:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();

  /** Calls the API as the server administrator. */
  async function api(method, path, body) {
    const response = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.status === 204 ? undefined : response.json();
  }

  async function stop() {
    child.kill("SIGTERM");
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  }

  return { base, token, api, stop, dataDir };
}
