#!/usr/bin/env bash
# Wall time of verification of the offline fullstack project, cold and with a warm package
# cache, and its share of the project's makespan.
#
#   bash bench/verify.sh [warm runs]
#
# Builds the release binary and runs `guild eval` on a one-line suite three times (or 1 +
# the given number of warm runs), each on a fresh private PostgreSQL, all with one sandbox
# directory: the first run starts from an empty npm and pip cache (cold), the next ones
# find it full (warm). Needs bubblewrap and the package registries. Prints one line per run
# and a JSON summary.
set -euo pipefail
cd "$(dirname "$0")/.."
warm_runs="${1:-2}"
cargo build --release --quiet
work="$(mktemp -d)"
# As root, PostgreSQL and the sandbox run as other users, who must enter this directory.
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
echo "A todo list app with user accounts and sharing" > "$work/suite.txt"
mkdir -m 755 "$work/sandbox"
runs=()
for run in $(seq 0 "$warm_runs"); do
    line="$(GUILD_VERIFY=full GUILD_SANDBOX_DIR="$work/sandbox" \
        ./target/release/guild eval --suite "$work/suite.txt" --data-dir "$work/pg$run" | tail -n 1)"
    verify=$(jq -r '.verify_s_per_project' <<<"$line")
    wall=$(jq -r '.wall_s' <<<"$line")
    kind=$([ "$run" = 0 ] && echo cold || echo warm)
    share=$(awk -v v="$verify" -v w="$wall" 'BEGIN { printf "%.2f", v / w }')
    echo "$kind: verification ${verify} s of a ${wall} s project (share ${share})"
    runs+=("{\"cache\":\"$kind\",\"verify_s\":$verify,\"wall_s\":$wall,\"share\":$share}")
done
(IFS=,; echo "{\"runs\":[${runs[*]}]}")
