#!/usr/bin/env bash
# Builds tongban in release mode and runs every benchmark; JSON goes to bench/out/.
# PostgreSQL: set TONGBAN_BENCH_POSTGRES to a URL whose role may create databases.
# The workflow comparison installs SpiffWorkflow (PyPI) into bench/.venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p tongban -p tongban-bench
mkdir -p bench/out
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet SpiffWorkflow==3.1.2
fi
bench=target/release/tongban-bench
$bench startup | tee bench/out/startup.json
$bench http | tee bench/out/http.json
$bench audit | tee bench/out/audit.json
$bench workflow-engine | tee bench/out/workflow-engine.json
$bench workflow-service | tee bench/out/workflow-service.json
$bench calendar | tee bench/out/calendar.json
$bench intake | tee bench/out/intake.json
$bench tasks | tee bench/out/tasks.json
$bench lists | tee bench/out/lists.json
# Single sign-on side by side with oidc-provider (npm): shared cores, then one core each.
(cd bench/node/oidc-provider && npm ci --silent)
$bench oidc | tee bench/out/oidc.json
TONGBAN_BENCH_SERVER_CPUS=1 taskset -c 0 $bench oidc | tee bench/out/oidc-pinned.json
# National cryptography next to OpenSSL (`openssl speed`).
$bench national | tee bench/out/national.json
# One sealed document to 200 units (SQLite, and PostgreSQL with TONGBAN_BENCH_POSTGRES).
$bench exchange | tee bench/out/exchange.json
