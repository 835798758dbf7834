"""Meltano end to end: the bundled project, the mapper chain, state round-trip, config test.

The project (meltano.yml + examples/data) is copied to a temp dir, pointed at a fake Gorgias
on a free port, and installed once per session. Meltano itself lives in its own venv
(``MELTANO_BIN``, set by .ci/run), as Meltano recommends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from target_gorgias.fake_server import FakeGorgias

ROOT = Path(__file__).resolve().parent.parent
MELTANO = os.environ.get("MELTANO_BIN") or shutil.which("meltano")
EXTRA_EXTRACTOR = """
  - name: tap-incremental
    namespace: tap_incremental
    pip_url: -e {fixture}
    executable: tap-incremental
    capabilities: [catalog, discover, state, about]
    config:
      path: ${{MELTANO_PROJECT_ROOT}}/incremental.jsonl
"""


def _rows(*days: int) -> str:
    return "".join(json.dumps({"external_id": f"inc-{d}", "email": f"inc{d}@example.com",
                               "name": f"Inc {d}", "language": "en",
                               "updated_at": f"2024-05-{d:02d}T10:00:00Z"}) + "\n"
                   for d in days)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGorgias]:
    with FakeGorgias(port=0, rate_limit=0) as srv:
        yield srv


@pytest.fixture(scope="module")
def project(server: FakeGorgias, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MELTANO:
        pytest.fail("meltano not found: set MELTANO_BIN (.ci/run installs it into .venv-meltano)")
    proj = tmp_path_factory.mktemp("meltano-project")
    text = (ROOT / "meltano.yml").read_text()
    text = text.replace("http://127.0.0.1:8080", server.base_url)
    text = text.replace("pip_url: -e .", f"pip_url: -e {ROOT}")
    text = text.replace("  loaders:\n", EXTRA_EXTRACTOR.format(
        fixture=ROOT / "tests" / "fixtures" / "tap_incremental") + "\n  loaders:\n", 1)
    (proj / "meltano.yml").write_text(text)
    shutil.copytree(ROOT / "examples" / "data", proj / "examples" / "data")
    (proj / "incremental.jsonl").write_text(_rows(1, 2))
    proc = meltano(proj, "install")
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proj


def meltano(proj: Path, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    assert MELTANO is not None
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("TARGET_GORGIAS_", "MELTANO_"))}
    full.update({"MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", **(env or {})})
    return subprocess.run([MELTANO, *args], cwd=proj, capture_output=True, text=True,
                          timeout=600, env=full, check=False, stdin=subprocess.DEVNULL)


def out(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def test_meltano_run_loader(project: Path, server: FakeGorgias) -> None:
    server.reset()
    proc = meltano(project, "run", "tap-jsonl", "target-gorgias")
    assert proc.returncode == 0, out(proc)[-3000:]
    emails = sorted(c["email"] for c in server.store["customers"].values())
    assert emails == ["ada@example.com", "alan@example.com", "grace@example.com"]
    assert all(not any(k.startswith("_sdc") or k == "updated_at" for k in (r["body"] or {}))
               for r in server.requests)
    state = meltano(project, "state", "get", "dev:tap-jsonl-to-target-gorgias")
    assert state.returncode == 0, out(state)
    assert "customers" in state.stdout and "replication_key_value" in state.stdout


def test_meltano_run_with_target_as_mapper(project: Path, server: FakeGorgias) -> None:
    server.reset()
    proc = meltano(project, "run", "tap-jsonl", "gorgias-send", "target-jsonl")
    assert proc.returncode == 0, out(proc)[-3000:]
    rows = [json.loads(x) for x in
            (project / "output" / "gorgias_responses.jsonl").read_text().splitlines()]
    by_email = {r["response"]["email"]: r for r in rows}
    stored = {c["email"]: i for i, c in server.store["customers"].items()}
    assert {e: r["resource_id"] for e, r in by_email.items()} == stored
    assert all(r["ok"] and r["status_code"] == 201 for r in rows)


def test_state_round_trip_sends_nothing_new(project: Path, server: FakeGorgias) -> None:
    server.reset()
    (project / "incremental.jsonl").write_text(_rows(1, 2))
    first = meltano(project, "run", "tap-incremental", "target-gorgias")
    assert first.returncode == 0, out(first)[-3000:]
    assert sorted(c["external_id"] for c in server.store["customers"].values()) == [
        "inc-1", "inc-2"]
    again = meltano(project, "run", "tap-incremental", "target-gorgias")
    assert again.returncode == 0, out(again)[-3000:]
    assert len([r for r in server.requests if r["method"] == "POST"]) == 2  # nothing new
    (project / "incremental.jsonl").write_text(_rows(1, 2, 3))
    third = meltano(project, "run", "tap-incremental", "target-gorgias")
    assert third.returncode == 0, out(third)[-3000:]
    posts = [r["body"]["external_id"] for r in server.requests if r["method"] == "POST"]
    assert posts.count("inc-3") == 1 and len(posts) == 3


def _config_test(project: Path, env: dict[str, str] | None = None) -> str:
    proc = meltano(project, "--log-level=debug", "config", "test", "target-gorgias", env=env)
    return out(proc)


def _loader_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "meltano      {" in line]


def test_meltano_config_test(project: Path, server: FakeGorgias) -> None:
    """The target's side of `meltano config test`: exit 0, no error line, nothing created.

    Meltano 4.4.1 then crashes in its own cleanup (``process.terminate()`` on a process it
    has already reaped raises ProcessLookupError), whatever the loader did; so this test
    checks what the loader printed and returned, as Meltano's debug log shows it.
    """
    server.reset()
    log = _config_test(project)
    assert "Process return code: 0" in log, log[-3000:]
    lines = _loader_lines(log)
    assert any("Connection check passed" in line for line in lines), log[-3000:]
    info = [line for line in lines if '"level":"debug"' not in line]
    assert not [line for line in info if "error" in line.lower() or "exception" in line.lower()]
    assert [(r["method"], r["path"]) for r in server.requests] == [("GET", "/api/account")]
    assert all(not v for v in server.store.values())
    assert ("Successfully processed test data" in log or "ProcessLookupError" in log), log[-2000:]

    bad = _config_test(project, env={"TARGET_GORGIAS_API_KEY": "wrong-key"})
    assert "Process return code: 1" in bad, bad[-3000:]
    assert any("connection check failed" in line and "HTTP 401" in line
               for line in _loader_lines(bad)), bad[-3000:]
    assert "Successfully processed test data" not in bad
