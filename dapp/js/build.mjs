// Bundles the browser module with esbuild (run by tools/setup.sh after `npm ci`):
//   node dapp/js/build.mjs  ->  dapp/component/build/spartacus.js
// and prints the bundle's SHA-256 and size, so that anyone can compare a build of the tagged
// source with what a host serves (README, "Hosting the dApp").
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { readFileSync, mkdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const out = fileURLToPath(new URL("../component/build/spartacus.js", import.meta.url));
mkdirSync(fileURLToPath(new URL("../component/build/", import.meta.url)), { recursive: true });
await build({
  entryPoints: [here + "main.js"],
  outfile: out,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
});
const bytes = readFileSync(out);
const sha = createHash("sha256").update(bytes).digest("hex");
const gz = gzipSync(bytes, { level: 9 }).length;
console.log(`dApp bundle dapp/component/build/spartacus.js: ${bytes.length} bytes (${gz} gzipped), SHA-256 ${sha}`);
