#!/usr/bin/env bash
# `envcloak run` start-up with a post-quantum (ML-KEM-768 + X25519) identity
# against an X25519 one, 50 secrets each.
#
#   bash benches/pq.sh                 # from the repository root
#   RUNS=1000 bash benches/pq.sh       # more runs
#   PQ_FIRST=1 bash benches/pq.sh      # time the post-quantum identity first
#   ENVCLOAK_BIN=path/to/envcloak bash benches/pq.sh   # no build
#
# Builds the release binary (unless ENVCLOAK_BIN is given), makes a temporary
# folder with one identity of each kind (`envcloak keygen`, `keygen --pq`) and
# the same 50-secret dotenv file encrypted to each (`envcloak encrypt`), checks
# that the child receives 50 secrets, then times with hyperfine (no shell, -N):
#   1. `true` on its own,
#   2. `envcloak -c x25519.toml run --no-mask -- true` (X25519 identity),
#   3. `envcloak -c pq.toml run --no-mask -- true`     (post-quantum identity),
# each config naming its identity file ([age] identity) and importing its
# file (exec mode, no masking), and prints a markdown table
# with the median, the spread and the median overhead over `true`.
#
# Needs: hyperfine (apt-get install hyperfine), python3.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-500}
WARMUP=${WARMUP:-50}
SECRETS=${SECRETS:-50}

# shellcheck source=benches/startup.sh
source benches/startup.sh

"$envcloak" keygen -o x25519.txt 2>/dev/null
"$envcloak" keygen --pq -o pq.txt 2>/dev/null
for i in $(seq -w 1 "$SECRETS"); do
    # 40 random characters per value, like a typical token.
    printf 'SECRET_%s=%s\n' "$i" "$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')"
done > secrets.env
for kind in x25519 pq; do
    "$envcloak" encrypt -r "$(sed -n 's/^# public key: //p' $kind.txt)" -o $kind.env.age secrets.env
    printf 'default_profile = "bench"\n\n[age]\nidentity = "%s.txt"\n\n[profiles.bench]\nimport = ["age://%s.env.age"]\n' $kind $kind > $kind.toml
done
rm secrets.env

for kind in x25519 pq; do
    count=$("$envcloak" -c $kind.toml run --no-mask -- sh -c 'env | grep -c "^SECRET_"')
    if [ "$count" != "$SECRETS" ]; then
        echo "$kind: expected $SECRETS secrets in the child's environment, got $count" >&2
        exit 1
    fi
done

x25519=(-n 'envcloak run, X25519 identity' "$envcloak -c x25519.toml run --no-mask -- true")
pq=(-n 'envcloak run, post-quantum identity' "$envcloak -c pq.toml run --no-mask -- true")
if [ -n "${PQ_FIRST:-}" ]; then
    order=("${pq[@]}" "${x25519[@]}")
else
    order=("${x25519[@]}" "${pq[@]}")
fi
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json results.json --style basic \
    -n 'true' 'true' "${order[@]}" >&2

python3 "$table" results.json "$SECRETS" \
    --compare 'envcloak run, X25519 identity' 'envcloak run, post-quantum identity'
