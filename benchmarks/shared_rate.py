"""Many runs, one account: 429s and combined utilisation of concurrent target processes.

    .venv/bin/python benchmarks/shared_rate.py          # full: 2 and 4 processes, ~2 min
    .venv/bin/python benchmarks/shared_rate.py --smoke  # tiny: checks it still runs

The fake Gorgias allows 20 requests per 2 s (50-200 ms latency). N target processes start
together, each loading its own tags, with ``rate_limit_store`` local (a file, the default),
Redis (a real server on loopback) and none (each paces itself from the header). One
process alone is the no-regression baseline. Utilisation = requests answered 201 over
what the account allowed between the first and the last of them (limit + rate x span).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.redis_server import RedisServer  # noqa: E402
from benchmarks.run import CLI, Server, print_table  # noqa: E402

LIMIT, WINDOW = 20, 2.0
SIZES = {"full": {"alone": 200, 2: 80, 4: 40}, "smoke": {"alone": 12, 2: 12}}


def write_input(tmp: Path, proc: int, count: int) -> Path:
    """``count`` create_tag records with names unique to process ``proc``."""
    path = tmp / f"tags-{proc}-{count}.singer"
    lines = [{"type": "SCHEMA", "stream": "tags", "key_properties": ["name"],
              "schema": {"type": "object", "properties": {"name": {"type": "string"},
                                                          "description": {"type": "string"}}}}]
    lines += [{"type": "RECORD", "stream": "tags",
               "record": {"name": f"p{proc}-tag-{i}", "description": "bench"}}
              for i in range(count)]
    path.write_text("".join(json.dumps(m) + "\n" for m in lines))
    return path


def run_many(tmp: Path, server: Server, n: int, count: int, store: str) -> dict[str, Any]:
    """Start ``n`` targets at once on one account; return the server's view of them."""
    server.control("reset", {})
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=tmp))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TARGET_GORGIAS_")},
           "XDG_CACHE_HOME": str(cache)}
    procs = []
    for i in range(n):
        cfg = tmp / f"cfg-{store.split(':')[0]}-{n}-{i}.json"
        cfg.write_text(json.dumps({
            "api_url": server.url, "email": "agent@example.com", "api_key": "fake-api-key",
            "rate_limit": LIMIT, "rate_limit_window": WINDOW, "rate_limit_store": store,
            # Creates only (no head lookups): the figure is the share of the rate each run got.
            "lookup_before_create": False,
            "streams": {"tags": {"endpoint": "create_tag"}}}))
        with write_input(tmp, i, count).open() as fh:
            procs.append(subprocess.Popen([CLI, "--config", str(cfg)], stdin=fh,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True, env=env))
    started = time.perf_counter()
    errors = [p.communicate()[1] for p in procs]
    seconds = time.perf_counter() - started
    for p, err in zip(procs, errors, strict=True):
        if p.returncode:
            raise SystemExit(f"a target failed ({store}, {n} processes):\n{err[-2000:]}")
    log = server.control("requests")
    ok = [r for r in log if r["status"] == 201]
    throttled = sum(1 for r in log if r["status"] == 429)
    span = max(r["at"] for r in ok) - min(r["at"] for r in ok) if len(ok) > 1 else 0.0
    allowed = LIMIT + LIMIT / WINDOW * span
    if len(ok) != n * count:
        raise SystemExit(f"{store}, {n} processes: {len(ok)} created, expected {n * count}")
    summaries = [line.split("; this run used ", 1)[-1] for err in errors
                 for line in err.splitlines() if "Summary:" in line]
    return {"ok": len(ok), "throttled": throttled, "requests": len(log),
            "util": len(ok) / allowed, "seconds": seconds, "summaries": summaries}


def row(label: str, r: dict[str, Any], goal: str) -> tuple[str, str, str]:
    share = r["throttled"] / max(r["requests"], 1)
    return (label, f"{r['throttled']} x 429 of {r['requests']} ({share:.1%}), utilisation "
            f"{r['util']:.3f}, {r['seconds']:.1f}s", goal)


def main() -> int:
    """Run every scenario and print one table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--stores", default="local,redis,none", help="which stores to run")
    args = parser.parse_args()
    mode = "smoke" if args.smoke else "full"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    sizes = SIZES[mode]
    rows: list[tuple[str, str, str]] = []
    server = Server("--rate-limit", str(LIMIT), "--rate-window", str(WINDOW),
                    "--latency-ms", "50,200")
    redis = RedisServer()
    try:
        with tempfile.TemporaryDirectory(prefix="tg-shared-") as name:
            tmp = Path(name)
            wanted = args.stores.split(",")
            for label, store in (("local store", "local"), ("no store", "none")):
                if store in wanted:
                    alone = run_many(tmp, server, 1, sizes["alone"], store)
                    rows.append(row(f"shared rate: 1 process alone, {sizes['alone']} creates, "
                                    f"{label}", alone, "goal >= 0.99, 0 x 429"))
            for n in (2, 4):
                if n not in sizes:
                    continue
                for label, store, goal in (("local store", "local", "goal <= 1 %, >= 0.95"),
                                           ("Redis", redis.url, "goal <= 1 %, >= 0.95"),
                                           ("no store", "none", "goal <= 5 % 429")):
                    if store.split(":")[0] not in wanted:
                        continue
                    redis.flush()
                    r = run_many(tmp, server, n, sizes[n], store)
                    rows.append(row(f"shared rate: {n} processes x {sizes[n]} creates, {label}",
                                    r, goal))
                    print(f"# {n} x {label}: {r['summaries']}", file=sys.stderr)
    finally:
        redis.stop()
        server.stop()
    print_table(rows, f"mode: {mode}; fake account {LIMIT} per {WINDOW:g} s, "
                "50-200 ms latency", "goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
