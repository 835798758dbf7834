"""Write a Singer stream of N records to stdout: realistic tickets or small tags.

    python benchmarks/gen.py --shape ticket --count 200000 > tickets.singer
"""

from __future__ import annotations

import argparse
import json
import sys

TICKET_SCHEMA = {
    "type": "object",
    "properties": {
        "external_id": {"type": "string"},
        "subject": {"type": "string"},
        "channel": {"type": "string"},
        "via": {"type": "string"},
        "status": {"type": "string"},
        "created_datetime": {"type": "string", "format": "date-time"},
        "customer": {"type": "object", "properties": {"email": {"type": "string"},
                                                      "name": {"type": "string"}}},
        "tags": {"type": "array", "items": {"type": "object",
                                            "properties": {"name": {"type": "string"}}}},
        "messages": {"type": "array", "items": {"type": "object", "properties": {
            "channel": {"type": "string"}, "via": {"type": "string"},
            "from_agent": {"type": "boolean"}, "subject": {"type": "string"},
            "body_text": {"type": "string"}, "sent_datetime": {"type": "string",
                                                               "format": "date-time"},
            "sender": {"type": "object", "properties": {"email": {"type": "string"}}},
        }}},
        "meta": {"type": "object", "properties": {"order_total": {"type": "number"},
                                                  "order_id": {"type": "integer"}}},
    },
}
TAG_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"},
                                               "description": {"type": "string"}}}
#: A customers table as a SQL tap describes it: lengths, bounds, numeric scale, enums, nulls.
CUSTOMER_DB_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "minimum": -2147483648, "maximum": 2147483647},
        "external_id": {"type": "string", "maxLength": 255},
        "email": {"type": ["string", "null"], "maxLength": 320},
        "name": {"type": ["string", "null"], "maxLength": 255},
        "language": {"anyOf": [{"type": "string", "enum": ["en", "fr", "de", "es"]},
                               {"type": "null"}]},
        "timezone": {"type": ["string", "null"], "maxLength": 64},
        "note": {"type": ["string", "null"]},
        "meta": {"type": ["object", "null"], "properties": {
            "lifetime_value": {"type": ["number", "null"], "multipleOf": 0.01,
                               "minimum": -99999999.99, "maximum": 99999999.99},
            "discount_rate": {"type": ["number", "null"], "exclusiveMinimum": 0,
                              "exclusiveMaximum": 1, "multipleOf": 0.0001},
            "orders_count": {"type": ["integer", "null"], "minimum": 0},
            "vip": {"type": ["boolean", "null"]},
            "created_at": {"type": ["string", "null"], "format": "date-time"},
            "birthday": {"type": ["string", "null"], "format": "date"},
            "segments": {"type": ["array", "null"],
                         "items": {"type": "string", "maxLength": 50}},
            "address": {"type": ["object", "null"], "properties": {
                "line1": {"type": "string", "maxLength": 255},
                "zip": {"type": ["string", "null"], "maxLength": 16},
                "country": {"type": "string", "minLength": 2, "maxLength": 2}},
                "required": ["line1", "country"]},
        }},
    },
    "required": ["id", "external_id"],
}


def ticket(i: int) -> dict:
    """A create_ticket record with its first message."""
    email = f"customer{i}@example.com"
    return {
        "external_id": f"order-{i}", "subject": f"Where is my order #{i}?", "channel": "email",
        "via": "api", "status": "open", "created_datetime": "2024-05-01T10:00:00Z",
        "customer": {"email": email, "name": f"Customer {i}"}, "tags": [{"name": "shipping"}],
        "messages": [{"channel": "email", "via": "api", "from_agent": False,
                      "subject": f"Where is my order #{i}?", "sent_datetime": "2024-05-01T10:00:00Z",
                      "body_text": "Hello, my order has not arrived yet. Could you check? " * 3,
                      "sender": {"email": email}}],
        "meta": {"order_total": 129.95, "order_id": i},
    }


def customer_db(i: int) -> dict:
    """A row of a customers table, as a SQL tap emits it."""
    return {
        "id": i, "external_id": f"crm-{i}", "email": f"customer{i}@example.com",
        "name": f"Customer {i}", "language": ("en", "fr", "de", None)[i % 4],
        "timezone": "Europe/Paris", "note": None if i % 3 else "prefers email",
        "meta": {"lifetime_value": round(i * 1.37 % 10000, 2), "discount_rate": 0.125,
                 "orders_count": i % 40, "vip": i % 10 == 0,
                 "created_at": "2024-05-01T10:00:00.000000+00:00", "birthday": "1990-02-03",
                 "segments": ["newsletter", "repeat-buyer"],
                 "address": {"line1": f"{i} Rue de Rivoli", "zip": "75001", "country": "FR"}},
    }


def tag(i: int) -> dict:
    """A small create_tag record."""
    return {"name": f"tag-{i}", "description": "imported"}


SHAPES = {"ticket": (ticket, TICKET_SCHEMA, "external_id"), "tag": (tag, TAG_SCHEMA, "name"),
          "customer_db": (customer_db, CUSTOMER_DB_SCHEMA, "id")}


def main() -> None:
    """Write SCHEMA, N RECORDs (a STATE every 1000) and a final STATE."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), default="ticket")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--stream", default=None)
    args = parser.parse_args()
    stream = args.stream or f"{args.shape}s"
    make, schema_, key = SHAPES[args.shape]
    out = sys.stdout
    out.write(json.dumps({"type": "SCHEMA", "stream": stream, "schema": schema_,
                          "key_properties": [key]}) + "\n")
    dumps = json.dumps
    for i in range(args.count):
        out.write(dumps({"type": "RECORD", "stream": stream, "record": make(i)}) + "\n")
        if i % 1000 == 999:
            out.write(dumps({"type": "STATE", "value": {"bookmarks": {stream: i}}}) + "\n")
    out.write(dumps({"type": "STATE", "value": {"bookmarks": {stream: args.count}}}) + "\n")


if __name__ == "__main__":
    main()
