"""The Gorgias endpoints: routes, the store and the handlers (called under the server lock)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import urlencode

from target_gorgias.fake_server.model import (
    CONFLICT,
    EMAIL_RE,
    KIND,
    KINDS,
    MESSAGE_FIELDS,
    MESSAGE_UPDATE_REQUIRED,
    MISSING,
    NESTED,
    NO_FROM,
    NOT_ALLOWED,
    NOT_FOUND,
    RESOURCES,
    TICKET_CREATE_FIELDS,
    TICKET_UPDATE_FIELDS,
    ApiError,
    Kind,
    check_value,
    custom_value_error,
    from_address_missing,
    now_iso,
    validate,
)


class Moved(ApiError):
    """A 301 to ``location`` (Gorgias' answer to deleting a merged customer)."""

    def __init__(self, location: str) -> None:
        super().__init__(301, "Moved Permanently.")
        self.location = location


class Req(NamedTuple):
    """One admitted API request, as the route handlers see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


Handler = Callable[[Req, list[int]], tuple[int, Any]]


class GorgiasApi:
    """The account's data and the handlers of every route. Not thread-safe: the server
    calls ``route`` handlers, ``reset`` and ``snapshot`` under its lock."""

    def __init__(self, email: str) -> None:
        self.email = email
        self._routes = self._build_routes()
        self.reset()

    def reset(self) -> None:
        """Empty the account."""
        self._store: dict[str, dict[int, dict[str, Any]]] = {r: {} for r in RESOURCES}
        self._ticket_tags: dict[int, list[int]] = {}       # ticket id -> tag ids
        self._ticket_customer: dict[int, int | None] = {}  # ticket id -> customer id
        self._ticket_messages: dict[int, list[int]] = {}   # ticket id -> message ids
        self._merged: dict[int, int] = {}                  # merged customer id -> target id
        #: Messages Gorgias delivered (agent messages created without sent_datetime).
        self.outbox: list[dict[str, Any]] = []
        self._next_id = 1

    def snapshot(self) -> dict[str, dict[int, dict[str, Any]]]:
        """A deep copy of the data: resource -> {id: object} (tickets with their messages)."""
        usage = self._tag_usage()
        snap = {k: copy.deepcopy(v) for k, v in self._store.items()
                if k not in ("tickets", "tags")}
        snap["tickets"] = {i: self._render_ticket(i) for i in self._store["tickets"]}
        snap["tags"] = {i: self._render_tag(i, usage) for i in self._store["tags"]}
        return {k: snap[k] for k in RESOURCES}

    def counts(self) -> dict[str, int]:
        """How many objects of each resource exist."""
        return {k: len(v) for k, v in self._store.items()}

    # -- routing ---------------------------------------------------------------------------

    def _build_routes(self) -> list[tuple[re.Pattern[str], dict[str, Handler]]]:
        """The route table: path pattern (after /api/) -> {method: handler}."""
        p = functools.partial
        table: list[tuple[str, dict[str, Handler]]] = [
            ("account", {"GET": self._account}),
            ("tickets", {"GET": self._list_tickets, "POST": self._create_ticket}),
            ("tickets/#", {"GET": self._get_ticket, "PUT": self._update_ticket,
                           "DELETE": self._delete_ticket}),
            ("tickets/#/messages", {"GET": self._list_ticket_messages,
                                    "POST": self._create_message}),
            ("tickets/#/messages/#", {"GET": self._get_message, "PUT": self._update_message,
                                      "DELETE": self._delete_message}),
            ("tickets/#/tags", {m: self._ticket_tags_route for m in
                                ("GET", "POST", "PUT", "DELETE")}),
            ("tickets/#/custom-fields", {"GET": self._get_ticket_fields,
                                         "PUT": self._set_ticket_fields}),
            ("tickets/#/custom-fields/#", {"PUT": self._set_ticket_field}),
            ("customers/merge", {"PUT": self._merge_customers}),
            ("messages", {"GET": self._list_messages}),
        ]
        for kind in KINDS:
            coll: dict[str, Handler] = {"GET": p(self._list_kind, kind),
                                        "POST": p(self._create_kind, kind)}
            if kind.bulk_delete:
                coll["DELETE"] = p(self._bulk_delete, kind)
            item: dict[str, Handler] = {"GET": p(self._get_kind, kind),
                                        "PUT": p(self._update_kind, kind)}
            if kind.item_delete:
                item["DELETE"] = p(self._delete_kind, kind)
            table += [(kind.api, coll), (f"{kind.api}/#", item)]
        return [(re.compile(pattern.replace("#", "([0-9]+)")), methods)
                for pattern, methods in table]

    def route(self, method: str, path: str) -> tuple[Handler, list[int]]:
        """The handler and path ids for a decoded /api path; ApiError 404 or 405."""
        rest = path[len("/api/"):] if path.startswith("/api/") else ""
        rest = rest[:-1] if rest.endswith("/") else rest
        for pattern, methods in self._routes:
            match = pattern.fullmatch(rest)
            if match:
                if method not in methods:
                    raise ApiError(405, NOT_ALLOWED)
                return methods[method], [int(g) for g in match.groups()]
        raise ApiError(404, NOT_FOUND)

    # -- shared helpers (called under the lock) --------------------------------------------

    def _new(self, resource: str, obj: dict[str, Any], uri: str) -> dict[str, Any]:
        """Store a new object under the next id (ids are unique across resources)."""
        obj_id, self._next_id = self._next_id, self._next_id + 1
        now = now_iso()
        stored = {"id": obj_id, "uri": uri.format(id=obj_id), **obj}
        stored["created_datetime"] = obj.get("created_datetime") or now
        stored["updated_datetime"] = obj.get("updated_datetime") or now
        self._store[resource][obj_id] = stored
        return stored

    def _get(self, resource: str, obj_id: int) -> dict[str, Any]:
        obj = self._store[resource].get(obj_id)
        if obj is None:
            raise ApiError(404, NOT_FOUND)
        return obj

    @staticmethod
    def _touch(obj: dict[str, Any], body: dict[str, Any]) -> None:
        obj.update(body)
        if body.get("updated_datetime") is None:
            obj["updated_datetime"] = now_iso()

    def _listing(self, req: Req, items: Iterable[dict[str, Any]],
                 render: Callable[[dict[str, Any]], dict[str, Any]] = copy.deepcopy
                 ) -> tuple[int, Any]:
        """A cursor page of stored ``items`` (rendered) per ``limit``, ``cursor``, ``order_by``."""
        errors: dict[str, list[str]] = {}
        raw_limit = req.query.get("limit", ["30"])[0]
        limit = int(raw_limit) if raw_limit.isdigit() else -1
        if not raw_limit.isdigit():
            errors["limit"] = ["Not a valid integer."]
        elif limit > 100:
            errors["limit"] = ["Must be at most 100."]
        elif limit < 1:
            errors["limit"] = ["Must be at least 1."]
        order = req.query.get("order_by", ["created_datetime:desc"])[0]
        key, _, direction = order.partition(":")
        if key not in ("created_datetime", "updated_datetime") or direction not in (
                "asc", "desc", ""):
            errors["order_by"] = ["Must be one of: created_datetime:asc, "
                                  "created_datetime:desc, updated_datetime:asc, "
                                  "updated_datetime:desc."]
        offset = 0
        if "cursor" in req.query:
            try:
                offset = int(base64.urlsafe_b64decode(req.query["cursor"][0]).decode()[2:])
                if offset < 0:
                    raise ValueError(offset)
            except (ValueError, binascii.Error):
                errors["cursor"] = ["Invalid cursor."]
        if errors:
            raise ApiError(400, "Invalid request.", errors)
        rows = sorted(items, key=lambda o: (str(o.get(key) or ""), o["id"]),
                      reverse=direction != "asc")

        def cursor(at: int) -> str:
            return base64.urlsafe_b64encode(f"o:{at}".encode()).decode()

        query = urlencode([(k, v) for k, vs in req.query.items() for v in vs])
        return 200, {"object": "list", "uri": req.path + (f"?{query}" if query else ""),
                     "data": [render(r) for r in rows[offset:offset + limit]],
                     "meta": {"prev_cursor": cursor(max(0, offset - limit)) if offset else None,
                              "next_cursor": cursor(offset + limit)
                              if offset + limit < len(rows) else None}}

    @staticmethod
    def _filter(items: Iterable[dict[str, Any]], req: Req, filters: Iterable[str]
                ) -> list[dict[str, Any]]:
        rows = list(items)
        for name in filters:
            if name in req.query:
                want = req.query[name][0]
                if name == "email":
                    rows = [r for r in rows if str(r.get("email") or "").lower() == want.lower()]
                else:
                    rows = [r for r in rows if r.get(name) is not None and str(r[name]) == want]
        return rows

    def _customer_ref_errors(self, ref: Any) -> dict[str, Any] | None:
        """What is wrong with a customer reference ({id} must exist, {email} be valid)."""
        if not isinstance(ref, dict):
            return None
        if ref.get("id") is not None:
            known = isinstance(ref["id"], int) and ref["id"] in self._store["customers"]
            return None if known else {"id": [NOT_FOUND]}
        email = ref.get("email")
        if email is not None and (not isinstance(email, str) or not EMAIL_RE.match(email)):
            return {"email": ["Not a valid email address."]}
        return None

    def _customer_ref(self, ref: Any) -> int | None:
        """The customer id of a checked reference: by id, or by email (reused or created)."""
        if not isinstance(ref, dict) or self._customer_ref_errors(ref):
            return None
        if ref.get("id") is not None:
            return int(ref["id"])
        email = ref.get("email")
        if not isinstance(email, str):
            return None
        for c in self._store["customers"].values():
            if str(c.get("email") or "").lower() == email.lower():
                return int(c["id"])
        body = {k: ref[k] for k in ("email", "name", "firstname", "lastname") if k in ref}
        return int(self._create_customer_obj(body)["id"])

    def _create_customer_obj(self, body: dict[str, Any]) -> dict[str, Any]:
        obj = {**copy.deepcopy(KIND["customers"].defaults), **body}
        if "channels" not in body:
            obj["channels"] = ([{"type": "email", "address": body["email"], "preferred": True}]
                               if body.get("email") else [])
        return self._new("customers", obj, "/api/customers/{id}/")

    def _tag_ids_for(self, refs: Iterable[Any], create: bool) -> list[int]:
        """Tag ids for ids and/or names; unknown ids are skipped, unknown names created
        (or skipped). Callers check ids first when unknown ones are an error."""
        ids: list[int] = []
        tags = self._store["tags"]
        for ref in refs:
            if isinstance(ref, int) and not isinstance(ref, bool):
                if ref in tags:
                    ids.append(ref)
            elif isinstance(ref, str):
                found = next((t["id"] for t in tags.values() if t["name"] == ref), None)
                if found is None and create:
                    found = self._new("tags", {**copy.deepcopy(KIND["tags"].defaults), "name": ref},
                                      "/api/tags/{id}/")["id"]
                if found is not None:
                    ids.append(found)
        return list(dict.fromkeys(ids))

    # -- account, plain resources ----------------------------------------------------------

    def _account(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        return 200, {"domain": "fake-gorgias", "status": {"status": "active"},
                     "created_datetime": "2020-01-01T00:00:00+00:00",
                     "settings": [], "user_email": self.email}

    def _render(self, kind: Kind, obj_id: int, usage: Counter[int] | None = None
                ) -> dict[str, Any]:
        return self._render_tag(obj_id, usage) if kind.api == "tags" else \
            copy.deepcopy(self._store[kind.store][obj_id])

    def _tag_usage(self) -> Counter[int]:
        return Counter(i for ids in self._ticket_tags.values() for i in ids)

    def _render_tag(self, tag_id: int, usage: Counter[int] | None = None) -> dict[str, Any]:
        tag = copy.deepcopy(self._store["tags"][tag_id])
        tag["usage"] = (usage if usage is not None else self._tag_usage())[tag_id]
        return tag

    def _check_kind(self, kind: Kind, body: dict[str, Any], own_id: int | None) -> None:
        unique = kind.unique
        if unique and isinstance(body.get(unique), str):
            want = body[unique].lower() if kind.unique_ci else body[unique]
            for other in self._store[kind.store].values():
                have = other.get(unique)
                if isinstance(have, str) and other["id"] != own_id and want == (
                        have.lower() if kind.unique_ci else have):
                    raise ApiError(409, CONFLICT)

    def _list_kind(self, kind: Kind, req: Req, ids: list[int]) -> tuple[int, Any]:
        rows = self._filter(self._store[kind.store].values(), req, kind.filters)
        usage = self._tag_usage() if kind.api == "tags" else None
        return self._listing(req, rows, lambda r: self._render(kind, r["id"], usage))

    def _create_kind(self, kind: Kind, req: Req, ids: list[int]) -> tuple[int, Any]:
        fields = {k: v for k, v in kind.fields.items() if k not in kind.update_only}
        validate(req.body, fields, kind.required, f"create {kind.singular}")
        self._check_kind(kind, req.body, None)
        if kind.api == "customers":
            return 201, self._create_customer_obj(dict(req.body))
        obj = {**copy.deepcopy(kind.defaults), **req.body}
        return 201, self._render(kind, self._new(kind.store, obj, f"/api/{kind.api}/{{id}}/")
                                 ["id"])

    def _get_kind(self, kind: Kind, req: Req, ids: list[int]) -> tuple[int, Any]:
        return 200, self._render(kind, self._get(kind.store, ids[0])["id"])

    def _update_kind(self, kind: Kind, req: Req, ids: list[int]) -> tuple[int, Any]:
        obj = self._get(kind.store, ids[0])
        validate(req.body, kind.fields, kind.update_required, f"update {kind.singular}")
        self._check_kind(kind, req.body, obj["id"])
        self._touch(obj, {k: v for k, v in req.body.items() if k != "password_confirmation"})
        return 202, self._render(kind, obj["id"])

    def _merge_customers(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        """PUT /customers/merge?source_id=&target_id=: the source is merged into the target."""
        try:
            source, target = (int(req.query[k][0]) for k in ("source_id", "target_id"))
        except (KeyError, ValueError):
            raise ApiError(400, "Failed to merge customers",
                           {"source_id": [MISSING], "target_id": [MISSING]}) from None
        self._get("customers", source)
        merged = self._get("customers", target)
        del self._store["customers"][source]
        self._merged[source] = target
        return 202, self._render(KIND["customers"], merged["id"])

    def _delete_kind(self, kind: Kind, req: Req, ids: list[int]) -> tuple[int, Any]:
        if kind.api == "customers" and ids[0] in self._merged:
            # A merged customer: Gorgias answers 301 to the customer it was merged into.
            raise Moved(f"/api/customers/{self._merged[ids[0]]}")
        del self._store[kind.store][self._get(kind.store, ids[0])["id"]]
        if kind.api == "tags":
            for tag_ids in self._ticket_tags.values():
                with contextlib.suppress(ValueError):
                    tag_ids.remove(ids[0])
        return 204, None

    def _bulk_delete(self, kind: Kind, req: Req, ids: list[int]) -> tuple[int, Any]:
        body = req.body
        what = f"delete {kind.api.replace('-', ' ')}"
        validate(body, {"ids": "list"}, ("ids",), what)
        if not body["ids"] or not all(isinstance(i, int) and not isinstance(i, bool)
                                      for i in body["ids"]):
            raise ApiError(400, f"Failed to {what}",
                           {"ids": ["Shorter than minimum length 1."] if not body["ids"]
                            else ["Not a valid integer."]})
        found = [i for i in dict.fromkeys(body["ids"]) if i in self._store[kind.store]]
        if not found:
            raise ApiError(404, NOT_FOUND)
        for i in found:
            self._delete_kind(kind, req, [i])
        return 204, None

    # -- tickets ---------------------------------------------------------------------------

    def _render_ticket(self, tid: int) -> dict[str, Any]:
        ticket = copy.deepcopy(self._store["tickets"][tid])
        ticket["messages"] = [copy.deepcopy(self._store["messages"][m])
                              for m in self._ticket_messages.get(tid, [])]
        ticket["messages_count"] = len(ticket["messages"])
        return ticket

    def _tag_ref_errors(self, ref: Any) -> dict[str, Any] | None:
        """What is wrong with a ticket body's tag: it needs a known id or a name."""
        if not isinstance(ref, dict) or (ref.get("id") is None and not ref.get("name")):
            return {"_schema": ["Must have an id or a name."]}
        if ref.get("id") is not None and ref["id"] not in self._store["tags"]:
            return {"id": [NOT_FOUND]}
        if ref.get("id") is None and (not isinstance(ref["name"], str) or len(ref["name"]) > 256):
            return {"name": ["Not a valid tag name."]}
        return None

    def _ticket_refs(self, body: dict[str, Any], what: str) -> tuple[int | None, list[int]]:
        """Check, then resolve, the ticket body's customer and tags (400 if one is bad)."""
        errors: dict[str, Any] = {}
        if problem := self._customer_ref_errors(body.get("customer")):
            errors["customer"] = problem
        tags = body.get("tags") or []
        bad = {str(i): e for i, t in enumerate(tags) if (e := self._tag_ref_errors(t))}
        if bad:
            errors["tags"] = bad
        if errors:
            raise ApiError(400, f"Failed to {what}", errors)
        refs = [t["id"] if t.get("id") is not None else t["name"] for t in tags]
        return self._customer_ref(body.get("customer")), self._tag_ids_for(refs, create=True)

    def _list_tickets(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        rows = self._filter(self._store["tickets"].values(), req, ("external_id",))
        if "customer_id" in req.query:
            want = req.query["customer_id"][0]
            rows = [t for t in rows if str(self._ticket_customer.get(t["id"])) == want]
        wanted = req.query.get("ticket_ids[]") or req.query.get("ticket_ids")
        if wanted:
            rows = [t for t in rows if str(t["id"]) in wanted]
        trashed = req.query.get("trashed", ["true"])[0].lower()
        if trashed not in ("true", "false"):
            raise ApiError(400, "Invalid request.", {"trashed": ["Not a valid boolean."]})
        if trashed == "false":  # Gorgias' default (true) lists trashed tickets too
            rows = [t for t in rows if not t.get("trashed_datetime")]
        return self._listing(req, rows, lambda t: self._render_ticket(t["id"]))

    def _create_ticket(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        body = req.body
        validate(body, TICKET_CREATE_FIELDS, ("messages",), "create ticket")
        if not 1 <= len(body["messages"]) <= 500:
            raise ApiError(400, "Failed to create ticket",
                           {"messages": ["Length must be between 1 and 500."]})
        no_from = {str(i): {"source": {"from": [NO_FROM]}}
                   for i, m in enumerate(body["messages"]) if from_address_missing(m)}
        if no_from:
            raise ApiError(400, NO_FROM, {"messages": no_from})
        customer_id, tag_ids = self._ticket_refs(body, "create ticket")
        messages = body["messages"]
        first = messages[0]
        if customer_id is None:  # Gorgias takes the customer from the first customer message
            sender = next((m.get("sender") for m in messages if m.get("from_agent") is False),
                          None)
            customer_id = self._customer_ref(sender)
        ticket = {
            "status": "open", "priority": "normal", "spam": False, "via": "api",
            "channel": first.get("channel"), "from_agent": first.get("from_agent"),
            "subject": first.get("subject"), "external_id": None, "language": None,
            "meta": {}, "assignee_user": None, "assignee_team": None, "customer": None,
            "tags": [], "custom_fields": [], "is_unread": True, "imported": False,
            "opened_datetime": None, "closed_datetime": None, "snooze_datetime": None,
            "trashed_datetime": None,
            **{k: copy.deepcopy(v) for k, v in body.items() if k != "messages"},
        }
        if ticket["customer"] is None and customer_id is not None:
            ticket["customer"] = {"id": customer_id}
        ticket = self._new("tickets", ticket, "/api/tickets/{id}/")
        tid = ticket["id"]
        self._ticket_tags[tid] = tag_ids
        self._ticket_customer[tid] = customer_id
        self._ticket_messages[tid] = []
        for msg in messages:
            self._add_message(ticket, msg)
        return 201, self._render_ticket(tid)

    def _get_ticket(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        return 200, self._render_ticket(self._get("tickets", ids[0])["id"])

    def _update_ticket(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        ticket = self._get("tickets", ids[0])
        validate(req.body, TICKET_UPDATE_FIELDS, (), "update ticket")
        customer_id, tag_ids = self._ticket_refs(req.body, "update ticket")
        if "tags" in req.body:  # sending tags replaces all of them
            self._ticket_tags[ticket["id"]] = tag_ids
        if "customer" in req.body:
            self._ticket_customer[ticket["id"]] = customer_id
        self._touch(ticket, copy.deepcopy(req.body))
        return 202, self._render_ticket(ticket["id"])

    def _delete_ticket(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        tid = self._get("tickets", ids[0])["id"]
        del self._store["tickets"][tid]
        self._ticket_tags.pop(tid, None)
        self._ticket_customer.pop(tid, None)
        for mid in self._ticket_messages.pop(tid, []):
            del self._store["messages"][mid]
        return 204, None

    # -- messages --------------------------------------------------------------------------

    def _add_message(self, ticket: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        now = now_iso()
        msg = {
            "via": ticket.get("via") or "api", "public": body.get("channel") != "internal-note",
            "sender": None, "receiver": None, "source": None, "subject": None,
            "body_text": None, "body_html": None, "attachments": [], "external_id": None,
            "meta": None, "imported": bool(ticket.get("imported")), "failed_datetime": None,
            "opened_datetime": None, "sent_datetime": now,
            **copy.deepcopy(body), "ticket_id": ticket["id"],
        }
        delivers = (body.get("from_agent") is True and body.get("sent_datetime") is None
                    and body.get("channel") != "internal-note")
        msg["sent_datetime"] = msg.get("sent_datetime") or now
        msg = self._new("messages", msg, f"/api/tickets/{ticket['id']}/messages/{{id}}/")
        if delivers:  # Gorgias sends it (an e-mail goes out) and fills sent_datetime
            source = body.get("source") or {}
            self.outbox.append({"message_id": msg["id"], "ticket_id": ticket["id"],
                                "channel": body.get("channel"),
                                "to": copy.deepcopy(source.get("to")
                                                    or body.get("receiver")),
                                "sent_datetime": msg["sent_datetime"]})
        self._ticket_messages.setdefault(ticket["id"], []).append(msg["id"])
        ticket["last_message_datetime"] = msg["created_datetime"]
        if body.get("from_agent") is False:
            ticket["last_received_message_datetime"] = msg["created_datetime"]
        return msg

    def _message_of(self, ids: list[int]) -> dict[str, Any]:
        self._get("tickets", ids[0])
        msg = self._get("messages", ids[1])
        if msg["ticket_id"] != ids[0]:
            raise ApiError(404, NOT_FOUND)
        return msg

    def _list_messages(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        rows = list(self._store["messages"].values())
        if "ticket_id" in req.query:
            want = req.query["ticket_id"][0]
            if not want.isdigit():
                raise ApiError(400, "Invalid request.", {"ticket_id": ["Not a valid integer."]})
            rows = [m for m in rows if m["ticket_id"] == int(want)]
        return self._listing(req, rows)

    def _list_ticket_messages(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        tid = self._get("tickets", ids[0])["id"]
        return self._listing(req, [self._store["messages"][m]
                                   for m in self._ticket_messages.get(tid, [])])

    def _create_message(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        ticket = self._get("tickets", ids[0])
        validate(req.body, MESSAGE_FIELDS, NESTED["message"][1], "create message")
        if from_address_missing(req.body):
            raise ApiError(400, NO_FROM, {"source": {"from": [NO_FROM]}})
        if req.body.get("from_agent") is False:  # the sender is a customer
            if problem := self._customer_ref_errors(req.body.get("sender")):
                raise ApiError(400, "Failed to create message", {"sender": problem})
            self._customer_ref(req.body.get("sender"))
        msg = self._add_message(ticket, req.body)
        ticket["updated_datetime"] = now_iso()
        return 201, copy.deepcopy(msg)

    def _get_message(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        return 200, copy.deepcopy(self._message_of(ids))

    def _update_message(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        msg = self._message_of(ids)
        validate(req.body, MESSAGE_FIELDS, MESSAGE_UPDATE_REQUIRED, "update message")
        self._touch(msg, copy.deepcopy(req.body))
        return 202, copy.deepcopy(msg)

    def _delete_message(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        mid = self._message_of(ids)["id"]
        del self._store["messages"][mid]
        self._ticket_messages[ids[0]].remove(mid)
        return 200, None  # Gorgias answers this DELETE with 200 and an empty body

    # -- ticket tags and custom fields -----------------------------------------------------

    def _ticket_tags_route(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        ticket = self._get("tickets", ids[0])
        current = self._ticket_tags.setdefault(ticket["id"], [])
        if req.method == "GET":
            usage = self._tag_usage()
            return self._listing(req, [self._store["tags"][i] for i in current],
                                 lambda t: self._render_tag(t["id"], usage))
        body = req.body
        what = {"POST": "add tags", "PUT": "set tags", "DELETE": "remove tags"}[req.method]
        validate(body, {"ids": "list", "names": "list"}, (), what)
        id_list, names = body.get("ids") or [], body.get("names") or []
        errors: dict[str, Any] = {}
        if any(not isinstance(i, int) or isinstance(i, bool) for i in id_list):
            errors["ids"] = ["Not a valid integer."]
        if any(not isinstance(n, str) or not n or len(n) > 256 for n in names):
            errors["names"] = ["Not a valid tag name."]
        if not errors and req.method != "PUT" and not (id_list or names):
            errors["ids"] = ["Either ids or names must be provided."]
        if errors:
            raise ApiError(400, f"Failed to {what}", errors)
        if req.method != "DELETE" and any(i not in self._store["tags"] for i in id_list):
            raise ApiError(404, NOT_FOUND)
        chosen = self._tag_ids_for([*id_list, *names], create=req.method != "DELETE")
        if req.method == "POST":
            current.extend(i for i in chosen if i not in current)
        elif req.method == "PUT":
            current[:] = chosen
        else:
            current[:] = [i for i in current if i not in chosen]
        self._touch(ticket, {"tags": [{"id": i, "name": self._store["tags"][i]["name"]}
                                      for i in current]})
        return {"POST": 201, "PUT": 202, "DELETE": 204}[req.method], None

    def _get_ticket_fields(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        ticket = self._get("tickets", ids[0])
        values = [v for v in ticket.get("custom_fields") or [] if isinstance(v, dict)]
        return 200, {"object": "list", "uri": req.path, "data": copy.deepcopy(values),
                     "meta": {"prev_cursor": None, "next_cursor": None}}

    def _custom_field_errors(self, field_id: Any, value: Any) -> dict[str, list[str]] | None:
        """What is wrong with a value for the ticket custom field ``field_id``."""
        definition = self._store["custom_fields"].get(field_id) \
            if isinstance(field_id, int) else None
        if definition is None or definition.get("object_type") != "Ticket":
            return {"id": [NOT_FOUND]}
        data_type = (definition.get("definition") or {}).get("data_type")
        problem = custom_value_error(data_type, value)
        return {"value": [problem]} if problem else None

    def _set_ticket_fields(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        """PUT /tickets/{id}/custom-fields: REPLACES all values; those not sent are deleted."""
        ticket = self._get("tickets", ids[0])
        body = req.body
        if not isinstance(body, list):
            raise ApiError(400, "Failed to update custom fields",
                           {"_schema": ["Invalid input type."]})
        errors = check_value("nested_list:custom_field_value", body)
        if not errors:
            errors = {str(i): e for i, v in enumerate(body)
                      if (e := self._custom_field_errors(v["id"], v.get("value")))} or None
        if errors:
            raise ApiError(400, "Failed to update custom fields", errors)
        values = {v["id"]: {"id": v["id"], "value": v.get("value")} for v in body}
        self._touch(ticket, {"custom_fields": list(values.values())})
        return 202, copy.deepcopy(body)

    def _set_ticket_field(self, req: Req, ids: list[int]) -> tuple[int, Any]:
        """PUT /tickets/{id}/custom-fields/{field_id} {"value": ...}: this field only."""
        ticket = self._get("tickets", ids[0])
        validate(req.body, NESTED["custom_field_set"][0], NESTED["custom_field_set"][1],
                 "update custom field value")
        if ids[1] not in self._store["custom_fields"]:
            raise ApiError(404, NOT_FOUND)
        if errors := self._custom_field_errors(ids[1], req.body["value"]):
            raise ApiError(400, "Failed to update custom field value", errors)
        values = {v["id"]: v for v in ticket.get("custom_fields") or [] if isinstance(v, dict)}
        values[ids[1]] = {"id": ids[1], "value": req.body["value"]}
        self._touch(ticket, {"custom_fields": list(values.values())})
        return 202, {"id": ids[1], "value": req.body["value"]}
