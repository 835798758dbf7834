"""Record -> request: placeholders, exclusion, JSON encoding, batch grouping."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from target_gorgias.errors import RecordError
from target_gorgias.request_builder import RequestBuilder, path_segment, to_json
from target_gorgias.settings import load_settings

BASE = {"api_url": "http://127.0.0.1:9", "email": "a@example.com", "api_key": "k3y-secret"}


def builder(stream_cfg, key_properties=(), max_body_bytes=1024 * 1024, name="s"):
    s = load_settings({**BASE, "streams": {name: stream_cfg}})
    return RequestBuilder(name, s.stream(name), list(key_properties), max_body_bytes)


def units(b, records):
    return [b.unit(dict(r), i, i + 1) for i, r in enumerate(records)]


def test_values_become_valid_json():
    body = {"at": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
            "d": dt.date(2024, 1, 2), "n": Decimal("12.50"), "i": Decimal("7"),
            "nested": [{"x": Decimal("1.25")}]}
    assert json.loads(to_json(body)) == {"at": "2024-01-02T03:04:05+00:00", "d": "2024-01-02",
                                         "n": 12.5, "i": 7, "nested": [{"x": 1.25}]}


def test_sdc_and_path_fields_left_out_and_dotted_exclusion():
    b = builder({"endpoint": "add_ticket_message", "message_intent": "send",
                 "exclude_attributes": ["internal", "sender.phone"]})
    u = b.unit({"ticket_id": 5, "channel": "email", "from_agent": False, "internal": 1,
                "sender": {"email": "a@b.c", "phone": "1"}, "_sdc_extracted_at": "x"}, 0, 1)
    assert u.path == "/api/tickets/5/messages"
    assert json.loads(u.body) == {"channel": "email", "from_agent": False,
                                  "sender": {"email": "a@b.c"},
                                  "source": {"type": "email", "from": {"address": "a@b.c"}}}


def test_keep_path_params_and_custom_mapping():
    b = builder({"endpoint": "update_tag", "keep_path_params": True,
                 "path_params": {"id": "tag.gorgias_id"}})
    u = b.unit({"tag": {"gorgias_id": 9}, "name": "vip"}, 0, 1)
    assert u.path == "/api/tags/9"
    assert json.loads(u.body) == {"tag": {"gorgias_id": 9}, "name": "vip"}


def test_include_attributes_allowlist():
    b = builder({"endpoint": "create_customer", "include_attributes": ["email", "meta.tier"]})
    u = b.unit({"email": "a@b.c", "junk": 1, "meta": {"tier": "gold", "x": 1}}, 0, 1)
    assert json.loads(u.body) == {"email": "a@b.c", "meta": {"tier": "gold"},
                                  "channels": [{"type": "email", "address": "a@b.c",
                                                "preferred": True}]}


def test_delete_sends_no_body():
    b = builder({"endpoint": "delete_ticket"})
    u = b.unit({"ticket_id": 3, "reason": "spam"}, 0, 1)
    assert u.body is None and u.path == "/api/tickets/3"


def test_delete_with_body_template_keeps_body():
    b = builder({"endpoint": "remove_ticket_tags"})
    u = b.unit({"ticket_id": 3, "names": ["a"]}, 0, 1)
    assert json.loads(u.body) == {"names": ["a"]}


@pytest.mark.parametrize(("value", "segment"), [
    (5, "5"), (Decimal("5"), "5"), ("a/b", "a%2Fb"), ("a?b#c", "a%3Fb%23c"), ("%2e", "%252e"),
    ("a b", "a%20b"), ("é", "%C3%A9"), ("...", "..."), ("x\r\ny", "x%0D%0Ay"),
])
def test_path_segment_encoding(value, segment):
    assert path_segment(value) == segment


@pytest.mark.parametrize("value", [None, "", "  ", ".", "..", {"a": 1}, [1], True])
def test_path_segment_rejects(value):
    with pytest.raises(ValueError):
        path_segment(value)


def test_missing_path_param_names_stream_record_field():
    b = builder({"endpoint": "add_ticket_message"}, name="msgs")
    with pytest.raises(RecordError) as info:
        b.unit({"channel": "email"}, 0, 7)
    text = str(info.value)
    assert "stream 'msgs'" in text and "record 7" in text and "'ticket_id'" in text


def test_oversized_body_rejected_with_size():
    b = builder({"endpoint": "create_tag"}, max_body_bytes=50)
    with pytest.raises(RecordError) as info:
        b.unit({"name": "x" * 100}, 0, 1)
    assert "over max_body_bytes (50)" in str(info.value) and "bytes" in str(info.value)


def test_count_batches_split_by_size_and_url():
    b = builder({"method": "POST", "path": "/api/things/{group}",
                 "batch": {"enabled": True, "size": 2}})
    recs = [{"group": g, "v": i} for i, g in enumerate("aaabab")]
    calls = list(b.calls(units(b, recs)))
    got = [(c.path, [json.loads(c.body)[i]["v"] for i in range(len(c.units))]) for c in calls]
    assert got == [("/api/things/a", [0, 1]), ("/api/things/a", [2, 4]),
                   ("/api/things/b", [3, 5])]


def test_field_grouping_wrap_and_pluck():
    b = builder({"method": "DELETE", "path": "/api/tags",
                 "batch": {"enabled": True, "size": 10, "grouping": "field", "group_by": "kind",
                           "wrap_key": "ids", "pluck": "id"}})
    recs = [{"id": 1, "kind": "x"}, {"id": 2, "kind": "y"}, {"id": 3, "kind": "x"}]
    calls = list(b.calls(units(b, recs)))
    assert [json.loads(c.body) for c in calls] == [{"ids": [1, 3]}, {"ids": [2]}]
    assert [c.positions for c in calls] == [[1, 3], [2]]


def test_batches_respect_max_body_bytes():
    b = builder({"endpoint": "create_tag", "batch": {"enabled": True, "size": 100}},
                max_body_bytes=200)
    calls = list(b.calls(units(b, [{"name": f"tag-{i:03d}"} for i in range(20)])))
    assert len(calls) > 1
    assert all(len(c.body) <= 200 for c in calls)
    assert sum(len(c.units) for c in calls) == 20


def test_source_keys_and_lookup():
    b = builder({"endpoint": "create_customer"}, key_properties=["crm_id"])
    u = b.unit({"crm_id": 7, "email": "a@b.c", "external_id": "e1"}, 0, 1)
    assert u.source_key == {"crm_id": 7}
    assert u.lookup is not None
    assert (u.lookup.path, u.lookup.params) == ("/api/customers", (("email", "a@b.c"),))
    assert u.lookup.matches({"email": "A@B.C"}) and not u.lookup.matches({"email": "x@b.c"})
    tag = builder({"endpoint": "create_tag"}).unit({"name": "VIP"}, 0, 1).lookup
    assert tag is not None and tag.params == (("limit", "100"),)  # no name filter: scanned
    assert tag.matches({"name": "VIP"}) and not tag.matches({"name": "vip"})
    msg = builder({"endpoint": "add_ticket_message"}).unit(
        {"ticket_id": 42, "external_id": "m-1", "channel": "email", "from_agent": False}, 0, 1)
    assert msg.lookup is not None and msg.lookup.params == (("ticket_id", "42"), ("limit", "100"))
    assert builder({"endpoint": "add_ticket_message"}).unit(
        {"ticket_id": 42, "channel": "email", "from_agent": False}, 0, 1).lookup is None


def test_state_queue_stays_small_and_waits_for_open_units():
    from target_gorgias.delivery import StateTracker

    tracker = StateTracker()
    for i in range(10_000):  # a tap that emits STATE after every record (dry-run-like)
        seq = tracker.begin_record()
        tracker.add_unit(seq)
        tracker.settle([seq])
        tracker.add_state({"n": i})
    assert len(tracker._states) == 0 and tracker.safe_state() == {"n": 9999}
    a = tracker.begin_record()
    tracker.add_unit(a)
    tracker.add_state({"n": "a"})
    b = tracker.begin_record()
    tracker.add_unit(b)
    tracker.add_state({"n": "b"})
    tracker.settle([b])
    assert tracker.safe_state() == {"n": 9999}  # record a is still open
    tracker.settle([a])
    assert tracker.safe_state() == {"n": "b"}
