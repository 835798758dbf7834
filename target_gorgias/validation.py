"""Record validation: every stream schema compiled once by ``fastjsonschema``.

The SDK validates each record with ``jsonschema`` (Draft 2020-12), which dominates a target's
CPU time. Here the schema is compiled into one Python function by ``fastjsonschema`` instead.
The compiled check only ever *accepts*: a record it rejects (or cannot judge) goes to the
SDK's ``jsonschema`` validator, which gives the final verdict and words the error. So the only
thing the compiled check must never do is accept a record ``jsonschema`` rejects; the schema is
rewritten before compiling so that holds (property-tested in tests/test_validation.py):

- Only keywords whose meaning is the same in both are kept. Keywords ``jsonschema`` ignores
  (annotations, ``x-…`` extensions, ``contentEncoding``…) are dropped; a schema using a keyword
  ``jsonschema`` applies but this module does not translate (``$ref``, ``prefixItems``,
  ``uniqueItems``…) is validated by ``jsonschema`` alone (``CompiledSchema.reason`` says why).
- ``$schema`` is dropped: the SDK applies Draft 2020-12 whatever a schema declares.
- Numbers in the schema arrive as ``Decimal`` (the reader parses them so). ``fastjsonschema``
  would write them into its code as float literals; they are passed by reference instead, so
  ``minimum`` & co. compare exactly as ``jsonschema`` does, and ``multipleOf`` is computed by
  ``jsonschema``'s own rule (``instance % multipleOf``), not by a rounded division.
- Defaults are never filled in; formats are checked only if the sink asks
  (``validate_field_string_format``), and then by ``jsonschema``'s own format checker.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import fastjsonschema
import jsonschema
from singer_sdk.sinks.core import BaseJSONSchemaValidator

#: Keywords translated one-to-one (same meaning in fastjsonschema and Draft 2020-12).
SUPPORTED = frozenset({
    "type", "properties", "required", "items", "additionalProperties", "patternProperties",
    "anyOf", "allOf", "oneOf", "not", "enum", "const", "minLength", "maxLength", "pattern",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems",
    "maxItems", "minProperties", "maxProperties", "format",
})
#: Keywords Draft 2020-12 applies; any of them outside SUPPORTED means jsonschema only.
APPLIED = frozenset(jsonschema.Draft202012Validator.VALIDATORS)
_NUMBER_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf")
#: Where the compiled code finds values passed by reference (fastjsonschema's only global map).
_REF_PREFIX = "target-gorgias:"


class Unsupported(Exception):
    """The schema needs a keyword (or value) this module does not translate."""


class _Placeholder(decimal.Decimal):
    """A number in the schema that fastjsonschema writes into its code as an expression.

    fastjsonschema checks keyword values with ``isinstance(value, (int, float, Decimal))``
    and writes them with ``format``: this renders as a lookup of the real value instead.
    """

    expression: str

    def __format__(self, spec: str, context: decimal.Context | None = None, /) -> str:
        return self.expression

    def __str__(self) -> str:
        return self.expression

    def __repr__(self) -> str:
        return self.expression


@dataclass(frozen=True)
class _MultipleOf:
    """``multipleOf`` as jsonschema computes it; fastjsonschema divides by this object.

    The generated code does ``quotient = x / m; if int(quotient) != quotient: fail``; the
    division lands in ``__rtruediv__`` (int, float and Decimal all defer to it) and returns 0
    for a multiple and 0.5 otherwise, decided by jsonschema's own rule.
    """

    divisor: Any

    def __rtruediv__(self, instance: Any) -> float:
        d_b = self.divisor
        if isinstance(d_b, float):
            quotient = instance / d_b
            try:
                failed = int(quotient) != quotient
            except OverflowError:
                failed = (Fraction(instance) / Fraction(d_b)).denominator != 1
        else:
            failed = instance % d_b
        return 0.5 if failed else 0


def _has_fraction(value: Any) -> bool:
    """Whether a (nested) enum/const value holds a non-integer number."""
    if isinstance(value, (decimal.Decimal, float)):
        return True
    if isinstance(value, list):
        return any(_has_fraction(v) for v in value)
    if isinstance(value, dict):
        return any(_has_fraction(v) for v in value.values())
    return False


def _check_pattern(pattern: Any) -> None:
    # fastjsonschema rewrites '$' to '\Z' (jsonschema keeps re's '$'): not the same language.
    if not isinstance(pattern, str) or "$" in pattern:
        raise Unsupported("a pattern with '$'")


@dataclass
class _Translator:
    """Rewrites a schema for fastjsonschema, collecting values passed by reference."""

    formats: bool
    refs: dict[str, Any] = field(default_factory=dict)

    def by_reference(self, value: Any) -> _Placeholder:
        key = f"{_REF_PREFIX}{len(self.refs)}"
        self.refs[key] = value
        holder = _Placeholder(0)
        holder.expression = f"custom_formats[{key!r}]"
        return holder

    def schema(self, node: Any) -> Any:
        """The fastjsonschema version of one (sub)schema."""
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            raise Unsupported("a subschema that is not an object")
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key not in APPLIED:
                continue  # annotations and unknown keywords: jsonschema ignores them too
            if key not in SUPPORTED:
                raise Unsupported(f"'{key}'")
            if key in ("properties", "patternProperties"):
                if not isinstance(value, dict):
                    raise Unsupported(f"a non-object '{key}'")
                if key == "patternProperties":
                    for pattern in value:
                        _check_pattern(pattern)
                out[key] = {name: self.schema(sub) for name, sub in value.items()}
            elif key in ("items", "additionalProperties", "not"):
                out[key] = self.schema(value)
            elif key in _SCHEMA_LISTS:
                if not isinstance(value, list):
                    raise Unsupported(f"a non-array '{key}'")
                out.setdefault(key, []).extend(self.schema(sub) for sub in value)
            elif key in _NUMBER_BOUNDS:
                out[key] = self.number(key, value)
            elif key == "multipleOf":
                if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
                    raise Unsupported("a non-numeric 'multipleOf'")
                out[key] = self.by_reference(_MultipleOf(value))
            elif key in ("enum", "const"):
                if _has_fraction(value):
                    raise Unsupported(f"a fractional number in '{key}'")
                if key == "const":  # same rule in jsonschema; fastjsonschema's const needs
                    out.setdefault("allOf", []).append({"enum": [value]})  # detailed errors
                else:
                    out[key] = value
            elif key == "pattern":
                _check_pattern(value)
                out[key] = value
            elif key == "format":
                if self.formats:
                    out[key] = value
            else:
                out[key] = value
        return out

    def number(self, key: str, value: Any) -> Any:
        """A bound as fastjsonschema must see it: ints as they are, the rest by reference."""
        if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
            raise Unsupported(f"a non-numeric '{key}'")
        return value if isinstance(value, int) else self.by_reference(value)


def _format_names(node: Any) -> set[str]:
    """Every ``format`` value used anywhere in a schema."""
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("format"), str):
            found.add(node["format"])
        for value in node.values():
            found |= _format_names(value)
    elif isinstance(node, list):
        for value in node:
            found |= _format_names(value)
    return found


@dataclass
class CompiledSchema:
    """The compiled check of one schema, or the reason there is none."""

    check: Callable[[Any], Any] | None
    reason: str | None = None


def compile_schema(schema: Any, format_checker: jsonschema.FormatChecker | None = None
                   ) -> CompiledSchema:
    """Compile ``schema``; with a ``format_checker``, formats are checked by it."""
    translator = _Translator(formats=format_checker is not None)
    try:
        translated = translator.schema(schema)
    except Unsupported as exc:
        return CompiledSchema(None, f"the schema uses {exc}")
    formats: dict[str, Any] = dict(translator.refs)
    if format_checker is not None:
        for name in _format_names(translated):
            formats[name] = _conforms(format_checker, name)
    try:
        check = fastjsonschema.compile(translated, formats=formats, use_default=False,
                                       use_formats=format_checker is not None,
                                       detailed_exceptions=False)
    except Exception as exc:  # any trouble compiling: jsonschema alone, as before
        return CompiledSchema(None, f"fastjsonschema cannot compile it ({exc!r})")
    return CompiledSchema(check)


def _conforms(checker: jsonschema.FormatChecker, name: str) -> Callable[[str], bool]:
    """A fastjsonschema format function that asks jsonschema's checker."""
    return lambda value: checker.conforms(value, name)


class FastValidator(BaseJSONSchemaValidator):
    """The compiled check first; the SDK's jsonschema validator for anything it rejects."""

    def __init__(self, schema: dict[str, Any], fallback: BaseJSONSchemaValidator,
                 format_checker: jsonschema.FormatChecker | None = None) -> None:
        super().__init__(schema)
        self.fallback = fallback
        compiled = compile_schema(schema, format_checker)
        self.check = compiled.check
        self.reason = compiled.reason

    def validate(self, record: dict[str, Any]) -> None:
        """Raise ``InvalidRecord`` (from the fallback) if the record does not match."""
        if self.check is None:
            self.fallback.validate(record)
            return
        try:
            self.check(record)
        except Exception:  # a rejection, or any doubt: jsonschema decides
            self.fallback.validate(record)
