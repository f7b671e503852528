# Shared by the start-up benchmarks (pq.sh, rekey.sh): `source
# benches/startup.sh` from the repository root after `set -euo pipefail`.
# Checks that hyperfine and python3 are there, sets $table (the summary
# script) and $envcloak (ENVCLOAK_BIN, else a fresh release build), and
# moves into a work folder ($work) that is removed on exit.

for tool in hyperfine python3; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install $tool)" >&2; exit 1; }
done

table=$PWD/benches/hyperfine_table.py

if [ -z "${ENVCLOAK_BIN:-}" ]; then
    cargo build --release -q
    ENVCLOAK_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/envcloak
fi
envcloak=$ENVCLOAK_BIN

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
unset ENVCLOAK_AGE_KEY ENVCLOAK_AGE_KEY_FILE ENVCLOAK_CONFIG ENVCLOAK_PROFILE
