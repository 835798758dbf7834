"""Record -> request: URL placeholders, body exclusion, JSON encoding, batch grouping.

Nothing here does I/O. A record becomes a ``Unit`` (its rendered path and encoded body);
units become ``Call``s (one HTTP request each), alone or grouped into batches.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import simplejson

from target_gorgias import body_rules
from target_gorgias.endpoints import TEMPLATES, Probe
from target_gorgias.errors import RecordError
from target_gorgias.settings import StreamSettings

_MISSING = object()
#: Templates whose DELETE carries a JSON body (Gorgias documents one).
_DELETE_WITH_BODY = frozenset({"remove_ticket_tags"})


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"values of type {type(value).__name__} cannot be sent as JSON")


def to_json(value: Any, indent: int | None = None) -> str:
    """Encode a record value as JSON: datetimes as ISO 8601, Decimals as the exact number
    they were read as (``12345678901234567.25`` stays that, never a float); NaN and
    Infinity raise ``ValueError``."""
    if indent:
        return simplejson.dumps(value, default=_json_default, use_decimal=True,
                                ensure_ascii=False, allow_nan=False, indent=indent)
    return str(_ENCODER.encode(value))


_ENCODER = simplejson.JSONEncoder(
    default=_json_default, use_decimal=True, ensure_ascii=False, allow_nan=False,
    separators=(",", ":"),
)


def from_json(text: str | bytes) -> Any:
    """Decode JSON keeping every non-integer number exact (as ``Decimal``)."""
    return json.loads(text, parse_float=Decimal)


def jsonable(value: Any) -> Any:
    """A copy of ``value`` made of plain JSON types (numbers stay exact ``Decimal``s)."""
    return from_json(to_json(value))


def get_path(record: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path (``customer.email``), or ``_MISSING``."""
    if dotted in record:
        return record[dotted]
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _without(record: dict[str, Any], dotted: str) -> dict[str, Any]:
    """``record`` without the field at ``dotted``, copying only the dicts on the way."""
    if dotted in record:
        out = dict(record)
        del out[dotted]
        return out
    head, _, rest = dotted.partition(".")
    if not rest or not isinstance(record.get(head), dict):
        return record
    inner = _without(record[head], rest)
    if inner is record[head]:
        return record
    out = dict(record)
    out[head] = inner
    return out


def _only(record: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """A body holding only ``fields`` (dotted paths keep their nesting)."""
    out: dict[str, Any] = {}
    for dotted in fields:
        value = get_path(record, dotted)
        if value is _MISSING:
            continue
        if dotted in record:
            out[dotted] = value
            continue
        parts = dotted.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def unflatten(flat: dict[str, Any], separator: str) -> dict[str, Any]:
    """``{"customer__email": x}`` -> ``{"customer": {"email": x}}``.

    Keys without the separator stay as they are. Raises ``ValueError`` when a nested key
    collides with a plain value (``customer`` and ``customer__email`` both set).
    """
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = [p for p in key.split(separator) if p] if separator in key else [key]
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"'{key}' collides with the field '{part}'")
            node = child
        if isinstance(node.get(parts[-1]), dict) and not isinstance(value, dict):
            raise ValueError(f"'{key}' collides with nested fields of the same name")
        node[parts[-1]] = value
    return out


def path_segment(value: Any) -> str:
    """Encode one path parameter value as exactly one URL path segment.

    Raises ``ValueError`` for values that cannot name a resource: null, empty, booleans,
    objects, lists and the dot segments ``.``/``..`` (HTTP clients normalise those even
    when percent-encoded, so they would change the route).
    """
    if value is None:
        raise ValueError("is null")
    if isinstance(value, (bool, dict, list, tuple, set)):
        raise ValueError(f"is a {type(value).__name__}, not an id")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("is not a finite number")
        text = str(int(value)) if value == value.to_integral_value() else str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("is not a finite number")
        text = str(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, (dt.datetime, dt.date)):
        text = value.isoformat()
    else:
        text = str(value)
    if not text.strip():
        raise ValueError("is empty")
    if text in (".", ".."):
        raise ValueError(f"is {text!r}, which would change the URL path")
    return quote(text, safe="")


@dataclass
class Unit:
    """One record, ready to send: its rendered path and encoded body part."""

    seq: int
    position: int
    path: str
    body: bytes | None
    source_key: dict[str, Any]
    group: Any = None
    lookup: Probe | None = None
    match: tuple[str, str] | None = None
    #: What Gorgias would reject in this record's body: (field, problem) pairs.
    problems: list[body_rules.Problem] = field(default_factory=list)

    def error(self, stream: str) -> RecordError:
        """The problems as one ``RecordError`` naming the first field."""
        fld, problem = self.problems[0]
        more = "; ".join(f"{f}: {p}" for f, p in self.problems[1:])
        return RecordError(stream, self.position, problem + (f" (also {more})" if more else ""),
                           fld or None)


@dataclass
class Call:
    """One HTTP request: a single record or a batch of them."""

    stream: str
    endpoint_id: str
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes | None
    units: list[Unit] = field(default_factory=list)
    lookup: Probe | None = None
    lookup_first: bool | str = False  # True, False or "auto" (lookup_before_create)
    mode: str = "create"
    match: tuple[str, str] | None = None
    update_path: str | None = None
    read_only: tuple[str, ...] = ()

    @property
    def positions(self) -> list[int]:
        """Stream positions (1-based) of the records in this call."""
        return [u.position for u in self.units]

    def body_object(self) -> Any:
        """The body as JSON data (decoded again; used only for display)."""
        return None if self.body is None else from_json(self.body)


class RequestBuilder:
    """Builds units and calls for one stream."""

    def __init__(self, stream: str, settings: StreamSettings, key_properties: Sequence[str],
                 max_body_bytes: int, preflight: bool = False) -> None:
        self.stream = stream
        self.preflight = preflight
        self.settings = settings
        self.key_properties = tuple(key_properties or ())
        self.max_body_bytes = max_body_bytes
        template = TEMPLATES.get(settings.endpoint_id)
        self.sends_body = settings.batch.enabled or settings.method != "DELETE" or (
            template is None or template.id in _DELETE_WITH_BODY
        )
        #: Bytes a batch adds around its members: ``[`` ``]`` and ``{"wrap_key":`` ``}``.
        self.batch_overhead = 2 + (len(to_json(settings.batch.wrap_key).encode()) + 3
                                   if settings.batch.wrap_key else 0)
        path_fields = set(settings.path_params.values())
        self._drop = settings.exclude_attributes + (
            () if settings.keep_path_params else tuple(sorted(path_fields))
        )

    def render_path(self, record: Mapping[str, Any], position: int) -> str:
        """Fill the path's placeholders from ``record``, one encoded segment each."""
        path = self.settings.path
        for name in self.settings.placeholders:
            fld = self.settings.path_params[name]
            value = get_path(record, fld)
            if value is _MISSING:
                raise RecordError(self.stream, position,
                                  f"path parameter {{{name}}} needs this field, which is missing",
                                  fld)
            try:
                segment = path_segment(value)
            except ValueError as exc:
                raise RecordError(self.stream, position,
                                  f"path parameter {{{name}}} {exc}", fld) from None
            path = path.replace("{" + name + "}", segment, 1)
        return path

    def body_of(self, record: dict[str, Any]) -> dict[str, Any]:
        """The JSON body for ``record``: no ``_sdc_*`` fields, no excluded or path fields."""
        body = {k: v for k, v in record.items() if not k.startswith("_sdc_")}
        if self.settings.unflatten_separator:
            body = unflatten(body, self.settings.unflatten_separator)
        if self.settings.include_attributes is not None:
            body = _only(body, self.settings.include_attributes)
        for dotted in self._drop:
            body = _without(body, dotted)
        return body

    def shaped(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[body_rules.Problem]]:
        """``body`` with what Gorgias requires filled in (templates only), and what is wrong.

        The shaping problems (a message without a from address, ...) are always listed; the
        preflight's (unknown field, missing required field, wrong type) when it is on.
        """
        endpoint = self.settings.endpoint_id
        if endpoint == "manual":
            return body, []
        body, problems = body_rules.shape(endpoint, body,
                                          intent=self.settings.message_intent or "import")
        if self.preflight:
            seen = {f for f, _ in problems}
            problems += [p for p in body_rules.check(endpoint, body) if p[0] not in seen]
        return body, problems

    def _encode(self, value: Any, position: int) -> bytes:
        try:
            data = to_json(value).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise RecordError(self.stream, position, f"cannot be encoded as JSON: {exc}") from None
        size = len(data) + (self.batch_overhead if self.settings.batch.enabled else 0)
        if size > self.max_body_bytes:
            raise RecordError(
                self.stream, position,
                f"JSON body is {size:,} bytes, over max_body_bytes ({self.max_body_bytes:,})"
                + (" (batched alone, with its brackets and wrap_key)"
                   if self.settings.batch.enabled else ""),
            )
        return data

    def unit(self, record: dict[str, Any], seq: int, position: int) -> Unit:
        """Turn one record into a ``Unit``; raise ``RecordError`` if it cannot be sent."""
        path = self.render_path(record, position)
        try:
            body = self.body_of(record)
        except ValueError as exc:
            raise RecordError(self.stream, position, f"cannot unflatten: {exc}") from None
        body, problems = self.shaped(body)
        batch = self.settings.batch
        payload: Any = body
        if batch.enabled and batch.pluck:
            payload = get_path(body, batch.pluck)
            if payload is _MISSING:
                payload = get_path(record, batch.pluck)
            if payload is _MISSING or payload is None:
                raise RecordError(self.stream, position,
                                  "batch.pluck needs this field, which is missing", batch.pluck)
        encoded: bytes | None = None
        if self.sends_body and (batch.enabled or body or self.settings.method != "DELETE"):
            encoded = self._encode(payload, position)
        group = None
        if batch.enabled and batch.grouping == "field" and batch.group_by:
            value = get_path(record, batch.group_by)
            group = None if value is _MISSING else to_json(value)
        lookup = None
        spec = self.settings.lookup
        if spec and not batch.enabled:
            scope = None
            if spec.scope:
                found = get_path(record, self.settings.path_params.get(spec.scope, spec.scope))
                scope = None if found is _MISSING else str(found)
            for key in spec.keys:
                value = body.get(key)
                if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) \
                        and (scope is not None or not spec.scope):
                    lookup = spec.probe(key, str(value), scope)
                    break
        match = None
        if self.settings.match_on:
            value = body.get(self.settings.match_on)
            if value in (None, "") or isinstance(value, (bool, dict, list)):
                raise RecordError(self.stream, position,
                                  f"mode '{self.settings.mode}' matches on this field, which is "
                                  "missing or empty", self.settings.match_on)
            match = (self.settings.match_on, str(value))
            lookup = spec.probe(self.settings.match_on, str(value)) if spec else None
        source_key = {k: record.get(k) for k in self.key_properties}
        return Unit(seq, position, path, encoded, source_key, group, lookup, match, problems)

    def calls(self, units: Iterable[Unit]) -> Iterator[Call]:
        """Group units into calls: one per unit, or batches when batching is on.

        Units with different rendered paths (or ``group_by`` values) never share a call;
        a batch closes at ``batch.size`` records or when its whole body (brackets, commas
        and ``wrap_key`` included) would pass ``max_body_bytes``.
        """
        s = self.settings
        if not s.batch.enabled:
            for u in units:
                yield Call(self.stream, s.endpoint_id, s.method, u.path, s.headers, u.body, [u],
                           u.lookup, s.lookup_before_create, s.mode, u.match, s.update_path,
                           s.read_only)
            return
        open_batches: dict[tuple[str, Any], tuple[list[Unit], int]] = {}
        for u in units:
            key = (u.path, u.group)
            # size: the exact body length of the open batch (members, commas, overhead).
            members, size = open_batches.get(key, ([], self.batch_overhead - 1))
            part = len(u.body or b"null") + 1
            if members and (len(members) >= s.batch.size
                            or size + part > self.max_body_bytes):
                yield self._batch_call(members)
                members, size = [], self.batch_overhead - 1
            members.append(u)
            open_batches[key] = (members, size + part)
        for members, _ in open_batches.values():
            if members:
                yield self._batch_call(members)

    def _batch_call(self, members: list[Unit]) -> Call:
        s = self.settings
        body = b"[" + b",".join(u.body or b"null" for u in members) + b"]"
        if s.batch.wrap_key:
            body = b"{" + to_json(s.batch.wrap_key).encode() + b":" + body + b"}"
        return Call(self.stream, s.endpoint_id, s.method, members[0].path, s.headers, body,
                    members)
