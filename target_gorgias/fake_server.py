"""A fake Gorgias REST API on 127.0.0.1, for the tests, the README example and the benchmarks.

It behaves like Gorgias where the target depends on it: HTTP Basic / Bearer auth with
Gorgias' 401 body, the write endpoints with their status codes (201/202/204, 200 for a
message DELETE), required and unknown-field validation with Gorgias' error body, 404, 405,
409 for a duplicate customer or user email, the account-wide leaky-bucket rate limit with
``X-Gorgias-Account-Api-Call-Limit`` and 429 + ``Retry-After``, list lookups by ``email`` /
``external_id``, and switches to inject faults (5xx, 429, slow answers, dropped connections,
malformed bodies). It records every request so tests can assert on what arrived.

    python -m target_gorgias.fake_server --port 8080 [--rate-limit 40 --rate-window 20]
                                         [--latency-ms 50,200]

Control API (no auth, not rate limited, not logged): ``GET /_fake/requests``,
``GET /_fake/store``, ``GET /_fake/stats``, ``POST /_fake/reset``, ``POST /_fake/faults``
(one rule or a list), ``POST /_fake/config`` (``rate_limit``, ``rate_window``,
``latency_ms``), ``POST /_fake/consume`` (``{"n": 5}``: another client's requests).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import datetime as dt
import json
import math
import random
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

LIMIT_HEADER = "X-Gorgias-Account-Api-Call-Limit"
#: With rate_limit 0 the bucket never fills; the header shows this as the limit.
UNLIMITED = 1_000_000

# -- resources as data: field -> type ---------------------------------------------------

_DT, _STR, _INT, _BOOL, _OBJ, _LIST, _ANY = "datetime", "string", "integer", "boolean", \
    "object", "list", "any"
_REF = "ref"  # {"id": ...} or {"email": ...}

MESSAGE_FIELDS = {
    "channel": _STR, "from_agent": _BOOL, "via": _STR, "source": _OBJ, "sender": _REF,
    "receiver": _REF, "subject": _STR, "body_text": _STR, "body_html": _STR,
    "stripped_text": _STR, "stripped_html": _STR, "attachments": _LIST, "external_id": _STR,
    "message_id": _STR, "integration_id": _INT, "headers": _OBJ, "meta": _OBJ,
    "sent_datetime": _DT, "created_datetime": _DT, "failed_datetime": _DT,
    "opened_datetime": _DT, "public": _BOOL, "imported": _BOOL, "macros": _LIST,
    "actions": _LIST, "mention_ids": _LIST,
}
TICKET_FIELDS = {
    "assignee_team": _REF, "assignee_user": _REF, "channel": _STR, "closed_datetime": _DT,
    "created_datetime": _DT, "custom_fields": _LIST, "customer": _REF, "external_id": _STR,
    "from_agent": _BOOL, "language": _STR, "last_message_datetime": _DT,
    "last_received_message_datetime": _DT, "meta": _OBJ, "opened_datetime": _DT,
    "priority": _STR, "snooze_datetime": _DT, "spam": _BOOL, "split_from": _ANY,
    "status": _STR, "subject": _STR, "tags": _LIST, "trashed_datetime": _DT,
    "updated_datetime": _DT, "via": _STR, "imported": _BOOL, "messages": _LIST,
    "is_unread": _BOOL,
}
TICKET_UPDATE_FIELDS = {k: v for k, v in TICKET_FIELDS.items()
                        if k not in ("created_datetime", "messages", "imported", "split_from")}
CUSTOMER_FIELDS = {
    "email": _STR, "name": _STR, "firstname": _STR, "lastname": _STR, "external_id": _STR,
    "language": _STR, "timezone": _STR, "note": _STR, "channels": _LIST, "data": _OBJ,
    "meta": _OBJ,
}
USER_FIELDS = {
    "email": _STR, "name": _STR, "role": _OBJ, "bio": _STR, "country": _STR,
    "external_id": _STR, "language": _STR, "meta": _OBJ, "timezone": _STR,
    "password_confirmation": _STR,
}
TAG_FIELDS = {"name": _STR, "description": _STR, "decoration": _OBJ}
MACRO_FIELDS = {"name": _STR, "external_id": _STR, "intent": _STR, "language": _STR,
                "actions": _LIST}
CUSTOM_FIELD_FIELDS = {
    "object_type": _STR, "label": _STR, "definition": _OBJ, "external_id": _STR,
    "description": _STR, "priority": _INT, "required": _BOOL, "managed_type": _STR,
    "deactivated_datetime": _DT,
}
RULE_FIELDS = {"name": _STR, "code": _STR, "code_ast": _OBJ, "event_types": _STR,
               "priority": _INT, "description": _STR, "deactivated_datetime": _DT}

ROLES = {"admin", "agent", "basic-agent", "bot", "internal-agent", "lite-agent",
         "observer-agent"}
VIA = {"aircall", "api", "chat", "contact_form", "email", "facebook", "facebook-mention",
       "facebook-messenger", "facebook-recommendations", "form", "gorgias_chat", "help-center",
       "helpdesk", "instagram", "instagram-ad-comment", "instagram-comment",
       "instagram-direct-message", "instagram-mention", "internal-note", "offline_capture",
       "phone", "rule", "self_service", "shopify", "sms", "twilio", "twitter",
       "twitter-direct-message", "whatsapp", "yotpo", "yotpo-review", "zendesk"}
RESOURCES = ("tickets", "messages", "customers", "users", "tags", "macros", "custom_fields",
             "rules")


class ApiError(Exception):
    """An answer other than success: status and Gorgias' error body."""

    def __init__(self, status: int, msg: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.body: dict[str, Any] = {"error": {"msg": msg}}
        if data:
            self.body["error"]["data"] = data


def _type_ok(kind: str, value: Any) -> bool:
    if value is None or kind == _ANY:
        return True
    if kind in (_STR, _DT):
        return isinstance(value, str)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _BOOL:
        return isinstance(value, bool)
    if kind in (_OBJ, _REF):
        return isinstance(value, dict)
    if kind == _LIST:
        return isinstance(value, list)
    return True


_TYPE_WORD = {_STR: "string", _DT: "datetime", _INT: "integer", _BOOL: "boolean", _OBJ: "dict",
              _REF: "dict", _LIST: "list"}


def validate(body: Any, fields: dict[str, str], required: tuple[str, ...], what: str
             ) -> dict[str, Any]:
    """Check a body against a field table; raise ``ApiError`` 400 with per-field errors."""
    if not isinstance(body, dict):
        raise ApiError(400, f"Failed to {what}", {"_schema": ["Invalid input type."]})
    errors: dict[str, Any] = {}
    for name in required:
        if body.get(name) is None:
            errors[name] = ["Missing data for required field."]
    for name, value in body.items():
        if name not in fields:
            errors[name] = ["No such field."]
        elif not _type_ok(fields[name], value):
            errors[name] = [f"Not a valid {_TYPE_WORD.get(fields[name], fields[name])}."]
        elif fields[name] == _DT and value is not None:
            try:
                dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                errors[name] = ["Not a valid datetime."]
    if errors:
        raise ApiError(400, f"Failed to {what}", errors)
    return body


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


class FakeGorgias:
    """The fake server: start it, point the target at ``base_url``, inspect what arrived."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 email: str = "agent@example.com", api_key: str = "fake-api-key",
                 access_token: str = "fake-access-token", rate_limit: int = 40,
                 rate_window: float = 20.0, latency_ms: tuple[int, int] = (0, 0),
                 max_body_bytes: int = 10 * 1024 * 1024) -> None:
        self.host, self.port = host, port
        self.email, self.api_key, self.access_token = email, api_key, access_token
        self.rate_limit, self.rate_window = rate_limit, rate_window
        self.latency_ms = latency_ms
        self.max_body_bytes = max_body_bytes
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeGorgias:
        """Serve in a daemon thread; returns self."""
        handler = type("Handler", (_Handler,), {"fake": self})
        httpd = ThreadingHTTPServer((self.host, self.port), handler)
        httpd.daemon_threads = True
        httpd.request_queue_size = 128
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, daemon=True,
                                        name="fake-gorgias")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeGorgias:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    # -- inspection and control --------------------------------------------------------

    def reset(self) -> None:
        """Forget everything: store, request log, faults, bucket."""
        with self._lock:
            self._store: dict[str, dict[int, dict[str, Any]]] = {r: {} for r in RESOURCES}
            self._ticket_tags: dict[int, list[int]] = {}
            self._log: list[dict[str, Any]] = []
            self._faults: list[dict[str, Any]] = []
            self._level = 0.0
            self._level_at = time.monotonic()
            self._next_id = 1
            self._in_flight = 0
            self._max_in_flight = 0

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A snapshot of every /api request received, oldest first."""
        with self._lock:
            return copy.deepcopy(self._log)

    @property
    def store(self) -> dict[str, dict[int, dict[str, Any]]]:
        """A snapshot of the data: resource -> {id: object}."""
        with self._lock:
            return copy.deepcopy(self._store)

    def add_fault(self, **rule: Any) -> None:
        """Queue a fault rule (see the module docstring of the tests / README)."""
        rule.setdefault("count", 1)
        with self._lock:
            self._faults.append(rule)

    def configure(self, rate_limit: int | None = None, rate_window: float | None = None,
                  latency_ms: tuple[int, int] | list[int] | None = None) -> None:
        """Change the rate limit or the latency while running."""
        with self._lock:
            if rate_limit is not None:
                self.rate_limit = int(rate_limit)
            if rate_window is not None:
                self.rate_window = float(rate_window)
            if latency_ms is not None:
                self.latency_ms = (int(latency_ms[0]), int(latency_ms[1]))

    def consume(self, n: int) -> None:
        """Another client on the account made ``n`` requests."""
        with self._lock:
            self._leak()
            self._level += n

    def stats(self) -> dict[str, Any]:
        """Counts of requests and statuses, and the most requests ever in flight at once."""
        with self._lock:
            statuses = Counter(str(r["status"]) for r in self._log)
            return {"requests": len(self._log), "status_counts": dict(statuses),
                    "max_concurrent": self._max_in_flight}

    # -- rate limit --------------------------------------------------------------------

    def _leak(self) -> None:
        now = time.monotonic()
        if self.rate_limit > 0:
            rate = self.rate_limit / self.rate_window
            self._level = max(0.0, self._level - (now - self._level_at) * rate)
        self._level_at = now

    def _admit(self) -> tuple[bool, str, float]:
        """Take one unit from the bucket: (admitted, header value, retry-after seconds)."""
        with self._lock:
            self._leak()
            limit = self.rate_limit if self.rate_limit > 0 else UNLIMITED
            if self.rate_limit > 0 and self._level + 1 > self.rate_limit:
                rate = self.rate_limit / self.rate_window
                wait = max(1.0, math.ceil((self._level + 1 - self.rate_limit) / rate))
                return False, f"{math.ceil(self._level)}/{limit}", wait
            self._level += 1
            return True, f"{math.ceil(self._level)}/{limit}", 0.0

    def _header(self) -> str:
        with self._lock:
            self._leak()
            limit = self.rate_limit if self.rate_limit > 0 else UNLIMITED
            return f"{math.ceil(self._level)}/{limit}"

    def _take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        with self._lock:
            for rule in self._faults:
                if rule.get("method") and rule["method"].upper() != method:
                    continue
                if rule.get("path") and not path.startswith(rule["path"]):
                    continue
                rule["count"] -= 1
                if rule["count"] <= 0:
                    self._faults.remove(rule)
                return dict(rule)
        return None

    # -- the API -------------------------------------------------------------------------

    def _new(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        obj_id = self._next_id
        self._next_id += 1
        now = _now()
        api = resource.replace("_", "-")
        obj = {**body, "id": obj_id, "uri": f"/api/{api}/{obj_id}/",
               "created_datetime": body.get("created_datetime") or now, "updated_datetime": now}
        self._store[resource][obj_id] = obj
        return obj

    def _get(self, resource: str, raw_id: str) -> dict[str, Any]:
        try:
            obj = self._store[resource].get(int(raw_id))
        except ValueError:
            obj = None
        if obj is None:
            raise ApiError(404, "Resource not found.")
        return obj

    def _listing(self, path: str, items: list[dict[str, Any]], query: dict[str, list[str]]
                 ) -> dict[str, Any]:
        limit = int(query.get("limit", ["30"])[0])
        if limit > 100:
            raise ApiError(400, "Invalid request.", {"limit": ["Must be at most 100."]})
        for key in ("email", "external_id", "customer_id", "ticket_id", "name"):
            if key not in query:
                continue
            want = query[key][0]
            if key == "email":
                items = [i for i in items if str(i.get(key) or "").lower() == want.lower()]
            else:
                items = [i for i in items if str(i.get(key, "")) == want]
        return {"object": "list", "uri": path, "data": items[:limit],
                "meta": {"prev_cursor": None, "next_cursor": None}}

    def _customer_by_email(self, email: str) -> dict[str, Any] | None:
        for c in self._store["customers"].values():
            if str(c.get("email", "")).lower() == email.lower():
                return c
        return None

    def _ref_customer(self, ref: Any) -> None:
        """A ticket's customer given by email is reused or created, as Gorgias does."""
        if (isinstance(ref, dict) and ref.get("email") and not ref.get("id")
                and self._customer_by_email(ref["email"]) is None):
                self._new("customers", {"email": ref["email"], "name": ref.get("name")})

    def _tag_ids(self, body: dict[str, Any]) -> list[int]:
        if not isinstance(body, dict) or not (body.get("ids") or body.get("names")):
            raise ApiError(400, "Invalid request.",
                           {"ids": ["Either ids or names must be provided."]})
        ids = [int(i) for i in body.get("ids") or []]
        for i in ids:
            self._get("tags", str(i))
        for name in body.get("names") or []:
            found = next((t for t in self._store["tags"].values() if t["name"] == name), None)
            ids.append(found["id"] if found else self._new("tags", {"name": name})["id"])
        return ids

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any
               ) -> tuple[int, Any]:
        """Route one authenticated, admitted request. Returns (status, JSON body or None)."""
        parts = [p for p in path.split("/") if p][1:]  # drop "api"
        if not parts:
            raise ApiError(404, "Resource not found.")
        head, rest = parts[0], parts[1:]
        with self._lock:
            if head == "account" and not rest:
                return self._only(method, "GET", lambda: (200, {
                    "domain": "fake", "status": {"status": "active"}}))
            if head == "tickets":
                return self._tickets(method, rest, query, body, path)
            if head == "messages" and not rest:
                return self._only(method, "GET", lambda: (200, self._listing(
                    path, list(self._store["messages"].values()), query)))
            table = {"customers": CUSTOMER_FIELDS, "users": USER_FIELDS, "tags": TAG_FIELDS,
                     "macros": MACRO_FIELDS, "custom-fields": CUSTOM_FIELD_FIELDS,
                     "rules": RULE_FIELDS}
            if head in table:
                return self._simple(head.replace("-", "_"), table[head], method, rest, query,
                                    body, path)
        raise ApiError(404, "Resource not found.")

    @staticmethod
    def _only(method: str, allowed: str | tuple[str, ...],
              fn: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
        if method not in ((allowed,) if isinstance(allowed, str) else allowed):
            raise ApiError(405, "The specified HTTP method is not allowed.")
        return fn()

    _REQUIRED: ClassVar[dict[str, tuple[str, ...]]] = {
                 "customers": (), "users": ("email", "name", "role"), "tags": ("name",),
                 "macros": ("name",), "custom_fields": ("object_type", "label", "definition"),
                 "rules": ("name", "code")}
    _SINGULAR: ClassVar[dict[str, str]] = {
                 "customers": "customer", "users": "user", "tags": "tag", "macros": "macro",
                 "custom_fields": "custom field", "rules": "rule"}

    def _check_resource(self, resource: str, body: dict[str, Any], own_id: int | None) -> None:
        if resource in ("customers", "users") and body.get("email"):
            for other in self._store[resource].values():
                if (other["id"] != own_id
                        and str(other.get("email", "")).lower() == str(body["email"]).lower()):
                    raise ApiError(409, "The resource already exists.")
        if resource == "users" and "role" in body:
            role = body["role"]
            if not isinstance(role, dict) or role.get("name") not in ROLES:
                raise ApiError(400, "Failed to save user",
                               {"role": [f"Must be one of: {', '.join(sorted(ROLES))}."]})
        if resource == "tags" and "name" in body:
            if len(body["name"]) > 256:
                raise ApiError(400, "Failed to save tag", {"name": ["Longer than 256."]})
            if any(t["name"] == body["name"] and t["id"] != own_id
                   for t in self._store["tags"].values()):
                raise ApiError(409, "The resource already exists.")
        if resource == "custom_fields" and body.get("object_type") not in (
                None, "Ticket", "Customer"):
            raise ApiError(400, "Failed to save custom field",
                           {"object_type": ["Must be one of: Ticket, Customer."]})

    def _simple(self, resource: str, fields: dict[str, str], method: str, rest: list[str],
                query: dict[str, list[str]], body: Any, path: str) -> tuple[int, Any]:
        name = self._SINGULAR[resource]
        if not rest:
            if method == "GET":
                return 200, self._listing(path, list(self._store[resource].values()), query)
            if method == "POST":
                validate(body, fields, self._REQUIRED[resource], f"create {name}")
                self._check_resource(resource, body, None)
                return 201, self._new(resource, body)
            if method == "DELETE" and resource in ("customers", "tags"):
                ids = body.get("ids") if isinstance(body, dict) else None
                if not isinstance(ids, list) or not ids:
                    raise ApiError(400, f"Failed to delete {resource}",
                                   {"ids": ["Missing data for required field."]})
                extra = set(body) - {"ids"}
                if extra:
                    raise ApiError(400, f"Failed to delete {resource}",
                                   {k: ["No such field."] for k in extra})
                found = [i for i in ids if isinstance(i, int) and i in self._store[resource]]
                if not found:
                    raise ApiError(404, "Resource not found.")
                for i in found:
                    del self._store[resource][i]
                return 204, None
            raise ApiError(405, "The specified HTTP method is not allowed.")
        if len(rest) != 1:
            raise ApiError(404, "Resource not found.")
        obj = self._get(resource, rest[0])
        if method == "GET":
            return 200, obj
        if method == "PUT":
            required = self._REQUIRED[resource] if resource == "custom_fields" else ()
            validate(body, fields, required, f"update {name}")
            self._check_resource(resource, body, obj["id"])
            obj.update(body, updated_datetime=_now())
            return 202, obj
        if method == "DELETE" and resource != "custom_fields":
            del self._store[resource][obj["id"]]
            return 204, None
        raise ApiError(405, "The specified HTTP method is not allowed.")

    def _tickets(self, method: str, rest: list[str], query: dict[str, list[str]], body: Any,
                 path: str) -> tuple[int, Any]:
        if not rest:
            if method == "GET":
                return 200, self._listing(path, list(self._store["tickets"].values()), query)
            if method != "POST":
                raise ApiError(405, "The specified HTTP method is not allowed.")
            validate(body, TICKET_FIELDS, ("messages",), "create ticket")
            messages = body["messages"]
            if not 1 <= len(messages) <= 500:
                raise ApiError(400, "Failed to create ticket",
                               {"messages": ["Length must be between 1 and 500."]})
            errors = {}
            for i, msg in enumerate(messages):
                try:
                    validate(msg, MESSAGE_FIELDS, ("channel", "from_agent"), "create message")
                except ApiError as exc:
                    errors[f"messages.{i}"] = exc.body["error"].get("data")
            if body.get("via") is not None and body["via"] not in VIA:
                errors["via"] = ["Must be one of the known via values."]
            if errors:
                raise ApiError(400, "Failed to create ticket", errors)
            self._ref_customer(body.get("customer"))
            ticket = self._new("tickets", {**{k: v for k, v in body.items() if k != "messages"},
                                           "via": body.get("via") or "api"})
            ticket["messages"] = [
                self._new("messages", {**m, "ticket_id": ticket["id"]}) for m in messages]
            return 201, ticket
        ticket = self._get("tickets", rest[0])
        if len(rest) == 1:
            if method == "GET":
                return 200, ticket
            if method == "PUT":
                if isinstance(body, dict) and "created_datetime" in body:
                    raise ApiError(400, "Failed to update ticket",
                                   {"created_datetime": ["Field is read-only."]})
                validate(body, TICKET_UPDATE_FIELDS, (), "update ticket")
                ticket.update(body, updated_datetime=_now())
                return 202, ticket
            if method == "DELETE":
                del self._store["tickets"][ticket["id"]]
                return 204, None
            raise ApiError(405, "The specified HTTP method is not allowed.")
        sub = rest[1]
        if sub == "messages":
            if len(rest) == 2:
                if method == "GET":
                    own = [m for m in self._store["messages"].values()
                           if m["ticket_id"] == ticket["id"]]
                    return 200, self._listing(path, own, {})
                if method != "POST":
                    raise ApiError(405, "The specified HTTP method is not allowed.")
                validate(body, MESSAGE_FIELDS, ("channel", "from_agent"), "create message")
                return 201, self._new("messages", {**body, "ticket_id": ticket["id"]})
            if len(rest) != 3:
                raise ApiError(404, "Resource not found.")
            msg = self._get("messages", rest[2])
            if msg["ticket_id"] != ticket["id"]:
                raise ApiError(404, "Resource not found.")
            if method == "GET":
                return 200, msg
            if method == "PUT":
                validate(body, MESSAGE_FIELDS, ("channel", "from_agent"), "update message")
                msg.update(body, updated_datetime=_now())
                return 202, msg
            if method == "DELETE":
                del self._store["messages"][msg["id"]]
                return 200, None
            raise ApiError(405, "The specified HTTP method is not allowed.")
        if sub == "tags" and len(rest) == 2:
            current = self._ticket_tags.setdefault(ticket["id"], [])
            if method == "GET":
                return 200, {"data": [self._store["tags"][i] for i in current
                                      if i in self._store["tags"]]}
            if method in ("POST", "PUT", "DELETE"):
                if isinstance(body, dict) and set(body) - {"ids", "names"}:
                    raise ApiError(400, "Invalid request.",
                                   {k: ["No such field."] for k in set(body) - {"ids", "names"}})
                if method == "PUT" and body == {}:
                    ids: list[int] = []
                else:
                    ids = self._tag_ids(body)
                if method == "POST":
                    current.extend(i for i in ids if i not in current)
                    return 201, None
                if method == "PUT":
                    current[:] = ids
                    return 202, None
                current[:] = [i for i in current if i not in ids]
                return 204, None
            raise ApiError(405, "The specified HTTP method is not allowed.")
        if sub == "custom-fields" and len(rest) == 2:
            if method == "GET":
                return 200, {"data": ticket.get("custom_fields") or []}
            if method != "PUT":
                raise ApiError(405, "The specified HTTP method is not allowed.")
            if not isinstance(body, list) or not all(
                    isinstance(v, dict) and "id" in v and set(v) <= {"id", "value"}
                    for v in body):
                raise ApiError(400, "Failed to update custom fields",
                               {"_schema": ["Expected a list of {id, value}."]})
            values = {v["id"]: v for v in ticket.get("custom_fields") or []}
            values.update({v["id"]: v for v in body})
            ticket["custom_fields"] = list(values.values())
            return 202, body
        raise ApiError(404, "Resource not found.")

    # -- auth ---------------------------------------------------------------------------

    def auth(self, header: str | None) -> tuple[str | None, bool]:
        """(kind, ok) for an Authorization header."""
        if not header:
            return None, False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return "bearer", value == self.access_token
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return "basic", False
            return "basic", user == self.email and password == self.api_key
        return None, False


_HTML_404 = (b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n"
             b"<h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>\n")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGorgias
    protocol_version = "HTTP/1.1"
    server_version = "FakeGorgias/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _send(self, status: int, body: Any = None, *, raw: bytes | None = None,
              content_type: str = "application/json", headers: dict[str, str] | None = None
              ) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        if data or status not in (204,):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _serve(self, method: str) -> None:
        try:
            self._serve_one(method)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (killed or timed out)

    def _serve_one(self, method: str) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        raw_path = split.path
        path = unquote(raw_path)
        query = parse_qs(split.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        if raw_path.startswith("/_fake/"):
            self._control(method, raw_path[len("/_fake/"):], raw_body)
            return
        if not raw_path.startswith("/api/") and raw_path != "/api":
            self._send(404, raw=_HTML_404, content_type="text/html; charset=utf-8")
            return
        with fake._lock:
            fake._in_flight += 1
            fake._max_in_flight = max(fake._max_in_flight, fake._in_flight)
        entry: dict[str, Any] = {
            "method": method, "path": path, "raw_path": raw_path, "query": query,
            "headers": {k: ("<redacted>" if k.lower() == "authorization" else v)
                        for k, v in self.headers.items()},
            "auth": None, "auth_ok": False, "body": None,
            "raw_body": raw_body.decode("utf-8", "replace"), "has_body": bool(raw_body),
            "status": None, "at": time.monotonic(), "finished_at": None,
        }
        try:
            self._api(method, path, query, raw_body, entry)
        finally:
            entry["finished_at"] = time.monotonic()
            with fake._lock:
                fake._in_flight -= 1
                fake._log.append(entry)

    def _api(self, method: str, path: str, query: dict[str, list[str]], raw_body: bytes,
             entry: dict[str, Any]) -> None:
        fake = self.fake
        low, high = fake.latency_ms
        if high > 0:
            time.sleep(random.uniform(low, high) / 1000)
        kind, ok = fake.auth(self.headers.get("Authorization"))
        entry["auth"], entry["auth_ok"] = kind, ok
        if not ok:
            entry["status"] = 401
            self._send(401, {"error": {"msg": "Unauthorized."}},
                       headers={LIMIT_HEADER: fake._header()})
            return
        admitted, header, retry_after = fake._admit()
        limit_headers = {LIMIT_HEADER: header}
        fault = fake._take_fault(method, path)
        if fault and fault.get("status") == 429:
            admitted, retry_after = False, float(fault.get("retry_after", 1))
        if not admitted:
            entry["status"] = 429
            self._send(429, {"error": {"msg": "Too many requests."}},
                       headers={**limit_headers, "Retry-After": str(math.ceil(retry_after))})
            return
        if fault and fault.get("drop") == "before":
            entry["status"] = "dropped"
            self._drop()
            return
        if fault and fault.get("status") and fault.get("when", "before") == "before":
            entry["status"] = fault["status"]
            self._send(int(fault["status"]), raw=str(fault.get("body", json.dumps(
                {"error": {"msg": "An external service had an issue."}}))).encode(),
                headers={**limit_headers, **fault.get("headers", {})})
            return
        status, body = self._apply(method, path, query, raw_body, entry)
        if fault and fault.get("delay_ms"):
            time.sleep(float(fault["delay_ms"]) / 1000)
        if fault and fault.get("drop") == "after":
            entry["status"] = "dropped"
            self._drop()
            return
        if fault and fault.get("status"):
            entry["status"] = fault["status"]
            self._send(int(fault["status"]), {"error": {"msg": "An external service had an "
                                                               "issue."}},
                       headers=limit_headers)
            return
        if fault and fault.get("raw"):
            raw = fault["raw"]
            entry["status"] = int(raw.get("status", 200))
            self._send(entry["status"], raw=str(raw.get("body", "")).encode(),
                       content_type=raw.get("content_type", "application/json"),
                       headers={**limit_headers, **raw.get("headers", {})})
            return
        entry["status"] = status
        self._send(status, body, headers=limit_headers)

    def _apply(self, method: str, path: str, query: dict[str, list[str]], raw_body: bytes,
               entry: dict[str, Any]) -> tuple[int, Any]:
        fake = self.fake
        try:
            if len(raw_body) > fake.max_body_bytes:
                raise ApiError(413, "Payload too large.")
            body = None
            if raw_body:
                if "json" not in (self.headers.get("Content-Type") or ""):
                    raise ApiError(400, "Invalid request.",
                                   {"_schema": ["Content-Type must be application/json."]})
                try:
                    body = json.loads(raw_body)
                except ValueError:
                    raise ApiError(400, "Invalid JSON.") from None
            entry["body"] = body
            if method in ("POST", "PUT") and body is None:
                body = {}
            return fake.handle(method, path, query, body)
        except ApiError as exc:
            return exc.status, exc.body

    def _control(self, method: str, what: str, raw_body: bytes) -> None:
        fake = self.fake
        body = json.loads(raw_body) if raw_body else {}
        if method == "GET" and what == "requests":
            self._send(200, fake.requests)
        elif method == "GET" and what == "store":
            self._send(200, {k: {str(i): o for i, o in v.items()}
                             for k, v in fake.store.items()})
        elif method == "GET" and what == "stats":
            self._send(200, fake.stats())
        elif method == "POST" and what == "reset":
            fake.reset()
            self._send(200, {"ok": True})
        elif method == "POST" and what == "faults":
            for rule in body if isinstance(body, list) else [body]:
                fake.add_fault(**rule)
            self._send(200, {"ok": True})
        elif method == "POST" and what == "config":
            fake.configure(body.get("rate_limit"), body.get("rate_window"),
                           body.get("latency_ms"))
            self._send(200, {"ok": True})
        elif method == "POST" and what == "consume":
            fake.consume(int(body.get("n", 1)))
            self._send(200, {"ok": True})
        else:
            self._send(404, {"error": {"msg": "Unknown control endpoint."}})


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    return bool(re.match(r"^127\.\d+\.\d+\.\d+$", host)) or host in ("::1", "[::1]")


def main(argv: list[str] | None = None) -> int:
    """Run the fake server until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description="Fake Gorgias REST API on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rate-limit", type=int, default=40,
                        help="requests per window (0: unlimited)")
    parser.add_argument("--rate-window", type=float, default=20.0)
    parser.add_argument("--latency-ms", default="0,0", help="min,max added to each answer")
    parser.add_argument("--email", default="agent@example.com")
    parser.add_argument("--api-key", default="fake-api-key")
    parser.add_argument("--access-token", default="fake-access-token")
    args = parser.parse_args(argv)
    if not _is_loopback(args.host):
        print(f"refusing to listen on {args.host!r}: the fake server serves loopback only",
              file=sys.stderr)
        return 2
    low, _, high = args.latency_ms.partition(",")
    srv = FakeGorgias(args.host, args.port, email=args.email, api_key=args.api_key,
                      access_token=args.access_token, rate_limit=args.rate_limit,
                      rate_window=args.rate_window,
                      latency_ms=(int(low or 0), int(high or low or 0))).start()
    print(f"Fake Gorgias listening on {srv.base_url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
