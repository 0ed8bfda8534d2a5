#!/usr/bin/env bash
# Runs both official clients unchanged against a freshly started simulator.
# Installs the pinned SDKs into a scratch directory outside the repository (default
# /tmp/tastytrade-official-clients, override with SCRATCH=...), starts
# `tastytrade-gateway simulate` on 127.0.0.1:$PORT (default 8081), runs js/official.mjs and
# python/official.py, stops the simulator it started, and exits non-zero if either client failed.
# Not part of .ci/run: it needs npm and PyPI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
scratch="${SCRATCH:-/tmp/tastytrade-official-clients}"
port="${PORT:-8081}"
target="${CARGO_TARGET_DIR:-$repo/target}"

mkdir -p "$scratch/js" "$scratch/python"
cp "$here/js/package.json" "$here/js/official.mjs" "$scratch/js/"
cp "$here/python/requirements.txt" "$here/python/official.py" "$scratch/python/"
(cd "$scratch/js" && npm install --no-audit --no-fund --no-package-lock --silent)
[ -x "$scratch/python/venv/bin/python" ] || python3 -m venv "$scratch/python/venv"
"$scratch/python/venv/bin/pip" install -q --disable-pip-version-check -r "$scratch/python/requirements.txt"

(cd "$repo" && CARGO_TARGET_DIR="$target" cargo build -j 1 --quiet)
"$target/debug/tastytrade-gateway" simulate --listen "127.0.0.1:$port" --rate 5 >"$scratch/simulator.log" 2>&1 &
sim=$!
trap 'kill "$sim" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$port/sim" >/dev/null 2>&1 && break
  sleep 0.2
done

export TT_SIM_URL="http://127.0.0.1:$port"
status=0
echo "== @tastytrade/api (npm) $(cd "$scratch/js" && node -p "require('./node_modules/@tastytrade/api/package.json').version")"
(cd "$scratch/js" && node official.mjs) || status=1
echo "== tastytrade (PyPI, tastyware) $("$scratch/python/venv/bin/python" -c 'import tastytrade; print(tastytrade.VERSION)')"
(cd "$scratch/python" && venv/bin/python official.py) || status=1
exit "$status"
