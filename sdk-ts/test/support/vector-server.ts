/**
 * A real server holding one vector case file exactly as written, deliberately invalid flags
 * included (the admin API rightly refuses those): the server crate's `vector_store` example
 * (`flagwire_server::vector_case`, the one loader every suite shares) writes the file, an admin
 * token `ADMIN_TOKEN` and an sdk token `SDK_TOKEN` into a fresh data directory, which
 * `flagwire serve` then serves. The example is $FLAGWIRE_VECTOR_STORE, or
 * `examples/vector_store` next to the server binary, where cargo builds it.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ADMIN_TOKEN, BIN, TestServer } from "./server.js";

/** The sdk token (bound to the case file's environment) of every vector server. */
export const SDK_TOKEN = "fw_sdk_ts_tests_vectors_sdk";

/** The `vector_store` example. */
export const VECTOR_STORE =
  process.env.FLAGWIRE_VECTOR_STORE ?? join(dirname(BIN), "examples", "vector_store");

/** A started server holding the case file at `path`. */
export async function vectorServer(path: string): Promise<TestServer> {
  try {
    accessSync(VECTOR_STORE, constants.X_OK);
  } catch {
    throw new Error(
      `no vector_store at ${VECTOR_STORE}: build it (cargo build -p flagwire-server --example vector_store) or set FLAGWIRE_VECTOR_STORE`,
    );
  }
  const data = join(mkdtempSync(join(tmpdir(), "flagwire-ts-vectors-")), "data");
  const done = spawnSync(VECTOR_STORE, [path, data, ADMIN_TOKEN, SDK_TOKEN], { encoding: "utf8" });
  if (done.status !== 0) throw new Error(`vector_store ${path} failed: ${done.stderr}`);
  return TestServer.startOn(data);
}
