"""What can happen to a call, and the choices a stream makes, as enums.

Each member is also its text (``Outcome.DELIVERED == "delivered"``), so response records,
log lines and config values read the same as before.
"""

from __future__ import annotations

from enum import Enum


class _Text(str, Enum):
    """An enum whose members are their text, in f-strings and JSON too."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Outcome(_Text):
    """What happened to one call."""

    DELIVERED = "delivered"  # confirmed by Gorgias (or a sync mode decided no write was due)
    FAILED = "failed"  # reported: log line, response record, dead letter
    NOT_SENT = "not_sent"  # the run stopped first: not counted, no state passes it
    DRY_RUN = "dry_run"  # built, never sent


class SyncOutcome(_Text):
    """What a delivered call did (sync modes; ``merged`` for a merged customer)."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    MERGED = "merged"


class Mode(_Text):
    """``streams.<name>.mode``: create, or look up first and update (or upsert)."""

    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"


class OnError(_Text):
    """``on_error``: stop at the first failure, or report it and go on."""

    FAIL = "fail"
    CONTINUE = "continue"


class MessageIntent(_Text):
    """``streams.<name>.message_intent``: import history (nothing sent) or send."""

    IMPORT = "import"
    SEND = "send"
