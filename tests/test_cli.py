"""End-to-end behaviour of the CLI against the fake server (the foundation issue)."""

from __future__ import annotations

import json

import requests

from tests.support import API_KEY, EMAIL, config, record, run_target, schema, state

SOURCE = {"source": {"type": "email", "from": {"address": "ada@example.com"}}}
CUSTOMER_SCHEMA = schema("customers", {
    "id": {"type": "integer"}, "email": {"type": "string"}, "name": {"type": "string"},
    "created_datetime": {"type": "string", "format": "date-time"},
    "meta": {"type": "object", "properties": {"ltv": {"type": "number"}}},
}, ["id"])


def customers(n: int, start: int = 1) -> list[dict]:
    return [record("customers", {"id": i, "email": f"c{i}@example.com", "name": f"C {i}",
                                 "meta": {"ltv": 10.25 * i}}) for i in range(start, start + n)]


def test_records_become_customers_and_state_follows(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url,
                 {"customers": {"endpoint": "create_customer", "exclude_attributes": ["id"]}})
    msgs = [CUSTOMER_SCHEMA, *customers(3), state({"bookmarks": {"customers": 3}})]
    res = run_target(cfg, msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    stored = sorted(c["email"] for c in fake_gorgias.store["customers"].values())
    assert stored == ["c1@example.com", "c2@example.com", "c3@example.com"]
    bodies = [r["body"] for r in fake_gorgias.requests]
    assert {"email": "c2@example.com", "name": "C 2", "meta": {"ltv": 20.5}, "channels": [
        {"type": "email", "address": "c2@example.com", "preferred": True}]} in bodies
    assert res.stdout_lines == [{"bookmarks": {"customers": 3}}]
    assert "3 delivered, 0 failed" in res.stderr


def writes(srv) -> list[dict]:
    """The write requests (not the lookups ``lookup_before_create: auto`` makes first)."""
    return [r for r in srv.requests if r["method"] != "GET"]


def test_datetimes_and_decimals_sent_as_json(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"customers": {"endpoint": "create_customer",
                                                       "exclude_attributes": ["id"]}})
    msgs = [CUSTOMER_SCHEMA, record("customers", {
        "id": 1, "email": "t@example.com", "meta": {"ltv": 1234.5678}})]
    res = run_target(cfg, msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    [sent] = writes(fake_gorgias)
    assert sent["body"]["meta"] == {"ltv": 1234.5678}
    assert sent["raw_body"].count("1234.5678") == 1


def test_unconfigured_stream_fails_at_schema(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"orders_*": {"endpoint": "create_ticket"},
                                         "tags": {"endpoint": "create_tag"}})
    res = run_target(cfg, [CUSTOMER_SCHEMA, *customers(1)], tmp_path)
    assert res.returncode == 1
    assert "stream 'customers' has no entry in the 'streams' setting" in res.stderr
    assert "orders_*, tags" in res.stderr
    assert fake_gorgias.requests == []
    assert "Traceback" not in res.stderr


def test_missing_path_param_fails_without_request(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"msgs": {"endpoint": "add_ticket_message"}})
    msgs = [schema("msgs", {"ticket_id": {"type": "integer"}, "channel": {"type": "string"}}),
            record("msgs", {"channel": "email", "from_agent": True})]
    res = run_target(cfg, msgs, tmp_path)
    assert res.returncode == 1
    assert ("stream 'msgs', record 1, field 'ticket_id': path parameter {ticket_id} needs this "
            "field, which is missing") in res.stderr
    assert fake_gorgias.requests == []
    assert res.stdout == ""


def test_gorgias_400_reported_with_fields_and_position(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"tickets": {"endpoint": "create_ticket"}})
    msgs = [schema("tickets", {"subject": {"type": "string"}, "messages": {"type": "array"}}),
            record("tickets", {"subject": "ok", "messages": [{"channel": "email",
                                                              "from_agent": False, **SOURCE}]}),
            state({"pos": 1}),
            record("tickets", {"subject": "no channel", "messages": [{"from_agent": False,
                                                                      **SOURCE}]}),
            state({"pos": 2})]
    res = run_target(cfg, msgs, tmp_path)
    assert res.returncode == 1
    line = next(ln for ln in res.stderr.splitlines() if "Run failed" in ln)
    assert "stream 'tickets', record 2" in line and "HTTP 400" in line
    assert "Failed to create ticket" in line
    assert len(fake_gorgias.store["tickets"]) == 1
    # State covers only what Gorgias accepted.
    assert res.stdout_lines == [{"pos": 1}]


def test_401_says_credentials_refused_and_key_never_printed(fake_gorgias, tmp_path):
    secret = "sk-DO-NOT-LEAK-9f8e7d"
    cfg = config(fake_gorgias.base_url, {"customers": {"endpoint": "create_customer",
                                                       "exclude_attributes": ["id"]}},
                 api_key=secret)
    res = run_target(cfg, [CUSTOMER_SCHEMA, *customers(1)], tmp_path,
                     env={"TARGET_GORGIAS_LOGLEVEL": "DEBUG"})
    assert res.returncode == 1
    assert "HTTP 401" in res.stderr and "refused the credentials" in res.stderr
    assert secret not in res.stderr and secret not in res.stdout
    assert fake_gorgias.store["customers"] == {}


def test_dry_run_sends_nothing_and_redacts(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"customers": {"endpoint": "create_customer",
                                                       "exclude_attributes": ["id"]}},
                 dry_run=True, dry_run_sample=2, request_headers="X-Team:data,X-Trace:a:b")
    msgs = [CUSTOMER_SCHEMA, *customers(50), state({"n": 50})]
    res = run_target(cfg, msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    assert fake_gorgias.requests == []
    assert res.stdout == ""  # no state: nothing was delivered
    assert res.stderr.count("DRY RUN request") == 2
    assert '"url": "' + fake_gorgias.base_url + '/api/customers"' in res.stderr
    assert '"X-Trace": "a:b"' in res.stderr
    assert "Basic <redacted>" in res.stderr and API_KEY not in res.stderr
    assert "built 50 requests for 50 records" in res.stderr


def test_request_headers_reach_gorgias(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url,
                 {"tags": {"endpoint": "create_tag", "headers": {"X-Stream": "tags"}}},
                 request_headers="X-Team:data, X-Trace:a:b:c")
    res = run_target(cfg, [schema("tags", {"name": {"type": "string"}}),
                           record("tags", {"name": "vip"})], tmp_path)
    assert res.returncode == 0, res.stderr
    lookup, sent = fake_gorgias.requests  # lookup_before_create: auto looks the head up
    assert lookup["method"] == "GET"
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    for got in (headers, {k.lower(): v for k, v in lookup["headers"].items()}):
        assert got["x-team"] == "data" and got["x-trace"] == "a:b:c" and got["x-stream"] == "tags"
    assert headers["x-stream"] == "tags"
    assert headers["content-type"] == "application/json"


def test_config_error_exits_before_reading(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"t": {"endpoint": "create_tagz"}},
                 request_headers="Authorization:Bearer x")
    res = run_target(cfg, [], tmp_path)
    assert res.returncode == 1
    assert "streams.t.endpoint: unknown template 'create_tagz'" in res.stderr
    assert "'Authorization' is set by the target" in res.stderr


def test_meltano_test_stream_is_a_connectivity_check(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {})
    msgs = [schema("meltano_test_stream", {"id": {"type": "integer"}}),
            record("meltano_test_stream", {"id": 1}), state({"x": 1})]
    res = run_target(cfg, msgs, tmp_path)
    assert res.returncode == 0, res.stderr
    assert [(r["method"], r["path"]) for r in fake_gorgias.requests] == [("GET", "/api/account")]
    for line in (res.stdout + res.stderr).lower().splitlines():
        assert "error" not in line and "exception" not in line, line
    bad = run_target({**cfg, "api_key": "wrong-key"}, msgs, tmp_path)
    assert bad.returncode == 1 and "connection check failed" in bad.stderr
    assert "HTTP 401" in bad.stderr


def test_batching_count_wrap_and_url_split(fake_gorgias, tmp_path):
    # Create 5 tags, then delete them in bulk: DELETE /api/tags {"ids": [...]}, size 2.
    for i in range(5):
        res = run_target(config(fake_gorgias.base_url, {"tags": {"endpoint": "create_tag"}}),
                         [schema("tags", {"name": {"type": "string"}}),
                          record("tags", {"name": f"t{i}"})], tmp_path)
        assert res.returncode == 0, res.stderr
    ids = sorted(fake_gorgias.store["tags"])
    cfg = config(fake_gorgias.base_url,
                 {"gone": {"endpoint": "delete_tags", "batch": {"size": 2}}})
    res = run_target(cfg, [schema("gone", {"id": {"type": "integer"}}),
                           *[record("gone", {"id": i}) for i in ids]], tmp_path)
    assert res.returncode == 0, res.stderr
    deletes = [r for r in fake_gorgias.requests if r["method"] == "DELETE"]
    assert sorted(r["body"]["ids"] for r in deletes) == [ids[0:2], ids[2:4], ids[4:]]
    assert fake_gorgias.store["tags"] == {}


def test_batching_by_field_into_json_array(fake_gorgias, tmp_path):
    res = run_target(config(fake_gorgias.base_url, {"t": {"endpoint": "create_ticket"}}),
                     [schema("t", {"messages": {"type": "array"}}),
                      *[record("t", {"messages": [{"channel": "email", "from_agent": False,
                                                   **SOURCE}]})
                        for _ in range(2)]], tmp_path)
    assert res.returncode == 0, res.stderr
    t1, t2 = sorted(fake_gorgias.store["tickets"])
    f1, f2 = (requests.post(fake_gorgias.base_url + "/api/custom-fields", auth=(EMAIL, API_KEY),
                            json={"object_type": "Ticket", "label": label,
                                  "definition": {"data_type": "text"}}, timeout=5).json()["id"]
              for label in ("one", "two"))
    cfg = config(fake_gorgias.base_url, {"cf": {"endpoint": "replace_ticket_custom_fields"}})
    rows = [{"ticket_id": t1, "id": f1, "value": "a"}, {"ticket_id": t2, "id": f1, "value": "b"},
            {"ticket_id": t1, "id": f2, "value": "c"}]
    res = run_target(cfg, [schema("cf", {"ticket_id": {}, "id": {}, "value": {}}),
                           *[record("cf", r) for r in rows]], tmp_path)
    assert res.returncode == 0, res.stderr
    puts = [r for r in fake_gorgias.requests if r["method"] == "PUT"]
    assert {p["path"]: p["body"] for p in puts} == {
        f"/api/tickets/{t1}/custom-fields": [{"id": f1, "value": "a"}, {"id": f2, "value": "c"}],
        f"/api/tickets/{t2}/custom-fields": [{"id": f1, "value": "b"}],
    }
    assert len(puts) == 2


def test_stream_maps_and_metadata_columns(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"people": {"endpoint": "create_customer"}},
                 add_record_metadata=True,
                 stream_maps={"customers": {"__alias__": "people", "id": "__NULL__",
                                            "__key_properties__": ["email"],
                                            "name": "'VIP ' + name"}})
    res = run_target(cfg, [CUSTOMER_SCHEMA, *customers(2)], tmp_path)
    assert res.returncode == 0, res.stderr
    bodies = [r["body"] for r in writes(fake_gorgias)]
    assert sorted(b["name"] for b in bodies) == ["VIP C 1", "VIP C 2"]
    assert sorted(b["email"] for b in bodies) == ["c1@example.com", "c2@example.com"]
    assert all(not any(k.startswith("_sdc_") for k in b) for b in bodies)


def test_flattening(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url,
                 {"customers": {"endpoint": "create_customer", "exclude_attributes": ["id"]}},
                 flattening_enabled=True, flattening_max_depth=1)
    res = run_target(cfg, [CUSTOMER_SCHEMA, *customers(1)], tmp_path)
    # meta__ltv is not a Gorgias customer field: the server rejects it, naming the field.
    assert res.returncode == 1
    assert "meta__ltv" in res.stderr and "No such field" in res.stderr


def test_validate_records_names_the_stream(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"customers": {"endpoint": "create_customer"}})
    res = run_target(cfg, [CUSTOMER_SCHEMA, record("customers", {"id": "not-an-int"})], tmp_path)
    assert res.returncode == 1
    assert ("stream 'customers', record 1, field 'id': does not match the stream's schema: "
            "'not-an-int' is not of type 'integer'") in res.stderr
    assert "Traceback" not in res.stderr
    assert fake_gorgias.requests == []
    res = run_target({**cfg, "validate_records": False,
                      "streams": {"customers": {"endpoint": "create_customer",
                                                "exclude_attributes": ["id"]}}},
                     [CUSTOMER_SCHEMA, record("customers", {"id": "x", "email": "v@e.com"})],
                     tmp_path)
    assert res.returncode == 0, res.stderr


def test_about_formats():
    import subprocess

    from tests.support import CLI
    for fmt in ("json", "markdown"):
        out = subprocess.run([CLI, "--about", "--format", fmt], capture_output=True, text=True,
                             check=True).stdout
        assert "rate_limit_window" in out and "dry_run" in out
    about = json.loads(subprocess.run([CLI, "--about", "--format", "json"], capture_output=True,
                                      text=True, check=True).stdout)
    assert about["settings"]["properties"]["api_key"].get("secret") is True
