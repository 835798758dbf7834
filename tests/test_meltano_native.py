"""Meltano-native and warehouse-ready (issue 14).

CLI parts first (``--test``, ``--about``, progress lines, the 409 hint), then Meltano end to
end: a project made by ``meltano init``, target-gorgias added from the Hub-style definition
in ``plugin/target-gorgias.yml`` (``meltano add --from-ref``), a ``meltano run`` of a small tap
with YAML stream maps (``__NULL__``), and the ``target-gorgias:check`` plugin command. One
project per module (each Meltano call is slow). Meltano lives in its own venv (MELTANO_BIN).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from target_gorgias.fake_server import FakeGorgias
from target_gorgias.target import TargetGorgias
from tests.support import API_KEY, CLI, config, record, run_target, schema

ROOT = Path(__file__).resolve().parent.parent
HUB_FILE = ROOT / "plugin" / "target-gorgias.yml"


def _check(cfg: dict[str, Any], tmp_path: Path, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check.json"
    path.write_text(json.dumps(cfg))
    return subprocess.run([CLI, "--config", str(path), "--test"], capture_output=True, text=True,
                          timeout=60, check=False, env=env)


# -- --test ----------------------------------------------------------------------------------

def test_connection_check_passes_with_one_read_only_call(fake_gorgias, tmp_path: Path) -> None:
    proc = _check(config(fake_gorgias.base_url, {}), tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("connection check passed: GET "), proc.stdout
    assert "/api/account answered 200" in lines[0]
    assert [(r["method"], r["path"]) for r in fake_gorgias.requests] == [("GET", "/api/account")]
    assert API_KEY not in proc.stdout + proc.stderr


def test_connection_check_names_a_refused_key(fake_gorgias, tmp_path: Path) -> None:
    cfg = config(fake_gorgias.base_url, {"x": {"endpoint": "create_tag"}}, api_key="wrong-key")
    proc = _check(cfg, tmp_path)
    assert proc.returncode == 1
    [line] = proc.stdout.splitlines()
    assert line.startswith("connection check failed: GET ") and "HTTP 401" in line, line
    assert "check email/api_key or access_token" in line
    assert "wrong-key" not in proc.stdout + proc.stderr
    assert all(r["method"] == "GET" for r in fake_gorgias.requests)


def test_connection_check_unreachable_and_bad_config(tmp_path: Path) -> None:
    import socket
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _check(config(f"http://127.0.0.1:{port}", {}), tmp_path)
    assert proc.returncode == 1
    [line] = proc.stdout.splitlines()
    assert "connection check failed" in line and "check subdomain/api_url" in line, line
    bad = _check({"email": "a@example.com"}, tmp_path)
    assert bad.returncode == 1
    [line] = bad.stdout.splitlines()
    assert line.startswith("connection check failed: bad config:") and "subdomain or api_url" in line


# -- --about -----------------------------------------------------------------------------------

def test_about_marks_what_is_required_and_shows_plain_defaults() -> None:
    md = subprocess.run([CLI, "--about", "--format=markdown"], capture_output=True, text=True,
                        check=True).stdout
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in md.splitlines()
            if line.startswith("| ")}
    for name in ("subdomain", "api_url"):
        assert rows[name][1] == "yes: subdomain or api_url"
    for name in ("email", "api_key", "access_token"):
        assert rows[name][1] == "yes: email + api_key, or access_token"
    assert rows["load_method"][2] == "append-only"
    assert rows["progress_interval"][2] == "10"
    assert "TargetLoadMethods" not in md
    about = json.loads(subprocess.run([CLI, "--about", "--format=json"], capture_output=True,
                                      text=True, check=True).stdout)
    assert about["settings"]["properties"]["load_method"]["default"] == "append-only"
    assert about["settings"]["properties"]["api_key"]["x-required"].startswith("yes")
    assert "Required: subdomain or api_url" in about["description"]
    text = subprocess.run([CLI, "--about"], capture_output=True, text=True, check=True).stdout
    assert "Required: subdomain or api_url" in text and "TargetLoadMethods" not in text


# -- progress ----------------------------------------------------------------------------------

_PROGRESS = re.compile(
    r"Progress: (\d+) delivered, (\d+) failed; ([\d.]+) req/s \(allowed ([\d.]+)/s = (\d+) per "
    r"([\d.]+)s\); (\d+) x 429; waiting: (-?\d+) queued, (-?\d+) in flight; (\d+) records read")


def test_progress_lines_on_a_paced_run(fake_gorgias, tmp_path: Path) -> None:
    fake_gorgias.configure(latency_ms=(20, 20))
    tags = [{"name": f"t{i}"} for i in range(24)]
    cfg = config(fake_gorgias.base_url, {"tags": {"endpoint": "create_tag"}},
                 progress_interval=0.5, rate_limit=10, rate_limit_window=1, max_concurrency=2)
    res = run_target(cfg, [schema("tags", {"name": {"type": "string"}}),
                           *[record("tags", t) for t in tags]], tmp_path)
    assert res.returncode == 0, res.stderr
    found = [m.groups() for m in _PROGRESS.finditer(res.stderr)]
    assert len(found) >= 2, res.stderr[-2000:]
    delivered = [int(g[0]) for g in found]
    assert delivered == sorted(delivered) and 0 < delivered[-1] <= 24
    for g in found:
        assert float(g[3]) == pytest.approx(9.0, abs=1.1)  # 10 per 1 s, one slot kept free
        assert (int(g[4]), float(g[5])) in ((10, 1.0), (9, 1.0))
        assert int(g[7]) >= 0 and 0 <= int(g[8]) <= 2
    # After the first interval (the bucket's burst), never faster than the bucket allows.
    assert all(float(g[2]) <= 12.0 for g in found[1:]), found
    assert "24 delivered, 0 failed" in res.stderr
    assert len(fake_gorgias.store["tags"]) == 24


def test_progress_off_with_zero(fake_gorgias, tmp_path: Path) -> None:
    cfg = config(fake_gorgias.base_url, {"tags": {"endpoint": "create_tag"}}, progress_interval=0)
    res = run_target(cfg, [schema("tags", {"name": {"type": "string"}}),
                           record("tags", {"name": "a"})], tmp_path)
    assert res.returncode == 0 and "Progress:" not in res.stderr
    bad = run_target({**cfg, "progress_interval": -1}, [], tmp_path)
    assert bad.returncode == 1 and "progress_interval" in bad.stderr


def test_progress_line_counts_unit() -> None:
    from target_gorgias.progress import Waiting

    waiting = Waiting()
    waiting.add(3)
    seen: list[tuple[int, int]] = []
    send = waiting.track(lambda call: seen.append((waiting.queued, waiting.in_flight)))  # type: ignore[arg-type,func-returns-value]
    send(None)  # type: ignore[arg-type]
    assert seen == [(2, 1)] and (waiting.queued, waiting.in_flight) == (2, 0)


# -- 409 names the fix ---------------------------------------------------------------------------

def test_conflict_on_create_names_the_fix(fake_gorgias, tmp_path: Path) -> None:
    cfg = config(fake_gorgias.base_url, {"customers": {"endpoint": "create_customer"}})
    msgs = [schema("customers", {"email": {"type": "string"}}),
            record("customers", {"email": "ada@example.com"})]
    assert run_target(cfg, msgs, tmp_path).returncode == 0
    again = run_target(cfg, msgs, tmp_path)
    assert again.returncode == 1
    last = again.stderr.strip().splitlines()[-1]
    assert "HTTP 409" in last and '"mode": "upsert"' in last and '"match_on"' in last, last
    assert "lookup_before_create" in last
    fixed = run_target(config(fake_gorgias.base_url, {"customers": {
        "endpoint": "create_customer", "mode": "upsert", "match_on": "email"}}), msgs, tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert len(fake_gorgias.store["customers"]) == 1


def test_hub_definition_lists_every_setting() -> None:
    hub = yaml.safe_load(HUB_FILE.read_text())
    assert hub["name"] == "target-gorgias" and hub["namespace"] == "target_gorgias"
    assert hub["executable"] == "target-gorgias" and hub["pip_url"]
    assert "structured-logging" in hub["capabilities"]
    props = TargetGorgias._get_about_info().settings["properties"]
    listed = {s["name"]: s for s in hub["settings"]}
    assert set(props) <= set(listed), sorted(set(props) - set(listed))
    for name, setting in listed.items():
        assert setting.get("kind") and setting.get("label") and setting.get("description"), name
    assert {n for n, s in listed.items() if s.get("sensitive")} == {"api_key", "access_token"}


# -- Meltano: a project from `meltano init`, the loader added from the Hub-style file --------------

def _stream_maps_example() -> dict[str, Any]:
    """The YAML block of the README's "Stream maps in YAML" section, parsed."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Stream maps in YAML", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)


@pytest.fixture(scope="module")
def hub_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, FakeGorgias]]:
    """``meltano init``; add tap-jsonl and target-gorgias with ``--from-ref``; install once."""
    from tests.test_meltano import MELTANO, meltano, out

    if not MELTANO or not os.access(MELTANO, os.X_OK):
        pytest.fail("meltano not found: .ci/run installs it and exports MELTANO_BIN", pytrace=False)
    base = tmp_path_factory.mktemp("hub")
    with FakeGorgias(port=0, rate_limit=0) as srv:
        init = meltano(base, srv, "init", "proj", "--no-usage-stats")
        assert init.returncode == 0, out(init)[-3000:]
        proj = base / "proj"
        # The Hub file as published, with pip_url pointing at this checkout.
        ref = base / "target-gorgias.yml"
        ref.write_text(HUB_FILE.read_text().replace("\npip_url: target-gorgias\n",
                                                    f'\npip_url: -e "{ROOT}"\n'))
        assert f'-e "{ROOT}"' in ref.read_text()
        # tap-jsonl exactly as the bundled meltano.yml defines it.
        bundled = yaml.safe_load((ROOT / "meltano.yml").read_text())
        tap = next(p for p in bundled["plugins"]["extractors"] if p["name"] == "tap-jsonl")
        (base / "tap-jsonl.yml").write_text(yaml.safe_dump(
            {k: v for k, v in tap.items() if k != "config"}))
        for kind, name, path in (("loader", "target-gorgias", ref),
                                 ("extractor", "tap-jsonl", base / "tap-jsonl.yml")):
            added = meltano(proj, srv, "add", "--plugin-type", kind, name, "--from-ref", str(path))
            assert added.returncode == 0, out(added)[-3000:]
        project = yaml.safe_load((proj / "meltano.yml").read_text())
        plugins = project["plugins"]
        loader = plugins["loaders"][0]
        assert loader["name"] == "target-gorgias" and loader["commands"]["check"]
        assert {s["name"] for s in loader["settings"]} >= {"api_key", "progress_interval"}
        shutil.copytree(ROOT / "examples" / "data", proj / "data")
        plugins["extractors"][0]["config"] = {**tap["config"],
                                              "path": "${MELTANO_PROJECT_ROOT}/data/*.jsonl"}
        loader["config"] = {"email": "agent@example.com", **_stream_maps_example()}
        (proj / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
        yield proj, srv


def test_meltano_run_from_hub_definition(hub_project: tuple[Path, FakeGorgias]) -> None:
    from tests.test_meltano import meltano, out, read_jsonl

    proj, srv = hub_project
    srv.reset()
    proc = meltano(proj, srv, "run", "tap-jsonl", "target-gorgias",
                   env={"TARGET_GORGIAS_API_KEY": API_KEY})
    assert proc.returncode == 0, out(proc)[-3000:]
    # The YAML stream maps: `__else__: __NULL__` dropped the tickets stream, `updated_at:
    # __NULL__` dropped a column; every customer arrived, field for field.
    assert {r["path"] for r in srv.requests if r["method"] != "GET"} == {"/api/customers"}
    held = {c["email"]: c for c in srv.store["customers"].values()}
    rows = read_jsonl(ROOT / "examples" / "data" / "customers.jsonl")
    assert sorted(held) == sorted(r["email"] for r in rows)
    for row in rows:
        assert {k: held[row["email"]].get(k) for k in row if k != "updated_at"} == {
            k: v for k, v in row.items() if k != "updated_at"}
    assert not srv.store["tickets"]
    assert all("updated_at" not in (r["body"] or {}) for r in srv.requests)


def test_meltano_invoke_check_command(hub_project: tuple[Path, FakeGorgias]) -> None:
    from tests.test_meltano import meltano, out

    proj, srv = hub_project
    srv.reset()
    good = meltano(proj, srv, "invoke", "target-gorgias:check",
                   env={"TARGET_GORGIAS_API_KEY": API_KEY})
    assert good.returncode == 0, out(good)[-3000:]
    assert "connection check passed: GET " in good.stdout, out(good)[-3000:]
    assert [(r["method"], r["path"]) for r in srv.requests] == [("GET", "/api/account")]
    bad = meltano(proj, srv, "invoke", "target-gorgias:check",
                  env={"TARGET_GORGIAS_API_KEY": "wrong-key"})
    assert bad.returncode == 1, out(bad)[-3000:]
    assert "connection check failed" in bad.stdout and "HTTP 401" in bad.stdout
    assert "wrong-key" not in out(bad)


def test_stream_maps_null_drops_a_stream_without_a_streams_entry(fake_gorgias, tmp_path: Path
                                                                 ) -> None:
    """``__else__: __NULL__`` (the YAML-safe spelling) drops a stream; its records hold no
    state back and need no ``streams`` entry."""
    cfg = config(fake_gorgias.base_url, {"tags": {"endpoint": "create_tag"}},
                 stream_maps={"tags": {"note": "__NULL__"}, "__else__": "__NULL__"})
    res = run_target(cfg, [schema("tags", {"name": {"type": "string"}, "note": {"type": "string"}}),
                           schema("other", {"x": {"type": "integer"}}),
                           record("tags", {"name": "vip", "note": "dropped column"}),
                           record("other", {"x": 1}),
                           {"type": "STATE", "value": {"done": 2}}], tmp_path)
    assert res.returncode == 0, res.stderr
    assert [(r["method"], r["path"], r["body"]) for r in fake_gorgias.requests] == [
        ("POST", "/api/tags", {"name": "vip"})]
    assert res.states[-1] == {"done": 2}


# -- the demo's port ----------------------------------------------------------------------------

def test_demo_says_clearly_that_its_port_is_taken() -> None:
    import os
    import socket
    import time

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        started = time.monotonic()
        proc = subprocess.run(["bash", str(ROOT / "examples" / "demo.sh")], capture_output=True,
                              text=True, timeout=120, check=False,
                              env={**os.environ, "PORT": str(port)})
    assert proc.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken by another program" in proc.stderr, proc.stderr
    assert time.monotonic() - started < 8  # no 10 s wait, no answer from the other program


def test_demo_picks_a_free_port_when_8080_is_taken() -> None:
    import os
    import socket

    env = {k: v for k, v in os.environ.items() if k != "PORT"}
    with socket.socket() as held:
        try:
            held.bind(("127.0.0.1", 8080))
            held.listen()
        except OSError:
            pass  # another program holds 8080 already: the same situation
        proc = subprocess.run(["bash", str(ROOT / "examples" / "demo.sh")], capture_output=True,
                              text=True, timeout=300, check=False, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "port 8080 is taken by another program: the fake Gorgias uses a free port" in proc.stdout
    loading = next(line for line in proc.stdout.splitlines() if "loading examples" in line)
    assert "127.0.0.1:8080" not in loading
    assert "ada@example.com" in proc.stdout


# -- the package -----------------------------------------------------------------------------------

def test_wheel_and_sdist_install_and_run(fake_gorgias, tmp_path: Path) -> None:
    """``python -m build`` -> ``twine check`` -> the wheel in a fresh venv runs the demo input.

    The fake Gorgias runs in this (the development) process, so the test holds even if the
    fake server leaves the package one day.
    """
    import sys

    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
                           capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    assert "deprecated" not in (built.stdout + built.stderr).lower()
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    twine = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels),
                            *map(str, sdists)], capture_output=True, text=True, timeout=120,
                           check=False)
    assert twine.returncode == 0 and twine.stdout.count("PASSED") == 2, twine.stdout + twine.stderr

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                          str(wheels[0])], capture_output=True, text=True, timeout=600,
                         check=False)
    assert pip.returncode == 0, pip.stderr[-3000:]
    cli = venv / "bin" / "target-gorgias"
    version = subprocess.run([str(cli), "--version"], capture_output=True, text=True,
                             timeout=60, check=False)
    assert version.returncode == 0 and "target-gorgias v0.1.0" in version.stdout
    cfg = json.loads((ROOT / "examples" / "demo-config.json").read_text())
    cfg["api_url"] = fake_gorgias.base_url
    (tmp_path / "demo.json").write_text(json.dumps(cfg))
    with (ROOT / "examples" / "demo.singer").open() as src:
        run = subprocess.run([str(cli), "--config", str(tmp_path / "demo.json")], stdin=src,
                             capture_output=True, text=True, timeout=120, check=False,
                             cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    emails = sorted(c["email"] for c in fake_gorgias.store["customers"].values())
    assert emails == ["ada@example.com", "alan@example.com", "grace@example.com"]
    assert '"replication_key_value":"shipping-label"' in run.stdout
    # The installed package is the wheel, not this checkout.
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import target_gorgias; print(target_gorgias.__file__)"],
                           capture_output=True, text=True, timeout=60, check=True,
                           cwd=tmp_path).stdout
    assert str(venv) in where and str(ROOT) not in where
