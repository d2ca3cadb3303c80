#!/usr/bin/env bash
# Schema conformance (接口契约检查): starts `tongban serve --demo` on a free loopback port with a
# throwaway data directory, logs in as the demo staff member liuyang over HTTP and makes a personal
# API token (the same form a person uses), then runs Schemathesis (PyPI, pinned) against
# /api/openapi.json with that token: every operation, a bounded number of generated requests each
# (valid and invalid), checking that nothing answers 5xx, that every status is documented and that
# every response matches its schema.
# Left out: DELETE /api/v1/tokens/{id} (it would revoke the run's own token and turn every later
# request into a 401) and POST /api/v1/calendar/import (an application/toml body, which Schemathesis
# cannot generate; its tests are in app/tests/integration/calendar.rs).
#
# Needs the debug binary (`cargo build`; scripts/test.sh builds it first) and python3 with venv.
# Schemathesis is installed into target/schemathesis-venv (or target/schemathesis-pkgs) on first use.
# Ends with `schema-check: N passed, M failed` (operations), which scripts/test.sh counts.
# Environment: SCHEMA_CHECK_MAX_EXAMPLES (default 20), SCHEMA_CHECK_TIMEOUT seconds (default 900).
set -uo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
bin="${CARGO_TARGET_DIR:-target}/debug/tongban"
venv="$PWD/target/schemathesis-venv"
max_examples="${SCHEMA_CHECK_MAX_EXAMPLES:-20}"
time_limit="${SCHEMA_CHECK_TIMEOUT:-900}"

fail() {
  echo "schema-check: $*" >&2
  echo "schema-check: 0 passed, 1 failed"
  exit 1
}

[ -x "$bin" ] || fail "no binary at $bin (run cargo build first)"

# Schemathesis in a venv under target/; where python3 has no venv module (Debian without
# python3-venv), in a plain package directory instead.
pkgs="$PWD/target/schemathesis-pkgs"
installed() { "$@" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; }
if installed "$venv/bin/schemathesis"; then
  st=("$venv/bin/schemathesis")
elif installed env PYTHONPATH="$pkgs" python3 -m schemathesis.cli; then
  st=(env PYTHONPATH="$pkgs" python3 -m schemathesis.cli)
else
  echo "== installing schemathesis $SCHEMATHESIS_VERSION"
  rm -rf "$venv" "$pkgs"
  if python3 -m venv "$venv" 2>/dev/null; then
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" || fail "installing schemathesis failed"
    st=("$venv/bin/schemathesis")
  else
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --target "$pkgs" "schemathesis==$SCHEMATHESIS_VERSION" ||
      fail "installing schemathesis failed"
    st=(env PYTHONPATH="$pkgs" python3 -m schemathesis.cli)
  fi
fi
py=python3

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"

# Only this run's settings: no configuration file, SQLite in the temp directory.
env -u TONGBAN_CONFIG -u TONGBAN_DATABASE__URL \
  TONGBAN_DATA_DIR="$work/data" TONGBAN_SERVER__BIND="127.0.0.1:$port" TONGBAN_LOG=warn \
  "$bin" serve --demo >"$work/server.log" 2>&1 &
server_pid=$!

up=""
for _ in $(seq 1 120); do
  if "$py" -c "import urllib.request; urllib.request.urlopen('$base/readyz', timeout=1)" 2>/dev/null; then
    up=1
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.5
done
if [ -z "$up" ]; then
  cat "$work/server.log" >&2
  fail "the server did not answer on $base"
fi

# Log in as liuyang (the demo password is printed at start) and make a token that may read and
# write, as the token page does.
password=$(grep -oE 'password [^ ]+ for all' "$work/server.log" | head -n 1 | cut -d' ' -f2)
[ -n "$password" ] || fail "the demo start printed no password"
token=$("$py" - "$base" "$password" <<'PY'
import http.cookiejar, json, re, sys, urllib.parse, urllib.request

base, password = sys.argv[1], sys.argv[2]
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

def csrf(path):
    page = opener.open(base + path).read().decode()
    m = re.search(r'name="_csrf" value="([^"]+)"', page)
    if not m:
        sys.exit(f"no CSRF field on {path}")
    return m.group(1)

form = {"username": "liuyang", "password": password, "_csrf": csrf("/login")}
opener.open(base + "/login", urllib.parse.urlencode(form).encode())
session_csrf = csrf("/me/tokens")
body = json.dumps({"name": "schema-check", "days": 1, "write": True}).encode()
req = urllib.request.Request(base + "/api/v1/tokens", body, {"Content-Type": "application/json", "X-CSRF-Token": session_csrf})
print(json.load(opener.open(req))["token"])
PY
) || { tail -n 20 "$work/server.log" >&2; fail "could not log in as liuyang and make an API token"; }

echo "== schemathesis $SCHEMATHESIS_VERSION against $base/api/openapi.json (max $max_examples examples per operation, ${time_limit}s at most)"
# From the temp directory: Schemathesis keeps a cache (.schemathesis/) in the working directory.
(cd "$work" && timeout --signal=INT --kill-after=30 "$time_limit" "${st[@]}" run "$base/api/openapi.json" \
  --url "$base" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "$max_examples" \
  --exclude-operation-id delete_token \
  --exclude-path /api/v1/calendar/import \
  --seed 13 \
  --workers 2 \
  --request-timeout 30 \
  --generation-database none \
  --suppress-health-check all \
  --no-color \
  --report junit --report-junit-path "$work/junit.xml")
rc=$?

# The run must have been made with a working token to the end (a revoked token makes every
# operation a documented 401, and the run would prove nothing).
if ! "$py" -c "import urllib.request; urllib.request.urlopen(urllib.request.Request('$base/api/v1/me', headers={'Authorization': 'Bearer $token'}), timeout=5)" 2>/dev/null; then
  echo "schema-check: the API token stopped working during the run" >&2
  rc=1
fi

if grep -qE 'thread .* panicked|internal error' "$work/server.log"; then
  echo "== the server logged errors:" >&2
  grep -E 'panicked|internal error|ERROR' "$work/server.log" | head -n 20 >&2
fi

counts=$("$py" - "$work/junit.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

try:
    cases = list(ET.parse(sys.argv[1]).getroot().iter("testcase"))
except (OSError, ET.ParseError):
    print("0 0")
    sys.exit()
bad = sum(1 for c in cases if c.find("failure") is not None or c.find("error") is not None)
skipped = sum(1 for c in cases if c.find("skipped") is not None)
print(len(cases) - bad - skipped, bad)
PY
)
read -r passed failed <<<"$counts"
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # schemathesis itself broke or ran out of time
  [ "$rc" -eq 124 ] && echo "schema-check: the run took longer than ${time_limit}s" >&2
fi
echo "schema-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
