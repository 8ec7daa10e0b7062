import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (file: string): string => fileURLToPath(new URL(`./src/${file}`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^@flagwire\/sdk\/node$/, replacement: src("node.ts") },
      { find: /^@flagwire\/sdk\/fetch$/, replacement: src("fetch.ts") },
      { find: /^@flagwire\/sdk\/openfeature$/, replacement: src("openfeature.ts") },
      { find: /^@flagwire\/sdk$/, replacement: src("index.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration files each start their own server; two cores are shared with other work.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
