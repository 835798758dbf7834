"""The endpoint templates: one table of Gorgias write calls, as data.

Each row names a template id a user puts in ``streams.<name>.endpoint``. Paths are
relative to the account's base URL; ``{placeholders}`` are filled from record fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Lookup:
    """How to find a resource that a create may already have made.

    ``path`` is the list endpoint; ``keys`` are record fields that identify the resource,
    tried in order (the first one the record carries wins). With ``filter`` the key is sent
    as the list's filter (``?email=...``); without it the list is paged and scanned (tags
    have no documented name filter). ``scope``: a path placeholder sent as a filter
    (messages are listed per ``ticket_id``). Every match is checked on our side.
    """

    path: str
    keys: tuple[str, ...]
    filter: bool = True
    scope: str | None = None

    def probe(self, key: str, value: str, scope_value: str | None = None) -> Probe:
        """The lookup for one record."""
        params: list[tuple[str, str]] = []
        if self.scope and scope_value is not None:
            params.append((self.scope, scope_value))
        params.append((key, value) if self.filter else ("limit", "100"))
        return Probe(self.path, tuple(params), key, value)


#: Keys compared case-insensitively (Gorgias treats email addresses so).
CASELESS_KEYS = frozenset({"email"})


@dataclass(frozen=True)
class Probe:
    """One lookup: ``GET path?params``; an item matches only if it carries ``key`` == ``value``
    (emails case-insensitively), whatever the server's filter returned."""

    path: str
    params: tuple[tuple[str, str], ...]
    key: str
    value: str

    def matches(self, item: Any) -> bool:
        """True when ``item`` really carries the key value."""
        if not isinstance(item, dict) or item.get(self.key) is None:
            return False
        got = item[self.key]
        if isinstance(got, bool) or not isinstance(got, (str, int)):
            return False
        if self.key in CASELESS_KEYS:
            return str(got).casefold() == self.value.casefold()
        return str(got) == self.value


@dataclass(frozen=True)
class Sync:
    """How a create template can update instead (``mode: update | upsert``).

    ``update_path`` takes the found resource's ``{id}``; ``read_only`` fields are left out
    of the update body (Gorgias' PUT cannot take them).
    """

    update_path: str
    read_only: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    """One Gorgias write call."""

    id: str
    method: str
    path: str
    summary: str
    example: dict[str, Any]
    methods: tuple[str, ...] = ()
    lookup: Lookup | None = None
    batch: dict[str, Any] = field(default_factory=dict)
    sync: Sync | None = None

    @property
    def allowed_methods(self) -> tuple[str, ...]:
        """The methods a user may choose for this template (the default first)."""
        return (self.method, *self.methods)


_TICKET_LOOKUP = Lookup("/api/tickets", ("external_id",))
_CUSTOMER_LOOKUP = Lookup("/api/customers", ("email", "external_id"))
_USER_LOOKUP = Lookup("/api/users", ("email", "external_id"))
_TAG_LOOKUP = Lookup("/api/tags", ("name",), filter=False)
_MESSAGE_LOOKUP = Lookup("/api/messages", ("external_id",), filter=False, scope="ticket_id")

_MESSAGE = {
    "channel": "email",
    "from_agent": False,
    "via": "api",
    "sender": {"email": "ada@example.com"},
    "source": {"type": "email", "from": {"address": "ada@example.com"}},
    "body_text": "Where is my order #1001?",
    "sent_datetime": "2024-05-01T10:00:00Z",
}

#: The template table. Gorgias documents no PATCH (its PUT is a partial update), so update
#: templates offer PUT only; a manual config may still ask for PATCH (with a warning).
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "create_ticket", "POST", "/api/tickets",
        "Create a ticket (with its first messages).",
        {"external_id": "order-1001", "subject": "Order #1001", "channel": "email",
         "customer": {"email": "ada@example.com"}, "messages": [_MESSAGE]},
        lookup=_TICKET_LOOKUP,
        sync=Sync("/api/tickets/{id}", ("messages", "created_datetime", "imported",
                                         "split_from")),
    ),
    Endpoint(
        "add_ticket_message", "POST", "/api/tickets/{ticket_id}/messages",
        "Add a message to a ticket.",
        {"ticket_id": 42, **_MESSAGE},
        lookup=_MESSAGE_LOOKUP,
    ),
    Endpoint(
        "update_ticket_message", "PUT", "/api/tickets/{ticket_id}/messages/{message_id}",
        "Update a message of a ticket.",
        {"ticket_id": 42, "message_id": 7, "channel": "email", "from_agent": True,
         "via": "api", "body_text": "Corrected reply"},
    ),
    Endpoint(
        "delete_ticket", "DELETE", "/api/tickets/{ticket_id}",
        "Delete a ticket.",
        {"ticket_id": 42},
    ),
    Endpoint(
        "create_customer", "POST", "/api/customers",
        "Create a customer.",
        {"email": "ada@example.com", "name": "Ada Lovelace", "external_id": "crm-1",
         "channels": [{"type": "email", "address": "ada@example.com", "preferred": True}]},
        lookup=_CUSTOMER_LOOKUP,
        sync=Sync("/api/customers/{id}"),
    ),
    Endpoint(
        "create_user", "POST", "/api/users",
        "Create a user (agent).",
        {"email": "grace@example.com", "name": "Grace Hopper", "role": {"name": "agent"}},
        lookup=_USER_LOOKUP,
        sync=Sync("/api/users/{id}", ("password_confirmation",)),
    ),
    Endpoint(
        "update_user", "PUT", "/api/users/{id}",
        "Update a user (agent).",
        {"id": 5, "name": "Grace B. Hopper"},
    ),
    Endpoint(
        "delete_user", "DELETE", "/api/users/{id}",
        "Delete a user (agent).",
        {"id": 5},
    ),
    Endpoint(
        "create_macro", "POST", "/api/macros",
        "Create a macro.",
        {"name": "Refund issued",
         "actions": [{"name": "addTags", "title": "Add tags", "arguments": {"tags": "refund"}}]},
    ),
    Endpoint(
        "create_tag", "POST", "/api/tags",
        "Create a tag.",
        {"name": "vip", "description": "Very important customer"},
        lookup=_TAG_LOOKUP,
    ),
    Endpoint(
        "update_tag", "PUT", "/api/tags/{id}",
        "Update a tag.",
        {"id": 3, "description": "Spent over 1000"},
    ),
    Endpoint(
        "create_custom_field", "POST", "/api/custom-fields",
        "Create a custom field.",
        {"object_type": "Ticket", "label": "Order value",
         "definition": {"data_type": "number", "input_settings": {"input_type": "input_number"}}},
    ),
    Endpoint(
        "create_rule", "POST", "/api/rules",
        "Create a rule.",
        {"name": "Tag VIPs", "code": "if (eq(ticket.from_agent, false)) { addTags('vip') }",
         "event_types": "ticket-created"},
    ),
    # Beyond the first thirteen: updates, deletes and ticket tags / custom fields.
    Endpoint(
        "update_ticket", "PUT", "/api/tickets/{ticket_id}",
        "Update a ticket (partial update).",
        {"ticket_id": 42, "status": "closed"},
    ),
    Endpoint(
        "update_customer", "PUT", "/api/customers/{customer_id}",
        "Update a customer (partial update).",
        {"customer_id": 9, "name": "Ada King"},
    ),
    Endpoint(
        "delete_customer", "DELETE", "/api/customers/{customer_id}",
        "Delete a customer.",
        {"customer_id": 9},
    ),
    Endpoint(
        "delete_customers", "DELETE", "/api/customers",
        "Delete customers in bulk: one record per id, sent as {\"ids\": [...]}.",
        {"id": 9},
        batch={"enabled": True, "pluck": "id", "wrap_key": "ids", "size": 100},
    ),
    Endpoint(
        "delete_tag", "DELETE", "/api/tags/{id}",
        "Delete a tag.",
        {"id": 3},
    ),
    Endpoint(
        "delete_tags", "DELETE", "/api/tags",
        "Delete tags in bulk: one record per id, sent as {\"ids\": [...]}.",
        {"id": 3},
        batch={"enabled": True, "pluck": "id", "wrap_key": "ids", "size": 100},
    ),
    Endpoint(
        "update_macro", "PUT", "/api/macros/{id}",
        "Update a macro.",
        {"id": 11, "name": "Refund issued (v2)"},
    ),
    Endpoint(
        "delete_macro", "DELETE", "/api/macros/{id}",
        "Delete a macro.",
        {"id": 11},
    ),
    Endpoint(
        "delete_ticket_message", "DELETE", "/api/tickets/{ticket_id}/messages/{message_id}",
        "Delete a message of a ticket.",
        {"ticket_id": 42, "message_id": 7},
    ),
    Endpoint(
        "add_ticket_tags", "POST", "/api/tickets/{ticket_id}/tags",
        "Add tags to a ticket (by names and/or ids).",
        {"ticket_id": 42, "names": ["vip", "refund"]},
    ),
    Endpoint(
        "set_ticket_tags", "PUT", "/api/tickets/{ticket_id}/tags",
        "Replace all tags of a ticket.",
        {"ticket_id": 42, "names": ["vip"]},
    ),
    Endpoint(
        "remove_ticket_tags", "DELETE", "/api/tickets/{ticket_id}/tags",
        "Remove tags from a ticket (this DELETE carries a body).",
        {"ticket_id": 42, "names": ["refund"]},
    ),
    Endpoint(
        "set_ticket_custom_fields", "PUT", "/api/tickets/{ticket_id}/custom-fields/{id}",
        "Set one custom field value of a ticket (one record per field; the ticket's other "
        "values are kept). The value is sent with the field's type.",
        {"ticket_id": 42, "id": 12, "value": 1250.0},
    ),
    Endpoint(
        "replace_ticket_custom_fields", "PUT", "/api/tickets/{ticket_id}/custom-fields",
        "Replace ALL custom field values of a ticket: one record per {id, value}, batched per "
        "ticket; every value not sent is DELETED.",
        {"ticket_id": 42, "id": 12, "value": 1250.0},
        batch={"enabled": True, "size": 100, "grouping": "count"},
    ),
    Endpoint(
        "update_custom_field", "PUT", "/api/custom-fields/{id}",
        "Update a custom field (object_type, label and definition are required).",
        {"id": 12, "object_type": "Ticket", "label": "Order total",
         "definition": {"data_type": "number"}},
    ),
    Endpoint(
        "update_rule", "PUT", "/api/rules/{id}",
        "Update a rule.",
        {"id": 8, "description": "Tags VIP customers"},
    ),
    Endpoint(
        "delete_rule", "DELETE", "/api/rules/{id}",
        "Delete a rule.",
        {"id": 8},
    ),
)

#: Templates by id.
TEMPLATES: dict[str, Endpoint] = {e.id: e for e in ENDPOINTS}

#: Templates that create messages: they take ``message_intent`` (import | send).
MESSAGE_TEMPLATES: frozenset[str] = frozenset({"create_ticket", "add_ticket_message"})

#: What a manual stream config may ask for.
MANUAL_METHODS: tuple[str, ...] = ("POST", "PUT", "PATCH", "DELETE")
