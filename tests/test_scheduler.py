"""The scheduler's batch grouping, in process (dry run: calls are built and shown, not sent)."""

from __future__ import annotations

import time

import pytest

from target_gorgias.target import TargetGorgias


@pytest.fixture
def target(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tgt = TargetGorgias(config={
        "api_url": "http://127.0.0.1:9", "email": "a@example.com", "api_key": "k",
        "dry_run": True, "dry_run_sample": 0, "max_body_bytes": 50,
        "streams": {"tags": {"endpoint": "delete_tags", "batch": {"size": 4}},
                    "by_field": {"path": "/api/tags", "method": "DELETE",
                                 "batch": {"enabled": True, "size": 10, "pluck": "id",
                                           "wrap_key": "ids", "grouping": "field",
                                           "group_by": "kind"}}}})
    for stream in ("tags", "by_field"):
        tgt._process_schema_message({"type": "SCHEMA", "stream": stream, "key_properties": [],
                                     "schema": {"type": "object", "properties": {
                                         "id": {"type": "integer"},
                                         "kind": {"type": "string"}}}})
    yield tgt
    tgt.run.scheduler.close()
    tgt.run.client.close()


def feed(tgt: TargetGorgias, stream: str, *records: dict) -> None:
    for rec in records:
        tgt._process_record_message({"type": "RECORD", "stream": stream, "record": rec})


def test_full_group_is_sent_at_once_and_an_idle_one_after_the_flush_interval(target):
    dry = target.run.dry_run
    feed(target, "tags", *({"id": i} for i in range(1, 6)))
    assert (dry.counts["tags"], dry.records["tags"]) == (1, 4)  # size 4: sent when full
    time.sleep(1.4)  # record 5 waits alone; no new record for > 1 s
    assert (dry.counts["tags"], dry.records["tags"]) == (2, 5)


def test_group_closes_before_its_body_passes_max_body_bytes(target):
    dry = target.run.dry_run
    # {"ids":[...]} with 11-digit ids: 3 fit in 50 bytes (45), 4 would not (57).
    feed(target, "tags", *({"id": 10_000_000_000 + i} for i in range(4)))
    assert (dry.counts["tags"], dry.records["tags"]) == (1, 3)
    target.run.scheduler.finish()
    assert (dry.counts["tags"], dry.records["tags"]) == (2, 4)


def test_grouping_by_field_and_the_stream_change_sends_open_groups(target):
    dry = target.run.dry_run
    feed(target, "by_field", {"id": 1, "kind": "a"}, {"id": 2, "kind": "b"},
         {"id": 3, "kind": "a"})
    assert dry.counts["by_field"] == 0
    feed(target, "tags", {"id": 9})  # another stream: every open group goes first
    assert (dry.counts["by_field"], dry.records["by_field"]) == (2, 3)
    assert dry.counts["tags"] == 0
    target.run.scheduler.finish()
    assert dry.counts["tags"] == 1
