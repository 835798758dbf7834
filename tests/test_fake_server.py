"""The fake Gorgias itself, over real HTTP on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import base64
import email.utils
import json
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from target_gorgias.fake_server import LIMIT_HEADER, FakeGorgias

EMAIL, KEY, TOKEN = "agent@example.com", "fake-api-key", "fake-access-token"
MSG = {"channel": "email", "from_agent": False, "via": "api", "body_text": "hi",
       "source": {"type": "email", "from": {"address": "ada@example.com"}}}


def cust(email: str | None = None, **extra: Any) -> dict[str, Any]:
    """A customer body as Gorgias requires it (with ``channels``)."""
    channels = [{"type": "email", "address": email, "preferred": True}] if email else []
    return {**({"email": email} if email else {}), "channels": channels, **extra}
FIELD = {"object_type": "Ticket", "label": "Order", "definition": {"data_type": "text"}}
USER = {"email": "u@example.com", "name": "U", "role": {"name": "agent"}}


class Api:
    """A session with Basic auth against one fake server."""

    def __init__(self, srv: FakeGorgias, timeout: float = 5) -> None:
        self.base, self.timeout = srv.base_url, timeout
        self.s = requests.Session()
        self.s.auth = (EMAIL, KEY)

    def __call__(self, method: str, path: str, body: Any = None, **kw: Any) -> requests.Response:
        if body is not None:
            kw["json"] = body
        return self.s.request(method, self.base + path, timeout=self.timeout, **kw)

    def make(self, path: str, body: Any) -> dict[str, Any]:
        r = self("POST", path, body)
        assert r.status_code == 201, r.text
        return r.json()

    def ticket(self, **extra: Any) -> dict[str, Any]:
        return self.make("/api/tickets", {"messages": [MSG], **extra})


@pytest.fixture
def api(fake_gorgias: FakeGorgias) -> Api:
    return Api(fake_gorgias)


def err(r: requests.Response) -> dict[str, Any]:
    assert r.headers["Content-Type"] == "application/json", r.text
    return r.json()["error"]


def wait_for(cond: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# -- auth and routing --------------------------------------------------------------------

@pytest.mark.parametrize("auth", [
    (EMAIL, KEY),
    {"Authorization": f"Bearer {TOKEN}"},
    {"Authorization": "Basic " + base64.b64encode(f"{EMAIL}:{KEY}".encode()).decode()},
])
def test_auth_accepted(fake_gorgias, auth):
    kw = {"auth": auth} if isinstance(auth, tuple) else {"headers": auth}
    r = requests.get(fake_gorgias.base_url + "/api/account", timeout=5, **kw)
    assert r.status_code == 200 and r.json()["domain"]
    (entry,) = fake_gorgias.requests
    assert entry["auth_ok"] is True and entry["auth"] in ("basic", "bearer")
    assert entry["headers"]["Authorization"] == "<redacted>"


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic !!!"},
    {"Authorization": "Basic " + base64.b64encode(f"{EMAIL}:wrong".encode()).decode()},
    {"Authorization": "Basic " + base64.b64encode(f"other@x.io:{KEY}".encode()).decode()},
    {"Authorization": f"Token {KEY}"},
])
def test_auth_refused(fake_gorgias, headers):
    fake_gorgias.configure(rate_limit=2, rate_window=60)
    for _ in range(3):  # 401s are not counted against the bucket
        r = requests.post(fake_gorgias.base_url + "/api/tickets", json={}, headers=headers,
                          timeout=5)
        assert r.status_code == 401 and r.json() == {"error": {"msg": "Unauthorized."}}
        assert r.headers[LIMIT_HEADER] == "0/2"
    assert fake_gorgias.store["tickets"] == {}
    assert {e["auth_ok"] for e in fake_gorgias.requests} == {False}


def test_unknown_paths_methods_and_ids(fake_gorgias, api):
    r = requests.get(fake_gorgias.base_url + "/helpdesk", timeout=5)
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    assert "<h1>Not Found</h1>" in r.text
    assert err(api("GET", "/api/nothing")) == {"msg": "Resource not found."}
    assert api("GET", "/api/tickets/abc").status_code == 404  # ids are integers
    assert api("GET", "/api/tickets/999").status_code == 404
    assert api("GET", "/api//tickets").status_code == 404
    for method, path in [("PATCH", "/api/tickets/1"), ("PATCH", "/api/customers"),
                         ("POST", "/api/account"), ("DELETE", "/api/users"),
                         ("DELETE", "/api/custom-fields/1"), ("PUT", "/api/tickets")]:
        r = api(method, path, {})
        assert r.status_code == 405, (method, path)
        assert err(r) == {"msg": "The specified HTTP method is not allowed."}
    t = api.ticket()
    assert api("GET", f"/api/tickets/{t['id']}/").json()["id"] == t["id"]  # trailing slash
    assert api("POST", "/api/tags/", {"name": "x"}).status_code == 201


def test_bodies_json_size_and_raw_path(fake_gorgias, api):
    assert err(api("POST", "/api/tags", data="{nope", headers={
        "Content-Type": "application/json"})) == {"msg": "Invalid JSON."}
    assert api("POST", "/api/tags", data="name=x", headers={
        "Content-Type": "application/x-www-form-urlencoded"}).status_code == 400
    assert api("POST", "/api/tags", data='{"name": NaN}', headers={
        "Content-Type": "application/json"}).status_code == 400
    tag = api.make("/api/tags", {"name": "x"})
    assert api("DELETE", f"/api/tags/{tag['id']}").status_code == 204
    api("GET", "/api/tags/1%2F2?x=1&x=2&y=")
    log = fake_gorgias.requests
    assert log[-2]["has_body"] is False and log[-2]["body"] is None
    assert log[-2]["raw_body"] == ""
    assert log[-3]["has_body"] is True and log[-3]["body"] == {"name": "x"}
    assert log[-1]["raw_path"] == "/api/tags/1%2F2" and log[-1]["path"] == "/api/tags/1/2"
    assert log[-1]["query"] == {"x": ["1", "2"], "y": [""]}
    assert log[-1]["status"] == 404 and log[-1]["at"] <= log[-1]["finished_at"]


def test_payload_too_large():
    with FakeGorgias(rate_limit=0, max_body_bytes=1000) as srv:
        r = Api(srv)("POST", "/api/tags", {"name": "x", "description": "d" * 2000})
        assert r.status_code == 413 and err(r) == {"msg": "Payload too large."}
        assert srv.requests[0]["body_bytes"] > 1000 and srv.store["tags"] == {}
        assert Api(srv)("POST", "/api/tags", {"name": "x"}).status_code == 201


def test_chunked_request_body(api):
    r = api("POST", "/api/tags", data=iter([b'{"name": ', b'"chunky"}']),
            headers={"Content-Type": "application/json"})
    assert r.status_code == 201 and r.json()["name"] == "chunky"


def test_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        FakeGorgias(host="0.0.0.0")


# -- tickets and messages ----------------------------------------------------------------

def test_create_ticket(fake_gorgias, api):
    body = {"external_id": "o-1", "subject": "S", "customer": {"email": "Ada@x.io", "name": "A"},
            "tags": [{"name": "vip"}], "messages": [MSG, {**MSG, "from_agent": True}]}
    r = api("POST", "/api/tickets", body)
    assert r.status_code == 201 and r.headers["Content-Type"] == "application/json"
    t = r.json()
    assert isinstance(t["id"], int) and t["uri"] == f"/api/tickets/{t['id']}/"
    assert t["created_datetime"] and t["updated_datetime"] and t["via"] == "api"
    assert t["customer"] == body["customer"] and t["status"] == "open"
    assert [m["ticket_id"] for m in t["messages"]] == [t["id"]] * 2
    store = fake_gorgias.store
    assert set(store["messages"]) == {m["id"] for m in t["messages"]}
    (cust,) = store["customers"].values()
    assert cust["email"] == "Ada@x.io" and [x["name"] for x in store["tags"].values()] == ["vip"]
    api.ticket(customer={"email": "ada@X.IO"})  # the customer is reused, case-insensitively
    assert len(fake_gorgias.store["customers"]) == 1
    assert api("GET", f"/api/tickets?customer_id={cust['id']}").json()["data"][0]["id"] \
        in fake_gorgias.store["tickets"]
    assert len(api("GET", f"/api/tickets?customer_id={cust['id']}").json()["data"]) == 2


@pytest.mark.parametrize(("body", "data"), [
    ({}, {"messages": ["Missing data for required field."]}),
    ({"messages": None}, {"messages": ["Field may not be null."]}),
    ({"messages": {}}, {"messages": ["Not a valid list."]}),
    ({"messages": []}, {"messages": ["Length must be between 1 and 500."]}),
    ({"messages": [MSG] * 501}, {"messages": ["Length must be between 1 and 500."]}),
    ({"messages": [{"from_agent": False}]},
     {"messages": {"0": {"channel": ["Missing data for required field."]}}}),
    ({"messages": [MSG, "x"]}, {"messages": {"1": {"_schema": ["Invalid input type."]}}}),
    ({"messages": [{**MSG, "from_agent": "no"}]},
     {"messages": {"0": {"from_agent": ["Not a valid boolean."]}}}),
    ({"messages": [MSG], "description": "x"}, {"description": ["No such field."]}),
    ({"messages": [MSG], "subject": 5}, {"subject": ["Not a valid string."]}),
    ({"messages": [MSG], "customer": "a@x.io"}, {"customer": ["Not a valid mapping type."]}),
    ({"messages": [MSG], "created_datetime": "yesterday"},
     {"created_datetime": ["Not a valid datetime."]}),
    ({"messages": [MSG], "external_id": "x" * 256},
     {"external_id": ["Longer than maximum length 255."]}),
    ({"messages": [MSG], "customer": {"id": 424242}}, {"customer": {"id": ["Resource not found."]}}),
    ({"messages": [MSG], "customer": {"email": "new@x.io"}, "tags": [{"name": "t"}, {"id": 4242}]},
     {"tags": {"1": {"id": ["Resource not found."]}}}),
    ({"messages": [MSG], "customer": {"email": "new"}, "tags": [{"name": "t"}, {}]},
     {"customer": {"email": ["Not a valid email address."]},
      "tags": {"1": {"_schema": ["Must have an id or a name."]}}}),
])
def test_create_ticket_400(fake_gorgias, api, body, data):
    r = api("POST", "/api/tickets", body)
    assert r.status_code == 400
    assert err(r) == {"msg": "Failed to create ticket", "data": data}
    store = fake_gorgias.store  # a refused request leaves nothing behind
    assert store["tickets"] == store["customers"] == store["tags"] == store["messages"] == {}


def test_ticket_via_enum(api):
    assert api("POST", "/api/tickets", {"messages": [MSG], "via": "carrier-pigeon"}
               ).status_code == 400
    assert api.ticket(via="email")["via"] == "email"
    assert "via" in err(api("POST", "/api/tickets", {"messages": [{**MSG, "via": "x"}]}))["data"][
        "messages"]["0"]


def test_ticket_read_update_delete(fake_gorgias, api):
    t = api.ticket(external_id="e1")
    assert api("GET", f"/api/tickets/{t['id']}").json() == t
    r = api("PUT", f"/api/tickets/{t['id']}", {"status": "closed", "tags": [{"name": "done"}],
                                                 "is_unread": False})
    assert r.status_code == 202 and r.json()["status"] == "closed" and r.json()["id"] == t["id"]
    assert r.json()["created_datetime"] == t["created_datetime"]
    for field, value in [("created_datetime", "2024-01-01T00:00:00Z"), ("messages", [MSG])]:
        r = api("PUT", f"/api/tickets/{t['id']}", {field: value})
        assert r.status_code == 400 and err(r) == {"msg": "Failed to update ticket",
                                                   "data": {field: ["No such field."]}}
    assert api("PUT", f"/api/tickets/{t['id']}", {"status": "pending"}).status_code == 400
    r = api("DELETE", f"/api/tickets/{t['id']}")
    assert r.status_code == 204 and r.content == b""
    assert api("GET", f"/api/tickets/{t['id']}").status_code == 404
    assert fake_gorgias.store["messages"] == {}


def test_messages(fake_gorgias, api):
    t = api.ticket()
    base = f"/api/tickets/{t['id']}/messages"
    assert api("POST", "/api/tickets/999999/messages", MSG).status_code == 404
    r = api("POST", base, {"from_agent": True})
    assert err(r) == {"msg": "Failed to create message",
                      "data": {"channel": ["Missing data for required field."]}}
    m = api.make(base, {**MSG, "external_id": "m-1"})
    assert m["ticket_id"] == t["id"] and m["uri"] == f"{base}/{m['id']}/"
    assert api("GET", f"{base}/{m['id']}").json() == m
    assert api("GET", f"/api/tickets/{api.ticket()['id']}/messages/{m['id']}").status_code == 404
    r = api("PUT", f"{base}/{m['id']}", {"body_text": "fixed"})
    assert r.status_code == 400 and set(err(r)["data"]) == {"channel", "from_agent", "via"}
    r = api("PUT", f"{base}/{m['id']}", {"channel": "email", "from_agent": True, "via": "api",
                                         "body_text": "x"})
    assert r.status_code == 202 and r.json()["body_text"] == "x" and r.json()["id"] == m["id"]
    listed = api("GET", f"/api/messages?ticket_id={t['id']}").json()["data"]
    assert {x["id"] for x in listed} == {m["id"], t["messages"][0]["id"]}
    r = api("DELETE", f"{base}/{m['id']}")
    assert r.status_code == 200 and r.content == b""
    assert m["id"] not in fake_gorgias.store["messages"]
    assert len(fake_gorgias.store["tickets"][t["id"]]["messages"]) == 1


def test_ticket_tags(fake_gorgias, api):
    t = api.ticket()
    path = f"/api/tickets/{t['id']}/tags"
    r = api("POST", path, {"names": ["a", "b"]})
    assert (r.status_code, r.content) == (201, b"")
    tags = {x["name"]: x["id"] for x in fake_gorgias.store["tags"].values()}
    assert set(tags) == {"a", "b"}
    assert api("POST", path, {"ids": [tags["a"]], "names": ["c"]}).status_code == 201
    r = api("PUT", path, {"names": ["b", "d"]})
    assert (r.status_code, r.content) == (202, b"")
    assert [x["name"] for x in api("GET", path).json()["data"]] in (["b", "d"], ["d", "b"])
    r = api("DELETE", path, {"names": ["b", "never"]})
    assert (r.status_code, r.content) == (204, b"")
    assert [x["name"] for x in api("GET", path).json()["data"]] == ["d"]
    assert "never" not in {x["name"] for x in fake_gorgias.store["tags"].values()}
    assert api("POST", path, {}).status_code == 400
    assert err(api("POST", path, {"tags": ["x"]}))["data"] == {"tags": ["No such field."]}
    assert api("POST", path, {"ids": [999999], "names": ["fresh"]}).status_code == 404
    assert "fresh" not in {x["name"] for x in fake_gorgias.store["tags"].values()}
    assert api("PUT", path, {}).status_code == 202
    assert api("GET", path).json()["data"] == []
    assert api("POST", "/api/tickets/999999/tags", {"names": ["x"]}).status_code == 404


def test_ticket_custom_fields(fake_gorgias, api):
    t = api.ticket()
    text = api.make("/api/custom-fields", FIELD)["id"]
    num = api.make("/api/custom-fields", {**FIELD, "definition": {"data_type": "number"}})["id"]
    path = f"/api/tickets/{t['id']}/custom-fields"
    r = api("PUT", path, [{"id": text, "value": "a"}, {"id": num, "value": 3}])
    assert r.status_code == 202 and r.json() == [{"id": text, "value": "a"},
                                                 {"id": num, "value": 3}]
    # The replace-all call: a value not sent is deleted.
    api("PUT", path, [{"id": text, "value": "b"}])
    assert fake_gorgias.store["tickets"][t["id"]]["custom_fields"] == [{"id": text, "value": "b"}]
    assert api("PUT", path, {"id": text, "value": "a"}).status_code == 400
    r = api("PUT", path, [{"value": "a", "x": 1}])
    assert err(r)["data"] == {"0": {"id": ["Missing data for required field."],
                                    "x": ["No such field."]}}
    # Typed values, known fields only.
    r = api("PUT", path, [{"id": num, "value": "3"}, {"id": 999999, "value": "x"}])
    assert err(r) == {"msg": "Failed to update custom fields",
                      "data": {"0": {"value": ["Not a valid number."]},
                               "1": {"id": ["Resource not found."]}}}
    # The per-field call sets that field only.
    r = api("PUT", f"{path}/{num}", {"value": 12.5})
    assert r.status_code == 202 and r.json() == {"id": num, "value": 12.5}
    assert fake_gorgias.store["tickets"][t["id"]]["custom_fields"] == [
        {"id": text, "value": "b"}, {"id": num, "value": 12.5}]
    assert err(api("PUT", f"{path}/{num}", {"value": "12.5"})) == {
        "msg": "Failed to update custom field value", "data": {"value": ["Not a valid number."]}}
    assert err(api("PUT", f"{path}/{num}", {}))["data"] == {
        "value": ["Missing data for required field."]}
    assert api("PUT", f"{path}/999999", {"value": 1}).status_code == 404


def test_ticket_listing_lookup_and_pages(api):
    ids = [api.ticket(external_id="dup")["id"] for _ in range(3)] + [api.ticket()["id"]]
    page = api("GET", "/api/tickets?external_id=dup").json()
    assert page["object"] == "list" and page["uri"] == "/api/tickets?external_id=dup"
    assert [x["id"] for x in page["data"]] == ids[2::-1]  # created_datetime:desc
    assert page["meta"] == {"prev_cursor": None, "next_cursor": None}
    first = api("GET", "/api/tickets?limit=3&order_by=created_datetime:asc").json()
    assert [x["id"] for x in first["data"]] == ids[:3] and first["meta"]["next_cursor"]
    rest = api("GET", "/api/tickets", params={"limit": 3, "order_by": "created_datetime:asc",
                                              "cursor": first["meta"]["next_cursor"]}).json()
    assert [x["id"] for x in rest["data"]] == ids[3:] and rest["meta"]["next_cursor"] is None
    r = api("GET", "/api/tickets?limit=101")
    assert r.status_code == 400 and err(r)["data"] == {"limit": ["Must be at most 100."]}
    assert api("GET", "/api/tickets?cursor=garbage").status_code == 400
    assert api("GET", "/api/tickets?external_id=none").json()["data"] == []


# -- customers, users, tags, macros, custom fields, rules ---------------------------------

def test_customers(fake_gorgias, api):
    assert api.make("/api/customers", cust())["email"] is None  # all optional but channels
    c = api.make("/api/customers", cust("Ada@x.io", external_id="crm-1", name="A"))
    assert c["uri"] == f"/api/customers/{c['id']}/"
    r = api("POST", "/api/customers", cust("ada@X.io"))
    assert r.status_code == 409 and err(r) == {"msg": "The resource already exists."}
    other = api.make("/api/customers", cust("b@x.io"))
    assert api("PUT", f"/api/customers/{other['id']}", {"email": "ADA@x.io"}).status_code == 409
    r = api("PUT", f"/api/customers/{c['id']}", {"email": "Ada@x.io", "name": "Ada"})
    assert r.status_code == 202 and r.json()["name"] == "Ada"
    assert err(api("POST", "/api/customers", cust("not-an-email")))["data"] == {
        "email": ["Not a valid email address."]}
    assert err(api("POST", "/api/customers", cust(mail="a@x.io")))["data"] == {
        "mail": ["No such field."]}
    for query in ("email=ada%40x.io", "email=ADA@X.IO", "external_id=crm-1"):
        assert [x["id"] for x in api("GET", f"/api/customers?{query}").json()["data"]] == [c["id"]]
    assert api("GET", "/api/customers?email=zed@x.io").json()["data"] == []
    assert api("DELETE", f"/api/customers/{c['id']}").status_code == 204
    assert api("GET", f"/api/customers/{c['id']}").status_code == 404


def test_bulk_deletes(fake_gorgias, api):
    ids = [api.make("/api/customers", cust(f"{i}@x.io"))["id"] for i in range(3)]
    r = api("DELETE", "/api/customers", {"ids": [*ids[:2], 999999]})
    assert (r.status_code, r.content) == (204, b"")
    assert list(fake_gorgias.store["customers"]) == ids[2:]
    assert api("DELETE", "/api/customers", {"ids": [999999]}).status_code == 404
    assert err(api("DELETE", "/api/customers", {"ids": []}))["data"] == {
        "ids": ["Shorter than minimum length 1."]}
    assert err(api("DELETE", "/api/customers"))["data"] == {
        "ids": ["Missing data for required field."]}
    tags = [api.make("/api/tags", {"name": n})["id"] for n in "ab"]
    assert api("DELETE", "/api/tags", {"ids": tags}).status_code == 204
    assert fake_gorgias.store["tags"] == {}


def test_users(api):
    u = api.make("/api/users", USER)
    assert u["role"] == {"name": "agent"}
    assert api("POST", "/api/users", {**USER, "email": "U@EXAMPLE.COM"}).status_code == 409
    cases = [({"name": "x"}, {"email": ["Missing data for required field."],
                              "role": ["Missing data for required field."]}),
             ({**USER, "role": "agent"}, {"role": ["Not a valid mapping type."]}),
             ({**USER, "email": "v@x.io", "role": {"name": "boss"}},
              {"role": {"name": ["Must be one of: admin, agent, basic-agent, bot, internal-agent,"
                                 " lite-agent, observer-agent."]}}),
             ({**USER, "email": "v@x.io", "name": ["n"]}, {"name": ["Not a valid string."]})]
    for body, data in cases:
        r = api("POST", "/api/users", body)
        assert err(r) == {"msg": "Failed to create user", "data": data}, body
    assert api("GET", "/api/users?email=u@example.com").json()["data"][0]["id"] == u["id"]
    r = api("PUT", f"/api/users/{u['id']}", {"bio": "hi", "password_confirmation": "pw"})
    assert r.status_code == 202 and r.json()["bio"] == "hi"
    assert api("DELETE", f"/api/users/{u['id']}").status_code == 204


def test_tags_macros_fields_rules(api):
    tag = api.make("/api/tags", {"name": "vip", "description": "d"})
    assert tag["usage"] == 0 and tag["uri"] == f"/api/tags/{tag['id']}/"
    assert api("POST", "/api/tags", {"name": "vip"}).status_code == 409
    assert api("POST", "/api/tags", {"name": "VIP"}).status_code == 201  # case-sensitive
    assert err(api("POST", "/api/tags", {"name": "x" * 257}))["data"] == {
        "name": ["Longer than maximum length 256."]}
    assert api("PUT", f"/api/tags/{tag['id']}", {"name": "VIP"}).status_code == 409
    assert api("PUT", f"/api/tags/{tag['id']}", {"description": "e"}).json()["description"] == "e"
    r = api("POST", "/api/macros", {"name": "m", "description": "nope"})
    assert err(r) == {"msg": "Failed to create macro", "data": {"description": ["No such field."]}}
    macro = api.make("/api/macros", {"name": "m", "actions": [{"name": "addTags"}]})
    assert api("PUT", f"/api/macros/{macro['id']}", {"name": "m2"}).status_code == 202
    assert api("DELETE", f"/api/macros/{macro['id']}").status_code == 204
    assert err(api("POST", "/api/custom-fields", {**FIELD, "object_type": "Order"}))["data"] == {
        "object_type": ["Must be one of: Ticket, Customer."]}
    cf = api.make("/api/custom-fields", FIELD)
    r = api("PUT", f"/api/custom-fields/{cf['id']}", {"label": "x"})
    assert r.status_code == 400 and set(err(r)["data"]) == {"object_type", "definition"}
    assert api("PUT", f"/api/custom-fields/{cf['id']}", {**FIELD, "label": "x"}).status_code == 202
    assert err(api("POST", "/api/rules", {"name": "r"}))["data"] == {
        "code": ["Missing data for required field."]}
    rule = api.make("/api/rules", {"name": "r", "code": "if (true) {}"})
    assert api("PUT", f"/api/rules/{rule['id']}", {"priority": 2}).json()["priority"] == 2
    assert api("DELETE", f"/api/rules/{rule['id']}").status_code == 204


# -- rate limit and latency ---------------------------------------------------------------

def test_burst_past_the_limit_gets_429(fake_gorgias, api):
    fake_gorgias.configure(rate_limit=5, rate_window=1)
    got = [api("GET", "/api/account") for _ in range(7)]
    assert [r.status_code for r in got] == [200] * 5 + [429] * 2
    assert [r.headers[LIMIT_HEADER] for r in got] == ["1/5", "2/5", "3/5", "4/5", "5/5",
                                                      "5/5", "5/5"]
    assert err(got[-1]) == {"msg": "Too many requests."}
    assert got[-1].headers["Retry-After"] == "1" and "Retry-After" not in got[0].headers
    assert fake_gorgias.stats()["status_counts"] == {"200": 5, "429": 2}
    time.sleep(0.45)  # 5/s drains 2.25 units: one more request fits, the level is below 5
    r = api("GET", "/api/account")
    used, limit = map(int, r.headers[LIMIT_HEADER].split("/"))
    assert r.status_code == 200 and limit == 5 and 1 <= used <= 4
    assert api("GET", "/api/nothing").headers[LIMIT_HEADER] == "5/5"  # 404s carry it too


def test_retry_after_is_the_time_until_a_slot(fake_gorgias, api):
    fake_gorgias.configure(rate_limit=2, rate_window=10)  # one slot every 5 s
    codes = [api("GET", "/api/account").status_code for _ in range(2)]
    r = api("GET", "/api/account")
    assert codes == [200, 200] and r.status_code == 429 and r.headers["Retry-After"] == "5"


def test_consume_and_concurrent_clients(fake_gorgias, api):
    fake_gorgias.configure(rate_limit=10, rate_window=100)
    fake_gorgias.consume(4)
    assert api("GET", "/api/account").headers[LIMIT_HEADER] == "5/10"
    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda _: Api(fake_gorgias)("GET", "/api/account").status_code,
                              range(12)))
    assert sorted(codes) == [200] * 5 + [429] * 7  # one bucket for every thread/connection
    fake_gorgias.consume(100)
    assert fake_gorgias.stats()["call_limit_header"] == "10/10"  # capped at capacity


def test_unlimited(fake_gorgias, api):
    fake_gorgias.configure(rate_limit=0, rate_window=60)
    got = [api("GET", "/api/account") for _ in range(60)]
    assert {r.status_code for r in got} == {200}
    assert got[-1].headers[LIMIT_HEADER] == "60/1000000"


def test_latency_and_concurrency(fake_gorgias):
    fake_gorgias.configure(latency_ms=(200, 200))
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: Api(fake_gorgias)("GET", "/api/account").status_code,
                              range(8)))
    elapsed = time.monotonic() - started
    assert codes == [200] * 8 and 0.2 <= elapsed < 1.0
    assert fake_gorgias.stats()["max_concurrent"] >= 4


# -- faults --------------------------------------------------------------------------------

def test_5xx_before_and_after(fake_gorgias, api):
    fake_gorgias.add_fault(status=503, method="POST", path="/api/customers")
    r = api("POST", "/api/customers", cust("a@x.io"))
    assert r.status_code == 503 and err(r) == {"msg": "An external service had an issue."}
    assert r.headers[LIMIT_HEADER] == "1/1000"
    assert fake_gorgias.store["customers"] == {}
    fake_gorgias.add_fault(status=502, when="after", count=2, body="<html>bad gateway</html>",
                           content_type="text/html", headers={"X-Edge": "1"})
    r = api("POST", "/api/customers", cust("a@x.io"))
    assert r.status_code == 502 and r.text == "<html>bad gateway</html>"
    assert r.headers["X-Edge"] == "1" and r.headers["Content-Type"] == "text/html"
    assert len(fake_gorgias.store["customers"]) == 1  # applied: the outcome is unknown
    r = api("POST", "/api/customers", cust("a@x.io"))
    assert r.status_code == 502  # the write behind it was a 409 the client never sees
    assert api("POST", "/api/customers", cust("b@x.io")).status_code == 201
    assert [e["fault"] is not None for e in fake_gorgias.requests] == [True] * 3 + [False]


def test_forced_429_is_not_counted(fake_gorgias, api):
    fake_gorgias.configure(rate_limit=5, rate_window=100)
    fake_gorgias.add_fault(status=429, retry_after=3, count=2)
    for _ in range(2):
        r = api("GET", "/api/account")
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        assert r.headers[LIMIT_HEADER] == "0/5"
    assert api("GET", "/api/account").headers[LIMIT_HEADER] == "1/5"
    fake_gorgias.add_fault(status=429, retry_after=None)
    assert "Retry-After" not in api("GET", "/api/account").headers


@pytest.mark.parametrize("when", ["before", "after"])
def test_drop(fake_gorgias, when):
    fake_gorgias.add_fault(drop=when, method="POST")
    with pytest.raises(requests.ConnectionError):
        requests.post(fake_gorgias.base_url + "/api/tags", json={"name": "x"}, auth=(EMAIL, KEY),
                      timeout=5)
    assert len(fake_gorgias.store["tags"]) == (1 if when == "after" else 0)
    (entry,) = fake_gorgias.requests
    assert entry["status"] == 0 and entry["dropped"] == when
    assert Api(fake_gorgias)("GET", "/api/account").status_code == 200  # next one is fine


def test_delay_makes_the_client_time_out(fake_gorgias):
    fake_gorgias.add_fault(delay_ms=700, method="POST")
    with pytest.raises(requests.ReadTimeout):
        Api(fake_gorgias, timeout=0.2)("POST", "/api/tags", {"name": "slow"})
    assert [t["name"] for t in fake_gorgias.store["tags"].values()] == ["slow"]  # applied
    wait_for(lambda: fake_gorgias.requests[0]["status"] == 201)
    started = time.monotonic()
    fake_gorgias.add_fault(delay_ms=300)
    assert Api(fake_gorgias)("GET", "/api/account").status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(("raw", "text"), [
    ({"status": 200, "body": "<html>hi</html>", "content_type": "text/html"}, "<html>hi</html>"),
    ({"status": 201, "body": ""}, ""),
    ({"status": 201, "body": '{"id": 1, "na'}, '{"id": 1, "na'),
    ({"status": 201, "body": "[1, 2]"}, "[1, 2]"),
])
def test_raw_answers(fake_gorgias, api, raw, text):
    fake_gorgias.add_fault(raw=raw)
    r = api("POST", "/api/tags", {"name": "t"})
    assert r.status_code == raw["status"] and r.text == text
    assert r.headers["Content-Type"] == raw.get("content_type", "application/json")
    assert len(fake_gorgias.store["tags"]) == 1  # the write happened


def test_fault_matching_order_and_validation(fake_gorgias, api):
    fake_gorgias.add_fault(status=500, method="PUT")
    fake_gorgias.add_fault(status=504, path="/api/tags", count=2)
    assert api("GET", "/api/account").status_code == 200
    assert [api("POST", "/api/tags", {"name": n}).status_code for n in "abc"] == [504, 504, 201]
    assert api("PUT", "/api/tags/1", {}).status_code == 500
    assert fake_gorgias.faults() == []
    for bad in ({"status": 500, "colour": "red"}, {"count": 1}, {"drop": "sideways"},
                {"status": 500, "count": 0}):
        with pytest.raises(ValueError):
            fake_gorgias.add_fault(**bad)


# -- inspection, control API, CLI ---------------------------------------------------------

def test_control_api(fake_gorgias, api):
    url = fake_gorgias.base_url + "/_fake/"
    post = lambda path, body: requests.post(url + path, json=body, timeout=5)  # noqa: E731
    assert post("config", {"rate_limit": 3, "rate_window": 100, "latency_ms": [0, 0]}).json()[
        "rate_limit"] == 3
    assert post("consume", {"n": 1}).status_code == 200
    assert post("faults", [{"status": 503, "count": 1}, {"drop": "before"}]).json()["pending"] == 2
    assert post("faults", {"nope": 1}).status_code == 400
    assert len(requests.get(url + "faults", timeout=5).json()) == 2
    assert api("POST", "/api/tags", {"name": "a"}).status_code == 503
    with pytest.raises(requests.ConnectionError):
        requests.get(fake_gorgias.base_url + "/api/account", auth=(EMAIL, KEY), timeout=5)
    assert api("POST", "/api/tags", {"name": "a"}).status_code == 429  # 1 consumed + 2
    for _ in range(5):  # the control API is neither rate limited nor logged
        stats = requests.get(url + "stats", timeout=5).json()
    assert stats["requests"] == 3 and stats["status_counts"] == {"503": 1, "0": 1, "429": 1}
    log = requests.get(url + "requests", timeout=5).json()
    assert [e["status"] for e in log] == [503, 0, 429]
    assert [e["status"] for e in requests.get(url + "requests?since=2", timeout=5).json()] == [429]
    post("config", {"rate_limit": 0})
    tag = api.make("/api/tags", {"name": "b"})
    assert requests.get(url + "store", timeout=5).json()["tags"][str(tag["id"])]["name"] == "b"
    assert post("reset", {}).json() == {"ok": True}
    assert fake_gorgias.requests == [] and fake_gorgias.store["tags"] == {}
    assert requests.get(url + "nothing", timeout=5).status_code == 404


def test_stop_closes_everything():
    srv = FakeGorgias(rate_limit=0).start()
    api = Api(srv)
    assert api("GET", "/api/account").status_code == 200  # a keep-alive connection is open
    srv.stop()
    with pytest.raises(requests.ConnectionError):
        api("GET", "/api/account")


def test_session_fixture(fake_gorgias_session):
    assert Api(fake_gorgias_session)("GET", "/api/account").status_code == 200


def test_cli_serves_until_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "target_gorgias.fake_server", "--port", "0",
                             "--rate-limit", "3", "--rate-window", "60", "--latency-ms", "1,2",
                             "--api-key", "k2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        timer = threading.Timer(10, proc.kill)
        timer.start()
        line = proc.stdout.readline()
        timer.cancel()
        assert line.startswith("Fake Gorgias listening on http://127.0.0.1:")
        url = line.split()[-1]
        assert not url.endswith(":0")
        r = requests.get(url + "/api/account", auth=(EMAIL, "k2"), timeout=5)
        assert r.status_code == 200 and r.headers[LIMIT_HEADER] == "1/3"
        assert json.loads(requests.get(url + "/_fake/stats", timeout=5).text)["requests"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0


@pytest.mark.parametrize("args", [["--host", "0.0.0.0"], ["--host", "10.1.2.3"],
                                  ["--latency-ms", "fast"]])
def test_cli_refuses(args):
    res = subprocess.run([sys.executable, "-m", "target_gorgias.fake_server", "--port", "0",
                          *args], capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 2 and res.stdout == "" and res.stderr


# -- fault modes for the delivery guarantees (issue 11) -----------------------------------------


def test_slow_commit_applies_the_write_after_the_client_gave_up(fake_gorgias, api):
    fake_gorgias.add_fault(commit_delay_ms=800, method="POST", path="/api/tags")
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.s.post(api.base + "/api/tags", json={"name": "late"}, timeout=0.3)
    assert fake_gorgias.store["tags"] == {}  # not yet applied when the client gave up
    wait_for(lambda: len(fake_gorgias.store["tags"]) == 1)
    assert [t["name"] for t in fake_gorgias.store["tags"].values()] == ["late"]


def test_trickled_body_arrives_slowly_but_whole(fake_gorgias, api):
    fake_gorgias.add_fault(trickle_ms=30, method="POST")
    started = time.monotonic()
    r = api("POST", "/api/tags", {"name": "slow"})
    took = time.monotonic() - started
    assert r.status_code == 201 and r.json()["name"] == "slow"
    assert took >= 30 / 1000 * (len(r.content) // 8)  # 8 bytes per 30 ms


def test_non_json_2xx_applies_the_write(fake_gorgias, api):
    fake_gorgias.add_fault(non_json=True, method="POST")
    r = api("POST", "/api/tags", {"name": "html"})
    assert r.status_code == 201
    assert r.headers["Content-Type"].startswith("text/html")
    assert [t["name"] for t in fake_gorgias.store["tags"].values()] == ["html"]


def test_list_endpoint_that_ignores_its_filter(fake_gorgias, api):
    api.make("/api/customers", {"email": "a@example.com"})
    api.make("/api/customers", {"email": "b@example.com"})
    assert len(api("GET", "/api/customers", params={"email": "b@example.com"}).json()["data"]) == 1
    fake_gorgias.add_fault(ignore_filter=True, method="GET", path="/api/customers")
    data = api("GET", "/api/customers", params={"email": "b@example.com"}).json()["data"]
    assert sorted(c["email"] for c in data) == ["a@example.com", "b@example.com"]


def test_retry_after_as_http_date_and_on_503(fake_gorgias, api):
    fake_gorgias.add_fault(status=429, retry_after=3, retry_after_date=True)
    fake_gorgias.add_fault(status=503, retry_after=2)
    r = api("GET", "/api/tags")
    assert r.status_code == 429
    when = email.utils.parsedate_to_datetime(r.headers["Retry-After"])
    assert 1 <= when.timestamp() - time.time() <= 4
    r = api("GET", "/api/tags")
    assert r.status_code == 503 and r.headers["Retry-After"] == "2"


def test_trashed_tickets_are_listed_unless_told_otherwise(fake_gorgias, api):
    kept = api.ticket(external_id="t-1")
    trashed = api.ticket(external_id="t-1")
    assert api("PUT", f"/api/tickets/{trashed['id']}",
               {"trashed_datetime": "2026-01-01T00:00:00+00:00"}).status_code == 202
    listed = api("GET", "/api/tickets", params={"external_id": "t-1"}).json()["data"]
    assert sorted(t["id"] for t in listed) == sorted([kept["id"], trashed["id"]])  # default true
    live = api("GET", "/api/tickets", params={"external_id": "t-1", "trashed": "false"})
    assert [t["id"] for t in live.json()["data"]] == [kept["id"]]
    assert api("GET", "/api/tickets", params={"trashed": "maybe"}).status_code == 400


def test_new_fault_keys_are_checked(fake_gorgias):
    with pytest.raises(ValueError, match="commit_delay_ms must be a number"):
        fake_gorgias.add_fault(commit_delay_ms=-1)
    with pytest.raises(ValueError, match="needs one of"):
        fake_gorgias.add_fault(retry_after_date=True)
