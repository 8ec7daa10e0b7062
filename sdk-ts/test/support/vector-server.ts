/**
 * A real server holding one vector case file's flags and segments as stored: the file becomes
 * a backup (`flagwire backup`'s format: a magic line, then length-delimited `BackupResponse`s:
 * header, the store entries, a checksummed trailer) that `flagwire restore` loads into a fresh
 * data directory, which `flagwire serve` then serves. A restore and not AdminService, because
 * some vector flags are deliberately invalid and the admin API rightly refuses them (the
 * server's own vector test loads its store the same way).
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromJson, toBinary, type JsonValue } from "@bufbuild/protobuf";
import { sizeDelimitedEncode } from "@bufbuild/protobuf/wire";
import { BackupResponseSchema } from "../../src/gen/flagwire/v1/admin_pb.js";
import { EnvironmentSchema, FlagSchema, SegmentSchema } from "../../src/gen/flagwire/v1/flag_pb.js";
import { BIN, TestServer } from "./server.js";

/** What a case file holds that the store needs. */
export interface StoredFile {
  environment: string;
  flags: JsonValue[];
  segments?: JsonValue[];
}

const MAGIC = new TextEncoder().encode("flagwire backup\n");

function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The store entries (server/src/store/keys.rs's layout) of a case file, in key order. */
function entries(file: StoredFile): [Uint8Array, Uint8Array][] {
  const env = file.environment;
  const out: [Uint8Array, Uint8Array][] = [
    [bytes(`e/${env}`), toBinary(EnvironmentSchema, create(EnvironmentSchema, { key: env, revision: 1n }))],
  ];
  for (const json of file.flags) {
    const flag = fromJson(FlagSchema, json);
    out.push([bytes(`f/${flag.key}`), toBinary(FlagSchema, flag)]);
  }
  for (const json of file.segments ?? []) {
    const segment = fromJson(SegmentSchema, json);
    if (segment.environment === "") segment.environment = env;
    out.push([bytes(`s/${segment.environment}/${segment.key}`), toBinary(SegmentSchema, segment)]);
  }
  return out.sort((a, b) => compare(a[0], b[0]));
}

/** Writes `file` as a backup at `path`. */
export function writeBackup(path: string, file: StoredFile): void {
  const stored = entries(file);
  const hash = createHash("sha256");
  for (const [k, v] of stored) {
    for (const part of [k, v]) {
      const len = Buffer.alloc(8);
      len.writeBigUInt64BE(BigInt(part.length));
      hash.update(len);
      hash.update(part);
    }
  }
  const messages = [
    create(BackupResponseSchema, {
      kind: { case: "header", value: { formatVersion: 1, revisions: { [file.environment]: 1n } } },
    }),
    create(BackupResponseSchema, {
      kind: { case: "entries", value: { entries: stored.map(([key, value]) => ({ key, value })) } },
    }),
    create(BackupResponseSchema, {
      kind: { case: "trailer", value: { entryCount: BigInt(stored.length), sha256: hash.digest() } },
    }),
  ];
  const parts = [MAGIC, ...messages.map((m) => sizeDelimitedEncode(BackupResponseSchema, m))];
  writeFileSync(path, Buffer.concat(parts));
}

/** A started server (admin token `ADMIN_TOKEN`) holding the case file `file`. */
export async function vectorServer(file: StoredFile): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "flagwire-ts-vectors-"));
  const backup = join(dir, "vectors.backup");
  writeBackup(backup, file);
  const data = join(dir, "data");
  const done = spawnSync(BIN, ["restore", "--in", backup, "--data-dir", data], { encoding: "utf8" });
  if (done.status !== 0) throw new Error(`flagwire restore failed: ${done.stderr}`);
  return TestServer.startOn(data);
}
