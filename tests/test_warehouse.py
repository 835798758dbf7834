"""The response stream lands in a typed SQL loader: target-duckdb, from PyPI, in its own venv.

``TARGET_DUCKDB_BIN`` (set by .ci/run) is target-duckdb's console script; the table is read
back with the ``duckdb`` package of that same venv, so no column Gorgias answered is lost.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from target_gorgias.responses import RESPONSE_SCHEMA
from tests.support import config, record, run_target, schema

DUCKDB_BIN = os.environ.get("TARGET_DUCKDB_BIN", "")


def _untyped(props: dict[str, Any], where: str = "") -> list[str]:
    """Every property (nested too) that has no JSON Schema type."""
    bad = []
    for name, sub in props.items():
        if "type" not in sub:
            bad.append(where + name)
        bad += _untyped(sub.get("properties", {}), f"{where}{name}.")
        if isinstance(sub.get("items"), dict):
            bad += _untyped(sub["items"].get("properties", {}), f"{where}{name}[].")
    return bad


def test_every_response_property_is_typed() -> None:
    assert _untyped(RESPONSE_SCHEMA["properties"]) == []
    for name in ("response", "request"):
        assert "object" in RESPONSE_SCHEMA["properties"][name]["type"]


def _duckdb_python() -> str:
    if not DUCKDB_BIN or not os.access(DUCKDB_BIN, os.X_OK):
        pytest.fail(f"target-duckdb not found (TARGET_DUCKDB_BIN={DUCKDB_BIN!r}): .ci/run "
                    "installs it into .venv-duckdb and exports TARGET_DUCKDB_BIN", pytrace=False)
    return str(Path(DUCKDB_BIN).with_name("python"))


def test_response_stream_lands_in_target_duckdb(fake_gorgias, tmp_path: Path) -> None:
    py = _duckdb_python()
    rows = [{"email": "ada@example.com", "name": "Ada"},
            {"email": "grace@example.com", "name": "Grace"},
            {"email": "not-an-email", "name": "Bad"}]  # Gorgias answers 400: an error row
    cfg = config(fake_gorgias.base_url,
                 {"customers": {"endpoint": "create_customer"},
                  "gone": {"endpoint": "delete_tag"}},
                 emit_responses=True, on_error="continue", response_include_request=True)
    # One tag to delete: its answer is empty, so its row's response is null.
    made = requests.post(f"{fake_gorgias.base_url}/api/tags", json={"name": "old"},
                         auth=("agent@example.com", "fake-api-key"), timeout=10).json()
    msgs = [schema("customers", {"email": {"type": "string"}, "name": {"type": "string"}},
                   ["email"]),
            *[record("customers", r) for r in rows],
            schema("gone", {"id": {"type": "integer"}}, ["id"]),
            record("gone", {"id": made["id"]})]
    res = run_target(cfg, msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    sent = {r["request_id"]: r for r in res.responses}
    assert len(sent) == 4

    db = tmp_path / "warehouse.duckdb"
    (tmp_path / "duck.json").write_text(json.dumps({"path": str(db),
                                                    "default_target_schema": "gorgias"}))
    load = subprocess.run([DUCKDB_BIN, "--config", str(tmp_path / "duck.json")],
                          input=res.stdout, capture_output=True, text=True, timeout=120,
                          check=False)
    assert load.returncode == 0, load.stderr[-3000:]

    dump = subprocess.run([py, "-c", (
        "import duckdb, json, sys\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "cur = con.execute('SELECT * FROM gorgias.gorgias_responses')\n"
        "cols = [d[0] for d in cur.description]\n"
        "print(json.dumps([dict(zip(cols, map(str, r))) | {'__types': [str(t) for t in "
        "[d[1] for d in cur.description]]} for r in cur.fetchall()]))\n"), str(db)],
        capture_output=True, text=True, timeout=60, check=False)
    assert dump.returncode == 0, dump.stderr
    table = json.loads(dump.stdout)
    assert len(table) == 4, load.stderr[-2000:]
    # Every property of the response schema is a column, Gorgias' answer included.
    assert set(table[0]) - {"__types"} == set(RESPONSE_SCHEMA["properties"])
    for row in table:
        want = sent[row["request_id"]]
        for col in RESPONSE_SCHEMA["properties"]:
            if col in ("response", "error", "request", "source_keys"):
                loaded = None if row[col] == "None" else json.loads(row[col])
                assert loaded == want[col], (col, row[col], want[col])
            elif col not in ("sent_at",):
                assert row[col] == str(want[col]), (col, row[col], want[col])
    by_email = {sent[r["request_id"]]["source_keys"][0].get("email"): r for r in table
                if sent[r["request_id"]]["stream"] == "customers"}
    ada = json.loads(by_email["ada@example.com"]["response"])
    assert ada["email"] == "ada@example.com" and ada["id"] == int(
        by_email["ada@example.com"]["resource_id"])
    bad = json.loads(by_email["not-an-email"]["error"])
    assert by_email["not-an-email"]["status_code"] == "400" and bad["msg"]
