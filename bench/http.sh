#!/usr/bin/env bash
# Load benchmark of Guild's HTTP API with wrk (Debian: apt-get install wrk).
#
#   bash bench/http.sh [seconds] [connections]
#
# Builds the release binary, starts `guild serve --workers 0` (the API alone, so the figures
# are the API's and the database's) with a private PostgreSQL in a temporary directory, and
# measures POST /projects and GET /projects/{id}/tasks (a 15-task project). Prints wrk's
# requests per second and latency percentiles for each; stops everything on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
connections="${2:-32}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }

cargo build --release --quiet
work="$(mktemp -d)"
# As root, PostgreSQL runs as the postgres user, who must be able to enter this directory.
chmod 755 "$work"
port=$((20000 + RANDOM % 20000))
./target/release/guild serve --bind "127.0.0.1:$port" --workers 0 --data-dir "$work/pg" \
    > "$work/serve.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    kill -0 $server 2>/dev/null || { cat "$work/serve.log"; exit 1; }
    sleep 0.1
done
base="http://127.0.0.1:$port"

cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"description": "A todo list app with user accounts and sharing", "project_type": "fullstack"}'
LUA
echo "== POST /projects (${seconds}s, ${connections} connections): plans and stores a 15-task graph"
wrk --latency -t2 -c"$connections" -d"${seconds}s" -s "$work/post.lua" "$base/projects" | grep -E "Requests/sec|50%|90%|99%|Non-2xx"

id="$(curl -sf -X POST "$base/projects" -H 'content-type: application/json' \
    -d '{"description": "A todo list app with user accounts and sharing"}' \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
echo "== GET /projects/{id}/tasks (${seconds}s, ${connections} connections): 15 tasks with dependencies"
wrk --latency -t2 -c"$connections" -d"${seconds}s" "$base/projects/$id/tasks" | grep -E "Requests/sec|50%|90%|99%|Non-2xx"
