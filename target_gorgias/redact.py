"""Keep credentials out of every log line, message and traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterable

REDACTED = "<redacted>"


class SecretFilter(logging.Filter):
    """Replaces each secret in a log record (message, args and traceback) by ``<redacted>``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

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
                    f.secrets = sorted(set(f.secrets) | set(flt.secrets), key=len, reverse=True)
    return flt
