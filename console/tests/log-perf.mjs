// How the run page's log view copes with a big log: a busybox run prints
// LINES lines (default 1,000,000), then headless Chromium opens its log and
// this prints how long loading, scrolling and searching take.
//
//   cd console && npm run perf:log            (LINES=200000 for a shorter run)

import { chromium } from "playwright-core";
import { dockerAnswers, startServer } from "./server.mjs";

const LINES = Number(process.env.LINES ?? 1_000_000);
const WORKSPACE = "perf";

if (!dockerAnswers()) {
  console.log("SKIPPED: no Docker engine answers");
  process.exit(0);
}
const server = await startServer();
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium" });
try {
  await server.api("POST", "/workspaces", { name: WORKSPACE });
  await server.api("PUT", `/workspaces/${WORKSPACE}/experiments/perf`, {});
  const run = await server.api("POST", `/workspaces/${WORKSPACE}/runs`, {
    experiment: "perf",
    command: ["sh", "-c", `seq 1 ${LINES} | sed 's/^/line /; s/$/ of the log, with some text after it so it looks like a log line/'`],
    environment: { spec: { base_image: "trainyard/busybox:latest" } },
  });
  const started = Date.now();
  for (;;) {
    const { status } = await server.api("GET", `/workspaces/${WORKSPACE}/runs/${run.id}`);
    if (status === "Completed") break;
    if (["Failed", "Canceled"].includes(status)) throw new Error(`the run ended ${status}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  console.log(`run printed and stored ${LINES.toLocaleString()} lines in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(server.base);
  await page.evaluate((token) => sessionStorage.setItem("trainyard.token", token), server.token);
  const opened = Date.now();
  await page.goto(`${server.base}/#/w/${WORKSPACE}/runs/${run.id}?tab=logs`);
  await page.reload();
  await page.locator(".log-row").first().waitFor();
  const firstLines = Date.now() - opened;
  await page.waitForFunction((n) => document.querySelector("[data-testid=log-line-count]")?.textContent.replace(/\D/g, "") === String(n), LINES, {
    timeout: 600_000,
    polling: 200,
  });
  const allLines = Date.now() - opened;

  // Frame times while the view jumps to 200 random places (as dragging the scroll bar does),
  // then while it scrolls by wheel.
  const frames = await page.evaluate(async () => {
    const viewport = document.querySelector(".log-viewport");
    const nextFrame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
    const jumps = [];
    for (let i = 0; i < 200; i++) {
      const start = await nextFrame();
      viewport.scrollTop = Math.random() * viewport.scrollHeight;
      // The scroll handler draws on the next frame; the one after shows it painted.
      await nextFrame();
      jumps.push((await nextFrame()) - start);
    }
    // Steady scrolling, three lines a frame, from the middle.
    viewport.scrollTop = viewport.scrollHeight / 2;
    const steady = [];
    let last = await nextFrame();
    for (let i = 0; i < 300; i++) {
      viewport.scrollTop += 48;
      const now = await nextFrame();
      steady.push(now - last);
      last = now;
    }
    const sorted = (xs) => [...xs].sort((a, b) => a - b);
    const stats = (xs) => ({ median: sorted(xs)[xs.length >> 1], p95: sorted(xs)[Math.floor(xs.length * 0.95)], max: Math.max(...xs) });
    return { jumps: stats(jumps), steady: stats(steady), heap: performance.memory?.usedJSHeapSize };
  });

  // The longest gap between frames while the search runs says whether the tab froze.
  await page.evaluate(() => {
    window.longestFrame = 0;
    let last = performance.now();
    const tick = (now) => {
      window.longestFrame = Math.max(window.longestFrame, now - last);
      last = now;
      if (!window.stopFrames) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  const searchStarted = Date.now();
  await page.getByLabel("Search the log").fill("line 99999");
  await page.waitForFunction(() => /[1-9][\d,]* matches(?!…)/.test(document.querySelector(".log-count")?.textContent ?? ""), null, { timeout: 120_000, polling: 50 });
  const search = Date.now() - searchStarted;
  const longestFrame = await page.evaluate(() => ((window.stopFrames = true), window.longestFrame));
  const matches = (await page.locator(".log-count").textContent()).match(/([\d,]+) matches/)[1];

  const ms = (n) => `${Math.round(n)} ms`;
  console.log(`log view, ${LINES.toLocaleString()} lines:`);
  console.log(`  first lines on screen         ${ms(firstLines)}`);
  console.log(`  every line loaded             ${ms(allLines)}`);
  console.log(`  jump to a random place        median ${ms(frames.jumps.median)}, p95 ${ms(frames.jumps.p95)}, max ${ms(frames.jumps.max)} (two frames)`);
  console.log(`  steady scroll, frame interval median ${ms(frames.steady.median)}, p95 ${ms(frames.steady.p95)}, max ${ms(frames.steady.max)}`);
  console.log(`  search "line 99999"           ${ms(search)} (${matches} matches; longest frame meanwhile ${ms(longestFrame)})`);
  if (frames.heap) console.log(`  JavaScript heap after loading ${(frames.heap / 2 ** 20).toFixed(0)} MiB`);
} finally {
  await browser.close();
  await server.stop();
}
