"""What Gorgias accepts in each template's body, as data, and the rules that shape bodies.

``BODIES`` lists, per template, the body fields Gorgias accepts, which are required and
their types (from the reference notes: ``/work/shared/reference/gorgias_api.md`` sections 4,
5 and 11). ``shape`` fills in what Gorgias requires and the record implies (a message's
``source`` from its ``sender``, a customer's ``channels`` from its ``email``, the
``sent_datetime`` that keeps an imported message from being delivered); ``check`` (the
preflight) names every field Gorgias would reject: unknown, missing or of the wrong type.

A field type is a string: ``str[:max]``, ``int``, ``num``, ``bool``, ``dt`` (ISO 8601
datetime), ``obj``, ``list``, ``any``, ``enum:<name>``, ``nested:<name>`` (an object checked
against ``NESTED[<name>]``) or ``list:<name>`` (a list of such objects).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from target_gorgias.outcomes import MessageIntent

#: Import: messages keep or get ``sent_datetime`` and Gorgias delivers nothing.
#: Send: no ``sent_datetime`` is added; Gorgias delivers agent messages (e-mails go out).
INTENTS = tuple(i.value for i in MessageIntent)

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


@dataclass(frozen=True)
class Body:
    """The fields one body (or nested object) may hold, and those it must hold."""

    fields: Mapping[str, str]
    required: tuple[str, ...] = ()
    open: bool = False  # unknown keys are fine (objects Gorgias passes through)


_ADDRESS = Body({"address": "str", "name": "str"}, ("address",))
_MESSAGE_FIELDS = {
    "channel": "str", "from_agent": "bool", "via": "enum:via", "source": "nested:source",
    "sender": "obj", "receiver": "obj", "subject": "str", "body_text": "str",
    "body_html": "str", "stripped_text": "str", "stripped_html": "str", "attachments": "list",
    "external_id": "str:255", "message_id": "str", "integration_id": "int", "headers": "obj",
    "meta": "obj", "sent_datetime": "dt", "created_datetime": "dt", "failed_datetime": "dt",
    "opened_datetime": "dt", "public": "bool", "imported": "bool", "macros": "list",
    "actions": "list", "mention_ids": "list",
}
_TICKET_COMMON = {
    "assignee_team": "obj", "assignee_user": "obj", "channel": "str", "closed_datetime": "dt",
    "custom_fields": "list", "customer": "obj", "external_id": "str:255", "from_agent": "bool",
    "language": "str", "last_message_datetime": "dt", "last_received_message_datetime": "dt",
    "meta": "obj", "opened_datetime": "dt", "priority": "str", "snooze_datetime": "dt",
    "spam": "bool", "status": "enum:status", "subject": "str", "tags": "list",
    "trashed_datetime": "dt", "updated_datetime": "dt", "via": "enum:via",
}
_CUSTOMER = {
    "email": "str:320", "name": "str", "firstname": "str", "lastname": "str",
    "external_id": "str:255", "language": "str", "timezone": "str", "note": "str",
    "channels": "list:channel", "data": "obj", "meta": "obj",
}
_USER = {"email": "str:320", "name": "str", "role": "nested:role", "bio": "str",
         "country": "str:2", "external_id": "str:255", "language": "str", "meta": "obj",
         "timezone": "str"}
_MACRO = {"name": "str", "external_id": "str:255", "intent": "str", "language": "str",
          "actions": "list"}
_TAG = {"name": "str:256", "description": "str:1024", "decoration": "obj"}
_CUSTOM_FIELD = {"object_type": "enum:object_type", "label": "str", "definition": "obj",
                 "external_id": "str:255", "description": "str", "priority": "int",
                 "required": "bool", "managed_type": "str", "deactivated_datetime": "dt"}
_RULE = {"name": "str", "code": "str", "code_ast": "obj", "event_types": "str",
         "priority": "int", "description": "str", "deactivated_datetime": "dt"}
_TICKET_TAGS = Body({"ids": "list", "names": "list"})

NESTED: dict[str, Body] = {
    # Gorgias answers 400 "From field is missing or empty" without source.from.address.
    "message": Body(_MESSAGE_FIELDS, ("channel", "from_agent", "source")),
    "source": Body({"type": "str", "from": "nested:address", "to": "list:address",
                    "cc": "list:address", "bcc": "list:address", "extra": "obj"}, ("from",)),
    "address": _ADDRESS,
    "channel": Body({"type": "str", "address": "str", "preferred": "bool"},
                    ("type", "address"), open=True),
    "role": Body({"id": "int", "name": "enum:role"}, ("name",)),
}

#: Template id -> what its body may hold. Templates without a body (DELETE by id) and the
#: bulk ones that send only plucked ids have no entry: nothing to check.
BODIES: dict[str, Body] = {
    "create_ticket": Body({**_TICKET_COMMON, "created_datetime": "dt", "split_from": "any",
                           "imported": "bool", "messages": "list:message"}, ("messages",)),
    "update_ticket": Body({**_TICKET_COMMON, "is_unread": "bool"}),
    "add_ticket_message": NESTED["message"],
    "update_ticket_message": Body(_MESSAGE_FIELDS, ("channel", "from_agent", "via")),
    "create_customer": Body(_CUSTOMER, ("channels",)),
    "update_customer": Body(_CUSTOMER),
    "create_user": Body(_USER, ("email", "name", "role")),
    "update_user": Body({**_USER, "password_confirmation": "str"}),
    "create_macro": Body(_MACRO, ("name",)),
    "update_macro": Body(_MACRO),
    "create_tag": Body(_TAG, ("name",)),
    "update_tag": Body(_TAG),
    "create_custom_field": Body(_CUSTOM_FIELD, ("object_type", "label", "definition")),
    "update_custom_field": Body(_CUSTOM_FIELD, ("object_type", "label", "definition")),
    "create_rule": Body(_RULE, ("name", "code")),
    "update_rule": Body(_RULE),
    "add_ticket_tags": _TICKET_TAGS,
    "set_ticket_tags": _TICKET_TAGS,
    "remove_ticket_tags": _TICKET_TAGS,
    "set_ticket_custom_fields": Body({"value": "any"}, ("value",)),
    "replace_ticket_custom_fields": Body({"id": "int", "value": "any"}, ("id",)),
}

#: One problem: (dotted field, what is wrong).
Problem = tuple[str, str]


# -- the preflight -------------------------------------------------------------------------

def _is_datetime(value: Any) -> bool:
    if isinstance(value, dt.datetime):
        return True
    if not isinstance(value, str) or len(value) <= 10:
        return False
    try:  # Python 3.10's fromisoformat does not take "Z"
        dt.datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in "Zz" else value)
    except ValueError:
        return False
    return True


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value()


def is_number(value: Any) -> bool:
    """True for a JSON number (int, float or Decimal; never a boolean)."""
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


_CHECKS: dict[str, tuple[Any, str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "enum": (lambda v: isinstance(v, str), "a string"),
    "dt": (_is_datetime, "an ISO 8601 datetime"),
    "int": (_is_int, "an integer"),
    "num": (is_number, "a number"),
    "bool": (lambda v: isinstance(v, bool), "a boolean"),
    "obj": (lambda v: isinstance(v, dict), "an object"),
    "nested": (lambda v: isinstance(v, dict), "an object"),
    "list": (lambda v: isinstance(v, list), "a list"),
}


#: Field types whose check is only "is it one of these Python types" (no length, enum, parse).
_PLAIN: dict[str, tuple[type, ...]] = {
    "str": (str,), "bool": (bool,), "obj": (dict,), "list": (list,), "any": (object,),
    "int": (int,), "num": (int, float, Decimal), "dt": (dt.datetime,),
}


_ENUM_SETS: dict[str, frozenset[str]] = {f"enum:{k}": frozenset(v) for k, v in ENUMS.items()}
_MAX_LEN: dict[str, int] = {f"str:{n}": n for n in (2, 255, 256, 320, 1024)}


def _type_problems(kind: str, value: Any, where: str) -> list[Problem]:
    if value is None or kind == "any":
        return []
    base, _, arg = kind.partition(":")
    ok, name = _CHECKS[base]
    if not ok(value):
        return [(where, f"must be {name}, got {_describe(value)}")]
    if not arg:
        return []
    if base == "str" and len(value) > int(arg):
        return [(where, f"is longer than {arg} characters")]
    if base == "enum" and value not in ENUMS[arg]:
        return [(where, f"must be one of {', '.join(ENUMS[arg])}; got {value!r}")]
    if base == "nested":
        return body_problems(value, NESTED[arg], where + ".")
    if base == "list":
        out: list[Problem] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                out.append((f"{where}.{i}", f"must be an object, got {_describe(item)}"))
            else:
                out.extend(body_problems(item, NESTED[arg], f"{where}.{i}."))
        return out
    return []


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return f"{type(value).__name__} {str(value)[:40]}"


def body_problems(body: Mapping[str, Any], spec: Body, prefix: str = "") -> list[Problem]:
    """Every field of ``body`` Gorgias would reject: missing, null, unknown, wrong type."""
    out: list[Problem] = []
    for name in spec.required:
        if name not in body:
            out.append((prefix + name, "is required by Gorgias and missing"))
        elif body[name] is None:
            out.append((prefix + name, "is required by Gorgias and null"))
    fields = spec.fields
    for name, value in body.items():
        kind = fields.get(name)
        if kind is None:
            if not spec.open:
                out.append((prefix + name, "is not a field Gorgias accepts here (unknown "
                                           "fields are answered 400 'No such field')"))
            continue
        if value is None or (type(value) in _PLAIN.get(kind, ())):
            continue  # the common case, decided without a call
        if type(value) is str and ((kind in _ENUM_SETS and value in _ENUM_SETS[kind])
                                   or (kind in _MAX_LEN and len(value) <= _MAX_LEN[kind])):
            continue
        out.extend(_type_problems(kind, value, prefix + name))
    return out


def check(endpoint_id: str, body: Any) -> list[Problem]:
    """The preflight: what Gorgias would reject in ``body`` for this template."""
    spec = BODIES.get(endpoint_id)
    if spec is None:
        return []
    if not isinstance(body, Mapping):
        return [("", "the body must be a JSON object")]
    return body_problems(body, spec)


# -- shaping -------------------------------------------------------------------------------

def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _email_of(ref: Any) -> str | None:
    if isinstance(ref, Mapping) and isinstance(ref.get("email"), str) and ref["email"].strip():
        return str(ref["email"])
    return None


def _address(ref: Mapping[str, Any], email: str) -> dict[str, Any]:
    out: dict[str, Any] = {"address": email}
    if isinstance(ref.get("name"), str) and ref["name"]:
        out["name"] = ref["name"]
    return out


def shape_message(msg: Mapping[str, Any], *, intent: str, default_sent: Any, where: str
                  ) -> tuple[dict[str, Any], list[Problem]]:
    """A message as Gorgias needs it (a new dict; ``msg`` is not changed).

    ``source``: kept when it has ``from.address``; else built from ``sender`` (its email
    becomes ``source.from.address``), ``receiver`` (``source.to``) and ``channel``
    (``source.type``). No sender email and no ``source.from.address``: a problem naming
    ``source.from.address``. ``intent`` import: ``sent_datetime`` is kept, else set to
    the message's ``created_datetime`` or ``default_sent``; send: left as it is.
    """
    out = dict(msg)
    problems: list[Problem] = []
    source = out.get("source")
    has_from = (isinstance(source, Mapping) and isinstance(source.get("from"), Mapping)
                and isinstance(source["from"].get("address"), str)
                and bool(source["from"]["address"].strip()))
    if not has_from and (source is None or isinstance(source, Mapping)):
        sender_email = _email_of(out.get("sender"))
        if sender_email is None:
            problems.append((where + "source.from.address",
                             "Gorgias requires it ('From field is missing or empty'); give "
                             "'source' with from.address, or a 'sender' with an email"))
        else:
            built: dict[str, Any] = dict(source or {})
            built.setdefault("type", out.get("channel") or "api")
            built["from"] = _address(out["sender"], sender_email)
            receiver_email = _email_of(out.get("receiver"))
            if receiver_email and "to" not in built:
                built["to"] = [_address(out["receiver"], receiver_email)]
            out["source"] = built
    if intent == MessageIntent.IMPORT and out.get("sent_datetime") is None:
        out["sent_datetime"] = out.get("created_datetime") or default_sent
    return out, problems


def shape(endpoint_id: str, body: dict[str, Any], *, intent: str = "import",
          now: str | None = None) -> tuple[dict[str, Any], list[Problem]]:
    """Fill in what Gorgias requires and the record implies; list what cannot be filled.

    Returns a new body (the input is not changed) and the problems found.
    """
    problems: list[Problem] = []
    if endpoint_id == "create_ticket" and isinstance(body.get("messages"), list):
        default_sent = body.get("created_datetime") or now or _now()
        messages = []
        for i, msg in enumerate(body["messages"]):
            if isinstance(msg, Mapping):
                shaped, found = shape_message(msg, intent=intent, default_sent=default_sent,
                                              where=f"messages.{i}.")
                messages.append(shaped)
                problems.extend(found)
            else:
                messages.append(msg)
        body = {**body, "messages": messages}
    elif endpoint_id == "add_ticket_message":
        body, problems = shape_message(body, intent=intent, default_sent=now or _now(), where="")
    elif endpoint_id == "update_ticket_message":
        body = dict(body)
        body.setdefault("via", "api")  # Gorgias' documented default for via
        for name in ("channel", "from_agent"):
            if body.get(name) is None:
                problems.append((name, "Gorgias requires it to update a message"))
    elif endpoint_id == "create_customer" and body.get("channels") is None:
        email = _email_of(body)
        if email is None:
            problems.append(("channels", "Gorgias requires it to create a customer; give "
                                         "'channels' or an 'email' to build it from"))
        else:
            body = {**body, "channels": [{"type": "email", "address": email,
                                          "preferred": True}]}
    return body, problems
