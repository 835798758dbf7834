"""The README's first command: the bundled demo runs end to end against the fake server."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_script_loads_the_example(tmp_path):
    env = {**os.environ, "PORT": str(free_port())}
    proc = subprocess.run(["bash", str(ROOT / "examples" / "demo.sh")], capture_output=True,
                          text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for expected in ("ada@example.com", "grace@example.com", "alan@example.com",
                     "Where is my order #1001?", "Refund for order #1002", "vip-label"):
        assert expected in out, out
    assert '"labels":{"replication_key_value":"shipping-label"}' in out
    assert "fake-api-key" not in proc.stderr


def test_orders_to_tickets_example(fake_gorgias, tmp_path):
    """examples/orders: flat Shopify-like orders become tickets with their first message."""
    from tests.support import CLI

    cfg = tmp_path / "c.json"
    cfg.write_text((ROOT / "examples" / "orders" / "orders-to-tickets.json").read_text()
                   .replace("http://127.0.0.1:8080", fake_gorgias.base_url))
    for run in range(2):  # the second run is the daily re-run: nothing new is created
        with (ROOT / "examples" / "orders" / "orders.singer").open() as src:
            proc = subprocess.run([CLI, "--config", str(cfg)], stdin=src, capture_output=True,
                                  text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        expected = "2 created, 0 updated, 0 unchanged" if run == 0 else \
            "0 created, 0 updated, 2 unchanged"
        assert expected in proc.stderr, proc.stderr
    tickets = {t["external_id"]: t for t in fake_gorgias.store["tickets"].values()}
    assert sorted(tickets) == ["order-5001", "order-5003"]
    assert tickets["order-5001"]["customer"] == {"email": "ada@example.com", "name": "Ada Lovelace"}
    assert tickets["order-5001"]["meta"] == {"order_total": "129.95"}
    bodies = sorted(m["body_text"] for m in fake_gorgias.store["messages"].values())
    assert bodies == ["The mug arrived broken, please refund.", "Wrong size, I would like a refund."]


def test_chaining_script(tmp_path):
    env = {**os.environ, "PORT": str(free_port())}
    proc = subprocess.run(["bash", str(ROOT / "examples" / "chaining" / "run.sh")],
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import json
    msgs = [json.loads(line) for line in proc.stdout.splitlines()]
    records = [m["record"] for m in msgs if m["type"] == "RECORD"]
    assert sorted(r["response"]["external_id"] for r in records) == ["welcome-101", "welcome-102"]
    assert all(r["ok"] and r["stream"] == "welcome_tickets" for r in records)
