#!/usr/bin/env bash
# `envcloak rekey` of 20 age files (50 secrets each) to 10 recipients, and
# `envcloak rekey --check` of the same files (no key needed).
#
#   bash benches/rekey.sh                                # from the repository root
#   RUNS=50 bash benches/rekey.sh                        # more runs
#   ENVCLOAK_BIN=path/to/envcloak bash benches/rekey.sh  # no build
#
# Builds the release binary (unless ENVCLOAK_BIN is given), makes a
# temporary project with 10 identities (`envcloak keygen`), 20 files of 50
# secrets encrypted to the first 9 of them, and a config whose profile
# imports all 20 with `recipients_file` naming a folder of all 10. hyperfine
# (no shell, -N) then times:
#   1. `true` on its own,
#   2. `envcloak rekey --check` (reads 20 headers; reports all 20 out of date),
#   3. `envcloak rekey` (decrypts and re-encrypts 20 files to 10 recipients;
#      the files are put back before each run with --prepare),
# and prints a markdown table.
#
# Needs: hyperfine (apt-get install hyperfine), python3.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
FILES=${FILES:-20}
RECIPIENTS=${RECIPIENTS:-10}
SECRETS=${SECRETS:-50}

# shellcheck source=benches/startup.sh
source benches/startup.sh

mkdir -p keys recipients before secrets
for i in $(seq 1 "$RECIPIENTS"); do
    "$envcloak" keygen -o "keys/$i.txt" 2>/dev/null
    sed -n 's/^# public key: //p' "keys/$i.txt" > "recipients/$i.txt"
done
# The files start encrypted to all but the last recipient.
mkdir -p first
cp recipients/*.txt first/ && rm "first/$RECIPIENTS.txt"
python3 - "$SECRETS" > plain.env <<'PY'
import secrets, sys
for i in range(int(sys.argv[1])):
    print(f"SECRET_{i}={secrets.token_urlsafe(30)}")
PY
imports=""
for f in $(seq 1 "$FILES"); do
    "$envcloak" encrypt -R first -o "before/$f.env.age" plain.env
    imports="$imports\"age://secrets/$f.env.age\", "
done
rm plain.env
cat > envcloak.toml <<TOML
[age]
identity = "keys/1.txt"
recipients_file = "recipients"

[profiles.all]
import = [${imports%, }]
TOML
cp -r before/. secrets/

"$envcloak" rekey --check > /dev/null && { echo "expected the files to be out of date" >&2; exit 1; }

# -i: `rekey --check` exits 1 (the files are out of date on purpose).
hyperfine -N -i --warmup "$WARMUP" --runs "$RUNS" --export-json results.json --style basic \
    --prepare true --prepare true --prepare "cp -r before/. secrets/" \
    -n 'true' 'true' \
    -n "envcloak rekey --check ($FILES files)" "$envcloak rekey --check" \
    -n "envcloak rekey ($FILES files to $RECIPIENTS recipients)" "$envcloak rekey" \
    >&2

python3 "$table" results.json "$FILES files of $SECRETS"
