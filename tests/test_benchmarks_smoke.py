"""The benchmarks still run (tiny sizes); speed itself is measured in benchmarks/, not here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmarks_smoke():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    names = " ".join(line.split("|")[1] for line in table[1:])
    for part in ("overhead", "rate:", "rate baseline", "latency", "memory", "slow server",
                 "slow tap"):
        assert part in names, proc.stdout
    assert len(table) >= 12


def test_shared_rate_benchmark_smoke():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "shared_rate.py"), "--smoke"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| shared rate:")]
    names = " ".join(rows)
    for part in ("1 process alone", "2 processes", "local store", "Redis", "no store"):
        assert part in names, proc.stdout
    assert all("x 429 of" in row and "utilisation" in row for row in rows), proc.stdout
