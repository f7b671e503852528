#!/usr/bin/env bash
# How much time envcloak adds to starting a command.
#
#   bash benches/overhead.sh            # from the repository root
#   RUNS=1000 bash benches/overhead.sh  # more runs
#
# Builds the release binary, makes a temporary folder with a fresh age identity
# and a dotenv file of 50 secrets encrypted with the `age` CLI, then times with
# hyperfine (no shell in between, -N):
#   1. `true` on its own,
#   2. `envcloak run -i age://secrets.env.age --no-mask -- true`  (exec mode),
#   3. `envcloak run -i age://secrets.env.age --mask -- true`     (supervised mode),
# and prints a markdown table with the median, the spread and the median
# overhead over `true`. Target: under 3 ms median overhead in exec mode.
#
# Needs: hyperfine (apt-get install hyperfine), age (apt-get install age),
# python3 (to summarise hyperfine's JSON).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
table=$PWD/benches/hyperfine_table.py

RUNS=${RUNS:-500}
WARMUP=${WARMUP:-50}
SECRETS=${SECRETS:-50}

for tool in hyperfine age age-keygen python3; do
    if ! command -v "$tool" >/dev/null; then
        case "$tool" in
            hyperfine) echo "hyperfine is missing: apt-get install hyperfine (or cargo install --locked hyperfine)" >&2 ;;
            age | age-keygen) echo "$tool is missing: apt-get install age" >&2 ;;
            *) echo "$tool is missing" >&2 ;;
        esac
        exit 1
    fi
done

cargo build --release -q
envcloak=$PWD/target/release/envcloak

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

age-keygen -o identity.txt 2>/dev/null
chmod 600 identity.txt
for i in $(seq -w 1 "$SECRETS"); do
    # 40 random characters per value, like a typical token.
    printf 'SECRET_%s=%s\n' "$i" "$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')"
done > secrets.env
age -r "$(age-keygen -y identity.txt)" -o secrets.env.age secrets.env
rm secrets.env

export ENVCLOAK_AGE_KEY_FILE=$work/identity.txt
unset ENVCLOAK_AGE_KEY ENVCLOAK_CONFIG ENVCLOAK_PROFILE
# Fail here, not inside hyperfine, if something is wrong; and check the count.
count=$("$envcloak" run -i age://secrets.env.age --no-mask -- sh -c 'env | grep -c "^SECRET_"')
if [ "$count" != "$SECRETS" ]; then
    echo "expected $SECRETS secrets in the child's environment, got $count" >&2
    exit 1
fi

hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json results.json --style basic \
    -n 'true' 'true' \
    -n 'envcloak run (exec)' "$envcloak run -i age://secrets.env.age --no-mask -- true" \
    -n 'envcloak run --mask (supervised)' "$envcloak run -i age://secrets.env.age --mask -- true" \
    >&2

python3 "$table" results.json "$SECRETS" --target 'envcloak run (exec)' 3
