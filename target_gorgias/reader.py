"""The Singer message reader: knows which input line and stream it is on, for error messages."""

from __future__ import annotations

import json
import sys
from decimal import Decimal

from singer_sdk.exceptions import InvalidInputLine
from singer_sdk.singerlib.encoding.base import GenericSingerReader

#: The keys each Singer message type must carry (``type`` itself is checked first).
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "SCHEMA": ("stream", "schema"),
    "RECORD": ("stream", "record"),
    "STATE": ("value",),
    "ACTIVATE_VERSION": ("stream", "version"),
}


class LineReader(GenericSingerReader[str]):
    """Reads one JSON message per line (numbers as ``Decimal``), counting lines.

    Unlike the SDK's reader it logs no traceback for a bad line: the error names the line.
    """

    default_input = sys.stdin

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        self.stream: str | None = None

    def deserialize_json(self, line: str) -> dict:
        """Parse one line; raise ``InvalidInputLine`` naming the line number."""
        self.line_number += 1
        self.stream = None
        try:
            message = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise InvalidInputLine(
                f"input line {self.line_number} is not valid JSON ({exc.msg}, column {exc.colno})"
            ) from None
        if not isinstance(message, dict):
            raise InvalidInputLine(
                f"input line {self.line_number} is not a Singer message (a JSON object)"
            )
        stream = message.get("stream")
        self.stream = stream if isinstance(stream, str) else None
        kind = message.get("type")
        if kind is None:
            raise InvalidInputLine(f"{self.where()}: the Singer message has no 'type' key")
        for key in REQUIRED_KEYS.get(str(kind).upper(), ()):
            if key not in message:
                raise InvalidInputLine(f"{self.where()}: the {kind} message has no '{key}' key")
        return message

    def where(self) -> str:
        """``input line 12 (stream 'tickets')``: where the reader is now."""
        text = f"input line {self.line_number}"
        return f"{text} (stream '{self.stream}')" if self.stream else text
