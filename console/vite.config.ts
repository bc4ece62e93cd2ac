import { defineConfig } from "vite";

// The console is served by the trainyard binary at `/`; during `npm run dev`
// API calls go to a server on 127.0.0.1:8420 (TRAINYARD_URL to change it).
export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false, chunkSizeWarningLimit: 300 },
  server: {
    proxy: { "/api": process.env.TRAINYARD_URL ?? "http://127.0.0.1:8420" },
  },
});
