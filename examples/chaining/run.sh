#!/usr/bin/env bash
# Chaining two target-gorgias stages against the bundled fake Gorgias:
#   signups.singer | stage 1 (create customers, emit responses)
#                  | stage 2 (stream maps turn each response into a welcome ticket)
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=${PORT:-8080}
[ -x .venv/bin/target-gorgias ] || { python3 -m venv .venv && .venv/bin/python -m pip install --quiet -e .; }
.venv/bin/python -m target_gorgias.fake_server --port "$PORT" > /tmp/target-gorgias-chain-server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "listening" /tmp/target-gorgias-chain-server.log 2>/dev/null && break; sleep 0.1; done
for stage in stage1-create-customers stage2-welcome-tickets; do
  sed "s#http://127.0.0.1:8080#http://127.0.0.1:$PORT#" "examples/chaining/$stage.json" > "/tmp/target-gorgias-$stage.json"
done
.venv/bin/target-gorgias --config /tmp/target-gorgias-stage1-create-customers.json < examples/chaining/signups.singer 2>/dev/null \
  | .venv/bin/target-gorgias --config /tmp/target-gorgias-stage2-welcome-tickets.json 2>/dev/null
