"""Guarantees under hostile config, secrets, signals and input (issue 11 §3-§6).

Every class has an end-to-end run of the real CLI against the fake Gorgias server; a few
small parts (batch sizing, secret forms) also have unit tests.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest

from target_gorgias.errors import RecordError
from target_gorgias.redact import SecretFilter, config_secrets
from target_gorgias.request_builder import RequestBuilder, to_json
from target_gorgias.settings import load_settings
from target_gorgias.sync import matches
from tests.support import CLI, EMAIL, config, record, run_target, schema, start_target, state

SECRET = "sk-GUARD-4c1d8e2f9a"
TOKEN = "oauth-GUARD-6b0a3f7e21"


def _forms(secret: str, email: str | None = EMAIL) -> list[str]:
    """What must never be printed: the secret, and base64 of email:secret (Basic)."""
    out = [secret.strip()]
    if email:
        for s in {secret, secret.strip()}:
            out.append(base64.b64encode(f"{email}:{s}".encode()).decode())
    return out


def _start(cfg: dict, lines: list, tmp_path: Path) -> subprocess.Popen:
    """Start the CLI in the background on ``lines`` (stdin is a file: the input ends)."""
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(json.dumps(cfg))
    return start_target(cfg_path, lines)


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


# -- signals ----------------------------------------------------------------------------


def _hang_on_tags(fake_gorgias, tmp_path) -> subprocess.Popen:
    """A run whose first record (a customer) is delivered and whose second (a tag) hangs
    60 s: the fake applies the write, then holds the answer."""
    fake_gorgias.add_fault(path="/api/tags", delay_ms=60_000)
    cfg = config(fake_gorgias.base_url, {"customers": {"endpoint": "create_customer"},
                                         "tags": {"endpoint": "create_tag"}},
                 timeout=120, on_error="continue", dead_letter_path=str(tmp_path / "dead.jsonl"))
    msgs = [schema("customers", {"email": {"type": "string"}}),
            record("customers", {"email": "a@example.com"}), state({"n": 1}),
            schema("tags", {"name": {"type": "string"}}),
            record("tags", {"name": "hangs"}), state({"n": 2})]
    proc = _start(cfg, msgs, tmp_path)
    _wait_for(lambda: any(r["path"] == "/api/tags" for r in fake_gorgias.requests))
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_the_run_within_seconds_while_a_call_hangs(fake_gorgias, tmp_path, sig):
    proc = _hang_on_tags(fake_gorgias, tmp_path)
    proc.send_signal(sig)
    started = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 6, "did not stop within a few seconds"
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    assert f"stopped by {signal.Signals(sig).name}: 1 request(s) still in flight" in err
    # The hung call is uncertain: not counted, not dead-lettered, no state past it.
    assert [json.loads(x) for x in out.splitlines() if x.strip()] == [{"n": 1}]
    assert "Summary: 1 delivered, 0 failed" in err
    assert not (tmp_path / "dead.jsonl").exists()


def test_second_signal_exits_at_once_with_the_delivered_state(fake_gorgias, tmp_path):
    proc = _hang_on_tags(fake_gorgias, tmp_path)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # the first signal is giving the hung call its few seconds
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 1.5, "the second signal did not exit at once"
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert "again: exiting now" in err
    assert [json.loads(x) for x in out.splitlines() if x.strip()] == [{"n": 1}]


# -- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 201])
@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_an_answer_echoing_the_credentials_leaks_nowhere(fake_gorgias, tmp_path, status, auth):
    """The fake echoes the Authorization header and the decoded key; the key in the config
    has whitespace around it (trimmed at start-up)."""
    fake_gorgias.api_key, fake_gorgias.access_token = SECRET, TOKEN
    creds = ({"email": EMAIL, "api_key": f"  {SECRET}\n"} if auth == "basic"
             else {"access_token": f" {TOKEN} "})
    dead = tmp_path / "dead.jsonl"
    cfg = {"api_url": fake_gorgias.base_url, **creds, "emit_responses": True,
           "response_include_request": True, "on_error": "continue",
           "dead_letter_path": str(dead), "streams": {"s": {"endpoint": "create_tag"}}}
    fake_gorgias.add_fault(echo_credentials=status)
    res = run_target(cfg, [schema("s", {"name": {}}), record("s", {"name": "echo"}),
                           record("s", {"name": "fine"})], tmp_path,
                     env={"TARGET_GORGIAS_LOGLEVEL": "DEBUG"})
    assert res.returncode == 0, res.stderr
    secret = SECRET if auth == "basic" else TOKEN
    echoed = fake_gorgias.requests[0]
    assert echoed["status"] == status
    text = res.stdout + res.stderr + (dead.read_text() if dead.exists() else "")
    for form in _forms(secret, EMAIL if auth == "basic" else None):
        assert form not in text, f"{form!r} leaked"
    assert "<redacted>" in res.stdout  # the echo did reach the response record, redacted
    if status == 400:
        assert "<redacted>" in dead.read_text()
    key = "api_key" if auth == "basic" else "access_token"
    assert f"{key}: leading/trailing whitespace was trimmed" in res.stderr
    # The trimmed credential works: the record not answered by the echo was created.
    assert len(fake_gorgias.store["tags"]) == 1
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("value", [987654321012, {"key": SECRET}, [SECRET], "   "])
@pytest.mark.parametrize("key", ["api_key", "access_token"])
def test_a_secret_of_the_wrong_type_is_refused_without_showing_it(fake_gorgias, tmp_path,
                                                                   key, value):
    cfg = config(fake_gorgias.base_url, {"s": {"endpoint": "create_tag"}})
    del cfg["api_key"]
    cfg[key] = value
    res = run_target(cfg, [schema("s", {"name": {}}), record("s", {"name": "x"})], tmp_path)
    assert res.returncode == 1
    assert f"{key}: " in res.stderr
    for form in (SECRET, "987654321012"):
        assert form not in res.stderr + res.stdout
    assert "Traceback" not in res.stderr
    assert fake_gorgias.requests == []


def test_secret_forms_cover_raw_trimmed_json_and_basic():
    forms = config_secrets({"email": EMAIL, "api_key": ' k"ey-1234 '})
    flt = SecretFilter(forms)
    for text in ('k"ey-1234', json.dumps('k"ey-1234'),
                 base64.b64encode(f'{EMAIL}:k"ey-1234'.encode()).decode(),
                 base64.urlsafe_b64encode(f'{EMAIL}: k"ey-1234 '.encode()).decode()):
        out = flt.redact(f"before {text} after")
        assert "ey-1234" not in out and text not in out and "<redacted>" in out, out


# -- config mistakes --------------------------------------------------------------------


def _refused(res, fake_gorgias, expected: str) -> None:
    assert res.returncode == 1, res.stderr
    assert expected in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert fake_gorgias.requests == []  # nothing was sent


def test_a_typo_of_dry_run_never_writes(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"s": {"endpoint": "create_tag"}}, dryrun=True)
    res = run_target(cfg, [schema("s", {"name": {}}), record("s", {"name": "x"})], tmp_path)
    _refused(res, fake_gorgias, "dryrun: unknown setting (did you mean 'dry_run'")
    assert fake_gorgias.store["tags"] == {}


def test_sdk_and_meltano_keys_are_not_errors(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"s": {"endpoint": "create_tag"}},
                 load_method="append-only", add_record_metadata=False, batch_size_rows=100,
                 validate_records=True, flattening_enabled=False, flattening_max_depth=1,
                 stream_maps={}, stream_map_config={}, faker_config={}, hard_delete=False,
                 default_target_schema="public")
    res = run_target(cfg, [schema("s", {"name": {}}), record("s", {"name": "x"})], tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(fake_gorgias.store["tags"]) == 1


def test_unknown_template_suggests_the_closest(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"s": {"endpoint": "create_tickt"}})
    res = run_target(cfg, [], tmp_path)
    _refused(res, fake_gorgias, "streams.s.endpoint: unknown template 'create_tickt' "
                                "(did you mean 'create_ticket'")


@pytest.mark.parametrize(("extra", "expected"), [
    ({"dead_letter_path": "{tmp}"}, "dead_letter_path: '{tmp}' is a directory"),
    ({"dead_letter_path": "{tmp}/file.txt/dead.jsonl"}, "is not a directory"),
    ({"ca_bundle": "{tmp}/missing.pem"}, "ca_bundle: '{tmp}/missing.pem' is not a readable file"),
    ({"ca_bundle": "{tmp}"}, "ca_bundle: '{tmp}' is not a readable file"),
    ({"request_headers": {"X-Note": "caf\u00e9 \u2713"}},
     "request_headers: header 'X-Note' has a value that cannot be sent"),
    ({"request_headers": {"X-Note": "a\u0001b"}},
     "request_headers: header 'X-Note' has a control character"),
    ({"load_method": "overwrite"}, "load_method: 'overwrite' has no meaning for Gorgias"),
])
def test_bad_paths_headers_and_load_method_fail_at_start_up(fake_gorgias, tmp_path, extra,
                                                             expected):
    (tmp_path / "file.txt").write_text("x")
    extra = {k: (v.replace("{tmp}", str(tmp_path)) if isinstance(v, str) else v)
             for k, v in extra.items()}
    cfg = config(fake_gorgias.base_url, {"s": {"endpoint": "create_tag"}}, **extra)
    res = run_target(cfg, [schema("s", {"name": {}}), record("s", {"name": "x"})], tmp_path)
    _refused(res, fake_gorgias, expected.replace("{tmp}", str(tmp_path)))


def test_dead_letter_file_in_a_new_folder_is_fine(fake_gorgias, tmp_path):
    dead = tmp_path / "new" / "deeper" / "dead.jsonl"
    cfg = config(fake_gorgias.base_url, {"s": {"endpoint": "create_tag"}},
                 dead_letter_path=str(dead), on_error="continue")
    fake_gorgias.add_fault(status=400)
    res = run_target(cfg, [schema("s", {"name": {}}), record("s", {"name": "x"})], tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(dead.read_text())["status"] == 400


@pytest.mark.parametrize(("content", "expected"), [
    (None, "was not found"),
    ("{not json", "is not valid JSON (Expecting property name enclosed in double quotes at "
                  "line 1, column 2)"),
    ('{"timeout": NaN}', "is not valid JSON (NaN is not valid JSON)"),
    ('{"timeout": -Infinity}', "is not valid JSON (-Infinity is not valid JSON)"),
    ('["a list"]', "holds a JSON list, not an object of settings"),
])
def test_bad_config_file_is_one_line_naming_it(tmp_path, content, expected):
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    proc = subprocess.run([CLI, "--config", str(path)], input="", capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert f"Config file '{path}' {expected}" in lines[0]


# -- bodies and input lines ---------------------------------------------------------------


def test_batched_bodies_with_wrap_key_stay_under_max_body_bytes(fake_gorgias, tmp_path):
    """Create 12 tags, then bulk-delete them with ``{"ids": [...]}`` under a 20-byte cap:
    every body sent, brackets and wrap key included, is at most 20 bytes."""
    tags = [record("tags", {"name": f"t{i}"}) for i in range(12)]
    res = run_target(config(fake_gorgias.base_url, {"tags": {"endpoint": "create_tag"}}),
                     [schema("tags", {"name": {}}), *tags], tmp_path)
    assert res.returncode == 0, res.stderr
    ids = sorted(fake_gorgias.store["tags"])
    cfg = config(fake_gorgias.base_url, {"gone": {"endpoint": "delete_tags"}},
                 max_body_bytes=20)
    res = run_target(cfg, [schema("gone", {"id": {"type": "integer"}}),
                           *[record("gone", {"id": i}) for i in ids]], tmp_path)
    assert res.returncode == 0, res.stderr
    deletes = [r for r in fake_gorgias.requests if r["method"] == "DELETE"]
    assert all(r["body_bytes"] <= 20 for r in deletes), [r["raw_body"] for r in deletes]
    assert sorted(i for r in deletes for i in r["body"]["ids"]) == ids
    assert max(len(r["body"]["ids"]) for r in deletes) > 1  # still batched
    assert fake_gorgias.store["tags"] == {}


def _builder(batch: dict, max_body_bytes: int) -> RequestBuilder:
    settings = load_settings({"api_url": "http://127.0.0.1:1", "email": EMAIL, "api_key": "k",
                              "streams": {"s": {"method": "POST", "path": "/api/x",
                                                "batch": {"enabled": True, **batch}}}})
    return RequestBuilder("s", settings.streams["s"], [], max_body_bytes)


def test_batch_sizing_counts_a_long_wrap_key_exactly():
    wrap = "w" * 100
    b = _builder({"wrap_key": wrap, "size": 1000}, 300)
    units = [b.unit({"v": "x" * 10}, i, i + 1) for i in range(40)]
    calls = list(b.calls(units))
    assert all(len(c.body or b"") <= 300 for c in calls)
    assert sum(len(c.units) for c in calls) == 40
    # The last byte counts: a batch is exactly full, never one byte over.
    assert max(len(c.body or b"") for c in calls) > 300 - len(units[0].body or b"") - 1
    with pytest.raises(RecordError, match=r"JSON body is 3\d\d bytes, over max_body_bytes"):
        b.unit({"v": "x" * 190}, 0, 1)  # fits alone, not with the wrap key around it


def test_decimals_reach_gorgias_and_the_response_record_exactly(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"c": {"endpoint": "create_customer"}},
                 emit_responses=True, response_include_request=True)
    line = ('{"type": "RECORD", "stream": "c", "record": {"email": "d@example.com", '
            '"meta": {"ltv": 12345678901234567.25, "rate": 0.1000}}}')
    res = run_target(cfg, [schema("c", {"email": {}, "meta": {}}), line], tmp_path)
    assert res.returncode == 0, res.stderr
    (raw,) = [r["raw_body"] for r in fake_gorgias.requests if r["method"] == "POST"]
    assert '"ltv":12345678901234567.25' in raw and '"rate":0.1000' in raw
    response = next(ln for ln in res.stdout.splitlines() if '"RECORD"' in ln)
    assert '"ltv":12345678901234567.25' in response
    assert json.loads(response, parse_float=Decimal)["record"]["request"]["body"]["meta"][
        "ltv"] == Decimal("12345678901234567.25")
    assert to_json(Decimal("12345678901234567.25")) == "12345678901234567.25"


def test_sync_modes_compare_exact_decimals_with_gorgias_numbers():
    """An update body keeps its Decimals; 0.1000 sent equals 0.1 stored (no needless PUT)."""
    assert matches({"rate": Decimal("0.1000"), "n": 5}, {"rate": 0.1, "n": 5.0})
    assert not matches({"rate": Decimal("0.2")}, {"rate": 0.1})
    assert not matches({"flag": True}, {"flag": 1})


@pytest.mark.parametrize(("line", "expected"), [
    ({"stream": "s", "record": {"name": "x"}}, "input line 3 (stream 's'): the Singer message "
                                               "has no 'type' key"),
    ({"type": "RECORD", "record": {"name": "x"}}, "input line 3: the RECORD message has no "
                                                  "'stream' key"),
    ({"type": "RECORD", "stream": "s"}, "input line 3 (stream 's'): the RECORD message has no "
                                        "'record' key"),
    ({"type": "SCHEMA", "stream": "t"}, "input line 3 (stream 't'): the SCHEMA message has no "
                                        "'schema' key"),
    ({"type": "STATE"}, "input line 3: the STATE message has no 'value' key"),
])
def test_a_singer_line_missing_a_key_names_line_and_key(fake_gorgias, tmp_path, line, expected):
    cfg = config(fake_gorgias.base_url, {"s": {"endpoint": "create_tag"}})
    res = run_target(cfg, [schema("s", {"name": {}}), record("s", {"name": "ok"}), line,
                           record("s", {"name": "never"})], tmp_path)
    assert res.returncode == 1
    assert expected in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert "never" not in {t["name"] for t in fake_gorgias.store["tags"].values()}
