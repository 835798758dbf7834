# Sourced by the example scripts: install target-gorgias into .venv if needed, and start the
# bundled fake Gorgias on 127.0.0.1:$PORT (default 8080) until the calling script exits.
PORT=${PORT:-8080}
[ -x .venv/bin/target-gorgias ] || { python3 -m venv .venv && .venv/bin/python -m pip install --quiet -e .; }
FAKE_LOG=$(mktemp)
.venv/bin/python -m target_gorgias.fake_server --port "$PORT" > "$FAKE_LOG" 2>&1 &
FAKE_PID=$!
trap 'kill $FAKE_PID 2>/dev/null || true; rm -f "$FAKE_LOG"' EXIT
for _ in $(seq 100); do grep -q "listening" "$FAKE_LOG" 2>/dev/null && break; sleep 0.1; done
# Point a config at it: fake_config examples/x.json > /tmp/x.json
fake_config() { sed "s#http://127.0.0.1:8080#http://127.0.0.1:$PORT#" "$1"; }
