#!/usr/bin/env bash
# Build time and binary size of envcloak with and without its network
# backends: a clean release build of each feature set in its own empty target
# folder (dependencies already downloaded), one after another.
#
#   bash benches/build.sh                  # from the repository root
#   SETS="default age,vault" bash benches/build.sh
#
# Prints a markdown table: features, wall time of the clean build, binary size
# (stripped, as the release profile makes it), and the number of crates built.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SETS=${SETS:-"default age,vault age"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo fetch -q
printf '| features | clean release build | binary size | crates compiled |\n| --- | ---: | ---: | ---: |\n'
for set in $SETS; do
    if [ "$set" = default ]; then
        flags=()
        label="default (age, vault, aws)"
    else
        # `cli`: the binary needs the command-line front end.
        flags=(--no-default-features --features "cli,$set")
        label=$set
    fi
    target=$work/target-${set//,/-}
    start=$EPOCHREALTIME
    CARGO_TARGET_DIR=$target cargo build --release "${flags[@]}" 2>"$work/log"
    end=$EPOCHREALTIME
    crates=$(grep -c '^ *Compiling ' "$work/log" || true)
    bytes=$(stat -c %s "$target/release/envcloak")
    python3 -c "import sys; s, b = float(sys.argv[2]) - float(sys.argv[1]), int(sys.argv[3]); print(f'| {sys.argv[4]} | {s / 60:.1f} min ({s:.0f} s) | {b / 1e6:.1f} MB ({b} bytes) | {sys.argv[5]} |')" \
        "$start" "$end" "$bytes" "$label" "$crates"
    rm -rf "$target"
done
echo
echo "Machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1); $(rustc --version)."
