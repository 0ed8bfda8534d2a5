#!/usr/bin/env bash
# bench/run.sh: the side-by-side benchmark. Builds the gateway and the load generator in
# release, then runs the gateway and nchan (Debian libnginx-mod-nchan) in turn on identical
# workloads (fan-out at 100 / 1,000 / 10,000 SSE subscribers, at a fixed rate and closed-loop;
# idle capacity at 5k / 10k / 19k; WebSocket fan-out at 100 / 1,000 and idle at 10k against
# nchan's WebSocket subscriber) and prints one table with ratios (gateway / nchan); then the
# many-accounts workload on the gateway alone (1,000 and 5,000 accounts, see run_accounts).
#
# Placement: each server runs pinned to CPU 0 (one core each: nchan has one worker, the
# gateway's runtime sizes itself to its one CPU); the load generator and the gateway's
# upstream simulator share CPU 1. Each run gets a freshly started server.
#
# SERVERS="gateway gateway-js" compares the in-process event log with the JetStream one
# (`gateway-js`: the gateway with --nats-url on a local nats-server >= 2.11, which runs on
# the load generator's CPU): the table's ratio is then ring / JetStream.
#
# Settings (environment): QUICK=1 (short runs, small sizes), ONLY=gateway|gateway-js|nchan,
# SERVERS (the servers compared, default "gateway nchan"),
# REPEAT=N (rounds; the table shows each figure's median),
# DURATION (seconds per fan-out run, default 10), OUT (result directory),
# WORKLOADS (only these labels, e.g. "fan-1k idle-19k"), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
bin="$CARGO_TARGET_DIR/release"

# Every subscriber is a descriptor, on both ends: take the whole hard limit.
ulimit -n "$(ulimit -Hn)"

if [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ] || ! command -v nginx >/dev/null; then
  echo "== installing nginx + nchan (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light libnginx-mod-nchan >/dev/null
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== cargo build --release (gateway + loadgen)"
  jobs=""
  # Other builds on the machine: don't crowd them.
  if awk '{exit !($1 > 0.7)}' /proc/loadavg; then jobs="-j 1"; fi
  # shellcheck disable=SC2086
  cargo build --release --locked $jobs -p tastytrade-gateway -p loadgen
fi

QUICK="${QUICK:-0}"
REPEAT="${REPEAT:-1}"
ONLY="${ONLY:-}"
DURATION="${DURATION:-10}"
out="${OUT:-$root/bench/out/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
# Absolute: nginx reads its -c path relative to its -p prefix.
out=$(cd "$out" && pwd)
echo "== results in $out"

cpus=$(nproc)
if [ "$cpus" -ge 2 ]; then
  server_cpu=(taskset -c 0)
  client_cpu=(taskset -c 1)
else
  server_cpu=()
  client_cpu=()
fi

gw_port=18080
sim_port=18081
nchan_port=18090
nats_port=18222
pids=()

stop_all() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap stop_all EXIT

wait_for() { # url
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$1 did not come up" >&2
  return 1
}

# Starts the server $1 (gateway|nchan); sets sub_url, pub_url, pub_kind, server_pids.
start_server() {
  local nats=()
  case "$1" in
    gateway-js)
      local store="$out/nats-store"
      rm -rf "$store"
      "${client_cpu[@]}" nats-server -js -sd "$store" -a 127.0.0.1 -p "$nats_port" >"$out/nats.log" 2>&1 &
      pids+=($!)
      for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
        sleep 0.05
      done
      nats=(--nats-url "nats://127.0.0.1:$nats_port" --nats-prefix "bench$RANDOM")
      ;&
    gateway)
      "${client_cpu[@]}" "$bin/tastytrade-gateway" simulate --listen "127.0.0.1:$sim_port" --rate 0 \
        >"$out/sim.log" 2>&1 &
      pids+=($!)
      wait_for "http://127.0.0.1:$sim_port/sim/stats"
      "${server_cpu[@]}" "$bin/tastytrade-gateway" --listen "127.0.0.1:$gw_port" \
        --api-url "http://127.0.0.1:$sim_port" --streamer-url "ws://127.0.0.1:$sim_port/streamer" \
        --insecure-open-api --max-streams-per-client 100000 "${nats[@]}" \
        >"$out/gateway.log" 2>&1 &
      local gw=$!
      pids+=($gw)
      wait_for "http://127.0.0.1:$gw_port/readyz"
      sub_url="http://127.0.0.1:$gw_port/v1/accounts/individual/events"
      ws_url="ws://127.0.0.1:$gw_port/v1/ws"
      ws_subscribe='{"op":"subscribe","accounts":["individual"]}'
      pub_url="http://127.0.0.1:$sim_port/sim/accounts/5WT31842/events"
      pub_kind=sim
      server_pids=(--pid "$gw")
      ;;
    nchan)
      local prefix="$out/nchan"
      rm -rf "$prefix"
      mkdir -p "$prefix"
      sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$nchan_port|g" \
        "$root/bench/peers/nchan/nginx.conf.in" >"$prefix/nginx.conf"
      "${server_cpu[@]}" nginx -p "$prefix" -c "$prefix/nginx.conf" >"$out/nginx.log" 2>&1 &
      local master=$!
      pids+=($master)
      # The publish endpoint answers GET with the channel's info (404 before a message).
      for _ in $(seq 1 200); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$nchan_port/pub/bench" || true)
        [ "$code" = 404 ] || [ "$code" = 200 ] && break
        sleep 0.05
      done
      local workers
      workers=$(pgrep -P "$master" | tr '\n' ' ')
      sub_url="http://127.0.0.1:$nchan_port/sub/bench"
      ws_url="ws://127.0.0.1:$nchan_port/ws/bench"
      ws_subscribe=""
      pub_url="http://127.0.0.1:$nchan_port/pub/bench"
      pub_kind=plain
      server_pids=(--pid "$master")
      for w in $workers; do server_pids+=(--pid "$w"); done
      ;;
  esac
}

# run SERVER LABEL loadgen-args...
run() {
  local server=$1 label=$2
  shift 2
  start_server "$server"
  echo "== $label on $server (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  "${client_cpu[@]}" "$bin/loadgen" run --server "$server" --label "$label" \
    --sub "$sub_url" --pub "$pub_url" --pub-kind "$pub_kind" "${server_pids[@]}" \
    --json "$out/$label-$server-$round.json" "$@" || echo "   ($label on $server: FAILED, see above)"
  stop_all
}

# The many-accounts workload (gateway only: nchan has no upstream): N generated accounts in
# the simulator, whose REST answers REST_RATE account calls per second (429 beyond, like a
# broker); the gateway paces its upstream requests to PACE per second (a connect counts one,
# a baseline its five REST calls, so a start is six and PACE 450 makes 375 REST calls a
# second, a quarter of the limit spare); 2 SSE subscribers per account and one /v1/events
# for all; 1 event per second per account.
REST_RATE="${REST_RATE:-500}"
PACE="${PACE:-450}"
run_accounts() { # LABEL N [FIREHOSE: true|false]
  local label=$1 n=$2 firehose=${3:-true}
  "${client_cpu[@]}" "$bin/tastytrade-gateway" simulate --listen "127.0.0.1:$sim_port" --rate 0 \
    --accounts "$n" --rest-rate "$REST_RATE" >"$out/sim-$label-$round.log" 2>&1 &
  pids+=($!)
  wait_for "http://127.0.0.1:$sim_port/sim/stats"
  local started
  started=$(date +%s%N)
  "${server_cpu[@]}" "$bin/tastytrade-gateway" --listen "127.0.0.1:$gw_port" \
    --api-url "http://127.0.0.1:$sim_port" --streamer-url "ws://127.0.0.1:$sim_port/streamer" \
    --insecure-open-api --max-streams-per-client 100000 --upstream-attempts-per-sec "$PACE" \
    >"$out/gateway-$label-$round.log" 2>&1 &
  local gw=$!
  pids+=($gw)
  echo "== $label on gateway: $n accounts, REST $REST_RATE/s, pace $PACE/s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  "${client_cpu[@]}" "$bin/loadgen" accounts --label "$label" --accounts "$n" \
    --gateway "http://127.0.0.1:$gw_port" --sim "http://127.0.0.1:$sim_port" --pid "$gw" \
    --started-ns "$started" --duration "$DURATION" --firehose "$firehose" \
    --json "$out/$label-accounts-$round.json" || echo "   ($label: FAILED, see above)"
  stop_all
}

# run_ws SERVER LABEL loadgen-args...: the same fan-out with WebSocket subscribers.
run_ws() {
  local server=$1 label=$2
  shift 2
  start_server "$server"
  local ws=(--transport ws --sub "$ws_url")
  [ -n "$ws_subscribe" ] && ws+=(--ws-subscribe "$ws_subscribe")
  echo "== $label on $server, WebSocket (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  "${client_cpu[@]}" "$bin/loadgen" run --server "$server" --label "$label" \
    --pub "$pub_url" --pub-kind "$pub_kind" "${server_pids[@]}" "${ws[@]}" \
    --json "$out/$label-$server-$round.json" "$@" || echo "   ($label on $server: FAILED, see above)"
  stop_all
}

if [ "$QUICK" = 1 ]; then
  fanout=("fan-100:100:100" "fan-1k:1000:100")
  closed=("max-1k:1000")
  idle=("idle-1k:1000")
  ws=("ws-1k:1000:100")
  ws_idle=()
  many=("accounts-100:100")
  DURATION="${DURATION_QUICK:-3}"
else
  # label:subscribers:events per second (10,000 x 100/s would be a million deliveries a
  # second, past both servers on one core, so the 10k run is at 10/s)
  fanout=("fan-100:100:100" "fan-1k:1000:100" "fan-10k:10000:10")
  closed=("max-100:100" "max-1k:1000" "max-10k:10000")
  idle=("idle-5k:5000" "idle-10k:10000" "idle-19k:19000")
  # WebSocket fan-out (label:subscribers:events per second) and idle WebSocket capacity
  ws=("ws-100:100:100" "ws-1k:1000:100")
  ws_idle=("ws-idle-10k:10000")
  # label:accounts[:false for no /v1/events subscriber]
  many=("accounts-1k:1000" "accounts-5k:5000" "accounts-5k-streams:5000:false")
fi
if [ -n "${WORKLOADS:-}" ]; then
  # Only the labels named in WORKLOADS (space-separated), e.g. WORKLOADS="fan-1k idle-19k".
  keep() { local w out=(); for w in "$@"; do [[ " $WORKLOADS " == *" ${w%%:*} "* ]] && out+=("$w"); done; echo "${out[@]}"; }
  read -r -a fanout <<<"$(keep "${fanout[@]}")"
  read -r -a closed <<<"$(keep "${closed[@]}")"
  read -r -a idle <<<"$(keep "${idle[@]}")"
  read -r -a ws <<<"$(keep "${ws[@]}")"
  read -r -a ws_idle <<<"$(keep "${ws_idle[@]}")"
  read -r -a many <<<"$(keep "${many[@]}")"
fi
read -r -a servers <<<"${SERVERS:-gateway nchan}"
[ -n "$ONLY" ] && servers=("$ONLY")

# Rounds alternate the servers, so a slow drift in the machine's load hits both alike.
for round in $(seq 1 "$REPEAT"); do
  for server in "${servers[@]}"; do
    for w in "${fanout[@]}"; do
      IFS=: read -r label n rate <<<"$w"
      run "$server" "$label" --subscribers "$n" --rate "$rate" --duration "$DURATION"
    done
    for w in "${closed[@]}"; do
      IFS=: read -r label n <<<"$w"
      run "$server" "$label" --subscribers "$n" --rate 0 --duration "$DURATION"
    done
    for w in "${idle[@]}"; do
      IFS=: read -r label n <<<"$w"
      run "$server" "$label" --subscribers "$n" --mode idle --hold 3
    done
    for w in "${ws[@]}"; do
      IFS=: read -r label n rate <<<"$w"
      run_ws "$server" "$label" --subscribers "$n" --rate "$rate" --duration "$DURATION"
    done
    for w in "${ws_idle[@]}"; do
      IFS=: read -r label n <<<"$w"
      run_ws "$server" "$label" --subscribers "$n" --mode idle --hold 3
    done
  done
  if [[ " ${servers[*]} " == *" gateway "* ]]; then
    for w in "${many[@]}"; do
      IFS=: read -r label n firehose <<<"$w"
      run_accounts "$label" "$n" "${firehose:-true}"
    done
  fi
done

echo
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== side by side (ratio = ${servers[0]} / ${servers[1]:-}; medians of $REPEAT round(s))"
files=()
for w in "${fanout[@]}" "${closed[@]}" "${idle[@]}" "${ws[@]}" "${ws_idle[@]}"; do
  for server in "${servers[@]}"; do
    for f in "$out/${w%%:*}-$server-"*.json; do
      [ -e "$f" ] && files+=("$f")
    done
  done
done
if [ "${#files[@]}" -gt 0 ]; then
  "$bin/loadgen" table "${files[@]}" | tee "$out/table.txt"
fi
if [ "${#many[@]}" -gt 0 ] && [[ " ${servers[*]} " == *" gateway "* ]]; then
  echo
  echo "== many accounts (gateway; medians of $REPEAT round(s))"
  for w in "${many[@]}"; do
    files=("$out/${w%%:*}-accounts-"*.json)
    if [ -e "${files[0]}" ]; then
      "$bin/loadgen" accounts-table "${files[@]}" | tee -a "$out/table.txt"
    else
      echo "${w%%:*}: no round finished (see the log above)"
    fi
  done
fi
