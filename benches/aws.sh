#!/usr/bin/env bash
# How fast envcloak reads 100 AWS Secrets Manager secrets from a local endpoint
# (moto_server), batched and with batching off, against a shell loop of
# `aws secretsmanager get-secret-value`; and how many requests each makes.
#
#   bash benches/aws.sh                     # from the repository root
#   RUNS=30 LOOP_RUNS=3 bash benches/aws.sh
#
# What it does (all traffic stays on 127.0.0.1; everything started is stopped
# on exit; the whole script gives up after MAX_SECONDS):
#   1. builds the release binary;
#   2. starts moto_server (PyPI moto[server]) on a free port, with fake
#      credentials and HOME in a temporary folder;
#   3. creates 100 secrets bench/s000 … bench/s099 (40 random characters
#      each) with boto3;
#   4. starts benches/latency_proxy.py in front of it twice: with no delay
#      (to count requests per AWS operation, from the X-Amz-Target header) and
#      with DELAY_MS (25) ms added to every response (a remote endpoint);
#   5. checks that every client gets all 100 values;
#   6. counts the requests of one run of each client;
#   7. times with hyperfine (-N, no shell):
#        envcloak run -c CONFIG --no-mask -- true   (100 env entries
#            V000 = "aws-sm://bench/s000" …; [aws] batch = true / false)
#        a bash loop of `aws secretsmanager get-secret-value` over the 100
#            ids (awscli from PyPI; loopback only: it takes about a minute)
#   8. prints markdown tables: machine, requests, timings.
#
# Needs: moto_server and aws (python3 -m pip install 'moto[server]==5.2.5'
# awscli==1.46.3), hyperfine, python3.
set -euo pipefail
# The configs below are written by this script for its own local servers:
# trust them for these runs without touching the user's trust store.
export ENVCLOAK_TRUST=1

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

RUNS=${RUNS:-30}            # hyperfine runs for envcloak
LOOP_RUNS=${LOOP_RUNS:-3}   # hyperfine runs for the aws CLI loop (about a minute each)
WARMUP=${WARMUP:-3}
DELAY_MS=${DELAY_MS:-25}
SECRETS=${SECRETS:-100}
MAX_SECONDS=${MAX_SECONDS:-1500}

for tool in moto_server aws hyperfine python3; do
    if ! command -v "$tool" >/dev/null; then
        case "$tool" in
            moto_server | aws) echo "$tool is missing: python3 -m pip install 'moto[server]==5.2.5' awscli==1.46.3" >&2 ;;
            hyperfine) echo "hyperfine is missing: apt-get install hyperfine (or cargo install --locked hyperfine)" >&2 ;;
            *) echo "$tool is missing" >&2 ;;
        esac
        exit 1
    fi
done

cargo build --release -q
envcloak=$repo/target/release/envcloak
built="commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- src providers Cargo.toml Cargo.lock 2>/dev/null || echo ' plus uncommitted changes')"

# shellcheck source=benches/lib.sh
source "$repo/benches/lib.sh"

# Fake credentials; nothing of the caller's AWS set-up is used.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE \
    AWS_ENDPOINT_URL ENVCLOAK_CONFIG ENVCLOAK_PROFILE CI 2>/dev/null || true
export HOME=$work/home AWS_ACCESS_KEY_ID=fake-bench AWS_SECRET_ACCESS_KEY=fake-bench \
    AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1 AWS_EC2_METADATA_DISABLED=true
mkdir -p "$HOME"

# 2. moto_server.
start_moto
direct=$moto_url
port=${moto_url##*:}

# 3. The secrets.
python3 - "$direct" "$SECRETS" <<'PY'
import secrets, string, sys
import boto3

endpoint, count = sys.argv[1], int(sys.argv[2])
client = boto3.client("secretsmanager", endpoint_url=endpoint)
alphabet = string.ascii_letters + string.digits
for i in range(count):
    value = "".join(secrets.choice(alphabet) for _ in range(40))
    client.create_secret(Name=f"bench/s{i:03d}", SecretString=value)
PY

# 4. Proxies: one counts, one adds latency.
start_proxy counter "$port" --delay-ms 0
start_proxy remote "$port" --delay-ms "$DELAY_MS"
counted=http://127.0.0.1:$(cat "$work/counter.port")
remote=http://127.0.0.1:$(cat "$work/remote.port")

ids=()
for i in $(seq 0 $((SECRETS - 1))); do
    ids+=("$(printf 'bench/s%03d' "$i")")
done
for link in direct counted remote; do
    for batch in true false; do
        {
            printf '[aws]\nendpoint_url = "%s"\nbatch = %s\n\n[profiles.bench.env]\n' "${!link}" "$batch"
            for id in "${ids[@]}"; do
                printf 'V%s = "aws-sm://%s"\n' "${id#bench/s}" "$id"
            done
        } >"$work/$link-$batch.toml"
    done
    {
        printf 'set -euo pipefail\nexport AWS_ENDPOINT_URL=%s\n' "${!link}"
        printf 'for id in %s; do\n' "${ids[*]}"
        printf '    aws secretsmanager get-secret-value --secret-id "$id" --query SecretString --output text\n'
        printf 'done\n'
    } >"$work/$link.loop.sh"
done

# 5. Every client gets every value.
expected=$(aws --endpoint-url "$direct" secretsmanager get-secret-value --secret-id bench/s000 --query SecretString --output text)
for config in "$work"/*.toml; do
    got=$("$envcloak" -c "$config" run --no-mask -- sh -c 'env | grep -c "^V[0-9][0-9][0-9]="; printf "%s\n" "$V000"')
    if [ "$got" != "$SECRETS"$'\n'"$expected" ]; then
        echo "envcloak ($(basename "$config")) did not pass on the $SECRETS secrets" >&2
        exit 1
    fi
done
n=$(bash "$work/direct.loop.sh" | grep -c .)
[ "$n" = "$SECRETS" ] || { echo "the aws loop got $n of $SECRETS secrets" >&2; exit 1; }

# 6. Requests per client, through the counting proxy.
count_run() { # NAME COMMAND...
    local name=$1
    shift
    : >"$work/counter.jsonl"
    "$@" >/dev/null
    sleep 0.3
    cp "$work/counter.jsonl" "$work/count-$name.jsonl"
}
count_run batched "$envcloak" -c "$work/counted-true.toml" run --no-mask -- true
count_run single "$envcloak" -c "$work/counted-false.toml" run --no-mask -- true
count_run loop bash "$work/counted.loop.sh"

# 7. Timing.
for link in direct remote; do
    bench "$link-envcloak" "$RUNS" \
        "envcloak run (batched)" "$envcloak -c $work/$link-true.toml run --no-mask -- true" \
        "envcloak run (batch = false)" "$envcloak -c $work/$link-false.toml run --no-mask -- true"
done
bench direct-loop "$LOOP_RUNS" "aws get-secret-value loop" "bash $work/direct.loop.sh"

# 8. Report.
{
    echo "- nproc: $(nproc)"
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo "- kernel: $(uname -srm)"
    echo "- load average before timing: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- moto $(python3 -c 'import moto; print(moto.__version__)'), $(aws --version 2>&1 | cut -d' ' -f1), $(hyperfine --version), $(python3 --version)"
    echo "- envcloak: $built, release build"
} >"$work/machine.txt"
python3 - "$work" "$DELAY_MS" "$SECRETS" <<'PY'
import collections, json, sys

work, delay, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
print("### Machine\n")
print(open(f"{work}/machine.txt").read())
print(f"### Requests for {count} secrets (one run each)\n")
print("| client | requests | by operation | TCP connections |")
print("| --- | ---: | --- | ---: |")
for name, label in [("batched", "envcloak run (batched)"), ("single", "envcloak run (batch = false)"),
                    ("loop", "aws get-secret-value loop")]:
    events = [json.loads(line) for line in open(f"{work}/count-{name}.jsonl") if line.strip()]
    requests = [e for e in events if e["ev"] == "request"]
    ops = collections.Counter(e.get("op", "?").split(".")[-1] for e in requests)
    conns = sum(1 for e in events if e["ev"] == "open")
    by_op = ", ".join(f"{n} {op}" for op, n in sorted(ops.items()))
    print(f"| {label} | {len(requests)} | {by_op} | {conns} |")
print()
print(f"### Wall time for {count} secrets (hyperfine, ms)\n")
print("| link | client | median | mean ± σ | min–max | runs |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for out, link in [("direct-envcloak", "loopback"), ("direct-loop", "loopback"),
                  ("remote-envcloak", f"+{delay:g} ms per response")]:
    for r in json.load(open(f"{work}/{out}.json"))["results"]:
        ms = [t * 1e3 for t in r["times"]]
        print(f"| {link} | {r['command']} | {r['median'] * 1e3:.1f} | {r['mean'] * 1e3:.1f} ± "
              f"{r['stddev'] * 1e3:.1f} | {min(ms):.1f}–{max(ms):.1f} | {len(ms)} |")
PY
