"""Extra calls per run of ``lookup_before_create: auto`` (the default) vs ``true``.

    .venv/bin/python benchmarks/lookups.py            # N = 50, 200, 800 (about 2 minutes)
    .venv/bin/python benchmarks/lookups.py --smoke    # N = 10, 20

Runs the real CLI against the bundled fake Gorgias (127.0.0.1, no rate limit on the server)
with N ticket creates, a scaled rate limit of 40 requests per 2 s and max_concurrency 4,
and counts the lookups (GETs) each run made. With ``auto`` the count stops growing once N
passes the head window: a constant, independent of N.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from target_gorgias.client import head_window  # noqa: E402
from target_gorgias.fake_server import FakeGorgias  # noqa: E402
from target_gorgias.run import STATE_INTERVAL  # noqa: E402

CLI = str(Path(sys.executable).with_name("target-gorgias"))
RATE, WINDOW, CONCURRENCY = 40, 2.0, 4


def singer(n: int) -> str:
    """N ticket records, a state after each."""
    lines = [{"type": "SCHEMA", "stream": "tickets", "key_properties": ["external_id"],
              "schema": {"type": "object", "properties": {
                  "external_id": {"type": "string"}, "messages": {"type": "array"}}}}]
    for i in range(1, n + 1):
        lines.append({"type": "RECORD", "stream": "tickets", "record": {
            "external_id": f"bench-{i}", "messages": [
                {"channel": "email", "from_agent": False, "via": "api", "body_text": "x"}]}})
        lines.append({"type": "STATE", "value": {"n": i}})
    return "".join(json.dumps(m) + "\n" for m in lines)


def run_once(srv: FakeGorgias, tmp: Path, n: int, mode: object) -> tuple[int, int, float]:
    """(creates, lookups, seconds) of one run into an empty fake Gorgias."""
    srv.reset()
    cfg = tmp / "config.json"
    cfg.write_text(json.dumps({
        "api_url": srv.base_url, "email": srv.email, "api_key": srv.api_key,
        "rate_limit": RATE, "rate_limit_window": WINDOW, "max_concurrency": CONCURRENCY,
        "lookup_before_create": mode, "streams": {"tickets": {"endpoint": "create_ticket"}}}))
    started = time.perf_counter()
    proc = subprocess.run([CLI, "--config", str(cfg)], input=singer(n), text=True,
                          capture_output=True, check=False)
    took = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"run failed:\n{proc.stderr[-2000:]}")
    reqs = srv.requests
    creates = sum(1 for r in reqs if r["method"] == "POST")
    lookups = sum(1 for r in reqs if r["method"] == "GET")
    if creates != n or len(srv.store["tickets"]) != n:
        raise SystemExit(f"expected {n} tickets, got {len(srv.store['tickets'])}")
    return creates, lookups, took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (checks it runs)")
    args = parser.parse_args()
    sizes = (10, 20) if args.smoke else (50, 200, 800)
    window = head_window(CONCURRENCY, RATE, WINDOW, STATE_INTERVAL)
    print(f"rate limit {RATE}/{WINDOW:g}s, max_concurrency {CONCURRENCY}: head window "
          f"{window} (with Gorgias' API-key default 40/20s: "
          f"{head_window(CONCURRENCY, 40, 20, STATE_INTERVAL)})\n")
    print("| N | mode | creates | extra calls (lookups) | extra per record | wall |")
    print("|---|---|---|---|---|---|")
    with FakeGorgias(port=0, rate_limit=0) as srv, tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            for mode in ("auto", True):
                creates, lookups, took = run_once(srv, Path(tmp), n, mode)
                print(f"| {n} | {json.dumps(mode)} | {creates} | {lookups} | "
                      f"{lookups / n:.2f} | {took:.1f}s |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
