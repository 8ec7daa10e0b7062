// Builds the console into dist/, which the server embeds (server/src/console.rs). The output
// must be byte-for-byte reproducible from the sources and package-lock.json: scripts/test-console
// rebuilds it and fails when it differs from the committed dist/.
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The CSP forbids inline scripts and data: scripts; keep everything in files.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
});
