"""A fast path for record validation.

The SDK validates every record with ``jsonschema``, which dominates a target's CPU time.
Most tap schemas use a small subset (``type``, ``properties``, ``items``, ``anyOf``,
``required``, ``enum``), so that subset is compiled once into plain Python checks. A record
the fast check accepts is valid; anything else (a record it rejects, or a schema using
other keywords) goes to the SDK's ``jsonschema`` validator, which gives the real error.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

from singer_sdk.sinks.core import BaseJSONSchemaValidator

Check = Callable[[Any], bool]
#: Keywords that change nothing about validity here (format checking is off in the SDK).
_NEUTRAL = frozenset({"description", "title", "default", "format", "$schema", "examples",
                      "$comment", "readOnly", "writeOnly", "secret", "deprecated",
                      "additionalProperties"})
_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, numbers.Number) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def compile_schema(schema: Any) -> Check | None:
    """A check for ``schema``, or None when it uses keywords outside the fast subset."""
    if schema is True or schema == {}:
        return lambda v: True
    if not isinstance(schema, dict):
        return None
    known = _NEUTRAL | {"type", "properties", "items", "anyOf", "required", "enum"}
    if set(schema) - known:
        return None
    if schema.get("additionalProperties", True) is not True:
        return None  # only "allow anything extra" is in the subset
    checks: list[Check] = []
    kinds = schema.get("type")
    if kinds is not None:
        names = [kinds] if isinstance(kinds, str) else list(kinds)
        if not all(n in _TYPES for n in names):
            return None
        type_checks = [_TYPES[n] for n in names]
        checks.append(lambda v: any(t(v) for t in type_checks))
    if "enum" in schema:
        allowed = list(schema["enum"])
        checks.append(lambda v: any(v == a and type(v) is type(a) for a in allowed))
    if "properties" in schema:
        props = {}
        for name, sub in schema["properties"].items():
            check = compile_schema(sub)
            if check is None:
                return None
            props[name] = check
        items_ = list(props.items())
        checks.append(lambda v: not isinstance(v, dict)
                      or all(k not in v or c(v[k]) for k, c in items_))
    if "required" in schema:
        required = list(schema["required"])
        checks.append(lambda v: not isinstance(v, dict) or all(k in v for k in required))
    if "items" in schema:
        item = compile_schema(schema["items"])
        if item is None:
            return None
        checks.append(lambda v: not isinstance(v, list) or all(item(x) for x in v))
    if "anyOf" in schema:
        options = [compile_schema(s) for s in schema["anyOf"]]
        if any(o is None for o in options):
            return None
        opts = [o for o in options if o is not None]
        checks.append(lambda v: any(o(v) for o in opts))
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


class FastValidator(BaseJSONSchemaValidator):
    """Compiled checks first; the SDK's jsonschema validator for anything they reject."""

    def __init__(self, schema: dict[str, Any], fallback: BaseJSONSchemaValidator) -> None:
        super().__init__(schema)
        self.fallback = fallback
        self.check = compile_schema(schema)

    def validate(self, record: dict[str, Any]) -> None:
        """Raise ``InvalidRecord`` (from the fallback) if the record does not match."""
        if self.check is None or not self.check(record):
            self.fallback.validate(record)
