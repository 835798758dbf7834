#!/usr/bin/env bash
# Chaining two target-gorgias stages against the bundled fake Gorgias:
#   signups.singer | stage 1 (create customers, emit responses)
#                  | stage 2 (stream maps turn each response into a welcome ticket)
set -euo pipefail
cd "$(dirname "$0")/../.."
source examples/fake_server.sh
for stage in stage1-create-customers stage2-welcome-tickets; do
  fake_config "examples/chaining/$stage.json" > "/tmp/target-gorgias-$stage.json"
done
.venv/bin/target-gorgias --config /tmp/target-gorgias-stage1-create-customers.json < examples/chaining/signups.singer 2>/dev/null \
  | .venv/bin/target-gorgias --config /tmp/target-gorgias-stage2-welcome-tickets.json 2>/dev/null
