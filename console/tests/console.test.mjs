// The console end to end: Debian's Chromium, headless, driven by
// playwright-core, against a real server (debug binary, embedded PostgreSQL,
// the local Docker engine). With TRAINYARD_CONSOLE_SCREENSHOTS=<folder> it
// also saves screenshots of the main pages there (the README's are in docs/).

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { dockerAnswers, startServer } from "./server.mjs";

const WORKSPACE = "console-e2e";
const BUSYBOX = { spec: { base_image: "trainyard/busybox:latest" } };
const screenshots = process.env.TRAINYARD_CONSOLE_SCREENSHOTS;
const docker = dockerAnswers();
if (!docker && process.env.TRAINYARD_REQUIRE_DOCKER === "1") throw new Error("no Docker engine answers, and TRAINYARD_REQUIRE_DOCKER=1");

let server, browser, page;
const ws = (rest) => `/workspaces/${WORKSPACE}${rest}`;
const open = (fragment) => page.goto(`${server.base}/#/w/${WORKSPACE}/${fragment}`);

async function shoot(name) {
  if (!screenshots) return;
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, `${name}.png`) });
}

/** Waits until the API says the run is in one of `statuses`. */
async function waitForStatus(runId, statuses, seconds = 120) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const run = await server.api("GET", ws(`/runs/${runId}`));
    if (statuses.includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} is ${run.status}, not ${statuses} after ${seconds} s`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function recordRun(name, tags, lossScale) {
  const run = await server.api("POST", ws("/runs"), { experiment: "e2e", display_name: name, tags, properties: { arch: "cnn" } });
  const metrics = [];
  for (let step = 0; step < 50; step++) {
    metrics.push({ name: "loss", step, value: lossScale / (1 + step) });
    metrics.push({ name: "accuracy", step, value: 1 - (0.25 * lossScale) / (1 + step) });
  }
  await server.api("POST", ws(`/runs/${run.id}/metrics`), { metrics });
  return run;
}

/** The number the log view shows as its line count. */
async function logLineCount() {
  return Number((await page.getByTestId("log-line-count").textContent()).replace(/\D/g, ""));
}

describe("web console", { timeout: 600_000 }, () => {
  before(async () => {
    server = await startServer();
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  });

  after(async () => {
    // Leave no container behind: cancel what is still active, and wait for it.
    try {
      const active = await server.api("GET", ws("/runs?status=Queued,Preparing,Starting,Running,Finalizing"));
      for (const run of active.items) await server.api("POST", ws(`/runs/${run.id}/cancel`));
      for (const run of active.items) await waitForStatus(run.id, ["Canceled", "Completed", "Failed"], 30);
    } catch (error) {
      console.error("cleanup:", error.message);
    }
    await browser?.close();
    await server?.stop();
  });

  it("signs in with a token and creates a workspace", async () => {
    await page.goto(server.base);
    await shoot("sign-in");
    await page.getByLabel("API token").fill("tyd_not-a-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").waitFor();
    await page.getByLabel("API token").fill(server.token);
    await page.getByRole("button", { name: "Sign in" }).click();
    // A fresh server has no workspace: the console opens the workspaces page.
    await page.getByRole("heading", { name: "Workspaces" }).waitFor();
    await page.getByLabel("Name").fill(WORKSPACE);
    await page.getByRole("button", { name: "Create workspace" }).click();
    await page.getByRole("link", { name: WORKSPACE }).click();
    await page.getByRole("heading", { name: "Experiments" }).waitFor();
    assert.equal(await page.getByLabel("Workspace").inputValue(), WORKSPACE);
  });

  it("follows the log of a run that is still running, cancels and resubmits it", async (t) => {
    if (!docker) return t.skip("SKIPPED: no Docker engine answers");
    await server.api("PUT", ws("/experiments/e2e"), {});
    const run = await server.api("POST", ws("/runs"), {
      experiment: "e2e",
      display_name: "ticker",
      command: ["sh", "-c", 'for i in $(seq 1 40); do echo "tick $i"; sleep 0.5; done'],
      environment: BUSYBOX,
    });
    await open(`runs/${run.id}?tab=logs`);
    await page.locator(".log-row", { hasText: /^tick 3$/ }).waitFor({ timeout: 120_000 });
    const seen = await logLineCount();
    assert.equal((await server.api("GET", ws(`/runs/${run.id}`))).status, "Running");
    // New lines arrive while the page stays open.
    await page.locator(".log-row", { hasText: /^tick 9$/ }).waitFor({ timeout: 30_000 });
    assert.ok((await logLineCount()) > seen, "the line count grew");
    await page.getByText("Running", { exact: true }).first().waitFor();
    await shoot("run-log");

    await page.getByLabel("Search the log").fill("tick 1");
    await page.getByText(/\d+ matches/).waitFor();
    await page.getByLabel("Only matching lines").check();
    await page.waitForFunction(() => {
      const shown = [...document.querySelectorAll(".log-row:not([hidden])")].map((row) => row.textContent);
      return shown.length > 0 && shown.every((line) => line.includes("tick 1"));
    });

    page.once("dialog", (dialog) => dialog.accept());
    await page.getByRole("button", { name: "Cancel run" }).click();
    await page.locator(".status", { hasText: "Canceled" }).first().waitFor({ timeout: 30_000 });

    // Resubmit runs the same command again, as a new run whose log the page follows.
    await page.getByRole("button", { name: "Resubmit" }).click();
    await page.waitForURL((url) => url.hash.includes("/runs/") && !url.hash.includes(run.id));
    await page.getByRole("tab", { name: "Logs" }).click();
    await page.locator(".log-row", { hasText: /^tick 2$/ }).waitFor({ timeout: 60_000 });
    page.once("dialog", (dialog) => dialog.accept());
    await page.getByRole("button", { name: "Cancel run" }).click();
    await page.locator(".status", { hasText: "Canceled" }).first().waitFor({ timeout: 30_000 });
  });

  it("shows an environment's build log, from the run that built it", async (t) => {
    if (!docker) return t.skip("SKIPPED: no Docker engine answers");
    const marker = `m${Date.now()}`;
    const spec = { base_image: "trainyard/busybox:latest", environment_variables: { MARKER: marker } };
    await server.api("POST", ws("/environments"), { name: "tiny", spec });
    await server.api("PUT", ws("/experiments/e2e"), {});
    const run = await server.api("POST", ws("/runs"), {
      experiment: "e2e",
      command: ["true"],
      environment: { name: "tiny" },
    });
    await waitForStatus(run.id, ["Completed"]);
    await open("environments/tiny");
    const log = page.getByTestId("build-log");
    await log.waitFor({ timeout: 30_000 });
    const built = await server.api("GET", ws(`/runs/${run.id}/logs?source=build`));
    assert.ok(built.lines.length > 0, "the run recorded the build");
    assert.ok((await log.textContent()).includes(built.lines[0].line), "the page shows the build's lines");
    await page.getByRole("link", { name: run.id.slice(0, 8) }).waitFor();
  });

  it("draws a chart of the logged points, and zooms into a range", async () => {
    const run = await recordRun("baseline", { lr: "0.01" }, 2);
    // 5,000 points: drawn downsampled, and read in full once zoomed into a range.
    const throughput = Array.from({ length: 5000 }, (_, step) => ({ name: "throughput", step, value: 100 + 10 * Math.sin(step / 50) }));
    await server.api("POST", ws(`/runs/${run.id}/metrics`), { metrics: throughput });
    await open(`runs/${run.id}?tab=metrics`);

    const chart = page.locator('figure[data-metric="loss"] .chart');
    await chart.locator("canvas").waitFor();
    assert.equal(await chart.getAttribute("data-points"), "50");
    // The legend shows the point under the cursor: the line is drawn over the logged steps.
    const box = await chart.locator(".u-over").boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const legend = chart.locator(".u-legend .u-series .u-value");
    const step = Number(await legend.nth(0).textContent());
    const loss = Number(await legend.nth(1).textContent());
    assert.ok(step >= 20 && step <= 30, `step under the cursor: ${step}`);
    assert.ok(Math.abs(loss - 2 / (1 + step)) < 0.01, `loss at step ${step}: ${loss}`);
    await shoot("run-metrics");

    const big = page.locator('figure[data-metric="throughput"]');
    await big.getByText(/drawn from \d+/).waitFor();
    const plot = await big.locator(".u-over").boundingBox();
    await page.mouse.move(plot.x + plot.width * 0.4, plot.y + plot.height / 2);
    await page.mouse.down();
    await page.mouse.move(plot.x + plot.width * 0.45, plot.y + plot.height / 2, { steps: 5 });
    await page.mouse.up();
    await big.getByText("zoomed: every point").waitFor();
    assert.ok(Number(await big.locator(".chart").getAttribute("data-points")) > 1000, "the zoomed range is drawn from every point");
  });

  it("compares two runs", async () => {
    await recordRun("tuned", { lr: "0.003" }, 1);
    for (const [i, lr] of ["0.1", "0.03", "0.001"].entries()) await recordRun(`sweep-${i + 1}`, { lr, sweep: "lr" }, 3 + i);
    // Filters go to the server: a tag filter keeps the experiment chosen.
    await open("runs?experiment=e2e");
    await page.locator("table.runs").waitFor();
    assert.equal(await page.getByLabel("Experiment").inputValue(), "e2e");
    await page.getByLabel("Tags").fill("lr=0.01");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/tag=lr/);
    await page.waitForFunction(() => document.querySelectorAll("table.runs tbody tr").length === 1);
    assert.match(page.url(), /experiment=e2e/);
    assert.equal(await page.locator("table.runs tbody tr a").textContent(), "baseline");

    await open("runs?experiment=e2e&cols=loss,accuracy");
    await page.getByLabel("Select run baseline").check();
    await page.getByLabel("Select run tuned").check();
    await shoot("runs");
    await page.getByRole("button", { name: "Compare selected (2)" }).click();
    await page.getByRole("heading", { name: "Compare 2 runs" }).waitFor();
    const chart = page.locator('figure[data-metric="loss"] .chart');
    await chart.locator("canvas").waitFor();
    assert.equal(await chart.getAttribute("data-series"), "2");
    assert.equal(await chart.getAttribute("data-points"), "100");
    const lr = page.locator("table.compare tr", { has: page.getByRole("rowheader", { name: "lr" }) });
    assert.deepEqual(await lr.locator("td.num").allTextContents(), ["0.01", "0.003"]);
    await shoot("compare");
  });

  it("shows a run's files, a model and a dataset, and downloads them", async (t) => {
    if (!docker) return t.skip("SKIPPED: no Docker engine answers");
    const run = await server.api("POST", ws("/runs"), {
      experiment: "e2e",
      display_name: "trainer",
      command: ["sh", "-c", "mkdir -p outputs && echo weights > outputs/model.bin && echo trained"],
      environment: BUSYBOX,
    });
    await waitForStatus(run.id, ["Completed"]);
    await server.api("POST", ws("/models"), { name: "digits", run_id: run.id, path: "outputs", framework: "Custom" });

    await open(`runs/${run.id}?tab=files`);
    await page.getByRole("button", { name: "outputs/" }).click();
    const [file] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download", exact: true }).click()]);
    assert.equal(file.suggestedFilename(), "model.bin");
    const chunks = [];
    for await (const chunk of await file.createReadStream()) chunks.push(chunk);
    assert.equal(Buffer.concat(chunks).toString(), "weights\n");

    await open("models/digits");
    await page.getByRole("link", { name: run.id }).waitFor();
    await shoot("model");

    const upload = await fetch(`${server.base}/api/v1${ws("/datastores/default/files?path=digits/train.csv")}`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${server.token}` },
      body: "pixel,label\n0,7\n",
    });
    assert.equal(upload.status, 201);
    await server.api("POST", ws("/datasets"), { name: "digits", paths: ["digits/"] });
    await open("datasets/digits");
    const [csv] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download" }).click()]);
    assert.equal(csv.suggestedFilename(), "train.csv");
    const saved = [];
    for await (const chunk of await csv.createReadStream()) saved.push(chunk);
    assert.equal(Buffer.concat(saved).toString(), "pixel,label\n0,7\n");
  });

  it("shows compute targets and their nodes, and cordons a node", async () => {
    await server.api("POST", ws("/compute"), { name: "gpucluster", max_nodes: 4, labels: { vm_size: "8xA100" } });
    for (const name of ["node-1", "node-2"]) {
      await server.api("POST", ws("/compute/gpucluster/nodes"), {
        name,
        endpoint: "unix:///var/run/docker.sock",
        gpu_mode: "simulated",
        gpus: 8,
        cpus: 64,
        memory_mb: 524288,
      });
    }
    await open("compute");
    await page.getByRole("link", { name: "gpucluster" }).click();
    await page.getByText("2 of at most 4").waitFor();
    await page.getByText("16 GPU, 128 CPU, 1024.0 GiB").waitFor();
    const node = page.locator('tr[data-node="node-2"]');
    page.once("dialog", (dialog) => dialog.accept("disk swap"));
    await node.getByRole("button", { name: "Cordon" }).click();
    await node.getByText("cordoned").waitFor();
    await node.getByText("disk swap").waitFor();
    const stored = await server.api("GET", ws("/compute/gpucluster/nodes/node-2"));
    assert.equal(stored.state, "cordoned");
    await node.getByRole("button", { name: "Make ready" }).click();
    await node.getByText("ready", { exact: true }).waitFor();
  });

  it("shows a node's free GPUs and the runs on it, and why a run waits", async () => {
    await server.api("POST", ws("/compute"), { name: "trainpool", max_nodes: 2, labels: { vm_size: "8xH100" } });
    for (const name of ["gpu-1", "gpu-2"]) {
      await server.api("POST", ws("/compute/trainpool/nodes"), {
        name,
        endpoint: "unix:///var/run/docker.sock",
        gpu_mode: "simulated",
        gpus: 8,
        cpus: 8,
        memory_mb: 8192,
      });
    }
    await open("compute/trainpool");
    for (const name of ["gpu-1", "gpu-2"]) {
      const row = page.locator(`tr[data-node="${name}"]`);
      await row.getByTestId("node-gpus").filter({ hasText: "8/8 free" }).waitFor();
      await row.getByTestId("node-cpus").filter({ hasText: "8/8 free" }).waitFor();
      await row.getByTestId("node-memory").filter({ hasText: "8.0 GiB of 8.0 GiB free" }).waitFor();
    }
    await page.getByText("16 of 16 GPUs, 16 of 16 CPUs, 16.0 GiB of 16.0 GiB").waitFor();
    await page.getByText("No run is waiting for this target.").waitFor();

    // No node has 16 GPUs: the run waits, and the scheduler's pass says why.
    const big = await server.api("POST", ws("/runs"), {
      experiment: "e2e",
      display_name: "too-big",
      command: ["true"],
      compute_target: "trainpool",
      resources: { gpus: 16 },
    });
    // A run that fits takes GPUs 0-2 of one node while it runs (with a Docker engine to run it).
    let sharded;
    if (docker) {
      sharded = await server.api("POST", ws("/runs"), {
        experiment: "e2e",
        display_name: "sharded",
        command: ["sleep", "300"],
        environment: BUSYBOX,
        compute_target: "trainpool",
        resources: { gpus: 3, cpus: 2, memory_mb: 1024 },
      });
      sharded = await waitForStatus(sharded.id, ["Running"]);
      assert.deepEqual(sharded.placement.gpus, [0, 1, 2]);
    }

    // The page reads the queue and the nodes again every few seconds. Without a
    // Docker engine the node monitor soon finds the nodes down, and the reason
    // becomes that no node is Ready.
    const reason = docker ? "needs 16 GPUs" : /needs 16 GPUs|no Ready node/;
    const queued = page.locator(`table.queue tr[data-run="${big.id}"]`);
    await queued.filter({ hasText: reason }).waitFor({ timeout: 60_000 });
    assert.equal(await queued.getByRole("link").textContent(), "too-big");
    await page.getByText("Queue (1)").waitFor();
    if (sharded) {
      const row = page.locator(`tr[data-node="${sharded.placement.node}"]`);
      await row.getByTestId("node-gpus").filter({ hasText: "5/8 free (3,4,5,6,7)" }).waitFor({ timeout: 30_000 });
      await row.getByTestId("node-gpus").filter({ hasText: "in use: 0,1,2" }).waitFor();
      await row.getByTestId("node-cpus").filter({ hasText: "6/8 free" }).waitFor();
      await row.getByTestId("node-memory").filter({ hasText: "7.0 GiB of 8.0 GiB free" }).waitFor();
      await row.getByRole("link", { name: "sharded" }).waitFor();
      await page.getByText("13 of 16 GPUs, 14 of 16 CPUs, 15.0 GiB of 16.0 GiB").waitFor();
    }
    await shoot("compute");

    // The compute page lists it among the runs waiting to start, with its reason.
    await open("compute");
    await page.locator(`tr[data-run="${big.id}"]`).filter({ hasText: reason }).waitFor();

    // Its run page says why it waits; the placed run's says where it runs and what it holds.
    await open(`runs/${big.id}`);
    await page.getByTestId("wait-reason").filter({ hasText: reason }).waitFor();
    if (sharded) {
      await open(`runs/${sharded.id}`);
      await page.getByTestId("placement").filter({ hasText: `${sharded.placement.node} (trainpool): GPUs 0,1,2, 2 CPUs, 1.0 GiB` }).waitFor();
      assert.equal(await page.getByTestId("wait-reason").count(), 0);
      await server.api("POST", ws(`/runs/${sharded.id}/cancel`));
    }
  });

  it("shows a distributed run's shape and ranks, and each rank's log", async (t) => {
    if (!docker) return t.skip("SKIPPED: no Docker engine answers");
    await server.api("POST", ws("/compute"), { name: "ddp", max_nodes: 2, default_resources: { cpus: 0.5, memory_mb: 512 } });
    for (const name of ["ddp-a", "ddp-b"]) {
      await server.api("POST", ws("/compute/ddp/nodes"), {
        name,
        endpoint: "unix:///var/run/docker.sock",
        gpu_mode: "simulated",
        gpus: 2,
        cpus: 2,
        memory_mb: 2048,
      });
    }
    const run = await server.api("POST", ws("/runs"), {
      experiment: "e2e",
      display_name: "ddp",
      command: ["sh", "-c", "echo rank $TRAINYARD_RANK; sleep 2"],
      environment: BUSYBOX,
      compute_target: "ddp",
      node_count: 2,
      process_count_per_node: 1,
      distribution: { type: "pytorch" },
    });
    // Opened while it waits: the page shows the ranks once it is placed, and follows every rank's log.
    await open(`runs/${run.id}`);
    await page.getByTestId("shape").filter({ hasText: "2 nodes × 1 process, pytorch" }).waitFor();
    const rows = page.locator("table.ranks tbody tr");
    await rows.nth(1).waitFor({ timeout: 120_000 });
    assert.equal(await rows.count(), 2);
    const placed = (await server.api("GET", ws(`/runs/${run.id}`))).placement;
    assert.equal(placed.ranks.length, 2);
    for (const [i, rank] of placed.ranks.entries()) {
      const row = page.locator(`table.ranks tr[data-rank="${i}"]`);
      assert.equal(await row.locator("td").first().textContent(), String(i));
      await row.getByRole("link", { name: rank.node }).waitFor();
      await row.getByText(`${rank.address}:${rank.port}`).waitFor();
      await row.getByText("0.5 GiB").waitFor();
    }
    // The scheduler packs a gang onto as few nodes as fit it: node_count does not spread the ranks.
    const nodes = [...new Set(placed.ranks.map((rank) => rank.node))];
    const summary = `2 ranks on ${nodes.length} ${nodes.length === 1 ? "node" : "nodes"} of ddp: ${nodes.join(", ")}`;
    await page.getByTestId("placement").filter({ hasText: summary }).waitFor();

    await page.getByRole("tab", { name: "Logs", exact: true }).click();
    // Rank 0's output first and shown by default, then each rank's sources in rank order.
    const sources = page.getByRole("tablist", { name: "Log sources" });
    await sources.getByRole("tab", { name: "stdout/rank-1", exact: true }).waitFor({ timeout: 60_000 });
    await sources.getByRole("tab", { name: "stdout/rank-0", exact: true, selected: true }).waitFor({ timeout: 30_000 });
    await page.locator(".log-row", { hasText: /^rank 0$/ }).waitFor({ timeout: 30_000 });
    const names = await sources.getByRole("tab").allTextContents();
    assert.deepEqual(
      names.filter((name) => name.startsWith("stdout/")),
      ["stdout/rank-0", "stdout/rank-1"],
    );
    assert.ok(names.indexOf("stdout/rank-1") > names.indexOf("stdout/rank-0"));
    await sources.getByRole("tab", { name: "stdout/rank-1", exact: true }).click();
    await page.locator(".log-row", { hasText: /^rank 1$/ }).waitFor({ timeout: 30_000 });
    assert.equal(await page.locator(".log-row", { hasText: /^rank 0$/ }).count(), 0);

    await waitForStatus(run.id, ["Completed"]);
    await page.locator(".status", { hasText: "Completed" }).first().waitFor({ timeout: 30_000 });
    await page.getByRole("tab", { name: "Overview", exact: true }).click();
    await rows.nth(1).waitFor();
    await shoot("run-ranks");

    // Resubmit keeps the shape and the distribution.
    await page.getByRole("button", { name: "Resubmit" }).click();
    await page.waitForURL((url) => url.hash.includes("/runs/") && !url.hash.includes(run.id));
    const again = await server.api("GET", ws(`/runs/${page.url().split("/runs/")[1].split("?")[0]}`));
    assert.equal(again.spec.node_count, 2);
    assert.deepEqual(again.spec.distribution, { type: "pytorch" });
    await page.getByTestId("shape").filter({ hasText: "2 nodes × 1 process, pytorch" }).waitFor();
    await waitForStatus(again.id, ["Completed"]);
  });

  it("fits a narrow window, and follows the system's dark mode", async () => {
    const runs = (await server.api("GET", ws("/runs?tag=lr"))).items;
    const baseline = runs.find((r) => r.display_name === "baseline");
    await page.setViewportSize({ width: 390, height: 844 });
    const compare = "compare?" + runs.map((r) => `run=${r.id}`).join("&");
    const pages = [
      ["runs?experiment=e2e&cols=loss", "table.runs"],
      ["experiments", "table.list"],
      [`runs/${baseline.id}`, ".timeline"],
      [`runs/${baseline.id}?tab=metrics`, ".chart canvas"],
      [compare, "table.compare"],
      ["compute/trainpool", "table.nodes"],
    ];
    for (const [fragment, content] of pages) {
      await open(fragment);
      await page.locator(content).first().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
      assert.ok(overflow <= 0, `${fragment} is ${overflow} px wider than the window`);
    }
    await open("runs?experiment=e2e&cols=loss");
    await page.getByRole("link", { name: "baseline" }).waitFor();
    await shoot("runs-narrow");
    await page.setViewportSize({ width: 1280, height: 800 });

    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.emulateMedia({ colorScheme: "light" });
    const light = await background();
    await page.emulateMedia({ colorScheme: "dark" });
    const dark = await background();
    const luminance = (rgb) => rgb.match(/\d+/g).slice(0, 3).reduce((sum, c) => sum + Number(c), 0) / 3;
    assert.ok(luminance(light) > 200 && luminance(dark) < 50, `light ${light}, dark ${dark}`);
    await open(`runs/${baseline.id}?tab=metrics`);
    await page.locator('figure[data-metric="loss"] canvas').waitFor();
    await shoot("run-metrics-dark");
    await page.emulateMedia({ colorScheme: "light" });
  });

  it("creates a token, shows its secret once, and revokes it", async () => {
    await open("tokens");
    await page.getByLabel("Name").fill("e2e-reader");
    await page.getByLabel("Role").selectOption("reader");
    await page.getByRole("button", { name: "Create token" }).click();
    const secret = (await page.getByTestId("new-secret").textContent()).trim();
    assert.match(secret, /^tyd_/);
    const whoami = () => fetch(`${server.base}/api/v1/whoami`, { headers: { Authorization: `Bearer ${secret}` } });
    assert.equal((await whoami()).status, 200);
    await shoot("tokens");

    const row = page.locator('tr[data-token-name="e2e-reader"]');
    page.once("dialog", (dialog) => dialog.accept());
    await row.getByRole("button", { name: "Revoke" }).click();
    await row.locator(".token-state", { hasText: "revoked" }).waitFor();
    assert.equal((await whoami()).status, 401);
  });
});
