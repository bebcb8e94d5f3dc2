#!/usr/bin/env node
// A `solc`-compatible front end over solc-js (the npm `solc` package), so that
// py-solc-x, ape-solidity and slither can drive the official compiler built
// with Emscripten. Native solc binaries cannot be downloaded on our machines.
//
// Supported: `--version`, `--standard-json` (input on stdin, JSON on stdout),
// `--base-path DIR`, `--include-path DIR` (repeatable); `--allow-paths` is
// accepted and ignored (solc-js has no file system access of its own: imports
// are resolved by the callback below, only inside the given roots).
//
// Package imports (`@openzeppelin/contracts/...`) also resolve inside the repository's
// own node_modules, installed from package-lock.json: Ape compiles a copy of contracts/
// in a temporary folder, where no remapping to the repository could point.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

function parseArgs(argv) {
  const opts = { version: false, standardJson: false, basePath: null, includePaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const takeValue = () => {
      if (arg.includes('=')) return arg.slice(arg.indexOf('=') + 1);
      i += 1;
      return argv[i];
    };
    if (arg === '--version' || arg === '-v') opts.version = true;
    else if (arg === '--standard-json') opts.standardJson = true;
    else if (arg.startsWith('--base-path')) opts.basePath = takeValue();
    else if (arg.startsWith('--include-path')) opts.includePaths.push(takeValue());
    else if (arg.startsWith('--allow-paths')) takeValue();
    // Anything else (e.g. `-` for stdin) is harmless in standard-JSON mode.
  }
  return opts;
}

function readStdin() {
  return fs.readFileSync(0, 'utf8');
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.version) {
    process.stdout.write('solc, the solidity compiler commandline interface\n');
    process.stdout.write(`Version: ${solc.version()}\n`);
    return 0;
  }
  if (!opts.standardJson) {
    process.stderr.write('solc-shim: only --version and --standard-json are supported\n');
    return 2;
  }
  const packages = path.resolve(__dirname, '..', 'node_modules');
  const roots = [opts.basePath || process.cwd(), ...opts.includePaths, packages].map((p) => path.resolve(p));
  const findImports = (importPath) => {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.join(root, importPath));
    for (const candidate of candidates) {
      const resolved = path.resolve(candidate);
      // Only read files inside the allowed roots (what solc's --allow-paths guards).
      if (!roots.some((root) => resolved === root || resolved.startsWith(root + path.sep))) continue;
      if (fs.existsSync(resolved) && fs.statSync(resolved).isFile()) {
        return { contents: fs.readFileSync(resolved, 'utf8') };
      }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(', ')})` };
  };
  let input = readStdin();
  if (process.env.SOLC_SHIM_VIA_IR === '1') {
    // Slither builds its own standard JSON without the project's settings: compile the way
    // `ape compile` does (ape-config.yaml: via_ir with the optimizer), or the contracts do not fit.
    const json = JSON.parse(input);
    json.settings = json.settings || {};
    json.settings.viaIR = true;
    json.settings.optimizer = { ...(json.settings.optimizer || {}), enabled: true };
    input = JSON.stringify(json);
  }
  const output = solc.compile(input, { import: findImports });
  process.stdout.write(output);
  return 0;
}

process.exitCode = main();
