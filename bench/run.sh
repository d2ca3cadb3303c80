#!/usr/bin/env bash
# Builds tongban in release mode and runs every benchmark; JSON goes to bench/out/.
# PostgreSQL: set TONGBAN_BENCH_POSTGRES to a URL whose role may create databases, or have
# Debian's postgresql installed (a throwaway cluster is started as in scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p tongban -p tongban-bench
mkdir -p bench/out
bench=target/release/tongban-bench
$bench startup | tee bench/out/startup.json
$bench http | tee bench/out/http.json
$bench audit | tee bench/out/audit.json
