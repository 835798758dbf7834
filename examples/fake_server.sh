# Sourced by the example scripts: install target-gorgias into .venv if needed, and start the
# bundled fake Gorgias on 127.0.0.1 until the calling script exits. PORT=9000 asks for a port
# (the script stops at once, saying so, if another program holds it); without PORT it uses
# 8080, or any free port when 8080 is taken. $PORT is the port in use afterwards.
[ -x .venv/bin/target-gorgias ] || { python3 -m venv .venv && .venv/bin/python -m pip install --quiet -e .; }
port_free() {
  .venv/bin/python - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
s.bind(("127.0.0.1", int(sys.argv[1])))
PY
}
if [ -n "${PORT:-}" ]; then
  if ! port_free "$PORT"; then
    echo "examples: port $PORT on 127.0.0.1 is taken by another program; set PORT to a free port, or unset it to pick one" >&2
    exit 1
  fi
  START_PORT=$PORT
elif port_free 8080; then
  START_PORT=8080
else
  echo "== port 8080 is taken by another program: the fake Gorgias uses a free port instead"
  START_PORT=0
fi
FAKE_LOG=$(mktemp)
.venv/bin/python -m target_gorgias.fake_server --port "$START_PORT" > "$FAKE_LOG" 2>&1 &
FAKE_PID=$!
trap 'kill $FAKE_PID 2>/dev/null || true; rm -f "$FAKE_LOG"' EXIT
for _ in $(seq 100); do
  grep -q "listening" "$FAKE_LOG" 2>/dev/null && break
  kill -0 "$FAKE_PID" 2>/dev/null || break   # it exited (port taken meanwhile, ...)
  sleep 0.1
done
PORT=$(sed -n 's#.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*#\1#p' "$FAKE_LOG")
if [ -z "$PORT" ]; then
  echo "examples: the fake Gorgias did not start on 127.0.0.1:$START_PORT:" >&2
  tail -5 "$FAKE_LOG" >&2
  exit 1
fi
# Point a config at it: fake_config examples/x.json > /tmp/x.json
fake_config() { sed "s#http://127.0.0.1:8080#http://127.0.0.1:$PORT#" "$1"; }
