"""Gorgias' data model as data: field tables, enums, resource kinds, validation, errors."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LIMIT_HEADER = "X-Gorgias-Account-Api-Call-Limit"
#: The limit shown in the header when the fake runs without a rate limit.
UNLIMITED = 1_000_000

NOT_FOUND = "Resource not found."
NOT_ALLOWED = "The specified HTTP method is not allowed."
UNAUTHORIZED = "Unauthorized."
CONFLICT = "The resource already exists."
TOO_MANY = "Too many requests."
MISSING = "Missing data for required field."
NO_SUCH_FIELD = "No such field."
#: Gorgias' answer to a message without ``source.from.address`` (live-observed, PP README).
NO_FROM = "From field is missing or empty"
#: Default bodies of fault answers, by status (503 is Gorgias' documented one).
FAULT_MSG = {500: "Internal server error.", 502: "Bad gateway.",
             503: "An external service had an issue.", 504: "Gateway timeout."}

# -- the data model, as data --------------------------------------------------------------
# A field spec is "kind" or "kind:arg": str[:max], email[:max], int, bool, obj, list, dt,
# any, ref (an object naming another resource), enum:<name>, nested:<name>,
# nested_list:<name> (a list of nested:<name> objects).

ENUMS: dict[str, tuple[str, ...]] = {
    "via": ("aircall", "api", "chat", "contact_form", "email", "facebook", "facebook-mention",
            "facebook-messenger", "facebook-recommendations", "form", "gorgias_chat",
            "help-center", "helpdesk", "instagram", "instagram-ad-comment",
            "instagram-comment", "instagram-direct-message", "instagram-mention",
            "internal-note", "offline_capture", "phone", "rule", "self_service", "shopify",
            "sms", "twilio", "twitter", "twitter-direct-message", "whatsapp", "yotpo",
            "yotpo-review", "zendesk"),
    "role": ("admin", "agent", "basic-agent", "bot", "internal-agent", "lite-agent",
             "observer-agent"),
    "status": ("open", "closed"),
    "object_type": ("Ticket", "Customer"),
}

MESSAGE_FIELDS = {
    "channel": "str", "from_agent": "bool", "via": "enum:via", "source": "obj",
    "sender": "ref", "receiver": "ref", "subject": "str", "body_text": "str",
    "body_html": "str", "stripped_text": "str", "stripped_html": "str", "attachments": "list",
    "external_id": "str:255", "message_id": "str", "integration_id": "int", "headers": "obj",
    "meta": "obj", "sent_datetime": "dt", "created_datetime": "dt", "failed_datetime": "dt",
    "opened_datetime": "dt", "public": "bool", "imported": "bool", "macros": "list",
    "actions": "list", "mention_ids": "list",
}
_TICKET_COMMON = {
    "assignee_team": "ref", "assignee_user": "ref", "channel": "str", "closed_datetime": "dt",
    "custom_fields": "list", "customer": "ref", "external_id": "str:255", "from_agent": "bool",
    "language": "str", "last_message_datetime": "dt", "last_received_message_datetime": "dt",
    "meta": "obj", "opened_datetime": "dt", "priority": "str", "snooze_datetime": "dt",
    "spam": "bool", "status": "enum:status", "subject": "str", "tags": "list",
    "trashed_datetime": "dt", "updated_datetime": "dt", "via": "enum:via",
}
#: POST /api/tickets (reference 4.2) and PUT /api/tickets/{id} (4.3).
TICKET_CREATE_FIELDS = {**_TICKET_COMMON, "created_datetime": "dt", "split_from": "any",
                        "imported": "bool", "messages": "nested_list:message"}
TICKET_UPDATE_FIELDS = {**_TICKET_COMMON, "is_unread": "bool"}

NESTED: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "message": (MESSAGE_FIELDS, ("channel", "from_agent")),
    "role": ({"id": "int", "name": "enum:role"}, ("name",)),
    "custom_field_value": ({"id": "int", "value": "any"}, ("id",)),
    "custom_field_set": ({"value": "any"}, ("value",)),
}
#: PUT /api/tickets/{id}/messages/{id} requires these (reference 11).
MESSAGE_UPDATE_REQUIRED = ("channel", "from_agent", "via")


def from_address_missing(message: Any) -> bool:
    """True when a message body has no ``source.from.address`` (Gorgias answers 400)."""
    if not isinstance(message, dict):
        return False
    source = message.get("source")
    sender = source.get("from") if isinstance(source, dict) else None
    address = sender.get("address") if isinstance(sender, dict) else None
    return not (isinstance(address, str) and address.strip())


def custom_value_error(data_type: Any, value: Any) -> str | None:
    """Why ``value`` does not fit a custom field of ``data_type`` (None: it fits; null is
    always fine)."""
    if value is None:
        return None
    if data_type == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "Not a valid number."
    if data_type == "boolean":
        return None if isinstance(value, bool) else "Not a valid boolean."
    return None if isinstance(value, str) else "Not a valid string."


@dataclass(frozen=True)
class Kind:
    """A plain resource: its fields, required fields, uniqueness and which routes exist."""

    api: str                                 # path segment: "custom-fields"
    singular: str                            # "custom field" in "Failed to create custom field"
    fields: dict[str, str]
    required: tuple[str, ...] = ()           # on POST
    update_required: tuple[str, ...] = ()    # on PUT
    update_only: tuple[str, ...] = ()        # fields PUT takes but POST does not
    unique: str | None = None                # a field no two objects may share (409)
    unique_ci: bool = False                  # compared case-insensitively
    item_delete: bool = True                 # DELETE /api/<api>/{id}
    bulk_delete: bool = False                # DELETE /api/<api> {"ids": [...]}
    filters: tuple[str, ...] = ()            # GET /api/<api>?<filter>=
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> str:
        """The key of this resource in ``FakeGorgias.store``."""
        return self.api.replace("-", "_")


KINDS: tuple[Kind, ...] = (
    Kind("customers", "customer", {
        "email": "email:320", "name": "str", "firstname": "str", "lastname": "str",
        "external_id": "str:255", "language": "str", "timezone": "str", "note": "str",
        "channels": "list", "data": "obj", "meta": "obj"},
        required=("channels",),  # spec-derived references mark it required (reference 11)
        unique="email", unique_ci=True, bulk_delete=True, filters=("email", "external_id"),
        defaults={"email": None, "name": None, "firstname": None, "lastname": None,
                  "external_id": None, "language": None, "timezone": None, "note": None,
                  "data": None, "meta": {}, "integrations": {}}),
    Kind("users", "user", {
        "email": "email:320", "name": "str", "role": "nested:role", "bio": "str",
        "country": "str:2", "external_id": "str:255", "language": "str", "meta": "obj",
        "timezone": "str", "password_confirmation": "str"},
        required=("email", "name", "role"), update_only=("password_confirmation",),
        unique="email", unique_ci=True, filters=("email", "external_id"),
        defaults={"active": True, "bio": None, "country": None, "external_id": None,
                  "language": None, "meta": {}, "timezone": None}),
    Kind("tags", "tag", {"name": "str:256", "description": "str:1024", "decoration": "obj"},
         required=("name",), unique="name", bulk_delete=True,
         defaults={"description": None, "decoration": None, "deleted_datetime": None}),
    Kind("macros", "macro", {"name": "str", "external_id": "str:255", "intent": "str",
                             "language": "str", "actions": "list"},
         required=("name",), defaults={"external_id": None, "intent": None, "language": None,
                                       "actions": [], "archived_datetime": None}),
    Kind("custom-fields", "custom field", {
        "object_type": "enum:object_type", "label": "str", "definition": "obj",
        "external_id": "str:255", "description": "str", "priority": "int", "required": "bool",
        "managed_type": "str", "deactivated_datetime": "dt"},
        required=("object_type", "label", "definition"),
        update_required=("object_type", "label", "definition"), item_delete=False,
        defaults={"external_id": None, "description": None, "priority": 0, "required": False,
                  "managed_type": None, "deactivated_datetime": None}),
    Kind("rules", "rule", {"name": "str", "code": "str", "code_ast": "obj",
                           "event_types": "str", "priority": "int", "description": "str",
                           "deactivated_datetime": "dt"},
         required=("name", "code"), defaults={
             "code_ast": {"type": "Program", "body": []}, "event_types": None, "priority": 0,
             "description": None, "deactivated_datetime": None}),
)
#: The plain resources by path segment.
KIND: dict[str, Kind] = {k.api: k for k in KINDS}
#: Every key of ``FakeGorgias.store``.
RESOURCES = ("tickets", "messages", *(k.store for k in KINDS))


class ApiError(Exception):
    """An answer other than success: the status and Gorgias' error body."""

    def __init__(self, status: int, msg: str, data: Any = None) -> None:
        super().__init__(msg)
        self.status = status
        self.body: dict[str, Any] = {"error": {"msg": msg}}
        if data:
            self.body["error"]["data"] = data


# -- validation ----------------------------------------------------------------------------

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


def _is_datetime(value: str) -> bool:
    """ISO 8601 with a time part, as marshmallow's DateTime wants."""
    try:  # Python 3.10's fromisoformat does not take "Z"
        dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        return False
    return len(value) > 10


def check_value(spec: str, value: Any) -> list[str] | dict[str, Any] | None:
    """The errors of one value against a field spec (None if fine; null is always fine)."""
    kind, _, arg = spec.partition(":")
    if value is None or kind == "any":
        return None
    if kind in ("str", "email", "enum", "dt") and not isinstance(value, str):
        return ["Not a valid datetime." if kind == "dt" else "Not a valid string."]
    if kind in ("str", "email") and arg and len(value) > int(arg):
        return [f"Longer than maximum length {arg}."]
    if kind == "email" and not EMAIL_RE.match(value):
        return ["Not a valid email address."]
    if kind == "enum" and value not in ENUMS[arg]:
        return [f"Must be one of: {', '.join(ENUMS[arg])}."]
    if kind == "dt" and not _is_datetime(value):
        return ["Not a valid datetime."]
    if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        return ["Not a valid integer."]
    if kind == "bool" and not isinstance(value, bool):
        return ["Not a valid boolean."]
    if kind in ("obj", "ref", "nested") and not isinstance(value, dict):
        return ["Not a valid mapping type."]
    if kind in ("list", "nested_list") and not isinstance(value, list):
        return ["Not a valid list."]
    if kind == "nested":
        return field_errors(value, *NESTED[arg]) or None
    if kind == "nested_list":
        per_item = {str(i): field_errors(v, *NESTED[arg]) for i, v in enumerate(value)}
        return {i: e for i, e in per_item.items() if e} or None
    return None


def field_errors(body: Any, fields: Mapping[str, str], required: Iterable[str] = ()
                 ) -> dict[str, Any]:
    """Marshmallow-style errors of an object: {field: [messages] or nested errors}."""
    if not isinstance(body, dict):
        return {"_schema": ["Invalid input type."]}
    errors: dict[str, Any] = {}
    for name in required:
        if name not in body:
            errors[name] = [MISSING]
        elif body[name] is None:
            errors[name] = ["Field may not be null."]
    for name, value in body.items():
        if name in errors:
            continue
        if name not in fields:
            errors[name] = [NO_SUCH_FIELD]
        elif (problem := check_value(fields[name], value)) is not None:
            errors[name] = problem
    return errors


def validate(body: Any, fields: Mapping[str, str], required: Iterable[str], what: str) -> None:
    """Raise a 400 ``Failed to <what>`` with the field errors, if any."""
    errors = field_errors(body, fields, required)
    if errors:
        raise ApiError(400, f"Failed to {what}", errors)


def now_iso() -> str:
    """The current UTC time as Gorgias writes it."""
    return dt.datetime.now(dt.timezone.utc).isoformat()


