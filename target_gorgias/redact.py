"""Keep credentials out of every log line, message and traceback."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "<redacted>"


def secret_forms(value: Any, email: Any = None) -> set[str]:
    """Every printable form of one credential as it came in the config.

    The value raw and trimmed, JSON-escaped, and (with ``email``) base64 of
    ``email:value`` as HTTP Basic sends it, standard and URL-safe. A value of the wrong
    type (a number, an object) gives its ``str``/``repr``/JSON text and every leaf.
    """
    forms: set[str] = set()
    if value is None:
        return forms
    if isinstance(value, str):
        texts = {value, value.strip()}
    else:
        texts = {str(value), repr(value)}
        with contextlib.suppress(TypeError, ValueError):
            texts.add(json.dumps(value))
        leaves = value.values() if isinstance(value, Mapping) else (
            value if isinstance(value, (list, tuple)) else ())
        for leaf in leaves:
            forms |= secret_forms(leaf)
    for text in {t.strip() for t in texts}:  # the trimmed text is inside any padded one
        forms |= {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    if isinstance(value, str) and isinstance(email, str):
        for user in {email, email.strip()}:
            for text in texts:
                pair = f"{user}:{text}".encode()
                forms |= {base64.b64encode(pair).decode(), base64.urlsafe_b64encode(pair).decode()}
    return {f for f in forms if f.strip()}


def config_secrets(config: Mapping[str, Any]) -> set[str]:
    """Every form of the credentials in a raw config (``api_key``, ``access_token``)."""
    out: set[str] = set()
    for key in ("api_key", "access_token"):
        out |= secret_forms(config.get(key), config.get("email") if key == "api_key" else None)
    return out


class SecretFilter(logging.Filter):
    """Replaces each secret in a log record (message, args and traceback) by ``<redacted>``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = _ordered(secrets)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        if not self.secrets:
            return True
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def install(secrets: Iterable[str]) -> SecretFilter:
    """Attach a ``SecretFilter`` to every handler of the root logger (where the SDK logs)."""
    flt = SecretFilter(secrets)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(flt)
        else:
            for f in handler.filters:
                if isinstance(f, SecretFilter):
                    f.secrets = _ordered([*f.secrets, *flt.secrets])
    return flt


def _ordered(secrets: Iterable[str]) -> list[str]:
    """Longest first (a form that contains another is replaced whole); short ones dropped."""
    return sorted({s for s in secrets if s and len(s.strip()) >= 4}, key=len, reverse=True)
