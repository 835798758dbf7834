"""Many runs, one account: real target processes share the fake account's rate limit."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.redis_server import RedisServer, free_port
from tests.support import API_KEY, EMAIL, config, run_target, start_target

TAG_SCHEMA = {"type": "SCHEMA", "stream": "tags", "key_properties": ["name"],
              "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}


def tags(prefix: str, n: int) -> list[dict[str, Any]]:
    return [TAG_SCHEMA] + [{"type": "RECORD", "stream": "tags", "record": {"name": f"{prefix}-{i}"}}
                           for i in range(n)]


def cfg(srv, **extra: Any) -> dict[str, Any]:
    """10 requests per 1 s, like the fake account of these tests."""
    return config(srv.base_url, {"tags": {"endpoint": "create_tag"}},
                  **{"rate_limit": 10, "rate_limit_window": 1, **extra})


def start(tmp: Path, name: str, conf: dict[str, Any], messages: list[dict[str, Any]],
          cache: Path) -> subprocess.Popen[str]:
    """Start the real CLI in the background, its input in a file."""
    (tmp / f"{name}.json").write_text(json.dumps(conf))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_GORGIAS_")}
    env["XDG_CACHE_HOME"] = str(cache)
    return start_target(tmp / f"{name}.json", messages, env=env)


def run_together(tmp: Path, confs: list[dict[str, Any]], per_run: int) -> list[str]:
    """Run one target per config at once, each with its own tags; return their stderr."""
    cache = tmp / "cache"
    procs = [start(tmp, f"run{i}", c, tags(f"run{i}", per_run), cache)
             for i, c in enumerate(confs)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return [err for _, err in outs]


def statuses(srv) -> Counter[int]:
    return Counter(r["status"] for r in srv.requests)


def summary(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if "Summary:" in line)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def test_two_runs_share_the_local_store_without_429(fake_gorgias, tmp_path):
    fake_gorgias.configure(rate_limit=10, rate_window=1)
    errs = run_together(tmp_path, [cfg(fake_gorgias), cfg(fake_gorgias)], 25)
    assert statuses(fake_gorgias)[429] == 0, statuses(fake_gorgias)  # lookups included
    assert sum(1 for r in fake_gorgias.requests if r["method"] == "POST" and r["status"] == 201) == 50
    assert len(fake_gorgias.store["tags"]) == 50
    for err in errs:
        line = summary(err)
        assert "shared with up to 1 other run(s) via local store" in line, line
        share = int(re.search(r"this run used (\d+)% of the account's rate", line).group(1))
        assert 30 <= share <= 70, line
    # the store holds the account's hash, never the key, email or token
    files = list((tmp_path / "cache" / "target-gorgias").iterdir())
    assert len(files) == 1 and files[0].name.startswith("rate-")
    text = files[0].read_text()
    assert API_KEY not in text and EMAIL not in text and API_KEY not in files[0].name
    assert json.loads(text)["members"] == {}  # both runs gave up their lease at exit


def test_three_runs_share_redis_without_429(fake_gorgias, tmp_path, redis_server):
    fake_gorgias.configure(rate_limit=10, rate_window=1)
    conf = cfg(fake_gorgias, rate_limit_store=redis_server.url)
    errs = run_together(tmp_path, [conf, conf, conf], 15)
    assert statuses(fake_gorgias)[429] == 0, statuses(fake_gorgias)
    assert len(fake_gorgias.store["tags"]) == 45
    assert not (tmp_path / "cache" / "target-gorgias").exists()  # Redis, not the file
    for err in errs:
        assert f"via Redis {redis_server.url}" in summary(err)
        assert "other run(s)" in summary(err)


def test_killed_run_frees_its_share(fake_gorgias, tmp_path):
    fake_gorgias.configure(rate_limit=10, rate_window=1)
    cache = tmp_path / "cache"
    survivor = start(tmp_path, "survivor", cfg(fake_gorgias), tags("s", 60), cache)
    victim = start(tmp_path, "victim", cfg(fake_gorgias), tags("v", 200), cache)
    deadline = time.monotonic() + 30
    while len(sent_by(fake_gorgias, "v-")) < 5:
        assert time.monotonic() < deadline, "the second run never sent"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)  # no clean exit: its lease stays until it expires
    victim.wait()
    killed_at = time.monotonic()
    store = next((cache / "target-gorgias").iterdir())
    while len(json.loads(store.read_text())["members"]) > 1:
        assert time.monotonic() - killed_at < 6, store.read_text()
        time.sleep(0.1)
    _, err = survivor.communicate(timeout=60)
    assert survivor.returncode == 0, err[-3000:]
    assert "Rate limit: 2 run(s) now share this account's rate" in err
    assert "Rate limit: 1 run(s) now share this account's rate" in err
    assert statuses(fake_gorgias)[429] == 0
    mine = sent_by(fake_gorgias, "s-")
    assert len(mine) == 60
    # once the lease expired the survivor had the whole rate (10 per s), not half of it
    late = [at for at in mine if at > killed_at + 4]
    assert len(late) >= 10, mine
    assert (len(late) - 1) / (late[-1] - late[0]) > 8, late


def sent_by(srv, prefix: str) -> list[float]:
    """Arrival times of the requests whose tag name starts with ``prefix``."""
    return [r["at"] for r in srv.requests
            if str((r.get("body") or {}).get("name", "")).startswith(prefix)]


def test_store_none_turns_sharing_off(fake_gorgias, tmp_path):
    fake_gorgias.configure(rate_limit=10, rate_window=1)
    res = run_target(cfg(fake_gorgias, rate_limit_store="none"), tags("n", 5), tmp_path,
                     env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr
    assert "not shared: rate_limit_store is none" in summary(res.stderr)
    assert not (tmp_path / "cache").exists()


def test_store_path_moves_the_file(fake_gorgias, tmp_path):
    path = tmp_path / "elsewhere" / "bucket.json"
    res = run_target(cfg(fake_gorgias, rate_limit_store_path=str(path)), tags("p", 3), tmp_path,
                     env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr
    assert path.is_file() and not (tmp_path / "cache").exists()
    assert f"via local store {path}" in summary(res.stderr)


def test_unreachable_redis_falls_back_with_a_warning(fake_gorgias, tmp_path):
    url = f"redis://:sup3rsecret@127.0.0.1:{free_port()}/0"
    res = run_target(cfg(fake_gorgias, rate_limit_store=url), tags("u", 5), tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(fake_gorgias.store["tags"]) == 5
    assert re.search(r"WARNING .*Rate limit store Redis redis://127\.0\.0\.1:\d+/0 unreachable",
                     res.stderr), res.stderr
    assert "paced from the header" in summary(res.stderr)
    assert "sup3rsecret" not in res.stderr + res.stdout


def test_unwritable_local_store_falls_back(fake_gorgias, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    res = run_target(cfg(fake_gorgias, rate_limit_store_path=str(blocker / "x.json")),
                     tags("w", 3), tmp_path)
    assert res.returncode == 0, res.stderr
    assert "unreachable" in res.stderr and "paced from the header" in summary(res.stderr)


def test_runs_without_store_back_off_quickly(fake_gorgias, tmp_path):
    fake_gorgias.configure(rate_limit=10, rate_window=1)
    conf = cfg(fake_gorgias, rate_limit_store="none")
    run_together(tmp_path, [conf, conf], 30)
    counts = statuses(fake_gorgias)
    assert counts[201] == 60
    assert counts[429] <= 6, counts  # 21 % without AIMD; <= 5 % of requests measured


def test_wait_time_is_wall_clock(fake_gorgias, tmp_path):
    fake_gorgias.configure(rate_limit=10, rate_window=1)
    started = time.monotonic()
    res = run_target(cfg(fake_gorgias, max_concurrency=8, rate_limit_store="none"),
                     tags("t", 40), tmp_path)
    elapsed = time.monotonic() - started
    assert res.returncode == 0, res.stderr
    waited = float(re.search(r"([\d.]+)s waiting for the rate limit", res.stderr).group(1))
    # 8 threads wait at once for ~3 s: a sum over threads would say ~20 s
    assert 1.5 < waited <= elapsed, (waited, elapsed)
