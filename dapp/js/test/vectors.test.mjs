// The known-answer vectors under Node (fast): `node --test dapp/js/test/*.test.mjs`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as lib from "../crypto.js";
import { checkVectors } from "./vectors.js";

const vectors = JSON.parse(readFileSync(new URL("../../../tests/vectors/format-v2.json", import.meta.url), "utf8"));

test("every byte of the format-v2 vectors, and the three rosters", async () => {
  const results = await checkVectors(lib, vectors);
  const failed = results.filter((r) => !r.ok);
  assert.ok(results.length > 40, `only ${results.length} checks ran`);
  assert.deepEqual(failed, []);
});
