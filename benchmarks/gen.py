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


def tag(i: int) -> dict:
    """A small create_tag record."""
    return {"name": f"tag-{i}", "description": "imported"}


def main() -> None:
    """Write SCHEMA, N RECORDs (a STATE every 1000) and a final STATE."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=["ticket", "tag"], default="ticket")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--stream", default=None)
    args = parser.parse_args()
    stream = args.stream or f"{args.shape}s"
    make, schema_, key = ((ticket, TICKET_SCHEMA, "external_id") if args.shape == "ticket"
                          else (tag, TAG_SCHEMA, "name"))
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
