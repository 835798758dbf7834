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
