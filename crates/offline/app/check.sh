#!/usr/bin/env bash
# Renders every combination the SPEC lists and proves it with the real toolchains: each
# component's manifest commands (install, typecheck, lint, build, test), then the backend
# started on a real PostgreSQL with smoke.py against it, a restart on the same database, and
# the one-line failure without DATABASE_URL. Also checks each tree statically (contract,
# compose, CI, manifest exports/imports) and that minijinja renders what jinja2 renders.
#
#   ./check.sh [--start-pg] [COMBINATION...]
#
# PostgreSQL: a server at PG_ADMIN_URL (default postgres://postgres@127.0.0.1:55432/postgres),
# or --start-pg to start one as the SPEC says (as root; stopped again at the end).
# Output: one line per step with its result and duration; exit status 1 if any step failed.
# Work directory: CHECK_DIR (default /tmp/guild-offline-check); logs are kept there.

set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${CHECK_DIR:-/tmp/guild-offline-check}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:55432/postgres}
PG_BIN=/usr/lib/postgresql/15/bin
PG_DATA=$WORK/pg

# name | stack | type | entity | fields | description
COMBINATIONS=(
  'ts-fullstack-todo|ts|fullstack|todo||A todo list app with user accounts and sharing'
  'py-fullstack-todo|py|fullstack|todo||A todo list app with user accounts and sharing'
  'ts-fullstack-recipe|ts|fullstack|recipe|due_date:date,servings:integer|A recipe box with "favourites", <tags> & café-style sharing'
  'py-api-inventory|py|api|inventory|due_date:date|Inventory tracking for small shops, with alerts and reports'
  'ts-backend-todo|ts|backend|todo||A todo list API with user accounts'
  'frontend-todo|ts|frontend|todo||A todo list app with user accounts and sharing'
  'py-fullstack-note|py|fullstack|note|body:text,pinned:boolean,due_date:date,priority:integer|Notes with pins, due dates and priorities'
)

start_pg=0
selected=()
for arg in "$@"; do
  case $arg in
    --start-pg) start_pg=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) selected+=("$arg") ;;
  esac
done

mkdir -p "$WORK"
failures=0
started_pg=0
server_pid=

cleanup() {
  if [[ -n $server_pid ]]; then
    kill -TERM -- "-$server_pid" 2>/dev/null
  fi
  if (( started_pg )); then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA/data" -m fast stop >/dev/null 2>&1
  fi
}
trap cleanup EXIT

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# step NAME LOG COMMAND...: runs COMMAND, prints one line with the result and the duration.
step() {
  local name=$1 log=$2 started=$EPOCHREALTIME
  shift 2
  if "$@" >"$log" 2>&1; then
    printf '%-20s %-58s ok    %6ss\n' "$combo" "$name" "$(elapsed "$started")"
    return 0
  fi
  printf '%-20s %-58s FAIL  %6ss  (log: %s)\n' "$combo" "$name" "$(elapsed "$started")" "$log"
  tail -n 25 "$log" | sed 's/^/    | /'
  failures=$((failures + 1))
  return 1
}

# The tools of the checks themselves, in their own virtual environment.
TOOLS=$WORK/tools
combo=setup
if [[ ! -x $TOOLS/bin/python ]] || ! "$TOOLS/bin/python" -c 'import jinja2, minijinja, jsonschema, openapi_spec_validator, yaml' 2>/dev/null; then
  step "tools venv" "$WORK/tools.log" bash -c "python3 -m venv '$TOOLS' && '$TOOLS/bin/pip' install -q jinja2 minijinja jsonschema openapi-spec-validator pyyaml" || exit 1
fi
PY=$TOOLS/bin/python

if (( start_pg )); then
  start_postgres() {
    rm -rf "$PG_DATA" && mkdir -p "$PG_DATA" && chown postgres "$PG_DATA" &&
      runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA/data" -U postgres --auth=trust >/dev/null &&
      runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA/data" -l "$PG_DATA/log" -w \
        -o "-p 55432 -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start
  }
  step "start PostgreSQL" "$WORK/pg-start.log" start_postgres && started_pg=1 || exit 1
fi
step "PostgreSQL answers" "$WORK/pg-check.log" psql "$PG_ADMIN_URL" -tAc 'SELECT 1' || exit 1

manifest() { "$PY" -c "import json,sys; m=json.load(open('$HERE/manifest.json')); print(eval(sys.argv[1]) or '')" "$1"; }

wait_for_health() {  # URL PID: until /health answers 200, or the process dies, or 60 s pass
  for _ in $(seq 1 120); do
    kill -0 "$2" 2>/dev/null || { echo "the server exited"; return 1; }
    curl -fsS -o /dev/null "$1/health" 2>/dev/null && return 0
    sleep 0.5
  done
  echo "no answer from $1/health"
  return 1
}

stop_server() {  # PID: SIGTERM to its process group, then wait up to 10 s for a clean exit
  kill -TERM -- "-$1" 2>/dev/null || { echo "no process group $1"; return 1; }
  for _ in $(seq 1 40); do
    kill -0 -- "-$1" 2>/dev/null || return 0
    sleep 0.25
  done
  kill -KILL -- "-$1" 2>/dev/null
  echo "did not stop within 10 s of SIGTERM"
  return 1
}

start_server() {  # DIR COMMAND PORT DB LOG: starts it in a new session (its process group), sets server_pid
  if curl -s -o /dev/null "http://127.0.0.1:$3/health"; then
    echo "port $3 is already in use"
    return 1
  fi
  DATABASE_URL="$4" PORT="$3" HOST=127.0.0.1 AUTH_SECRET=check-secret-$RANDOM$RANDOM \
    setsid bash -c "cd '$1' && exec $2" >"$5" 2>&1 &
  server_pid=$!
}

run_backend() {  # DIR COMMAND PORT DB LOG ENTITIES FIELDS CONTRACT
  start_server "$1" "$2" "$3" "$4" "$5" || return 1
  wait_for_health "http://127.0.0.1:$3" "$server_pid" || { cat "$5"; stop_server "$server_pid"; server_pid=; return 1; }
  "$PY" "$HERE/smoke.py" "http://127.0.0.1:$3" "$6" "$7" --contract "$8"
  local smoke=$?
  stop_server "$server_pid" || smoke=1
  server_pid=
  return $smoke
}

restart_backend() {  # DIR COMMAND PORT DB LOG: the schema applies again on an existing database
  start_server "$1" "$2" "$3" "$4" "$5" || return 1
  wait_for_health "http://127.0.0.1:$3" "$server_pid" || { cat "$5"; stop_server "$server_pid"; server_pid=; return 1; }
  stop_server "$server_pid"
  local stopped=$?
  server_pid=
  return $stopped
}

fails_without_database() {  # DIR COMMAND: exits non-zero, quickly, naming DATABASE_URL
  local output
  output=$(cd "$1" && env -u DATABASE_URL PORT=1 timeout 30 bash -c "exec $2" 2>&1)
  local status=$?
  echo "$output"
  [[ $status -ne 0 && $status -ne 124 ]] && grep -q DATABASE_URL <<<"$output"
}

port=3300
for entry in "${COMBINATIONS[@]}"; do
  IFS='|' read -r combo stack type entity fields description <<<"$entry"
  if (( ${#selected[@]} )) && [[ ! " ${selected[*]} " == *" $combo "* ]]; then
    continue
  fi
  port=$((port + 1))
  out=$WORK/$combo
  logs=$WORK/logs/$combo
  rm -rf "$out" "$out.minijinja" && mkdir -p "$logs"
  field_args=()
  IFS=',' read -ra specs <<<"$fields"
  for spec in "${specs[@]}"; do field_args+=(--field "$spec"); done
  render_args=(--stack "$stack" --type "$type" --entity "$entity" --description "$description" "${field_args[@]}")
  entities=$("$PY" "$HERE/render.py" "${render_args[@]}" --out /dev/null --context | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["entities"])')

  step "render (jinja2)" "$logs/render.log" "$PY" "$HERE/render.py" "${render_args[@]}" --out "$out" || continue
  step "render (minijinja) is identical" "$logs/minijinja.log" bash -c \
    "'$PY' '$HERE/render.py' ${render_args[*]@Q} --engine minijinja --out '$out.minijinja' && '$PY' '$HERE/check_tree.py' '$out' --same-as '$out.minijinja'"
  step "static: contract, compose, CI, JSON" "$logs/static.log" "$PY" "$HERE/check_tree.py" "$out"
  step "manifest: exports and imports" "$logs/manifest.log" "$PY" "$HERE/check_manifest.py" "$out" "$stack" "$entity" "$entities"

  for component in backend frontend; do
    [[ -d $out/$component ]] || continue
    if [[ $component == backend ]]; then key="['components']['backend']['$stack']"; else key="['components']['frontend']"; fi
    ok=1
    for command in install typecheck lint build test; do
      cmd=$(manifest "m$key['commands']['$command']")
      [[ -n $cmd ]] || continue
      if ! step "$component $command: $cmd" "$logs/$component-$command.log" bash -c "cd '$out/$component' && $cmd"; then
        ok=0
        [[ $command == install ]] && break
      fi
    done
    if [[ $component == backend ]] && (( ok )); then
      start=$(manifest "m$key['commands']['start']")
      db="check_${combo//-/_}"
      url="postgres://postgres@127.0.0.1:55432/$db"
      step "backend: fresh database $db" "$logs/createdb.log" \
        psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || continue
      step "backend start + smoke.py (:$port)" "$logs/smoke.log" \
        run_backend "$out/backend" "$start" "$port" "$url" "$logs/server.log" "$entities" "$fields" "$out/docs/openapi.json"
      step "backend restart on the same database" "$logs/restart.log" \
        restart_backend "$out/backend" "$start" "$port" "$url" "$logs/server-restart.log"
      step "backend without DATABASE_URL fails fast" "$logs/no-database.log" fails_without_database "$out/backend" "$start"
    fi
  done
done

combo=summary
if (( failures )); then
  echo "check.sh: $failures step(s) failed"
  exit 1
fi
echo "check.sh: every step passed"
