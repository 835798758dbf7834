"""Issue 12: what passes against the fake must pass against Gorgias.

The fake enforces Gorgias' rules (reference notes, section 11); the target shapes bodies to
meet them, refuses what it cannot fix before sending, and its preflight predicts the 400s.
Everything runs the real CLI against the fake server on 127.0.0.1.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import requests

from target_gorgias import body_rules
from target_gorgias.custom_fields import coerce
from target_gorgias.endpoints import TEMPLATES
from target_gorgias.request_builder import RequestBuilder
from target_gorgias.settings import load_settings
from tests.support import API_KEY, EMAIL, config, infer_schema, record, run_target

SOURCE = {"type": "email", "from": {"address": "ada@example.com"}}
MSG = {"channel": "email", "from_agent": False, "via": "api", "body_text": "hi",
       "source": SOURCE}


class Api:
    """Direct HTTP to the fake server (set-up and the fake's own rules)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.s = requests.Session()
        self.s.auth = (EMAIL, API_KEY)

    def __call__(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.s.request(method, self.base + path, json=body, timeout=10)

    def make(self, path: str, body: Any) -> dict[str, Any]:
        r = self("POST", path, body)
        assert r.status_code == 201, r.text
        return r.json()

    def ticket(self) -> int:
        return self.make("/api/tickets", {"messages": [MSG]})["id"]

    def field(self, data_type: str) -> int:
        return self.make("/api/custom-fields", {"object_type": "Ticket", "label": data_type,
                                                "definition": {"data_type": data_type}})["id"]


@pytest.fixture
def api(fake_gorgias) -> Api:
    return Api(fake_gorgias.base_url)


def run(srv, streams: dict[str, Any], stream: str, records: list[dict[str, Any]], tmp_path,
        **extra: Any):
    cfg = config(srv.base_url, streams, **extra)
    return run_target(cfg, [infer_schema(stream, records), *[record(stream, r)
                                                             for r in records]], tmp_path)


def writes(srv) -> list[dict[str, Any]]:
    return [r for r in srv.requests if r["method"] != "GET"
            and r["headers"].get("User-Agent", "").startswith("target-gorgias/")]


# -- the fake enforces Gorgias' rules ------------------------------------------------------

def test_fake_refuses_messages_without_from_address(fake_gorgias, api):
    for from_agent in (False, True):
        body = {"messages": [{"channel": "email", "from_agent": from_agent, "body_text": "x"}]}
        r = api("POST", "/api/tickets", body)
        assert r.status_code == 400
        assert r.json() == {"error": {"msg": "From field is missing or empty", "data": {
            "messages": {"0": {"source": {"from": ["From field is missing or empty"]}}}}}}
    t = api.ticket()
    r = api("POST", f"/api/tickets/{t}/messages",
            {"channel": "email", "from_agent": True, "source": {"from": {"address": " "}}})
    assert r.status_code == 400 and r.json()["error"]["msg"] == "From field is missing or empty"
    assert len(fake_gorgias.store["tickets"]) == 1 and len(fake_gorgias.store["messages"]) == 1


def test_fake_customers_need_channels(fake_gorgias, api):
    r = api("POST", "/api/customers", {"email": "a@x.io"})
    assert r.status_code == 400 and r.json()["error"] == {
        "msg": "Failed to create customer",
        "data": {"channels": ["Missing data for required field."]}}
    assert fake_gorgias.store["customers"] == {}


def test_fake_delivers_agent_messages_without_sent_datetime(fake_gorgias, api):
    t = api.ticket()
    base = f"/api/tickets/{t}/messages"
    agent = {**MSG, "from_agent": True, "receiver": {"email": "ada@example.com"}}
    api.make(base, {**agent, "sent_datetime": "2024-01-01T00:00:00Z"})  # imported: not sent
    api.make(base, {**agent, "channel": "internal-note"})  # a note is never sent
    api.make(base, MSG)  # from the customer: nothing to send
    sent = api.make(base, agent)
    assert [m["message_id"] for m in fake_gorgias.outbox] == [sent["id"]]
    assert fake_gorgias.outbox[0]["to"] == {"email": "ada@example.com"}
    assert sent["sent_datetime"]  # Gorgias fills it once sent
    assert requests.get(fake_gorgias.base_url + "/_fake/stats", timeout=5).json()[
        "messages_delivered"] == 1


def test_fake_answers_301_for_a_merged_customer(fake_gorgias, api):
    chans = [{"type": "email", "address": "a@x.io"}]
    a = api.make("/api/customers", {"email": "a@x.io", "channels": chans})["id"]
    b = api.make("/api/customers", {"email": "b@x.io", "channels": chans})["id"]
    r = api("PUT", f"/api/customers/merge?source_id={a}&target_id={b}")
    assert r.status_code == 202 and r.json()["id"] == b
    r = api.s.delete(f"{api.base}/api/customers/{a}", allow_redirects=False, timeout=5)
    assert r.status_code == 301 and r.headers["Location"] == f"/api/customers/{b}"
    assert list(fake_gorgias.store["customers"]) == [b]


# -- 1. custom fields: set only what the record says --------------------------------------

def test_set_custom_field_keeps_the_other_values_and_sends_typed_values(fake_gorgias, api,
                                                                        tmp_path):
    t, text, num, flag = api.ticket(), api.field("text"), api.field("number"), api.field("boolean")
    api("PUT", f"/api/tickets/{t}/custom-fields", [{"id": text, "value": "keep me"}])
    rows = [{"ticket_id": t, "id": num, "value": "1250.00"},
            {"ticket_id": t, "id": flag, "value": "true"}]
    res = run(fake_gorgias, {"cf": {"endpoint": "set_ticket_custom_fields"}}, "cf", rows,
              tmp_path)
    assert res.returncode == 0, res.stderr
    puts = {r["path"]: r["body"] for r in writes(fake_gorgias)}
    assert puts == {f"/api/tickets/{t}/custom-fields/{num}": {"value": 1250.0},
                    f"/api/tickets/{t}/custom-fields/{flag}": {"value": True}}
    held = {v["id"]: v["value"] for v in fake_gorgias.store["tickets"][t]["custom_fields"]}
    assert held == {text: "keep me", num: 1250.0, flag: True}


def test_custom_field_value_of_the_wrong_type_is_refused_without_a_write(fake_gorgias, api,
                                                                         tmp_path):
    t, num = api.ticket(), api.field("number")
    dead = tmp_path / "dead.jsonl"
    rows = [{"ticket_id": t, "id": num, "value": "about twelve"},
            {"ticket_id": t, "id": 999999, "value": "1"}]
    res = run(fake_gorgias, {"cf": {"endpoint": "set_ticket_custom_fields"}}, "cf", rows,
              tmp_path, on_error="continue", dead_letter_path=str(dead))
    assert res.returncode == 0, res.stderr
    assert writes(fake_gorgias) == []
    assert "'about twelve' is not a number" in res.stderr
    assert "custom field 999999 does not exist" in res.stderr
    assert "0 delivered, 2 failed" in res.stderr
    assert len(dead.read_text().splitlines()) == 2


def test_replace_all_template_deletes_what_it_does_not_send(fake_gorgias, api, tmp_path):
    t, a, b = api.ticket(), api.field("text"), api.field("number")
    api("PUT", f"/api/tickets/{t}/custom-fields", [{"id": a, "value": "x"}, {"id": b, "value": 1}])
    res = run(fake_gorgias, {"cf": {"endpoint": "replace_ticket_custom_fields"}}, "cf",
              [{"ticket_id": t, "id": b, "value": "2"}], tmp_path)
    assert res.returncode == 0, res.stderr
    (put,) = writes(fake_gorgias)
    assert put["path"] == f"/api/tickets/{t}/custom-fields" and put["body"] == [
        {"id": b, "value": 2}]
    assert fake_gorgias.store["tickets"][t]["custom_fields"] == [{"id": b, "value": 2}]
    assert "DELETED" in TEMPLATES["replace_ticket_custom_fields"].summary
    # Two replace-all calls for one ticket (here: batches of one) lose the first one's values:
    # the target warns, the fake shows the loss.
    res = run(fake_gorgias, {"cf": {"endpoint": "replace_ticket_custom_fields",
                                    "batch": {"size": 1}}}, "cf",
              [{"ticket_id": t, "id": a, "value": "y"}, {"ticket_id": t, "id": b, "value": 3}],
              tmp_path, max_concurrency=1)
    assert res.returncode == 0, res.stderr
    assert "is replaced a second time in this run" in res.stderr
    assert fake_gorgias.store["tickets"][t]["custom_fields"] == [{"id": b, "value": 3}]


@pytest.mark.parametrize(("data_type", "value", "expected"), [
    ("number", "1250.00", 1250.0), ("number", "12", 12), ("number", 3, 3),
    ("number", Decimal("2.5"), Decimal("2.5")), ("boolean", "False", False),
    ("boolean", True, True), ("text", 12, "12"), ("text", "x", "x"), ("text", None, None),
    (None, {"a": 1}, {"a": 1}),
])
def test_coerce(data_type, value, expected):
    assert coerce(data_type, value) == expected


@pytest.mark.parametrize(("data_type", "value"), [
    ("number", "abc"), ("number", True), ("number", "nan"), ("boolean", "yes"),
    ("boolean", 1), ("text", [1]),
])
def test_coerce_refuses(data_type, value):
    with pytest.raises(ValueError):
        coerce(data_type, value)


# -- 2. bodies Gorgias rejects -------------------------------------------------------------

def test_message_source_is_built_from_sender_receiver_and_channel(fake_gorgias, api, tmp_path):
    rec = {"external_id": "t-1", "messages": [
        {"channel": "email", "from_agent": False, "via": "api", "body_text": "hello",
         "sender": {"email": "ada@example.com", "name": "Ada"},
         "receiver": {"email": "support@acme.example"}}]}
    res = run(fake_gorgias, {"t": {"endpoint": "create_ticket"}}, "t", [rec], tmp_path)
    assert res.returncode == 0, res.stderr
    (post,) = writes(fake_gorgias)
    assert post["body"]["messages"][0]["source"] == {
        "type": "email", "from": {"address": "ada@example.com", "name": "Ada"},
        "to": [{"address": "support@acme.example"}]}
    (ticket,) = fake_gorgias.store["tickets"].values()
    assert ticket["messages"][0]["source"]["from"]["address"] == "ada@example.com"


def test_message_without_any_from_address_is_refused_before_sending(fake_gorgias, api,
                                                                   tmp_path):
    t = api.ticket()
    good = {"ticket_id": t, "channel": "email", "from_agent": True, "via": "api",
            "sender": {"email": "agent@example.com"}, "body_text": "ok"}
    bad = {"ticket_id": t, "channel": "email", "from_agent": True, "via": "api",
           "receiver": {"id": 1}, "body_text": "who from?"}
    res = run(fake_gorgias, {"m": {"endpoint": "add_ticket_message"}}, "m", [bad, good],
              tmp_path, on_error="continue", emit_responses=True)
    assert res.returncode == 0, res.stderr
    assert "stream 'm', record 1, field 'source.from.address'" in res.stderr
    assert [r["body"]["body_text"] for r in writes(fake_gorgias)] == ["ok"]
    assert [r["ok"] for r in res.responses] == [False, True]
    # on_error fail (the default): the run stops, nothing is sent for the bad record.
    fake_gorgias.reset()
    res = run(fake_gorgias, {"t": {"endpoint": "create_ticket"}}, "t",
              [{"messages": [{**good, "sender": None}]}], tmp_path)
    assert res.returncode == 1
    assert "stream 't', record 1, field 'messages.0.source.from.address'" in res.stderr
    assert writes(fake_gorgias) == []


def test_update_message_gets_via_and_needs_channel_and_from_agent(fake_gorgias, api, tmp_path):
    t = api.ticket()
    m = api.make(f"/api/tickets/{t}/messages", MSG)["id"]
    rows = [{"ticket_id": t, "message_id": m, "channel": "email", "from_agent": False,
             "body_text": "fixed"},
            {"ticket_id": t, "message_id": m, "body_text": "no channel"}]
    res = run(fake_gorgias, {"u": {"endpoint": "update_ticket_message"}}, "u", rows, tmp_path,
              on_error="continue")
    assert res.returncode == 0, res.stderr
    (put,) = writes(fake_gorgias)
    assert put["body"] == {"channel": "email", "from_agent": False, "body_text": "fixed",
                           "via": "api"} and put["status"] == 202
    assert "stream 'u', record 2, field 'channel': Gorgias requires it" in res.stderr
    assert "from_agent" in res.stderr


def test_customer_channels_built_from_email_or_refused(fake_gorgias, tmp_path):
    rows = [{"email": "ada@example.com", "name": "Ada"}, {"name": "No Email"}]
    res = run(fake_gorgias, {"c": {"endpoint": "create_customer"}}, "c", rows, tmp_path,
              on_error="continue")
    assert res.returncode == 0, res.stderr
    (post,) = writes(fake_gorgias)
    assert post["body"]["channels"] == [{"type": "email", "address": "ada@example.com",
                                         "preferred": True}]
    assert "stream 'c', record 2, field 'channels'" in res.stderr
    assert [c["email"] for c in fake_gorgias.store["customers"].values()] == ["ada@example.com"]


def test_manual_patch_is_allowed_with_a_warning(fake_gorgias, api, tmp_path):
    tag = api.make("/api/tags", {"name": "old"})["id"]
    res = run(fake_gorgias, {"p": {"method": "PATCH", "path": "/api/tags/{id}"}}, "p",
              [{"id": tag, "name": "new"}], tmp_path)
    assert "streams.p: manual method PATCH: Gorgias documents only PUT" in res.stderr
    (sent,) = writes(fake_gorgias)
    assert sent["method"] == "PATCH" and sent["status"] == 405
    assert res.returncode == 1 and "HTTP 405" in res.stderr


# -- 3. side effects: message_intent -------------------------------------------------------

AGENT_TICKET = {"external_id": "hist-1", "created_datetime": "2023-03-01T10:00:00+00:00",
                "messages": [{"channel": "email", "from_agent": True, "via": "api",
                              "sender": {"email": "agent@example.com"},
                              "receiver": {"email": "ada@example.com"},
                              "body_text": "Your refund is on its way"}]}


def test_import_is_the_default_and_nothing_is_delivered(fake_gorgias, api, tmp_path):
    res = run(fake_gorgias, {"t": {"endpoint": "create_ticket"}}, "t", [AGENT_TICKET], tmp_path)
    assert res.returncode == 0, res.stderr
    (post,) = writes(fake_gorgias)
    assert post["body"]["messages"][0]["sent_datetime"] == "2023-03-01T10:00:00+00:00"
    assert fake_gorgias.outbox == []
    assert "message_intent import" in res.stderr
    # add_ticket_message: the message's created_datetime, else now.
    t = next(iter(fake_gorgias.store["tickets"]))
    msg = {**AGENT_TICKET["messages"][0], "ticket_id": t}
    res = run(fake_gorgias, {"m": {"endpoint": "add_ticket_message"}}, "m",
              [{**msg, "created_datetime": "2023-03-02T00:00:00+00:00"}, msg], tmp_path)
    assert res.returncode == 0, res.stderr
    # The two calls go out concurrently: tell them apart by their own created_datetime.
    bodies = [r["body"] for r in writes(fake_gorgias)[1:]]
    (first,) = [b for b in bodies if "created_datetime" in b]
    (second,) = [b for b in bodies if "created_datetime" not in b]
    assert first["sent_datetime"] == "2023-03-02T00:00:00+00:00"
    assert second["sent_datetime"].startswith("20") and len(second["sent_datetime"]) > 19
    assert fake_gorgias.outbox == []


def test_send_intent_lets_gorgias_deliver(fake_gorgias, tmp_path):
    res = run(fake_gorgias, {"t": {"endpoint": "create_ticket", "message_intent": "send"}}, "t",
              [AGENT_TICKET], tmp_path)
    assert res.returncode == 0, res.stderr
    (post,) = writes(fake_gorgias)
    assert "sent_datetime" not in post["body"]["messages"][0]
    (delivered,) = fake_gorgias.outbox
    assert delivered["to"] == [{"address": "ada@example.com"}]
    assert "message_intent send" in res.stderr


def test_dry_run_shows_the_intent(fake_gorgias, tmp_path):
    for intent in ("import", "send"):
        res = run(fake_gorgias, {"t": {"endpoint": "create_ticket", "message_intent": intent}},
                  "t", [AGENT_TICKET], tmp_path, dry_run=True)
        assert res.returncode == 0, res.stderr
        line = next(x for x in res.stderr.splitlines() if "DRY RUN request 1" in x)
        assert f"message_intent {intent}" in line
    assert fake_gorgias.requests == []


# -- 4. a merged customer ------------------------------------------------------------------

def test_deleting_a_merged_customer_is_its_own_outcome(fake_gorgias, api, tmp_path):
    chans = [{"type": "email", "address": "a@x.io"}]
    a = api.make("/api/customers", {"email": "a@x.io", "channels": chans})["id"]
    b = api.make("/api/customers", {"email": "b@x.io", "channels": chans})["id"]
    api("PUT", f"/api/customers/merge?source_id={a}&target_id={b}")
    res = run(fake_gorgias, {"d": {"endpoint": "delete_customer"}}, "d",
              [{"customer_id": a}, {"customer_id": b}], tmp_path, emit_responses=True)
    assert res.returncode == 0, res.stderr
    assert sorted((r["method"], r["path"], r["status"]) for r in writes(fake_gorgias)) == [
        ("DELETE", f"/api/customers/{a}", 301), ("DELETE", f"/api/customers/{b}", 204)]
    assert not [r for r in fake_gorgias.requests if r["method"] == "GET"]  # never followed
    merged, deleted = sorted(res.responses, key=lambda r: r["status_code"])[::-1]
    assert merged["ok"] is True and merged["outcome"] == "merged"
    assert deleted["ok"] is True and deleted["outcome"] is None
    assert "2 delivered, 0 failed" in res.stderr and "1 merged" in res.stderr
    assert "failed (on_error" not in res.stderr.lower()


# -- 5. the preflight ----------------------------------------------------------------------

BAD_TICKETS = [
    {"external_id": "ok", "messages": [MSG]},
    {"external_id": "unknown", "messages": [MSG], "description": "no such field"},
    {"external_id": "missing"},
    {"external_id": "types", "messages": [{**MSG, "from_agent": "no"}], "status": "pending",
     "created_datetime": "yesterday"},
]


def test_dry_run_flags_every_record_gorgias_would_reject(fake_gorgias, tmp_path):
    res = run(fake_gorgias, {"t": {"endpoint": "create_ticket"}}, "t", BAD_TICKETS, tmp_path,
              dry_run=True)
    assert res.returncode == 0, res.stderr
    flagged = [x.split("PREFLIGHT: ", 1)[1] for x in res.stderr.splitlines() if "PREFLIGHT: " in x
               and "field" in x]
    assert any(x.startswith("stream 't', record 2, field 'description': is not a field")
               for x in flagged)
    assert any(x.startswith("stream 't', record 3, field 'messages': is required") for x in flagged)
    assert any(x.startswith("stream 't', record 4, field 'messages.0.from_agent': must be a "
                            "boolean") for x in flagged)
    assert any(x.startswith("stream 't', record 4, field 'status': must be one of") for x in flagged)
    assert any(x.startswith("stream 't', record 4, field 'created_datetime': must be an ISO")
               for x in flagged)
    assert not any("record 1," in x for x in flagged)
    assert "PREFLIGHT: 3 records Gorgias would reject (t: 3)" in res.stderr
    assert fake_gorgias.requests == []
    # preflight: false turns it off for a dry run.
    res = run(fake_gorgias, {"t": {"endpoint": "create_ticket"}}, "t", BAD_TICKETS, tmp_path,
              dry_run=True, preflight=False)
    assert "PREFLIGHT" not in res.stderr


def test_preflight_on_a_real_run_sends_no_request_for_rejected_records(fake_gorgias, tmp_path):
    dead = tmp_path / "dead.jsonl"
    res = run(fake_gorgias, {"t": {"endpoint": "create_ticket"}}, "t", BAD_TICKETS, tmp_path,
              preflight=True, on_error="continue", dead_letter_path=str(dead))
    assert res.returncode == 0, res.stderr
    assert [r["body"]["external_id"] for r in writes(fake_gorgias)] == ["ok"]
    assert "1 delivered, 3 failed" in res.stderr
    letters = [json.loads(x) for x in dead.read_text().splitlines()]
    assert [x["record"]["external_id"] for x in letters] == ["unknown", "missing", "types"]
    assert all(x["status"] is None for x in letters)
    # on_error fail: the first rejected record stops the run; it is never sent.
    fake_gorgias.reset()
    res = run(fake_gorgias, {"t": {"endpoint": "create_ticket"}}, "t", BAD_TICKETS[1:], tmp_path,
              preflight=True)
    assert res.returncode == 1
    assert "stream 't', record 1, field 'description'" in res.stderr
    assert writes(fake_gorgias) == []


def test_without_preflight_gorgias_itself_rejects(fake_gorgias, tmp_path):
    """The fake agrees with the preflight: the same record is answered 400 when sent."""
    res = run(fake_gorgias, {"t": {"endpoint": "create_ticket"}}, "t", [BAD_TICKETS[1]],
              tmp_path)
    assert res.returncode == 1
    assert "HTTP 400" in res.stderr and "description: No such field." in res.stderr


@pytest.mark.parametrize("template_id", sorted(body_rules.BODIES))
def test_every_template_example_passes_the_preflight(template_id):
    template = TEMPLATES[template_id]
    s = load_settings({"api_url": "http://127.0.0.1:9", "email": "a@b.c", "api_key": "k",
                       "streams": {"s": {"endpoint": template_id}}})
    stream = s.stream("s")
    assert stream is not None
    unit = RequestBuilder("s", stream, [], 10**6, preflight=True).unit(
        dict(template.example), 0, 1)
    assert unit.problems == []


@pytest.mark.parametrize(("endpoint", "body", "field"), [
    ("create_tag", {}, "name"),
    ("create_tag", {"name": "x" * 257}, "name"),
    ("create_user", {"email": "a@b.c", "name": "A", "role": {"name": "boss"}}, "role.name"),
    ("create_customer", {"channels": [{"type": "email"}]}, "channels.0.address"),
    ("add_ticket_tags", {"names": "vip"}, "names"),
    ("update_ticket", {"spam": "no"}, "spam"),
    ("create_custom_field", {"object_type": "Order", "label": "x", "definition": {}},
     "object_type"),
    ("add_ticket_message", {**MSG, "source": {"to": []}}, "source.from"),
])
def test_check_names_the_field(endpoint, body, field):
    assert field in [f for f, _ in body_rules.check(endpoint, body)]
