"""Delivery guarantees: pacing, retries, no duplicates, error policies, signals, resume."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest

from tests.support import config, record, run_target, schema, start_target, state

SOURCE = {"source": {"type": "email", "from": {"address": "ada@example.com"}}}
TICKET_PROPS = {"external_id": {"type": "string"}, "subject": {"type": "string"},
                "messages": {"type": "array"}}


def ticket(i: int) -> dict:
    return record("tickets", {"external_id": f"ext-{i}", "subject": f"Order {i}",
                              "messages": [{"channel": "email", "from_agent": False,
                                            "body_text": f"hello {i}", **SOURCE}]})


def tickets_with_state(n: int, start: int = 1) -> list[dict]:
    out: list[dict] = [schema("tickets", TICKET_PROPS, ["external_id"])]
    for i in range(start, start + n):
        out += [ticket(i), state({"bookmarks": {"tickets": i}})]
    return out


def statuses(srv) -> Counter:
    return Counter(r["status"] for r in srv.requests)


def fast(srv, **extra):
    """A config for the scaled-down account: 10 requests per 1 s (unless overridden)."""
    return config(srv.base_url, {"tickets": {"endpoint": "create_ticket"},
                                 "customers": {"endpoint": "create_customer"}},
                  **{"rate_limit": 10, "rate_limit_window": 1, **extra})


def test_sole_client_sees_no_429(fake_gorgias, tmp_path):
    fake_gorgias.configure(rate_limit=10, rate_window=1)
    res = run_target(fast(fake_gorgias, max_concurrency=4), tickets_with_state(35), tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(fake_gorgias.store["tickets"]) == 35
    assert statuses(fake_gorgias)[429] == 0
    assert res.states[-1] == {"bookmarks": {"tickets": 35}}


def test_lower_limit_in_header_is_adopted(fake_gorgias, tmp_path):
    # The account allows 5/s; the user configured 50/s. The header corrects the pacer.
    fake_gorgias.configure(rate_limit=5, rate_window=1)
    cfg = fast(fake_gorgias, max_concurrency=2)
    cfg.update(rate_limit=50)
    res = run_target(cfg, tickets_with_state(25), tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(fake_gorgias.store["tickets"]) == 25
    assert statuses(fake_gorgias)[429] <= 2, statuses(fake_gorgias)


def test_throttled_burst_honours_retry_after(fake_gorgias, tmp_path):
    fake_gorgias.add_fault(status=429, retry_after=1, count=2)
    started = time.monotonic()
    res = run_target(fast(fake_gorgias, max_concurrency=1), tickets_with_state(3), tmp_path)
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - started >= 2.0  # two Retry-After pauses of 1 s
    assert len(fake_gorgias.store["tickets"]) == 3
    # A 429 does not use up max_retries; the pause logged is the pause asked.
    assert res.stderr.count("(stream 'tickets', attempt ") == 2
    assert res.stderr.count(") in 1.0s: HTTP 429 Too Many Requests") == 2
    assert "2 throttled (429)" in res.stderr


def test_other_client_on_the_account(fake_gorgias, tmp_path):
    fake_gorgias.configure(rate_limit=10, rate_window=1)
    fake_gorgias.consume(9)
    res = run_target(fast(fake_gorgias, max_concurrency=2), tickets_with_state(12), tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(fake_gorgias.store["tickets"]) == 12
    assert statuses(fake_gorgias)[429] <= 2


def test_5xx_storm_recovers(fake_gorgias, tmp_path):
    fake_gorgias.add_fault(status=503, count=3, method="POST")
    res = run_target(fast(fake_gorgias, max_concurrency=1), tickets_with_state(2), tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(fake_gorgias.store["tickets"]) == 2
    assert res.stderr.count("Retrying POST /api/tickets") == 3
    assert "HTTP 503" in res.stderr


def test_dropped_connection_after_apply_makes_no_duplicate(fake_gorgias, tmp_path):
    fake_gorgias.add_fault(drop="after", count=1, method="POST", path="/api/tickets")
    res = run_target(fast(fake_gorgias), tickets_with_state(1), tmp_path)
    assert res.returncode == 0, res.stderr
    assert [t["external_id"] for t in fake_gorgias.store["tickets"].values()] == ["ext-1"]
    assert "did reach Gorgias" in res.stderr
    assert any(r["method"] == "GET" and r["query"].get("external_id") == ["ext-1"]
               for r in fake_gorgias.requests)


def test_5xx_after_apply_on_customer_makes_no_duplicate(fake_gorgias, tmp_path):
    fake_gorgias.add_fault(status=502, when="after", count=1, method="POST")
    msgs = [schema("customers", {"email": {"type": "string"}}),
            record("customers", {"email": "once@example.com"})]
    res = run_target(fast(fake_gorgias), msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(fake_gorgias.store["customers"]) == 1


def test_timeout_then_lookup(fake_gorgias, tmp_path):
    fake_gorgias.add_fault(delay_ms=2500, count=1, method="POST")
    res = run_target(fast(fake_gorgias, timeout=1), tickets_with_state(1), tmp_path)
    assert res.returncode == 0, res.stderr
    assert "no complete answer within 1s" in res.stderr
    assert len(fake_gorgias.store["tickets"]) == 1


def test_retries_exhausted_fail_with_reason(fake_gorgias, tmp_path):
    fake_gorgias.add_fault(status=500, count=10)
    res = run_target(fast(fake_gorgias, max_retries=2), tickets_with_state(1), tmp_path)
    assert res.returncode == 1
    assert "HTTP 500" in res.stderr and "record 1" in res.stderr
    assert res.stdout == ""


@pytest.mark.parametrize("policy", ["fail", "continue"])
def test_permanent_errors_under_both_policies(fake_gorgias, tmp_path, policy):
    dead = tmp_path / "dead.jsonl"
    cfg = config(fake_gorgias.base_url, {
        "customers": {"endpoint": "create_customer"},
        "notes": {"endpoint": "add_ticket_message"},
    }, on_error=policy, dead_letter_path=str(dead), rate_limit=100, rate_limit_window=1,
        max_concurrency=1, lookup_before_create=False)  # auto would find record 1 for record 2
    msgs = [schema("customers", {"email": {"type": "string"}, "nickname": {"type": "string"}}),
            record("customers", {"email": "a@example.com"}),
            record("customers", {"email": "a@example.com"}),          # 409 duplicate
            record("customers", {"email": "b@example.com", "nickname": "x"}),  # 400 unknown field
            state({"after": "customers"}),
            schema("notes", {"ticket_id": {"type": "integer"}}),
            record("notes", {"ticket_id": 999999, "channel": "email", "from_agent": True,
                             **SOURCE}),  # 404
            record("customers", {"email": "c@example.com"}),
            state({"after": "all"})]
    res = run_target(cfg, msgs, tmp_path)
    if policy == "fail":
        assert res.returncode == 1
        assert "stream 'customers', record 2" in res.stderr and "HTTP 409" in res.stderr
        assert "The resource already exists." in res.stderr
        assert res.stdout_lines == []  # the first state covers the failed record
        assert sorted(c["email"] for c in fake_gorgias.store["customers"].values()) == [
            "a@example.com"]
        return
    assert res.returncode == 0, res.stderr
    assert "2 delivered, 3 failed" in res.stderr
    assert res.stdout_lines[-1] == {"after": "all"}
    lines = [json.loads(x) for x in dead.read_text().splitlines()]
    assert [(d["stream"], d["position"], d["status"]) for d in lines] == [
        ("customers", 2, 409), ("customers", 3, 400), ("notes", 1, 404)]
    assert lines[1]["error"]["data"] == {"nickname": ["No such field."]}
    assert lines[0]["attempts"] == 1 and lines[0]["record"] == {
        "email": "a@example.com",
        "channels": [{"type": "email", "address": "a@example.com", "preferred": True}]}
    assert sorted(c["email"] for c in fake_gorgias.store["customers"].values()) == [
        "a@example.com", "c@example.com"]


def test_bad_record_under_continue_is_reported_not_fatal(fake_gorgias, tmp_path):
    dead = tmp_path / "dead.jsonl"
    cfg = config(fake_gorgias.base_url, {"notes": {"endpoint": "add_ticket_message",
                                                   "on_error": "continue"}},
                 dead_letter_path=str(dead))
    msgs = [schema("notes", {"ticket_id": {}}), record("notes", {"channel": "email"})]
    res = run_target(cfg, msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "0 delivered, 1 failed" in res.stderr
    assert json.loads(dead.read_text())["reason"].startswith("stream 'notes', record 1")


def test_http_request_duration_metric_and_summary(fake_gorgias, tmp_path):
    res = run_target(fast(fake_gorgias), tickets_with_state(2), tmp_path)
    assert res.returncode == 0, res.stderr
    metrics = [json.loads(line.split("METRIC: ", 1)[1]) for line in res.stderr.splitlines()
               if "METRIC: " in line and "http_request_duration" in line]
    assert len(metrics) == 4  # lookup_before_create: auto looks the head up first
    creates = [m for m in metrics if m["tags"]["endpoint"] == "create_ticket"]
    assert len(creates) == 2 and creates[0]["tags"]["http_status_code"] == 201
    assert {m["tags"]["endpoint"] for m in metrics} == {"create_ticket", "lookup"}
    assert "4 requests, 0 retries, 0 throttled (429), 2 lookups" in res.stderr


def _last_state(stdout: str) -> dict | None:
    lines = [json.loads(x) for x in stdout.splitlines() if x.strip()]
    return lines[-1] if lines else None


def test_sigterm_finishes_in_flight_and_emits_delivered_state(fake_gorgias, tmp_path):
    fake_gorgias.configure(rate_limit=5, rate_window=1, latency_ms=(100, 200))
    cfg_path = tmp_path / "c.json"
    cfg_path.write_text(json.dumps(fast(fake_gorgias, rate_limit=5)))
    proc = start_target(cfg_path, tickets_with_state(60))
    time.sleep(3.0)
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 5, "did not stop promptly"
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err
    last = _last_state(out)
    assert last is not None, err
    delivered = last["bookmarks"]["tickets"]
    held = {t["external_id"] for t in fake_gorgias.store["tickets"].values()}
    assert 0 < delivered < 60
    assert {f"ext-{i}" for i in range(1, delivered + 1)} <= held
    assert len(held) < 60


@pytest.mark.parametrize("lookup", [True, False])
def test_sigkill_then_resume_from_state(fake_gorgias, tmp_path, lookup):
    fake_gorgias.configure(rate_limit=10, rate_window=1, latency_ms=(50, 100))
    cfg = fast(fake_gorgias, lookup_before_create=lookup)
    cfg_path = tmp_path / "c.json"
    cfg_path.write_text(json.dumps(cfg))
    total = 60
    proc = start_target(cfg_path, tickets_with_state(total))
    time.sleep(4.5)
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    last = _last_state(out)
    assert last is not None, "no state was emitted before the kill"
    done = last["bookmarks"]["tickets"]
    assert 0 < done < total
    # The "tap" resumes after the bookmark it got back.
    res = run_target(cfg, tickets_with_state(total - done, start=done + 1), tmp_path)
    assert res.returncode == 0, res.stderr
    counts = Counter(t["external_id"] for t in fake_gorgias.store["tickets"].values())
    assert set(counts) == {f"ext-{i}" for i in range(1, total + 1)}  # at least once
    if lookup:
        assert max(counts.values()) == 1  # exactly once


def test_sigterm_during_retries_neither_fails_nor_passes_the_record(fake_gorgias, tmp_path):
    """A record still being retried when SIGTERM arrives is not dead-lettered under
    on_error: continue, and no state passes it: a resumed run sends it again."""
    fake_gorgias.add_fault(status=503, count=1000, method="POST")
    dead = tmp_path / "dead.jsonl"
    cfg_path = tmp_path / "c.json"
    cfg_path.write_text(json.dumps(fast(fake_gorgias, on_error="continue", max_retries=8,
                                        dead_letter_path=str(dead))))
    proc = start_target(cfg_path, tickets_with_state(2))
    time.sleep(2.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Retrying POST /api/tickets" in err
    assert not dead.exists() or dead.read_text() == ""
    assert out.strip() == ""
    assert fake_gorgias.store["tickets"] == {}
