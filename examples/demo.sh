#!/usr/bin/env bash
# Try target-gorgias with no Gorgias account: install it in .venv, start the bundled fake
# Gorgias server on 127.0.0.1, load examples/demo.singer, and show what the server now holds.
set -euo pipefail
cd "$(dirname "$0")/.."
source examples/fake_server.sh

echo "== target-gorgias: loading examples/demo.singer into the fake Gorgias at http://127.0.0.1:$PORT"
fake_config examples/demo-config.json > /tmp/target-gorgias-demo-config.json
.venv/bin/target-gorgias --config /tmp/target-gorgias-demo-config.json < examples/demo.singer > /tmp/target-gorgias-demo-state.json

echo "== state emitted (what Meltano would store):"
cat /tmp/target-gorgias-demo-state.json
echo "== what the fake Gorgias now holds:"
.venv/bin/python - "$PORT" <<'PY'
import json, sys, urllib.request
store = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_fake/store"))
for resource, items in store.items():
    objs = items.values() if isinstance(items, dict) else items
    for obj in objs:
        label = obj.get("email") or obj.get("subject") or obj.get("name") or obj.get("body_text")
        print(f"  {resource:<10} id={obj.get('id'):<4} {label}")
PY
