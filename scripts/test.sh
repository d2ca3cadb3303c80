#!/usr/bin/env bash
# Runs tongban's whole test suite: unit and integration tests on SQLite, the integration tests
# again on PostgreSQL, the OpenAPI conformance run (scripts/schema-check.sh: Schemathesis from PyPI
# against `tongban serve --demo`), and the browser tests (Playwright + Debian's Chromium).
#
# PostgreSQL: uses TONGBAN_TEST_DATABASE_URL if set (a role that may CREATE DATABASE); otherwise
# starts a throwaway cluster from Debian's postgresql package if it is installed.
# Browser tests: need /usr/bin/chromium and `npm ci` in e2e/ (.ci/run does both).
# S3 blob store: its unit test runs against TONGBAN_TEST_S3_URL (an S3-compatible server such as
# moto's, which .ci/run starts); unset, the test passes without doing anything and is listed as skipped.
# Set TONGBAN_TEST_SKIP_PG=1, TONGBAN_TEST_SKIP_SCHEMA=1 or TONGBAN_TEST_SKIP_E2E=1 to leave a part out on purpose.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
skipped=()
log=$(mktemp)
[ -n "${TONGBAN_TEST_S3_URL:-}" ] || skipped+=("S3 blob store (TONGBAN_TEST_S3_URL unset)")

count() { # adds the counts of a cargo or node test log to the totals
  local p f
  p=$(grep -Eo '(test result: (ok|FAILED)\. [0-9]+ passed|^# pass [0-9]+|ℹ pass [0-9]+)' "$log" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '([0-9]+ failed;|^# fail [0-9]+|ℹ fail [0-9]+)' "$log" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}')
  # scripts/schema-check.sh closes with `schema-check: N passed, M failed` (operations).
  p=$((p + $(grep -Eo '^schema-check: [0-9]+ passed' "$log" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}')))
  f=$((f + $(grep -Eo '^schema-check: [0-9]+ passed, [0-9]+ failed' "$log" | grep -Eo '[0-9]+ failed' | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}')))
  passed=$((passed + p))
  failed=$((failed + f))
}

run() { # run NAME COMMAND...
  echo "== $1"
  shift
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  count
  if [ "$rc" -ne 0 ] && ! grep -qE '[1-9][0-9]* failed|# fail [1-9]|ℹ fail [1-9]' "$log"; then
    failed=$((failed + 1)) # the step itself broke (build error, crash)
  fi
}

run "build (debug)" cargo build --workspace --all-targets
run "unit and integration tests on SQLite" cargo test --workspace

if [ "${TONGBAN_TEST_SKIP_SCHEMA:-}" = 1 ]; then
  skipped+=("OpenAPI conformance (TONGBAN_TEST_SKIP_SCHEMA=1)")
else
  run "OpenAPI conformance (Schemathesis)" bash scripts/schema-check.sh
fi

pg_started=""
start_throwaway_pg() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bin" ] || return 1
  local dir=target/pgtest port=55439
  rm -rf "$dir" && mkdir -p "$dir"
  local as=()
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; as=(runuser -u postgres --); fi
  "${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U tongban >/dev/null || return 1
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off" -l "$dir/log" -w start >/dev/null || return 1
  pg_started="${as[*]} $bin/pg_ctl -D $dir/data -m fast stop"
  export TONGBAN_TEST_DATABASE_URL="postgres://tongban@127.0.0.1:$port/postgres"
}

if [ "${TONGBAN_TEST_SKIP_PG:-}" = 1 ]; then
  skipped+=("PostgreSQL (TONGBAN_TEST_SKIP_PG=1)")
elif [ -n "${TONGBAN_TEST_DATABASE_URL:-}" ] || start_throwaway_pg; then
  run "integration tests on PostgreSQL" cargo test -p tongban --test integration
else
  echo "PostgreSQL is not installed and TONGBAN_TEST_DATABASE_URL is not set" >&2
  failed=$((failed + 1))
fi
[ -n "$pg_started" ] && $pg_started >/dev/null 2>&1

if [ "${TONGBAN_TEST_SKIP_E2E:-}" = 1 ]; then
  skipped+=("browser tests (TONGBAN_TEST_SKIP_E2E=1)")
elif [ -x /usr/bin/chromium ] && [ -d e2e/node_modules/playwright-core ]; then
  run "browser tests (Playwright + Chromium)" bash -c "cd e2e && npm test"
else
  echo "browser tests need /usr/bin/chromium and 'npm ci' in e2e/ (see .ci/run)" >&2
  failed=$((failed + 1))
fi

rm -f "$log"
for s in "${skipped[@]}"; do echo "skipped: $s"; done
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
