"""target-gorgias benchmarks: every figure is a ratio against a baseline run in the same go.

    .venv/bin/python benchmarks/run.py            # full run (a few minutes)
    .venv/bin/python benchmarks/run.py --quick    # smaller inputs
    .venv/bin/python benchmarks/run.py --smoke    # tiny: checks the benchmarks still run

1. overhead  - dry run of N records vs a no-op SDK target on the same input (CPU time), on a
               SaaS-style (tickets), a database-style (customers table) and a tiny schema
2. rate      - utilisation of a scaled rate limit with random latency, and 429s, vs the naive
               sequential client (sleep Retry-After on 429)
3. latency   - requests/s at max_concurrency 1, 4, 16 with no rate limit, 100-300 ms latency
4. memory    - peak RSS of a dry run with N vs 10 N records, and of a batched run; peak RSS
               sending to a slow server, N vs 10 N records and batch_size_rows 100 vs 10,000
5. slowtap   - a tap that writes N records over T seconds into an account allowed 10 requests
               per 2 s: wall time / max(T, N / rate), and the time to the first write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PY = sys.executable
CLI = str(Path(PY).with_name("target-gorgias"))

SIZES = {
    "full": {"overhead": 200_000, "rate": 600, "latency": 160, "memory": 100_000,
             "live_memory": 20_000, "slowtap": 150},
    "quick": {"overhead": 20_000, "rate": 120, "latency": 64, "memory": 10_000,
              "live_memory": 5_000, "slowtap": 40},
    "smoke": {"overhead": 500, "rate": 12, "latency": 8, "memory": 200,
              "live_memory": 100, "slowtap": 6},
}
#: Slow-tap scenario: seconds the tap takes per record (150 records over 30 s in full).
SLOWTAP_GAP = 0.2


def gen_file(tmp: Path, shape: str, count: int) -> Path:
    """Write the generated input once to a file (so generation is not timed)."""
    path = tmp / f"{shape}-{count}.singer"
    if not path.exists():
        with path.open("w") as fh:
            subprocess.run([PY, str(HERE / "gen.py"), "--shape", shape, "--count", str(count)],
                           stdout=fh, check=True)
    return path


def timed(cmd: list[str], stdin_path: Path, env: dict[str, str] | None = None) -> float:
    """Wall seconds of ``cmd`` reading ``stdin_path`` (stdout/stderr discarded)."""
    return timed_cpu(cmd, stdin_path, env)[0]


def timed_cpu(cmd: list[str], stdin_path: Path, env: dict[str, str] | None = None
              ) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of ``cmd`` reading ``stdin_path``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with stdin_path.open() as fh:
        started = time.perf_counter()
        proc = subprocess.run(cmd, stdin=fh, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, check=False, env=env)
        elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def write_json(tmp: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp / name
    path.write_text(json.dumps(data))
    return path


def dry_config(tmp: Path, stream: str, endpoint: str, **extra: Any) -> Path:
    return write_json(tmp, f"dry-{stream}-{len(extra)}.json", {
        "api_url": "http://127.0.0.1:9", "email": "bench@example.com", "api_key": "bench-key",
        "dry_run": True, "streams": {stream: {"endpoint": endpoint, **extra}}})


#: shape -> (label, endpoint, stream settings, goal for the CPU ratio)
OVERHEAD_SHAPES = {
    "ticket": ("SaaS-style ticket", "create_ticket", {}, 0.40),
    "customer_db": ("database-style customer", "create_customer",
                    {"exclude_attributes": ["id"]}, 0.40),
    "tag": ("tiny tag", "create_tag", {}, 1.30),
}


def bench_overhead(tmp: Path, n: int, repeat: int) -> list[tuple[str, str, str]]:
    """CPU of a dry run vs a no-op SDK target on the same input (best of ``repeat``)."""
    rows = []
    noop_cfg = write_json(tmp, "noop.json", {})
    for shape, (label, endpoint, extra, goal) in OVERHEAD_SHAPES.items():
        data = gen_file(tmp, shape, n)
        cfg = dry_config(tmp, f"{shape}s", endpoint, **extra)
        ours = min((timed_cpu([CLI, "--config", str(cfg)], data) for _ in range(repeat)),
                   key=lambda t: t[1])
        base = min((timed_cpu([PY, str(HERE / "noop_target.py"), "--config", str(noop_cfg)],
                              data) for _ in range(repeat)), key=lambda t: t[1])
        rows.append((f"overhead: {n:,} {label} records, dry-run CPU vs no-op SDK target",
                     f"CPU {ours[1]:.2f}s vs {base[1]:.2f}s (wall {ours[0]:.2f}s vs "
                     f"{base[0]:.2f}s, {n / ours[0]:,.0f} rec/s)",
                     f"{ours[1] / base[1]:.2f}x (goal <= {goal:.2f}x)"))
    return rows


class Server:
    """The fake Gorgias in its own process, driven through its /_fake/ control API."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "gorgias_fake", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.url = line.strip().rsplit(" ", 1)[-1]

    def control(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/_fake/" + path, data=data,
                                     method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def live_config(tmp: Path, url: str, name: str, endpoint: str, **extra: Any) -> Path:
    return write_json(tmp, name, {"api_url": url, "email": "agent@example.com",
                                  "api_key": "fake-api-key",
                                  "streams": {"tags": {"endpoint": endpoint}}, **extra})


def _window(requests_log: list[dict[str, Any]], status: int | tuple[int, ...],
            until_done: bool = False) -> tuple[int, float]:
    """(successful requests, seconds from the first arrival to the last arrival/answer)."""
    wanted = status if isinstance(status, tuple) else (status,)
    ok = [r for r in requests_log if r["status"] in wanted]
    if len(ok) < 2:
        return len(ok), 0.0
    end = max(r["finished_at" if until_done else "at"] for r in ok)
    return len(ok), end - min(r["at"] for r in ok)


def bench_rate(tmp: Path, n: int) -> list[tuple[str, str, str]]:
    limit, window = 20, 2.0
    server = Server("--rate-limit", str(limit), "--rate-window", str(window),
                    "--latency-ms", "50,200")
    try:
        data = gen_file(tmp, "tag", n)
        cfg = live_config(tmp, server.url, "rate.json", "create_tag", rate_limit=limit,
                          rate_limit_window=window)
        server.control("reset", {})
        ours = timed([CLI, "--config", str(cfg)], data)
        log = server.control("requests")
        # Every answered request used the account's budget: creates (201) and the head
        # lookups of lookup_before_create: auto (200).
        sent, span = _window(log, (200, 201))
        lookups = sum(1 for r in log if r["method"] == "GET")
        ours_429 = sum(1 for r in log if r["status"] == 429)
        allowed = limit + limit / window * span
        server.control("reset", {})
        with data.open() as fh:
            naive = json.loads(subprocess.run(
                [PY, str(HERE / "naive_client.py"), "--url", server.url, "--path", "/api/tags"],
                stdin=fh, capture_output=True, text=True, check=True).stdout)
        nlog = server.control("requests")
        nsent, nspan = _window(nlog, 201)
        nallowed = limit + limit / window * nspan
    finally:
        server.stop()
    util, nutil = sent / allowed, nsent / nallowed
    return [
        (f"rate: {n} creates, limit {limit}/{window:g}s, 50-200 ms latency",
         f"utilisation {util:.3f} ({lookups} of {sent} requests were head lookups), "
         f"{ours_429} x 429 ({ours_429 / max(sent, 1):.2%}), {ours:.1f}s",
         "goal >= 0.95, <= 0.5 % 429"),
        ("rate baseline: naive sequential client (sleep Retry-After)",
         f"utilisation {nutil:.3f}, {naive['throttled']} x 429, {naive['seconds']:.1f}s",
         f"target-gorgias {naive['seconds'] / ours:.2f}x faster"),
    ]


def bench_latency(tmp: Path, n: int) -> list[tuple[str, str, str]]:
    server = Server("--rate-limit", "0", "--latency-ms", "100,300")
    rows = []
    try:
        data = gen_file(tmp, "tag", n)
        rates = {}
        for conc in (1, 4, 16):
            server.control("reset", {})
            cfg = live_config(tmp, server.url, f"lat-{conc}.json", "create_tag",
                              rate_limit=100000, rate_limit_window=1, max_concurrency=conc)
            seconds = timed([CLI, "--config", str(cfg)], data)
            log = server.control("requests")
            sent, span = _window(log, 201, until_done=True)
            rates[conc] = sent / max(span, 1e-9)
            rows.append((f"latency: {n} creates, max_concurrency {conc}, 100-300 ms",
                         f"{rates[conc]:.1f} req/s ({seconds:.1f}s wall)",
                         f"{rates[conc] / rates[1]:.2f}x vs concurrency 1"))
    finally:
        server.stop()
    return rows


def peak_rss_mb(cmd: list[str], shape: str, count: int) -> float:
    """Peak RSS of ``cmd`` fed by the generator through a pipe (no file on disk)."""
    probe = (
        "import resource, subprocess, sys\n"
        "gen = subprocess.Popen(sys.argv[1:6], stdout=subprocess.PIPE)\n"
        "subprocess.run(sys.argv[6:], stdin=gen.stdout, stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL, check=True)\n"
        "gen.wait()\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    gen = [PY, str(HERE / "gen.py"), "--shape", shape, f"--count={count}"]
    out = subprocess.run([PY, "-c", probe, *gen, *cmd], capture_output=True, text=True,
                         check=True).stdout
    return int(out.strip()) / 1024


def bench_memory(tmp: Path, n: int) -> list[tuple[str, str, str]]:
    rows = []
    plain = dry_config(tmp, "tickets", "create_ticket")
    batched = dry_config(tmp, "tickets", "create_ticket", batch={"enabled": True, "size": 100})
    for label, cfg in (("dry run", plain), ("batched dry run (size 100)", batched)):
        small = peak_rss_mb([CLI, "--config", str(cfg)], "ticket", n)
        large = peak_rss_mb([CLI, "--config", str(cfg)], "ticket", n * 10)
        rows.append((f"memory: {label}, {n:,} vs {n * 10:,} tickets",
                     f"peak RSS {small:.0f} MB vs {large:.0f} MB",
                     f"{large / small:.2f}x (goal <= 1.20x)"))
    return rows


def _post(url: str, path: str, body: Any) -> Any:
    """Create something on the fake server (set-up, not measured)."""
    req = urllib.request.Request(url + path, method="POST", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer fake-access-token"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _custom_field_values(tmp: Path, ticket_id: int, fields: list[int], count: int) -> Path:
    """``count`` custom-field value records for one ticket (a STATE every 1,000)."""
    path = tmp / f"cf-{ticket_id}-{count}.singer"
    with path.open("w") as fh:
        fh.write(json.dumps({"type": "SCHEMA", "stream": "tags", "key_properties": [],
                             "schema": {"type": "object", "properties": {
                                 "ticket_id": {"type": "integer"}, "id": {"type": "integer"},
                                 "value": {"type": "string"}}}}) + "\n")
        for i in range(count):
            fh.write(json.dumps({"type": "RECORD", "stream": "tags", "record": {
                "ticket_id": ticket_id, "id": fields[i % len(fields)],
                "value": f"value {i}"}}) + "\n")
            if i % 1000 == 999:
                fh.write(json.dumps({"type": "STATE", "value": {"done": i}}) + "\n")
    return path


def peak_rss_file_mb(cmd: list[str], stdin_path: Path) -> float:
    """Peak RSS of ``cmd`` reading ``stdin_path`` (measured in a probe process)."""
    probe = (
        "import resource, subprocess, sys\n"
        "with open(sys.argv[1]) as fh:\n"
        "    subprocess.run(sys.argv[2:], stdin=fh, stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL, check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([PY, "-c", probe, str(stdin_path), *cmd], capture_output=True,
                         text=True, check=True).stdout
    return int(out.strip()) / 1024


def bench_live_memory(tmp: Path, n: int) -> list[tuple[str, str, str]]:
    """Peak RSS sending custom-field values (batched 100 per call) to a slow server (20-40
    ms per answer, 8 at a time): bounded by the in-flight window, not by the input size
    nor by ``batch_size_rows``."""
    server = Server("--rate-limit", "0", "--latency-ms", "20,40")
    try:
        runs = {}
        for count, rows_per_batch in ((n, 100), (n, 10_000), (n * 10, 10_000)):
            cfg = write_json(tmp, f"mem-{count}-{rows_per_batch}.json", {
                "api_url": server.url, "email": "agent@example.com",
                "api_key": "fake-api-key", "rate_limit": 100000, "rate_limit_window": 1,
                "max_concurrency": 8, "batch_size_rows": rows_per_batch,
                "streams": {"tags": {"endpoint": "replace_ticket_custom_fields"}}})
            server.control("reset", {})  # an empty store and request log for each run
            ticket_id = _post(server.url, "/api/tickets", {"messages": [{
                "channel": "email", "via": "api", "from_agent": False, "body_text": "hi",
                "source": {"type": "email", "from": {"address": "a@example.com"}}}]})["id"]
            fields = [_post(server.url, "/api/custom-fields", {
                "object_type": "Ticket", "label": f"Field {k}",
                "definition": {"data_type": "text"}})["id"] for k in range(5)]
            data = _custom_field_values(tmp, ticket_id, fields, count)
            runs[count, rows_per_batch] = peak_rss_file_mb([CLI, "--config", str(cfg)], data)
    finally:
        server.stop()
    small, big_batch, big = runs[n, 100], runs[n, 10_000], runs[n * 10, 10_000]
    return [
        (f"memory: sending {n:,} vs {n * 10:,} records to a slow server (100 per call)",
         f"peak RSS {big_batch:.0f} MB vs {big:.0f} MB", f"{big / big_batch:.2f}x (goal <= 1.20x)"),
        (f"memory: sending {n:,} records, batch_size_rows 100 vs 10,000",
         f"peak RSS {small:.0f} MB vs {big_batch:.0f} MB",
         f"{big_batch / small:.2f}x (goal <= 1.20x)"),
    ]


def bench_slowtap(tmp: Path, n: int) -> list[tuple[str, str, str]]:
    """A tap writing ``n`` records over ``n * SLOWTAP_GAP`` s into 10 requests / 2 s."""
    limit, window = 10, 2.0
    server = Server("--rate-limit", str(limit), "--rate-window", str(window))
    try:
        data = gen_file(tmp, "tag", n).read_text().splitlines()
        records = [line for line in data if '"RECORD"' in line]
        cfg = live_config(tmp, server.url, "slowtap.json", "create_tag", rate_limit=limit,
                          rate_limit_window=window)
        server.control("reset", {})
        launched = time.monotonic()
        log_path = tmp / "slowtap.log"
        log_file = log_path.open("w")
        proc = subprocess.Popen([CLI, "--config", str(cfg)], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=log_file, text=True)
        assert proc.stdin is not None
        proc.stdin.write(data[0] + "\n")
        proc.stdin.flush()
        # The clock starts when the target has started up (its sink for the stream exists):
        # start-up is the same however records are delivered, and reported apart.
        while "Stream 'tags'" not in log_path.read_text() and proc.poll() is None:
            time.sleep(0.01)
        started = time.monotonic()
        startup = started - launched
        first_at = 0.0
        for i, line in enumerate(records, 1):
            time.sleep(max(0.0, started + i * SLOWTAP_GAP - time.monotonic()))
            first_at = first_at or time.monotonic()
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        tap_done = time.monotonic() - started
        proc.communicate(data[-1] + "\n", timeout=600)
        wall = time.monotonic() - started
        log_file.close()
        if proc.returncode:
            raise SystemExit(f"slow-tap run failed:\n{log_path.read_text()[-2000:]}")
        log = server.control("requests")
    finally:
        server.stop()
    first_write = min(r["at"] for r in log) - first_at  # one monotonic clock per machine
    best = max(tap_done, n / (limit / window))
    return [
        (f"slow tap: {n} records over {tap_done:.0f}s, limit {limit}/{window:g}s",
         f"{wall:.1f}s wall after start-up ({startup:.1f}s), first write "
         f"{first_write:.2f}s after the first record",
         f"{wall / best:.2f}x of max(tap, N/rate) = {best:.0f}s (goal <= 1.10x, first "
         "write <= 1 s)"),
    ]


def main() -> int:
    """Run the chosen benchmarks and print one table."""
    parser = argparse.ArgumentParser()
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true")
    size.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", default="overhead,rate,latency,memory,slowtap")
    args = parser.parse_args()
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    sizes = SIZES[mode]
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="tg-bench-") as name:
        tmp = Path(name)
        for which in args.only.split(","):
            started = time.perf_counter()
            if which == "overhead":
                rows += bench_overhead(tmp, sizes["overhead"], 1 if mode == "smoke" else 2)
            elif which == "rate":
                rows += bench_rate(tmp, sizes["rate"])
            elif which == "latency":
                rows += bench_latency(tmp, sizes["latency"])
            elif which == "memory":
                rows += bench_memory(tmp, sizes["memory"])
                rows += bench_live_memory(tmp, sizes["live_memory"])
            elif which == "slowtap":
                rows += bench_slowtap(tmp, sizes["slowtap"])
            else:
                parser.error(f"unknown benchmark {which!r}")
            print(f"# {which} done in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    print_table(rows, f"mode: {mode}", "ratio")
    return 0


def print_table(rows: list[tuple[str, str, str]], setting: str, last: str) -> None:
    """The machine line, then the rows as the README's Markdown table."""
    print(f"Machine: {platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; {setting}")
    print(f"| benchmark | measured | {last} |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")


if __name__ == "__main__":
    sys.exit(main())
