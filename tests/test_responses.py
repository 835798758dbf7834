"""The response stream: Gorgias' answers as a Singer stream, and chaining stages."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest

from target_gorgias.responses import RESPONSE_SCHEMA
from tests.support import API_KEY, CLI, config, record, run_target, schema, state

ROOT = Path(__file__).resolve().parent.parent
CHAINING = ROOT / "examples" / "chaining"
SIGNUP_PROPS = {"signup_id": {"type": "integer"}, "email": {"type": "string"},
                "name": {"type": "string"}}


def signups(*emails: str) -> list[dict]:
    return [schema("signups", SIGNUP_PROPS, ["signup_id"]),
            *[record("signups", {"signup_id": 100 + i, "email": e, "name": f"N{i}"})
              for i, e in enumerate(emails, 1)],
            state({"bookmarks": {"signups": len(emails)}})]


def responses_config(srv, **extra):
    return config(srv.base_url, {"signups": {"endpoint": "create_customer",
                                             "exclude_attributes": ["signup_id"]}},
                  emit_responses=True, **extra)


def test_full_singer_stream_one_record_per_call(fake_gorgias, tmp_path):
    res = run_target(responses_config(fake_gorgias), signups("a@x.io", "b@x.io"), tmp_path)
    assert res.returncode == 0, res.stderr
    msgs = res.stdout_lines
    assert msgs[0]["type"] == "SCHEMA" and msgs[0]["stream"] == "gorgias_responses"
    assert msgs[0]["key_properties"] == ["request_id"]
    jsonschema.Draft202012Validator.check_schema(msgs[0]["schema"])
    assert msgs[-1] == {"type": "STATE", "value": {"bookmarks": {"signups": 2}}}
    recs = res.responses
    assert len(recs) == 2
    validator = jsonschema.Draft202012Validator(RESPONSE_SCHEMA)
    for rec in recs:
        validator.validate(rec)
        assert rec["ok"] is True and rec["status_code"] == 201
        assert rec["endpoint"] == "create_customer" and rec["method"] == "POST"
        assert rec["url"] == fake_gorgias.base_url + "/api/customers"
        assert rec["resource_id"] == rec["response"]["id"]
        assert rec["record_count"] == 1 and rec["attempts"] == 1 and rec["dry_run"] is False
        assert rec["sent_at"].endswith("+00:00") and rec["duration_ms"] >= 0
        assert "request" not in rec
    by_key = {r["source_keys"][0]["signup_id"]: r for r in recs}
    stored = fake_gorgias.store["customers"]
    assert stored[by_key[101]["resource_id"]]["email"] == "a@x.io"
    assert stored[by_key[102]["resource_id"]]["email"] == "b@x.io"
    assert len({r["request_id"] for r in recs}) == 2


def test_stdout_is_only_bare_state_when_off(fake_gorgias, tmp_path):
    cfg = responses_config(fake_gorgias)
    cfg["emit_responses"] = False
    res = run_target(cfg, signups("a@x.io"), tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout_lines == [{"bookmarks": {"signups": 1}}]


def test_failed_calls_appear_with_error_under_continue(fake_gorgias, tmp_path):
    # No head lookups: the second create must reach Gorgias and be refused (409).
    cfg = responses_config(fake_gorgias, on_error="continue", response_stream="results",
                           response_include_request=True, lookup_before_create=False)
    res = run_target(cfg, signups("dup@x.io", "dup@x.io"), tmp_path)
    assert res.returncode == 0, res.stderr
    recs = sorted(res.responses, key=lambda r: r["ok"])
    assert [r["ok"] for r in recs] == [False, True]
    bad = recs[0]
    assert bad["status_code"] == 409 and bad["resource_id"] is None
    assert bad["error"] == {"msg": "The resource already exists.", "data": None}
    assert bad["request"]["body"] == {"email": "dup@x.io", "name": bad["request"]["body"]["name"],
                                      "channels": [{"type": "email", "address": "dup@x.io",
                                                    "preferred": True}]}
    assert all(m["stream"] == "results" for m in res.stdout_lines if m["type"] != "STATE")
    assert API_KEY not in res.stdout


def test_batched_call_gives_one_record_with_its_count(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"tags": {"endpoint": "create_tag"}},
                 emit_responses=True)
    run_target(cfg, [schema("tags", {"name": {"type": "string"}}),
                     *[record("tags", {"name": f"t{i}"}) for i in range(3)]], tmp_path)
    ids = sorted(fake_gorgias.store["tags"])
    cfg = config(fake_gorgias.base_url, {"gone": {"endpoint": "delete_tags"}},
                 emit_responses=True)
    res = run_target(cfg, [schema("gone", {"id": {"type": "integer"}}, ["id"]),
                           *[record("gone", {"id": i}) for i in ids]], tmp_path)
    assert res.returncode == 0, res.stderr
    (rec,) = res.responses
    assert rec["record_count"] == 3 and rec["status_code"] == 204 and rec["response"] is None
    assert rec["source_keys"] == [{"id": i} for i in ids]


def test_dry_run_records_show_the_request(fake_gorgias, tmp_path):
    res = run_target(responses_config(fake_gorgias, dry_run=True), signups("a@x.io"), tmp_path)
    assert res.returncode == 0, res.stderr
    (rec,) = res.responses
    assert rec["dry_run"] is True and rec["status_code"] is None
    assert rec["request"] == {"method": "POST", "url": fake_gorgias.base_url + "/api/customers",
                              "body": {"email": "a@x.io", "name": "N1", "channels": [
                                  {"type": "email", "address": "a@x.io", "preferred": True}]}}
    assert fake_gorgias.requests == []
    assert not [m for m in res.stdout_lines if m["type"] == "STATE"]


def _stage_config(path: Path, base_url: str, tmp_path: Path) -> Path:
    out = tmp_path / path.name
    out.write_text(path.read_text().replace("http://127.0.0.1:8080", base_url))
    return out


def test_chaining_two_stages(fake_gorgias, tmp_path):
    """Stage 1 creates customers; stage 2 maps its responses to welcome tickets."""
    stage1 = _stage_config(CHAINING / "stage1-create-customers.json", fake_gorgias.base_url,
                           tmp_path)
    stage2 = _stage_config(CHAINING / "stage2-welcome-tickets.json", fake_gorgias.base_url,
                           tmp_path)
    with (CHAINING / "signups.singer").open() as src:
        first = subprocess.Popen([CLI, "--config", str(stage1)], stdin=src,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        second = subprocess.run([CLI, "--config", str(stage2)], stdin=first.stdout,
                                capture_output=True, text=True, timeout=120, check=False)
        first.wait(timeout=60)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    store = fake_gorgias.store
    customers = {c["email"]: c["id"] for c in store["customers"].values()}
    assert set(customers) == {"marie@example.com", "rosalind@example.com"}
    tickets = {t["external_id"]: t for t in store["tickets"].values()}
    assert set(tickets) == {"welcome-101", "welcome-102"}
    assert tickets["welcome-101"]["customer"] == {"id": customers["marie@example.com"]}
    assert {m["body_text"] for m in store["messages"].values()} == {
        "Welcome aboard, Marie Curie!", "Welcome aboard, Rosalind Franklin!"}
    # Stage 2 says message_intent "send": Gorgias delivers each welcome e-mail.
    assert sorted(m["to"][0]["address"] for m in fake_gorgias.outbox) == [
        "marie@example.com", "rosalind@example.com"]
    out = [json.loads(line) for line in second.stdout.splitlines()]
    assert [m["type"] for m in out] == ["SCHEMA", "RECORD", "RECORD", "STATE"]
    assert out[-1]["value"] == {"bookmarks": {"signups": {"replication_key_value": 102}}}


def test_pipe_into_target_jsonl(fake_gorgias, tmp_path):
    """``tap | target-gorgias | target-jsonl``: target-jsonl lives in its own venv."""
    jsonl = os.environ.get("TARGET_JSONL_BIN")
    if not jsonl:
        pytest.fail("TARGET_JSONL_BIN is not set: .ci/run installs target-jsonl into .venv-jsonl")
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(responses_config(fake_gorgias)))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    jcfg = tmp_path / "jsonl.json"
    jcfg.write_text(json.dumps({"destination_path": str(out_dir), "do_timestamp_file": False}))
    feed = tmp_path / "in.singer"
    feed.write_text("".join(json.dumps(m) + "\n" for m in signups("p@x.io", "q@x.io")))
    with feed.open() as src:
        first = subprocess.Popen([CLI, "--config", str(cfg)], stdin=src, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL)
        second = subprocess.run([jsonl, "--config", str(jcfg)], stdin=first.stdout,
                                capture_output=True, text=True, timeout=120, check=False)
        first.wait(timeout=60)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    rows = [json.loads(x) for x in (out_dir / "gorgias_responses.jsonl").read_text().splitlines()]
    ids = {r["response"]["email"]: r["resource_id"] for r in rows}
    stored = {c["email"]: i for i, c in fake_gorgias.store["customers"].items()}
    assert ids == stored and len(ids) == 2
