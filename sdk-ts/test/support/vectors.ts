/** Where the cross-language vectors live (tests/vectors at the repository root). */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const VECTORS = resolve(dirname(fileURLToPath(import.meta.url)), "../../../tests/vectors");
