"""Every endpoint template, and every manual method, end to end through the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from target_gorgias.endpoints import TEMPLATES
from tests.support import API_KEY, EMAIL, config, infer_schema, record, run_target

MESSAGE = {"channel": "email", "from_agent": False, "via": "api", "body_text": "hi",
           "source": {"type": "email", "from": {"address": "ada@example.com"}}}
CUSTOMER = {"email": "x@e.com", "channels": [{"type": "email", "address": "x@e.com"}]}


class Api:
    """Direct HTTP to the fake server, to set up what a template needs to exist."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.s = requests.Session()
        self.s.auth = (EMAIL, API_KEY)

    def post(self, path: str, body: Any) -> dict[str, Any]:
        r = self.s.post(self.base + path, json=body, timeout=10)
        assert r.status_code == 201, r.text
        return r.json()

    def ticket(self) -> int:
        return self.post("/api/tickets", {"messages": [MESSAGE]})["id"]


def _ticket(api: Api) -> dict[str, Any]:
    return {"ticket_id": api.ticket()}


def _message(api: Api) -> dict[str, Any]:
    t = api.ticket()
    m = api.post(f"/api/tickets/{t}/messages", MESSAGE)["id"]
    return {"ticket_id": t, "message_id": m}


def _one(resource: str, body: dict[str, Any], key: str = "id") -> Callable[[Api], dict]:
    return lambda api: {key: api.post(resource, body)["id"]}


def _ticket_and_field(api: Api) -> dict[str, Any]:
    field = api.post("/api/custom-fields", {**FIELD, "definition": {"data_type": "number"}})
    return {"ticket_id": api.ticket(), "id": field["id"]}


def _tag(api: Api) -> dict[str, Any]:
    return {"id": api.post("/api/tags", {"name": "old"})["id"]}


FIELD = {"object_type": "Ticket", "label": "L", "definition": {"data_type": "text"}}
RULE = {"name": "r", "code": "if (true) {}"}
USER = {"email": "u@example.com", "name": "U", "role": {"name": "agent"}}

# id -> (setup giving the ids the record needs, expected status, where the effect shows)
CASES: dict[str, tuple[Callable[[Api], dict] | None, int]] = {
    "create_ticket": (None, 201),
    "add_ticket_message": (_ticket, 201),
    "update_ticket_message": (_message, 202),
    "delete_ticket": (_ticket, 204),
    "create_customer": (None, 201),
    "create_user": (None, 201),
    "update_user": (_one("/api/users", USER), 202),
    "delete_user": (_one("/api/users", USER), 204),
    "create_macro": (None, 201),
    "create_tag": (None, 201),
    "update_tag": (_tag, 202),
    "create_custom_field": (None, 201),
    "create_rule": (None, 201),
    "update_ticket": (_ticket, 202),
    "update_customer": (_one("/api/customers", CUSTOMER, "customer_id"), 202),
    "delete_customer": (_one("/api/customers", CUSTOMER, "customer_id"), 204),
    "delete_customers": (_one("/api/customers", CUSTOMER), 204),
    "delete_tag": (_tag, 204),
    "delete_tags": (_tag, 204),
    "update_macro": (_one("/api/macros", {"name": "m"}), 202),
    "delete_macro": (_one("/api/macros", {"name": "m"}), 204),
    "delete_ticket_message": (_message, 200),
    "add_ticket_tags": (_ticket, 201),
    "set_ticket_tags": (_ticket, 202),
    "remove_ticket_tags": (_ticket, 204),
    "set_ticket_custom_fields": (_ticket_and_field, 202),
    "replace_ticket_custom_fields": (_ticket_and_field, 202),
    "update_custom_field": (_one("/api/custom-fields", FIELD), 202),
    "update_rule": (_one("/api/rules", RULE), 202),
    "delete_rule": (_one("/api/rules", RULE), 204),
}


def from_target(srv, before: int) -> list[dict[str, Any]]:
    """Requests the target made (the setup's own requests are logged a moment late)."""
    return [r for r in srv.requests[max(0, before - 5):]
            if r["headers"].get("User-Agent", "").startswith("target-gorgias/")
            and r["method"] != "GET"]  # not the lookups of lookup_before_create: auto


def test_every_template_has_a_case():
    assert set(CASES) == set(TEMPLATES)


@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_template_end_to_end(fake_gorgias, tmp_path, template_id):
    api = Api(fake_gorgias.base_url)
    setup, status = CASES[template_id]
    ids = setup(api) if setup else {}
    template = TEMPLATES[template_id]
    rec = {**template.example, **ids}
    before = len(fake_gorgias.requests)
    cfg = config(fake_gorgias.base_url, {"s": {"endpoint": template_id}}, emit_responses=True)
    res = run_target(cfg, [infer_schema("s", [rec]), record("s", rec)], tmp_path)
    assert res.returncode == 0, res.stderr
    made = from_target(fake_gorgias, before)
    if "custom_fields" in template_id:  # the field's definition is read first (its type)
        assert [(r["method"], r["path"]) for r in made[:1]] == [
            ("GET", f"/api/custom-fields/{rec['id']}")]
        made = made[1:]
    (sent,) = made
    expected_path = template.path.format(**{k: rec[k] for k in ids} | {
        k: rec[k] for k in ("ticket_id", "message_id", "id", "customer_id") if k in rec})
    assert (sent["method"], sent["path"]) == (template.method, expected_path)
    assert sent["status"] == status
    # Path parameters never leak into the body; bodyless DELETEs send no body at all.
    body = sent["body"]
    if template.method == "DELETE" and template_id not in ("remove_ticket_tags",) \
            and not template.batch.get("enabled"):
        assert sent["has_body"] is False
    elif isinstance(body, dict):
        assert not set(body) & {"ticket_id", "message_id", "customer_id"}
    (resp,) = res.responses
    assert resp["ok"] is True and resp["status_code"] == status
    assert resp["endpoint"] == template_id


def test_update_templates_refuse_patch_method(fake_gorgias, tmp_path):
    api = Api(fake_gorgias.base_url)
    tag = _tag(api)["id"]
    before = len(fake_gorgias.requests)
    cfg = config(fake_gorgias.base_url, {"s": {"endpoint": "update_tag", "method": "PATCH"}})
    res = run_target(cfg, [infer_schema("s", [{}]), record("s", {"id": tag, "name": "n"})],
                     tmp_path)
    # Gorgias documents only PUT: the config fails at start-up, nothing is sent.
    assert res.returncode == 1
    assert "streams.s.method: update_tag does not offer PATCH" in res.stderr
    assert "documents only PUT" in res.stderr
    assert len(fake_gorgias.requests) == before


@pytest.mark.parametrize(("method", "path_or_url", "rec", "status"), [
    ("POST", "/api/tags", {"name": "manual"}, 201),
    ("PUT", "/api/tickets/{ticket_id}", {"ticket_id": None, "status": "closed"}, 202),
    ("DELETE", "/api/tickets/{ticket_id}", {"ticket_id": None}, 204),
    ("POST", "url:/api/tickets/{tid}/messages", {"tid": None, **MESSAGE}, 201),
])
def test_manual_methods(fake_gorgias, tmp_path, method, path_or_url, rec, status):
    api = Api(fake_gorgias.base_url)
    rec = dict(rec)
    for key in ("ticket_id", "tid"):
        if key in rec:
            rec[key] = api.ticket()
    stream_cfg: dict[str, Any] = {"method": method}
    if path_or_url.startswith("url:"):
        stream_cfg["url"] = fake_gorgias.base_url + path_or_url[4:]
    else:
        stream_cfg["path"] = path_or_url
    before = len(fake_gorgias.requests)
    res = run_target(config(fake_gorgias.base_url, {"m": stream_cfg}),
                     [infer_schema("m", [rec]), record("m", rec)], tmp_path)
    assert res.returncode == 0, res.stderr
    (sent,) = from_target(fake_gorgias, before)
    assert sent["method"] == method and sent["status"] == status
    assert "{" not in sent["path"]
