"""Meltano end to end: the bundled project, the mapper chain, state round-trip, config test.

The project (meltano.yml + examples/data) is copied to a temp dir and installed once per
module; every command points it at a fake Gorgias on a free port through the environment
(``TARGET_GORGIAS_API_URL``, the same override a real deployment uses for its key), so the
mapper's and the loader's environment handling is tested too. Meltano itself lives in its
own venv (``MELTANO_BIN``, set by .ci/run), as Meltano recommends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from target_gorgias.fake_server import FakeGorgias

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
MELTANO = os.environ.get("MELTANO_BIN") or shutil.which("meltano")
#: meltano.yml installs the checkout it sits in; the copy must install this checkout.
PIP_URL_SELF = 'pip_url: -e "${MELTANO_PROJECT_ROOT}"'
EXTRA_EXTRACTOR = """
  - name: tap-incremental
    namespace: tap_incremental
    pip_url: -e {fixture}
    executable: tap-incremental
    capabilities: [catalog, discover, state, about]
    config:
      path: ${{MELTANO_PROJECT_ROOT}}/incremental.jsonl
"""
#: Variables from the caller's shell that would change what Meltano or a plugin does.
_DROP_PREFIXES = ("TARGET_GORGIAS_", "MELTANO_", "TAP_JSONL_", "TARGET_JSONL_")
_DROP = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}


def _rows(*days: int) -> str:
    return "".join(json.dumps({"external_id": f"inc-{d}", "email": f"inc{d}@example.com",
                               "name": f"Inc {d}", "language": "en",
                               "updated_at": f"2024-05-{d:02d}T10:00:00Z"}) + "\n"
                   for d in days)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGorgias]:
    with FakeGorgias(port=0, rate_limit=0) as srv:
        yield srv


@pytest.fixture(scope="module")
def project(server: FakeGorgias, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MELTANO or not os.access(MELTANO, os.X_OK):
        pytest.fail(f"meltano not found (MELTANO_BIN={os.environ.get('MELTANO_BIN')!r}, none on "
                    "PATH): .ci/run installs it into .venv-meltano and exports MELTANO_BIN",
                    pytrace=False)
    proj = tmp_path_factory.mktemp("meltano-project")
    text = (ROOT / "meltano.yml").read_text()
    assert text.count(PIP_URL_SELF) == 2, "meltano.yml: loader and mapper install the checkout"
    text = text.replace(PIP_URL_SELF, f'pip_url: -e "{ROOT}"')
    text = text.replace("  loaders:\n", EXTRA_EXTRACTOR.format(
        fixture=ROOT / "tests" / "fixtures" / "tap_incremental") + "\n  loaders:\n", 1)
    (proj / "meltano.yml").write_text(text)
    shutil.copytree(DATA, proj / "examples" / "data")
    (proj / "incremental.jsonl").write_text(_rows(1, 2))
    started = time.monotonic()
    proc = meltano(proj, server, "install")
    assert proc.returncode == 0, out(proc)[-3000:]
    print(f"meltano install: {time.monotonic() - started:.1f}s")
    return proj


def meltano(proj: Path, server: FakeGorgias, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    assert MELTANO is not None
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(_DROP_PREFIXES) and k not in _DROP}
    full.update({"MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                 "MELTANO_CLI_DISABLE_VERSION_CHECK": "true", "NO_COLOR": "1",
                 "TARGET_GORGIAS_API_URL": server.base_url, **(env or {})})
    return subprocess.run([MELTANO, *args], cwd=proj, capture_output=True, text=True,
                          timeout=600, env=full, check=False, stdin=subprocess.DEVNULL)


def out(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def writes(server: FakeGorgias) -> list[dict[str, Any]]:
    return [r for r in server.requests if r["method"] != "GET"]


def assert_holds_examples(server: FakeGorgias) -> None:
    """The fake Gorgias holds exactly the sample customers and tickets, field for field."""
    store = server.store
    customers = read_jsonl(DATA / "customers.jsonl")
    held = {c["email"]: c for c in store["customers"].values()}
    assert sorted(held) == sorted(c["email"] for c in customers)
    for sample in customers:
        got = held[sample["email"]]
        sent = {k: v for k, v in sample.items() if k != "updated_at"}  # exclude_attributes
        assert {k: got.get(k) for k in sent} == sent
        assert "updated_at" not in got

    tickets = read_jsonl(DATA / "tickets.jsonl")
    held = {t["external_id"]: t for t in store["tickets"].values()}
    assert sorted(held) == sorted(t["external_id"] for t in tickets)
    for sample in tickets:
        got = held[sample["external_id"]]
        assert {k: got.get(k) for k in sample if k != "messages"} == {
            k: v for k, v in sample.items() if k != "messages"}
        assert [{k: m.get(k) for k in s} for s, m in zip(
            sample["messages"], got["messages"], strict=True)] == sample["messages"]
    assert len(store["messages"]) == sum(len(t["messages"]) for t in tickets)
    # No tap metadata (_sdc_*) and no excluded column reached Gorgias.
    assert all(not any(k.startswith("_sdc") or k == "updated_at" for k in (r["body"] or {}))
               for r in server.requests)


def test_meltano_run_loader(project: Path, server: FakeGorgias) -> None:
    server.reset()
    started = time.monotonic()
    proc = meltano(project, server, "run", "tap-jsonl", "target-gorgias")
    took = time.monotonic() - started
    assert proc.returncode == 0, out(proc)[-3000:]
    assert_holds_examples(server)
    paths = [r["path"] for r in writes(server)]
    assert sorted(paths) == ["/api/customers"] * 3 + ["/api/tickets"] * 3
    assert paths.index("/api/tickets") > 2, "customers reach Gorgias before their tickets"

    # Running it again is safe: tap-jsonl re-reads every file (meltano.yml leaves out its
    # broken `state` capability) and lookup_before_create finds every record in Gorgias.
    before = server.store
    again = meltano(project, server, "run", "tap-jsonl", "target-gorgias")
    assert again.returncode == 0, out(again)[-3000:]
    assert len(writes(server)) == 6 and server.store == before
    print(f"meltano run tap-jsonl target-gorgias: {took:.1f}s")


def test_meltano_run_with_target_as_mapper(project: Path, server: FakeGorgias,
                                           tmp_path: Path) -> None:
    server.reset()
    proc = meltano(project, server, "run", "tap-jsonl", "gorgias-send", "target-jsonl",
                   env={"TARGET_JSONL_DESTINATION_PATH": str(tmp_path)})
    assert proc.returncode == 0, out(proc)[-3000:]
    assert_holds_examples(server)
    rows = read_jsonl(tmp_path / "gorgias_responses.jsonl")
    assert all(r["ok"] and r["status_code"] == 201 for r in rows), rows
    store = server.store
    for stream in ("customers", "tickets"):
        assert sorted(r["resource_id"] for r in rows if r["stream"] == stream) == sorted(
            store[stream])
    assert {r["source_keys"][0]["external_id"] for r in rows} == {
        row["external_id"] for name in ("customers", "tickets")
        for row in read_jsonl(DATA / f"{name}.jsonl")}


def test_state_round_trip_sends_nothing_new(project: Path, server: FakeGorgias) -> None:
    server.reset()
    (project / "incremental.jsonl").write_text(_rows(1, 2))
    first = meltano(project, server, "run", "tap-incremental", "target-gorgias")
    assert first.returncode == 0, out(first)[-3000:]
    assert sorted(c["external_id"] for c in server.store["customers"].values()) == [
        "inc-1", "inc-2"]
    again = meltano(project, server, "run", "tap-incremental", "target-gorgias")
    assert again.returncode == 0, out(again)[-3000:]
    assert len([r for r in server.requests if r["method"] == "POST"]) == 2  # nothing new
    (project / "incremental.jsonl").write_text(_rows(1, 2, 3))
    third = meltano(project, server, "run", "tap-incremental", "target-gorgias")
    assert third.returncode == 0, out(third)[-3000:]
    posts = [r["body"]["external_id"] for r in server.requests if r["method"] == "POST"]
    assert posts.count("inc-3") == 1 and len(posts) == 3


def _config_test(project: Path, server: FakeGorgias, env: dict[str, str] | None = None) -> str:
    proc = meltano(project, server, "--log-level=debug", "config", "test", "target-gorgias",
                   env=env)
    return out(proc)


def _loader_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "meltano      {" in line]


def test_meltano_config_test(project: Path, server: FakeGorgias) -> None:
    """The target's side of `meltano config test`: exit 0, no error line, nothing created.

    Meltano 4.0-4.4.1 then often crashes in its own cleanup (``process.terminate()`` on a
    process asyncio has already reaped raises ProcessLookupError), whatever the loader did;
    so this test checks what the loader printed and returned, as Meltano's debug log shows.
    """
    server.reset()
    log = _config_test(project, server)
    assert "Process return code: 0" in log, log[-3000:]
    lines = _loader_lines(log)
    assert any("Connection check passed" in line for line in lines), log[-3000:]
    info = [line for line in lines if '"level":"debug"' not in line]
    assert not [line for line in info if "error" in line.lower() or "exception" in line.lower()]
    assert [(r["method"], r["path"]) for r in server.requests] == [("GET", "/api/account")]
    assert all(not v for v in server.store.values())
    # Meltano's own verdict, when its race lets it give one: valid.
    assert ("Plugin configuration is valid" in log or "ProcessLookupError" in log), log[-2000:]
    assert "Plugin configuration is invalid" not in log

    bad = _config_test(project, server, env={"TARGET_GORGIAS_API_KEY": "wrong-key"})
    assert "Process return code: 1" in bad, bad[-3000:]
    assert "wrong-key" not in bad
    assert "Plugin configuration is valid" not in bad
    # Meltano shows the loader's last line as the reason (at the default log level).
    info = [line for line in _loader_lines(bad) if '"level":"debug"' not in line]
    assert "connection check failed" in info[-1] and "HTTP 401" in info[-1], (
        "the reason `meltano config test` shows is not the credential failure: " + info[-1])


def test_meltano_invoke_check(project: Path, server: FakeGorgias) -> None:
    """The connection check as a plugin command: works where `meltano config test` races."""
    server.reset()
    good = meltano(project, server, "invoke", "target-gorgias:check")
    assert good.returncode == 0, out(good)[-3000:]
    assert good.stdout.startswith("connection check passed: GET "), out(good)[-3000:]
    assert [(r["method"], r["path"]) for r in server.requests] == [("GET", "/api/account")]
    bad = meltano(project, server, "invoke", "target-gorgias:check",
                  env={"TARGET_GORGIAS_API_KEY": "wrong-key"})
    assert bad.returncode == 1, out(bad)[-3000:]
    assert "connection check failed" in bad.stdout and "HTTP 401" in bad.stdout, bad.stdout
    assert "wrong-key" not in out(bad)
    assert all(r["method"] == "GET" for r in server.requests)
