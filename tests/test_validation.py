"""The fast validation path never accepts a record that jsonschema would reject."""

from __future__ import annotations

from decimal import Decimal

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.gen import TICKET_SCHEMA
from target_gorgias.validation import compile_schema

SCHEMAS = [
    TICKET_SCHEMA,
    {"type": "object", "properties": {"id": {"type": "integer"}, "tags": {
        "type": ["array", "null"], "items": {"type": "string"}}}, "required": ["id"]},
    {"properties": {"when": {"anyOf": [{"type": "string", "format": "date-time"},
                                       {"type": "null"}]},
                    "kind": {"enum": ["a", "b", 1]}, "n": {"type": ["number", "null"]}}},
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "tags", "when", "kind", "n", "subject", "messages", "customer",
                         "email", "from_agent", "meta", "order_total", "x"]), inner,
        max_size=5),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(value=json_values, which=st.integers(min_value=0, max_value=len(SCHEMAS) - 1))
def test_fast_accept_implies_jsonschema_accept(value, which):
    schema = SCHEMAS[which]
    check = compile_schema(schema)
    assert check is not None
    if check(value):
        assert jsonschema.Draft202012Validator(schema).is_valid(value), value


def test_compiled_checks_catch_the_obvious():
    check = compile_schema(SCHEMAS[1])
    assert check is not None
    assert check({"id": 1, "tags": ["a"]}) and check({"id": 2, "tags": None})
    assert not check({"id": "1"}) and not check({"tags": []}) and not check({"id": True})
    assert compile_schema({"type": "object", "patternProperties": {}}) is None
    assert compile_schema({"type": "object", "additionalProperties": False}) is None
    assert compile_schema(SCHEMAS[0])({"meta": {"order_total": Decimal("1.5")}})
