"""Sync modes (create / update / upsert), nested bodies from flat rows."""

from __future__ import annotations

from tests.support import config, infer_schema, record, run_target, state


def customers(rows):
    return [infer_schema("people", rows, ["email"]), *[record("people", r) for r in rows],
            state({"day": len(rows)})]


ROWS = [{"email": "a@x.io", "name": "A"}, {"email": "b@x.io", "name": "B"},
        {"email": "a@x.io", "name": "A"}]  # a key repeated in one run


def test_upsert_daily_rerun_creates_nothing_new(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"people": {"endpoint": "create_customer",
                                                    "mode": "upsert", "match_on": "email"}},
                 emit_responses=True)
    first = run_target(cfg, customers(ROWS), tmp_path)
    assert first.returncode == 0, first.stderr
    assert sorted(c["email"] for c in fake_gorgias.store["customers"].values()) == [
        "a@x.io", "b@x.io"]
    assert sorted(r["outcome"] for r in first.responses) == ["created", "created", "unchanged"]
    assert "2 created, 0 updated, 1 unchanged, 0 skipped" in first.stderr
    # The next day: B changed its name, C is new, A is the same.
    day2 = [{"email": "a@x.io", "name": "A"}, {"email": "b@x.io", "name": "B2"},
            {"email": "c@x.io", "name": "C"}]
    second = run_target(cfg, customers(day2), tmp_path)
    assert second.returncode == 0, second.stderr
    assert "1 created, 1 updated, 1 unchanged, 0 skipped" in second.stderr
    store = {c["email"]: c for c in fake_gorgias.store["customers"].values()}
    assert sorted(store) == ["a@x.io", "b@x.io", "c@x.io"] and store["b@x.io"]["name"] == "B2"
    puts = [r for r in fake_gorgias.requests if r["method"] == "PUT"]
    assert [(p["path"], p["body"]) for p in puts] == [
        (f"/api/customers/{store['b@x.io']['id']}", {"email": "b@x.io", "name": "B2", "channels": [
            {"type": "email", "address": "b@x.io", "preferred": True}]})]
    third = run_target(cfg, customers(day2), tmp_path)
    assert "0 created, 0 updated, 3 unchanged, 0 skipped" in third.stderr
    assert len(fake_gorgias.store["customers"]) == 3


def test_update_mode_skips_unknown_records(fake_gorgias, tmp_path):
    create = config(fake_gorgias.base_url, {"people": {"endpoint": "create_customer"}})
    run_target(create, customers([{"email": "a@x.io", "name": "A"}]), tmp_path)
    cfg = config(fake_gorgias.base_url, {"people": {"endpoint": "create_customer",
                                                    "mode": "update"}}, emit_responses=True)
    res = run_target(cfg, customers([{"email": "a@x.io", "name": "A+"},
                                     {"email": "zz@x.io", "name": "Z"}]), tmp_path)
    assert res.returncode == 0, res.stderr
    assert "0 created, 1 updated, 0 unchanged, 1 skipped" in res.stderr
    assert sorted(c["name"] for c in fake_gorgias.store["customers"].values()) == ["A+"]
    skipped = next(r for r in res.responses if r["outcome"] == "skipped")
    assert skipped["source_keys"] == [{"email": "zz@x.io"}] and skipped["status_code"] is None
    assert res.states[-1] == {"day": 2}


def test_ticket_upsert_leaves_out_fields_update_cannot_take(fake_gorgias, tmp_path):
    row = {"external_id": "o-1", "subject": "Order 1", "status": "open",
           "messages": [{"channel": "email", "from_agent": False, "body_text": "hi",
                         "source": {"type": "email", "from": {"address": "a@x.io"}}}]}
    cfg = config(fake_gorgias.base_url, {"t": {"endpoint": "create_ticket", "mode": "upsert"}})
    msgs = lambda r: [infer_schema("t", [r]), record("t", r)]  # noqa: E731
    assert run_target(cfg, msgs(row), tmp_path).returncode == 0
    res = run_target(cfg, msgs({**row, "status": "closed"}), tmp_path)
    assert res.returncode == 0, res.stderr
    (ticket,) = fake_gorgias.store["tickets"].values()
    assert ticket["status"] == "closed"
    put = next(r for r in fake_gorgias.requests if r["method"] == "PUT")
    assert "messages" not in put["body"] and put["path"] == f"/api/tickets/{ticket['id']}"


def test_mode_needs_its_match_field(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"people": {"endpoint": "create_customer",
                                                    "mode": "upsert", "match_on": "external_id"}})
    res = run_target(cfg, customers([{"email": "a@x.io"}]), tmp_path)
    assert res.returncode == 1
    assert "field 'external_id': mode 'upsert' matches on this field" in res.stderr


def test_mode_config_errors(fake_gorgias, tmp_path):
    for stream_cfg, expected in [
        ({"endpoint": "create_tag", "mode": "upsert"}, "needs a create template"),
        ({"endpoint": "create_customer", "mode": "upsert", "match_on": "name"},
         "create_customer can match on email or external_id"),
        ({"endpoint": "create_customer", "match_on": "email"}, "only used with mode"),
    ]:
        res = run_target(config(fake_gorgias.base_url, {"s": stream_cfg}), [], tmp_path)
        assert res.returncode == 1 and expected in res.stderr, res.stderr


def test_unflatten_builds_a_ticket_with_its_first_message(fake_gorgias, tmp_path):
    """Flat order rows -> tickets: stream maps name the columns, unflatten nests them."""
    orders = [{"order_id": 1001, "email": "ada@example.com", "note": "Where is my parcel?"}]
    cfg = config(fake_gorgias.base_url,
                 {"order_tickets": {"endpoint": "create_ticket", "unflatten": True}},
                 validate_records=False,
                 stream_maps={"orders": {
                     "__alias__": "order_tickets", "__else__": None,
                     "__key_properties__": ["external_id"],
                     "external_id": "'order-' + str(order_id)",
                     "subject": "'Order #' + str(order_id)",
                     "customer__email": "email",
                     "messages": "[{'channel': 'email', 'from_agent': False, 'via': 'api', "
                                 "'sender': {'email': email}, 'body_text': note}]",
                 }})
    res = run_target(cfg, [infer_schema("orders", orders, ["order_id"]),
                           *[record("orders", o) for o in orders]], tmp_path)
    assert res.returncode == 0, res.stderr
    (ticket,) = fake_gorgias.store["tickets"].values()
    assert ticket["customer"] == {"email": "ada@example.com"}
    assert ticket["external_id"] == "order-1001"
    (msg,) = fake_gorgias.store["messages"].values()
    assert msg["body_text"] == "Where is my parcel?"


def test_unflatten_collision_is_a_record_error(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"c": {"endpoint": "create_customer", "unflatten": True,
                                               "unflatten_separator": "."}})
    res = run_target(cfg, [infer_schema("c", [{}]),
                           record("c", {"meta": "x", "meta.tier": "gold"})], tmp_path)
    assert res.returncode == 1
    assert "stream 'c', record 1: cannot unflatten: 'meta.tier' collides" in res.stderr


def test_preview_then_send_test_of_the_first_records(fake_gorgias, tmp_path):
    """record_limit + dry_run previews the exact requests; without dry_run sends only those."""
    rows = [{"email": f"p{i}@x.io", "name": f"P{i}"} for i in range(50)]
    base = config(fake_gorgias.base_url, {"people": {"endpoint": "create_customer"}},
                  record_limit=3)
    preview = run_target({**base, "dry_run": True}, customers(rows), tmp_path)
    assert preview.returncode == 0, preview.stderr
    assert preview.stderr.count("DRY RUN request") == 3
    assert '"email": "p2@x.io"' in preview.stderr and "p3@x.io" not in preview.stderr
    assert "took the first 3 records, ignored 47" in preview.stderr
    assert fake_gorgias.requests == [] and preview.stdout == ""
    sent = run_target(base, customers(rows), tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert sorted(c["email"] for c in fake_gorgias.store["customers"].values()) == [
        "p0@x.io", "p1@x.io", "p2@x.io"]
    assert sent.stdout == ""  # a send-test never moves the bookmark


def test_unchanged_compares_only_what_is_sent():
    from target_gorgias.sync import matches

    found = {"id": 5, "status": "open", "customer": {"id": 9, "email": "a@x.io", "name": "A"},
             "tags": [{"id": 1, "name": "vip", "usage": 3}], "n": 2.0}
    assert matches({"status": "open", "customer": {"email": "a@x.io"},
                    "tags": [{"name": "vip"}], "n": 2}, found)
    assert not matches({"customer": {"email": "b@x.io"}}, found)
    assert not matches({"tags": [{"name": "vip"}, {"name": "new"}]}, found)
    assert not matches({"status": "closed"}, found)
    assert not matches({"missing": None}, found)
    assert not matches({"n": True}, {"n": 1})


def test_sdk_load_method_upsert_means_upsert_where_possible(fake_gorgias, tmp_path):
    cfg = config(fake_gorgias.base_url, {"people": {"endpoint": "create_customer"}},
                 load_method="upsert")
    rows = [{"email": "a@x.io", "name": "A"}]
    assert run_target(cfg, customers(rows), tmp_path).returncode == 0
    again = run_target(cfg, customers(rows), tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 created, 0 updated, 1 unchanged, 0 skipped" in again.stderr
    assert len(fake_gorgias.store["customers"]) == 1
