"""Delivery guarantees under every fault (issue 11 §1-§3), end to end through the CLI.

Each test drives the real ``target-gorgias`` against the fake Gorgias on 127.0.0.1 with one
fault class, and checks what Gorgias ends up holding (nothing lost, nothing doubled), the
state emitted, and what the user sees.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import requests

from target_gorgias.client import HeadLookups, head_window, parse_retry_after
from target_gorgias.endpoints import Lookup
from target_gorgias.request_builder import Call, Unit
from tests.support import API_KEY, EMAIL, config, record, run_target, schema, start_target, state

MSG = {"channel": "email", "from_agent": False, "via": "api", "body_text": "hi",
       "source": {"type": "email", "from": {"address": "ada@example.com"}}}
TICKET_PROPS = {"external_id": {"type": "string"}, "subject": {"type": "string"},
                "messages": {"type": "array"}}
CUSTOMER_PROPS = {"email": {"type": "string"}, "name": {"type": "string"}}


def tickets(n: int, start: int = 1) -> list[dict]:
    out: list[dict] = [schema("tickets", TICKET_PROPS, ["external_id"])]
    for i in range(start, start + n):
        out += [record("tickets", {"external_id": f"ext-{i}", "subject": f"Order {i}",
                                   "messages": [MSG]}),
                state({"bookmarks": {"tickets": i}})]
    return out


def cfg(srv, streams: dict | None = None, **extra) -> dict:
    streams = streams or {"tickets": {"endpoint": "create_ticket"}}
    return config(srv.base_url, streams, **{"rate_limit": 50, "rate_limit_window": 1, **extra})


def held(srv, kind: str, key: str) -> Counter:
    return Counter(o.get(key) for o in srv.store[kind].values())


def posts(srv, path: str) -> int:
    return sum(1 for r in srv.requests if r["method"] == "POST" and r["path"] == path)


def seed_customer(srv, email: str, **extra) -> dict:
    channels = [{"type": "email", "address": email, "preferred": True}]
    r = requests.post(srv.base_url + "/api/customers",
                      json={"email": email, "channels": channels, **extra},
                      auth=(EMAIL, API_KEY), timeout=5)
    assert r.status_code == 201, r.text
    return r.json()


# -- §1 uncertain outcomes ----------------------------------------------------------------


def test_slow_commit_after_timeout_is_found_after_the_grace_delay(fake_gorgias, tmp_path):
    """The write lands 1 s after the client gave up: the lookup waits the grace delay."""
    fake_gorgias.add_fault(commit_delay_ms=2000, method="POST", path="/api/tickets")
    res = run_target(cfg(fake_gorgias, timeout=1, lookup_before_create=False), tickets(1),
                     tmp_path)
    assert res.returncode == 0, res.stderr
    assert held(fake_gorgias, "tickets", "external_id") == {"ext-1": 1}
    assert posts(fake_gorgias, "/api/tickets") == 1
    assert "the earlier try did reach Gorgias" in res.stderr
    assert res.states[-1] == {"bookmarks": {"tickets": 1}}


@pytest.mark.parametrize("mode", ["create", "upsert"])
@pytest.mark.parametrize("fault", [{"drop": "after"}, {"status": 502, "when": "after"}])
def test_uncertain_customer_create_is_looked_up_in_every_mode(fake_gorgias, tmp_path, mode,
                                                              fault):
    """Dropped connection / 5xx after the write: looked up, not re-sent (no 409, no twin)."""
    fake_gorgias.add_fault(**fault, method="POST", path="/api/customers")
    streams = {"customers": {"endpoint": "create_customer", "mode": mode}}
    msgs = [schema("customers", CUSTOMER_PROPS),
            record("customers", {"email": "once@example.com", "name": "Once"}),
            state({"n": 1})]
    res = run_target(cfg(fake_gorgias, streams, lookup_before_create=False,
                         lookup_grace_seconds=0.2, emit_responses=True), msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    assert held(fake_gorgias, "customers", "email") == {"once@example.com": 1}
    assert posts(fake_gorgias, "/api/customers") == 1
    assert "HTTP 409" not in res.stderr
    [resp] = res.responses
    assert resp["ok"] and resp["method"] == "GET" and resp["status_code"] == 200
    assert resp["resource_id"] is not None and resp["uncertain_resends"] == 0
    assert res.states == [{"n": 1}]


def test_non_json_2xx_is_confirmed_by_lookup_not_counted_blindly(fake_gorgias, tmp_path):
    fake_gorgias.add_fault(non_json=True, method="POST", path="/api/tickets")
    res = run_target(cfg(fake_gorgias, lookup_before_create=False), tickets(2), tmp_path)
    assert res.returncode == 0, res.stderr
    assert held(fake_gorgias, "tickets", "external_id") == {"ext-1": 1, "ext-2": 1}
    assert "answer is not JSON" in res.stderr and "confirmed by lookup" in res.stderr


def test_lookup_never_trusts_the_server_filter(fake_gorgias, tmp_path):
    """A list endpoint that ignores ?email= must not make b@ match a@ (a@ untouched)."""
    seed_customer(fake_gorgias, "a@example.com", name="A")
    fake_gorgias.add_fault(ignore_filter=True, method="GET", path="/api/customers", count=10)
    streams = {"customers": {"endpoint": "create_customer", "mode": "upsert"}}
    msgs = [schema("customers", CUSTOMER_PROPS),
            record("customers", {"email": "b@example.com", "name": "B"})]
    res = run_target(cfg(fake_gorgias, streams), msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    names = {c["email"]: c["name"] for c in fake_gorgias.store["customers"].values()}
    assert names == {"a@example.com": "A", "b@example.com": "B"}
    assert "1 created" in res.stderr


def test_email_matches_case_insensitively(fake_gorgias, tmp_path):
    seed_customer(fake_gorgias, "Ada@Example.com", name="Ada")
    streams = {"customers": {"endpoint": "create_customer", "mode": "upsert"}}
    msgs = [schema("customers", CUSTOMER_PROPS),
            record("customers", {"email": "ada@example.COM", "name": "Ada King"})]
    res = run_target(cfg(fake_gorgias, streams), msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    assert [c["name"] for c in fake_gorgias.store["customers"].values()] == ["Ada King"]
    assert "1 updated" in res.stderr


@pytest.mark.parametrize("mode", ["create", "upsert"])
def test_failed_lookup_is_never_absent(fake_gorgias, tmp_path, mode):
    """The lookup answers 403: the record follows on_error, reported as GET <lookup url>."""
    fake_gorgias.add_fault(status=403, method="GET", path="/api/customers", count=5)
    dead = tmp_path / "dead.jsonl"
    streams = {"customers": {"endpoint": "create_customer", "mode": mode,
                             "lookup_before_create": True}}
    msgs = [schema("customers", CUSTOMER_PROPS),
            record("customers", {"email": "x@example.com"}), state({"n": 1})]
    res = run_target(cfg(fake_gorgias, streams, on_error="continue",
                         dead_letter_path=str(dead)), msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    assert posts(fake_gorgias, "/api/customers") == 0  # no create on a failed lookup
    [letter] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert letter["status"] == 403
    assert f"GET {fake_gorgias.base_url}/api/customers?email=x%40example.com -> HTTP 403" \
        in letter["reason"]
    assert "POST" not in letter["reason"]


def test_uncertain_create_then_failed_lookup_is_reported_not_resent(fake_gorgias, tmp_path):
    fake_gorgias.add_fault(drop="before", method="POST", path="/api/tickets")
    fake_gorgias.add_fault(status=500, method="GET", path="/api/tickets", count=20)
    res = run_target(cfg(fake_gorgias, lookup_before_create=False, max_retries=1,
                         lookup_grace_seconds=0), tickets(1), tmp_path)
    assert res.returncode == 1
    assert posts(fake_gorgias, "/api/tickets") == 1
    assert "GET " in res.stderr and "lookup by external_id failed" in res.stderr
    assert res.states == []  # no state passes the record


def test_unverifiable_create_warns_and_counts_uncertain_resends(fake_gorgias, tmp_path):
    fake_gorgias.add_fault(drop="after", method="POST", path="/api/macros")
    streams = {"macros": {"endpoint": "create_macro"}}
    msgs = [schema("macros", {"name": {"type": "string"}}), record("macros", {"name": "M"})]
    res = run_target(cfg(fake_gorgias, streams, emit_responses=True, lookup_grace_seconds=0),
                     msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    warning = next(ln for ln in res.stderr.splitlines() if "may duplicate" in ln)
    assert "WARNING" in warning and "Stream 'macros'" in warning and "max_retries: 0" in warning
    assert res.stderr.index("may duplicate") < res.stderr.index("Retrying")  # at start-up
    assert "1 uncertain re-sends" in res.stderr
    [resp] = res.responses
    assert resp["uncertain_resends"] == 1 and resp["ok"]
    assert len(fake_gorgias.store["macros"]) == 2  # the duplicate the warning announced


def test_ticket_stream_without_external_id_warns_at_start_up(fake_gorgias, tmp_path):
    msgs = [schema("t", {"subject": {"type": "string"}, "messages": {"type": "array"}}),
            record("t", {"subject": "s", "messages": [MSG]})]
    res = run_target(cfg(fake_gorgias, {"t": {"endpoint": "create_ticket"}}), msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "send external_id in each record" in res.stderr
    assert "0 uncertain re-sends" in res.stderr


def test_tags_are_verified_by_exact_name(fake_gorgias, tmp_path):
    """'VIP' exists; 'vip' is lost before Gorgias applied it: 'VIP' is no match, re-sent."""
    requests.post(fake_gorgias.base_url + "/api/tags", json={"name": "VIP"},
                  auth=(EMAIL, API_KEY), timeout=5)
    fake_gorgias.add_fault(drop="before", method="POST", path="/api/tags")
    fake_gorgias.add_fault(drop="after", method="POST", path="/api/tags")
    msgs = [schema("tags", {"name": {"type": "string"}}), record("tags", {"name": "vip"}),
            record("tags", {"name": "new"})]
    res = run_target(cfg(fake_gorgias, {"tags": {"endpoint": "create_tag"}},
                         lookup_grace_seconds=0, max_concurrency=1), msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    assert held(fake_gorgias, "tags", "name") == {"VIP": 1, "vip": 1, "new": 1}
    assert "0 uncertain re-sends" in res.stderr


def test_messages_are_verified_by_the_tickets_messages(fake_gorgias, tmp_path):
    r = requests.post(fake_gorgias.base_url + "/api/tickets", json={"messages": [MSG]},
                      auth=(EMAIL, API_KEY), timeout=5)
    tid = r.json()["id"]
    fake_gorgias.add_fault(drop="after", method="POST", path=f"/api/tickets/{tid}/messages")
    msgs = [schema("notes", {"ticket_id": {"type": "integer"}}),
            record("notes", {"ticket_id": tid, "external_id": "note-1", **MSG})]
    res = run_target(cfg(fake_gorgias, {"notes": {"endpoint": "add_ticket_message"}},
                         lookup_grace_seconds=0), msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    notes = [m for m in fake_gorgias.store["messages"].values() if m["ticket_id"] == tid]
    assert sorted(str(m.get("external_id")) for m in notes) == ["None", "note-1"]
    assert any(r["path"] == "/api/messages" and r["query"].get("ticket_id") == [str(tid)]
               for r in fake_gorgias.requests)


@pytest.mark.parametrize("mode", ["update", "upsert"])
def test_trashed_ticket_is_not_a_match(fake_gorgias, tmp_path, mode):
    auth = (EMAIL, API_KEY)
    t = requests.post(fake_gorgias.base_url + "/api/tickets",
                      json={"external_id": "ext-1", "subject": "old", "messages": [MSG]},
                      auth=auth, timeout=5).json()
    requests.put(f"{fake_gorgias.base_url}/api/tickets/{t['id']}",
                 json={"trashed_datetime": "2026-01-01T00:00:00+00:00"}, auth=auth, timeout=5)
    streams = {"tickets": {"endpoint": "create_ticket", "mode": mode}}
    res = run_target(cfg(fake_gorgias, streams, emit_responses=True), tickets(1), tmp_path)
    assert res.returncode == 0, res.stderr
    store = fake_gorgias.store["tickets"]
    assert store[t["id"]]["subject"] == "old"  # the trashed ticket is never updated
    assert f"only a trashed ticket (id {t['id']})" in res.stderr
    [resp] = res.responses
    if mode == "upsert":
        assert len(store) == 2 and resp["outcome"] == "created"
    else:
        assert len(store) == 1 and resp["outcome"] == "skipped"
        # No request was made for a skipped record: no invented method or status.
        assert resp["method"] is None and resp["status_code"] is None


# -- §2 lookup_before_create: auto -------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 22, 33])
def test_sigkill_at_random_then_resume_is_exactly_once(fake_gorgias, tmp_path, seed):
    """Default settings: SIGKILL at a random moment, resume from the emitted state."""
    rng = random.Random(seed)
    fake_gorgias.configure(rate_limit=12, rate_window=1, latency_ms=(20, 80))
    conf = cfg(fake_gorgias, rate_limit=12, max_concurrency=2)
    cfg_path = tmp_path / "c.json"
    cfg_path.write_text(json.dumps(conf))
    total = 40
    proc = start_target(cfg_path, tickets(total))
    time.sleep(rng.uniform(0.8, 3.0))
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    states = [json.loads(line) for line in out.splitlines() if line.strip()]
    done = states[-1]["bookmarks"]["tickets"] if states else 0
    res = run_target(conf, tickets(total - done, start=done + 1), tmp_path)
    assert res.returncode == 0, res.stderr
    counts = held(fake_gorgias, "tickets", "external_id")
    assert set(counts) == {f"ext-{i}" for i in range(1, total + 1)}  # nothing lost
    assert max(counts.values()) == 1  # nothing doubled
    assert res.states[-1] == {"bookmarks": {"tickets": total}}


def test_auto_looks_up_only_the_head(fake_gorgias, tmp_path):
    conf = cfg(fake_gorgias, rate_limit=5, rate_limit_window=1, max_concurrency=1)
    window = head_window(1, 5, 1, 2.0)
    res = run_target(conf, tickets(window + 15), tmp_path)
    assert res.returncode == 0, res.stderr
    gets = [r for r in fake_gorgias.requests if r["method"] == "GET"]
    assert len(gets) == window  # the head only, then no more lookups
    assert f"{window} lookups" in res.stderr


def test_head_lookups_window_moves_with_each_hit():
    heads = HeadLookups(3)
    probe = Lookup("/api/tickets", ("external_id",)).probe("external_id", "x")

    def call(pos: int) -> Call:
        unit = Unit(pos, pos, "/api/tickets", b"{}", {})
        return Call("s", "create_ticket", "POST", "/api/tickets", {}, b"{}", [unit], probe,
                    "auto")

    assert [heads.wants(call(p)) for p in (1, 3, 4)] == [True, True, False]
    heads.observe(call(2), True)
    assert heads.wants(call(5)) and not heads.wants(call(6))
    always = call(99)
    always.lookup_first = True
    assert heads.wants(always)
    always.lookup_first = False
    assert not heads.wants(always)


# -- §3 Retry-After and deadlines --------------------------------------------------------


def test_retry_after_parsing():
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 2.5 ") == 2.5
    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30))
    assert 28 <= (parse_retry_after(soon.strftime("%a, %d %b %Y %H:%M:%S GMT")) or 0) <= 31
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    for garbage in ("soon", "nan", "inf", "-", "Fri, 99 Foo 99999 99:99:99 GMT", "1e999"):
        assert parse_retry_after(garbage) is None


def test_retry_after_http_date_on_429_is_honoured(fake_gorgias, tmp_path):
    fake_gorgias.add_fault(status=429, retry_after=2, retry_after_date=True, method="POST")
    started = time.monotonic()
    res = run_target(cfg(fake_gorgias, lookup_before_create=False), tickets(1), tmp_path)
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stderr.splitlines() if "HTTP 429" in ln and "Retrying" in ln)
    logged = float(line.split(") in ", 1)[1].split("s:", 1)[0])
    assert 0.5 <= logged <= 2.0
    posts_at = [r["at"] for r in fake_gorgias.requests if r["method"] == "POST"]
    assert posts_at[1] - posts_at[0] >= logged - 0.05  # the pause applied is the one logged
    assert time.monotonic() - started < 10


def test_retry_after_on_503_and_garbage_is_ignored_with_a_warning(fake_gorgias, tmp_path):
    fake_gorgias.add_fault(status=503, retry_after=1, method="POST")
    fake_gorgias.add_fault(status=429, method="POST", headers={"Retry-After": "soon"})
    res = run_target(cfg(fake_gorgias, lookup_before_create=False, lookup_grace_seconds=0),
                     tickets(1), tmp_path)
    assert res.returncode == 0, res.stderr
    assert "in 1.0s: HTTP 503" in res.stderr
    assert "ignoring Retry-After 'soon'" in res.stderr
    assert "Traceback" not in res.stderr and "out of range" not in res.stderr
    assert held(fake_gorgias, "tickets", "external_id") == {"ext-1": 1}


def test_429s_do_not_use_up_max_retries(fake_gorgias, tmp_path):
    fake_gorgias.add_fault(status=429, retry_after=1, count=3, method="POST")
    res = run_target(cfg(fake_gorgias, max_retries=0), tickets(1), tmp_path)
    assert res.returncode == 0, res.stderr
    assert held(fake_gorgias, "tickets", "external_id") == {"ext-1": 1}
    assert "3 throttled (429)" in res.stderr


@pytest.mark.parametrize(("count", "retry_after", "expected"), [
    (1, 30, "Gorgias asked to wait 30s (Retry-After), more than max_retry_after (3s)"),
    (10, 1, "Gorgias asked to wait 1s (Retry-After), 4s in total for this call, more than "
            "max_retry_after (3s)"),
])
def test_waits_longer_than_max_retry_after_fail_naming_the_wait(fake_gorgias, tmp_path,
                                                                count, retry_after, expected):
    fake_gorgias.add_fault(status=429, retry_after=retry_after, count=count, method="POST")
    started = time.monotonic()
    res = run_target(cfg(fake_gorgias, max_retry_after=3), tickets(1), tmp_path)
    assert res.returncode == 1
    assert expected in res.stderr
    assert time.monotonic() - started < 8
    assert res.states == []


def test_timeout_bounds_a_trickled_answer(fake_gorgias, tmp_path):
    """8 bytes every 100 ms would take many seconds: the call is cut at `timeout`."""
    fake_gorgias.add_fault(trickle_ms=100, method="POST", path="/api/tickets")
    started = time.monotonic()
    res = run_target(cfg(fake_gorgias, timeout=1, lookup_before_create=False,
                         lookup_grace_seconds=0.5), tickets(1), tmp_path)
    took = time.monotonic() - started
    assert res.returncode == 0, res.stderr
    assert "no complete answer within 1s" in res.stderr
    assert held(fake_gorgias, "tickets", "external_id") == {"ext-1": 1}  # found, not re-sent
    assert took < 6, took


@pytest.mark.parametrize(("extra", "expected"), [
    ({"lookup_before_create": "sometimes"}, "'sometimes' is not one of"),
    ({"lookup_grace_seconds": -1}, "lookup_grace_seconds: must be a number >= 0"),
    ({"max_retry_after": 0}, "max_retry_after: must be a number > 0"),
])
def test_new_settings_are_checked_at_start_up(fake_gorgias, tmp_path, extra, expected):
    res = run_target(cfg(fake_gorgias, **extra), tickets(1), tmp_path)
    assert res.returncode == 1
    assert expected in res.stderr
    assert fake_gorgias.requests == []


def test_lookup_mode_from_the_environment(fake_gorgias, tmp_path):
    """Meltano and --config ENV pass "true"/"false"/"auto" as strings."""
    conf = cfg(fake_gorgias)
    res = run_target(conf, tickets(2), tmp_path,
                     env={"TARGET_GORGIAS_LOOKUP_BEFORE_CREATE": "false"},
                     args=("--config", "ENV"))
    assert res.returncode == 0, res.stderr
    assert [r["method"] for r in fake_gorgias.requests] == ["POST", "POST"]


def test_upsert_whose_lookup_is_refused_reports_the_lookup(fake_gorgias, tmp_path):
    """Bad credentials: the failing call is the lookup, so the error says GET, not POST."""
    streams = {"customers": {"endpoint": "create_customer", "mode": "upsert"}}
    msgs = [schema("customers", CUSTOMER_PROPS), record("customers", {"email": "a@example.com"})]
    res = run_target(cfg(fake_gorgias, streams, api_key="wrong-key"), msgs, tmp_path)
    assert res.returncode == 1
    assert (f"record 1: GET {fake_gorgias.base_url}/api/customers?email=a%40example.com -> "
            "HTTP 401 (Gorgias refused the credentials") in res.stderr
    assert "POST" not in res.stderr.split("Run failed", 1)[1]
    assert "wrong-key" not in res.stderr


def test_lookups_benchmark_runs():
    """benchmarks/lookups.py --smoke: auto never looks up more than the head window."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "lookups.py"),
                           "--smoke"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [ln.split("|")[1:-1] for ln in proc.stdout.splitlines() if ln.startswith("| 1")
            or ln.startswith("| 2")]
    assert len(rows) == 4
    for n, mode, creates, lookups, *_ in rows:
        assert int(creates) == int(n)
        assert int(lookups) == (int(n) if mode.strip() == "true" else min(int(n), 49))


def test_delete_whose_answer_was_lost_is_confirmed_by_its_404(fake_gorgias, tmp_path):
    tag = requests.post(fake_gorgias.base_url + "/api/tags", json={"name": "old"},
                        auth=(EMAIL, API_KEY), timeout=5).json()
    fake_gorgias.add_fault(drop="after", method="DELETE")
    msgs = [schema("gone", {"id": {"type": "integer"}}), record("gone", {"id": tag["id"]}),
            state({"n": 1})]
    res = run_target(cfg(fake_gorgias, {"gone": {"endpoint": "delete_tag"}}), msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    assert fake_gorgias.store["tags"] == {}
    assert "already deleted" in res.stderr
    assert res.states == [{"n": 1}]


def test_uncertain_create_past_max_retry_after_is_looked_up_before_failing(fake_gorgias,
                                                                            tmp_path):
    """A 503 after the write, then a Retry-After too long: the lookup finds the write."""
    fake_gorgias.add_fault(status=503, when="after", retry_after=60, method="POST")
    started = time.monotonic()
    res = run_target(cfg(fake_gorgias, lookup_before_create=False, lookup_grace_seconds=0,
                         max_retry_after=3), tickets(1), tmp_path)
    assert res.returncode == 0, res.stderr
    assert held(fake_gorgias, "tickets", "external_id") == {"ext-1": 1}
    assert "asked to wait 60s (Retry-After), more than max_retry_after (3s); confirmed by " \
        "lookup" in res.stderr
    assert time.monotonic() - started < 10
