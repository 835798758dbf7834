"""Streaming delivery: records go out while the tap is still writing, in stream order,
with backpressure, batches flushed when the input pauses, and state emitted when safe."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.support import API_KEY, CLI, EMAIL, config, record, run_target, schema, state

CUSTOMER_PROPS = {"email": {"type": "string"}, "name": {"type": "string"}}
TICKET_PROPS = {"external_id": {"type": "string"}, "customer": {"type": "object"},
                "messages": {"type": "array"}, "subject": {"type": "string"}}
STREAMS = {"customers": {"endpoint": "create_customer"},
           "tickets": {"endpoint": "create_ticket"}}


def customer(i: int) -> dict[str, Any]:
    return record("customers", {"email": f"c{i}@example.com", "name": f"C {i}"})


def ticket(i: int, subject: str = "") -> dict[str, Any]:
    return record("tickets", {
        "external_id": f"t-{i}", "customer": {"email": f"c{i}@example.com"},
        "subject": subject or f"Order {i}",
        "messages": [{"channel": "email", "via": "api", "from_agent": False, "body_text": "hi",
                      "sender": {"email": f"c{i}@example.com"}}]})


class LiveTarget:
    """The real CLI with stdin held open, so a test can write like a slow tap."""

    def __init__(self, cfg: dict[str, Any], tmp_path: Path) -> None:
        path = tmp_path / f"live-{id(self)}.json"
        path.write_text(json.dumps(cfg))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_GORGIAS_")}
        self.proc = subprocess.Popen(
            [CLI, "--config", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=lambda s=stream, k=sink: k.extend(iter(s.readline, "")),
                             daemon=True).start()

    def send(self, *messages: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        self.proc.stdin.flush()

    def close(self, timeout: float = 60) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout)
        time.sleep(0.1)  # let the reader threads take the last lines
        return code


def wait_for(predicate: Any, timeout: float) -> float | None:
    """Seconds until ``predicate()`` is true, or None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def test_first_write_goes_out_while_input_is_still_open(fake_gorgias, tmp_path):
    live = LiveTarget(config(fake_gorgias.base_url, STREAMS), tmp_path)
    live.send(schema("customers", CUSTOMER_PROPS, ["email"]))
    time.sleep(1.5)  # start-up is not what is measured
    live.send(customer(1))
    took = wait_for(lambda: len(fake_gorgias.requests) >= 1, 5)
    # The SDK's batch sink sent nothing before 10,000 records or the end of input.
    assert took is not None and took <= 1.0, took
    live.send(customer(2))
    assert live.close() == 0, "".join(live.stderr)
    assert len(fake_gorgias.store["customers"]) == 2


def test_interleaved_parents_and_children_keep_input_order(fake_gorgias, tmp_path):
    fake_gorgias.configure(latency_ms=(5, 60))
    messages: list[Any] = [schema("customers", CUSTOMER_PROPS, ["email"]),
                           schema("tickets", TICKET_PROPS, ["external_id"])]
    expected: list[str] = []
    done = 0
    for count in (3, 2, 1, 4):  # customers, then tickets for exactly those customers
        ids = range(done + 1, done + count + 1)
        messages += [customer(i) for i in ids] + [ticket(i) for i in ids]
        expected += ["customers"] * count + ["tickets"] * count
        done += count
    cfg = config(fake_gorgias.base_url, STREAMS, batch_size_rows=1, max_concurrency=4)
    res = run_target(cfg, messages, tmp_path)
    assert res.returncode == 0, res.stderr
    log = [r for r in fake_gorgias.requests if r["method"] == "POST"]
    seen = ["customers" if r["path"] == "/api/customers" else "tickets" for r in log]
    assert seen == expected
    # The barrier: a request of a new stream starts only after every earlier request of
    # the other stream was answered.
    for i, entry in enumerate(log):
        earlier = [e for e in log[:i] if e["path"] != entry["path"]]
        assert all(e["finished_at"] <= entry["at"] for e in earlier)
    # Within a block, records of one stream still overlap (max_concurrency 4).
    assert fake_gorgias.stats()["max_concurrent"] >= 2
    # Every ticket found its customer (a ticket sent first would create a nameless one).
    customers = fake_gorgias.store["customers"].values()
    assert len(fake_gorgias.store["tickets"]) == 10
    assert sorted(c["name"] for c in customers) == sorted(f"C {i}" for i in range(1, 11))


def test_reading_pauses_while_the_window_is_full(fake_gorgias, tmp_path):
    # 1 request at a time, 100 ms each: the target can take ~10 records/s. Records of 60 KB
    # fill the pipe after one or two, so the tap's writes block: that is the backpressure.
    fake_gorgias.configure(latency_ms=(100, 100))
    cfg = config(fake_gorgias.base_url, STREAMS, max_concurrency=1)
    live = LiveTarget(cfg, tmp_path)
    live.send(schema("tickets", TICKET_PROPS, ["external_id"]))
    written = 0

    def tap() -> None:
        nonlocal written
        for i in range(1, 41):
            live.send(ticket(i, subject="x" * 60_000))
            written = i

    writer = threading.Thread(target=tap, daemon=True)
    writer.start()
    time.sleep(1.0)
    at_one_second = written
    assert at_one_second < 25, f"the tap wrote {at_one_second} of 40 records in 1 s"
    writer.join(60)
    assert live.close() == 0, "".join(live.stderr)
    assert len(fake_gorgias.store["tickets"]) == 40
    assert fake_gorgias.stats()["max_concurrent"] == 1


def _tags(base_url: str, n: int) -> list[int]:
    s = requests.Session()
    s.auth = (EMAIL, API_KEY)
    out = []
    for i in range(n):
        r = s.post(base_url + "/api/tags", json={"name": f"tag-{i}"}, timeout=10)
        assert r.status_code == 201, r.text
        out.append(r.json()["id"])
    return out


def test_open_batch_is_sent_when_the_input_pauses(fake_gorgias, tmp_path):
    ids = _tags(fake_gorgias.base_url, 7)
    before = len(fake_gorgias.requests)
    live = LiveTarget(config(fake_gorgias.base_url, {"tags": {"endpoint": "delete_tags"}}),
                      tmp_path)
    live.send(schema("tags", {"id": {"type": "integer"}}, ["id"]))
    live.send(*[record("tags", {"id": i}) for i in ids[:3]])

    def deletes() -> list[dict[str, Any]]:
        return [r for r in fake_gorgias.requests[before:] if r["method"] == "DELETE"]

    took = wait_for(lambda: len(deletes()) == 1, 5)
    assert took is not None and took < 2.5  # flush interval 1 s, not the end of input
    live.send(*[record("tags", {"id": i}) for i in ids[3:]])
    assert live.close() == 0, "".join(live.stderr)
    assert [d["body"]["ids"] for d in deletes()] == [ids[:3], ids[3:]]
    assert not fake_gorgias.store["tags"]


def test_full_batch_goes_out_at_once_and_groups_by_path(fake_gorgias, tmp_path):
    s = requests.Session()
    s.auth = (EMAIL, API_KEY)
    msg = {"channel": "email", "from_agent": False, "via": "api", "body_text": "hi",
           "source": {"type": "email", "from": {"address": "c@example.com"}}}
    t1, t2 = (s.post(fake_gorgias.base_url + "/api/tickets", json={"messages": [msg]},
                     timeout=10).json()["id"] for _ in range(2))
    fields = [s.post(fake_gorgias.base_url + "/api/custom-fields", timeout=10, json={
        "object_type": "Ticket", "label": f"L{i}", "definition": {"data_type": "text"}}
    ).json()["id"] for i in range(3)]
    before = len(fake_gorgias.requests)
    stream = {"cf": {"endpoint": "replace_ticket_custom_fields", "batch": {"size": 2}}}
    recs = [record("cf", {"ticket_id": t, "id": f, "value": f"v{f}"})
            for f in fields for t in (t1, t2)]
    cf_schema = schema("cf", {"ticket_id": {"type": "integer"}, "id": {"type": "integer"},
                              "value": {"type": "string"}})
    res = run_target(config(fake_gorgias.base_url, stream), [cf_schema, *recs], tmp_path)
    assert res.returncode == 0, res.stderr
    puts = [r for r in fake_gorgias.requests[before:] if r["method"] == "PUT"]
    by_ticket: dict[str, list[int]] = {}
    for p in puts:
        by_ticket.setdefault(p["path"], []).append(len(p["body"]))
    by_ticket = {path: sorted(sizes) for path, sizes in by_ticket.items()}  # concurrent
    # Interleaved tickets still share calls per ticket: 2 full batches of 2, then 1 + 1.
    assert by_ticket == {f"/api/tickets/{t1}/custom-fields": [1, 2],
                         f"/api/tickets/{t2}/custom-fields": [1, 2]}


def test_state_is_emitted_while_the_input_is_still_open(fake_gorgias, tmp_path):
    live = LiveTarget(config(fake_gorgias.base_url, STREAMS), tmp_path)
    live.send(schema("customers", CUSTOMER_PROPS, ["email"]), customer(1),
              state({"bookmarks": {"customers": 1}}))
    # Safe once customer 1 is answered; written within STATE_INTERVAL (2 s) of that.
    took = wait_for(lambda: any('"customers":1' in line.replace(" ", "")
                                for line in live.stdout), 5)
    assert took is not None, live.stderr
    live.send(customer(2), state({"bookmarks": {"customers": 2}}))
    assert live.close() == 0, "".join(live.stderr)
    states = [json.loads(line) for line in live.stdout if line.strip()]
    assert states == [{"bookmarks": {"customers": 1}}, {"bookmarks": {"customers": 2}}]


def test_state_never_passes_an_unanswered_record(fake_gorgias, tmp_path):
    live = LiveTarget(config(fake_gorgias.base_url, STREAMS, max_concurrency=4), tmp_path)
    live.send(schema("customers", CUSTOMER_PROPS, ["email"]), customer(1), state({"b": 1}))
    assert wait_for(lambda: len(fake_gorgias.store["customers"]) == 1, 5) is not None
    # State 1 is written before records 2 and 3 are read (on a busy machine the ticker could
    # otherwise write state 2 first, and state 1 never: the newest safe state wins).
    assert wait_for(lambda: any('"b":1' in line.replace(" ", "") for line in live.stdout),
                    5) is not None, "".join(live.stderr)
    # One of records 2 and 3 (sent side by side) is answered 3 s late, the other at once.
    fake_gorgias.add_fault(method="POST", path="/api/customers", delay_ms=3000)
    live.send(customer(2), state({"b": 2}), customer(3), state({"b": 3}))
    assert wait_for(lambda: len(fake_gorgias.store["customers"]) == 3, 5) is not None
    time.sleep(2.3)  # past STATE_INTERVAL while the slow record is still unanswered
    early = [json.loads(line) for line in live.stdout if line.strip()]
    # Records 2 and 3 go out concurrently: whichever took the delay holds its state back.
    (slow,) = [r for r in fake_gorgias.requests if r["fault"]]
    assert early == ([{"b": 1}] if slow["body"]["email"] == "c2@example.com"
                     else [{"b": 1}, {"b": 2}])
    assert live.close() == 0, "".join(live.stderr)
    assert [json.loads(line) for line in live.stdout if line.strip()][-1] == {"b": 3}
