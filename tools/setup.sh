#!/usr/bin/env bash
# Installs everything Spartacus needs into the repository itself, from the package
# registries only: a Python venv with pinned packages (.venv), the Node tools
# (node_modules: solc-js and anvil), and the wiring that makes Ape compile with
# solc-js (.solcx/solc-v<version>). Idempotent: with nothing changed it takes seconds.
#
# Usage: tools/setup.sh [--browser]   (--browser also installs Debian's chromium)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
solc_version="$(sed -n 's/^ *version: *\([0-9.]*\) *$/\1/p' ape-config.yaml | head -n 1)"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }
stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

command -v "$python" >/dev/null || die "Python 3.11 is needed: install python3 and python3-venv."
command -v node >/dev/null && command -v npm >/dev/null || die "Node.js 20+ and npm are needed: apt-get install nodejs npm."
[ -n "$solc_version" ] || die "no 'solidity: version:' in ape-config.yaml"

# 1. Node tools, pinned by package-lock.json.
node_stamp="$(stamp_of package.json package-lock.json)"
if [ "$(cat node_modules/.spartacus-stamp 2>/dev/null)" != "$node_stamp" ]; then
    say "Installing Node tools and browser libraries (solc-js, OpenZeppelin, anvil, noble, esbuild)"
    # Exactly the lock file: `npm ci` never rewrites it, so setup leaves `git status` clean.
    # The lock lists every platform's anvil and esbuild binary; npm installs this one's.
    npm ci --no-audit --no-fund --loglevel=error
    echo "$node_stamp" > node_modules/.spartacus-stamp
fi
# 1b. The dApp's browser module, bundled with esbuild into dapp/component/build (git-ignored,
#     served by the dApp itself, never a CDN); rebuilt only when its sources or the lock change.
#     The build prints the bundle's SHA-256: compare it with what a host serves (README).
js_stamp="$(stamp_of package-lock.json dapp/js/build.mjs $(ls dapp/js/*.js | sort))"
if [ "$(cat dapp/component/build/.spartacus-stamp 2>/dev/null)" != "$js_stamp" ] || [ ! -s dapp/component/build/spartacus.js ]; then
    say "Bundling the dApp's browser module (esbuild)"
    node dapp/js/build.mjs
    echo "$js_stamp" > dapp/component/build/.spartacus-stamp
fi
anvil_bin="$root/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
[ -x "$anvil_bin" ] || anvil_bin="$(ls "$root"/node_modules/@foundry-rs/anvil-*/bin/anvil 2>/dev/null | head -n 1)"
[ -x "$anvil_bin" ] || die "anvil was not installed by npm (node_modules/@foundry-rs/anvil-*/bin/anvil)"

# 2. Python venv, pinned by requirements.lock.
py_stamp="$(stamp_of requirements.lock pyproject.toml)"
if [ "$(cat .venv/.spartacus-stamp 2>/dev/null)" != "$py_stamp" ]; then
    say "Installing Python packages into .venv"
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    echo "$py_stamp" > .venv/.spartacus-stamp
fi

# 3. The compiler: py-solc-x treats $SOLCX_BINARY_PATH/solc-v<version> as installed.
mkdir -p .solcx
ln -sfn ../tools/solc-shim.js ".solcx/solc-v$solc_version"
got="$(.solcx/solc-v"$solc_version" --version | sed -n 's/^Version: \([0-9.]*\).*/\1/p')"
[ "$got" = "$solc_version" ] || die "solc-js reports version '$got', ape-config.yaml wants $solc_version"

# 4. Tools on the venv's PATH, so `ape`, the tests and the CLI find them.
ln -sfn "$anvil_bin" .venv/bin/anvil

# 5. Optional: a browser for the dApp's end-to-end tests.
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null; then
    say "Installing chromium (Debian package)"
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi

# 6. Compile the contracts. Ape's cache recompiles only the files that changed, but the factory
#    embeds the campaign implementation's code: when any source (or the compiler settings)
#    changed, everything is compiled again, so no contract's bytecode is ever stale.
sol_stamp="$(find contracts -name '*.sol' -print0 | sort -z | xargs -0 cat | cat - ape-config.yaml package-lock.json | sha256sum | cut -d' ' -f1)"
if [ "$(cat .build/.spartacus-stamp 2>/dev/null)" != "$sol_stamp" ] || [ ! -f .build/__local__.json ]; then
    say "Compiling the contracts"
    SOLCX_BINARY_PATH="$root/.solcx" .venv/bin/ape compile --force >/dev/null
    echo "$sol_stamp" > .build/.spartacus-stamp
fi
say "Setup complete"
