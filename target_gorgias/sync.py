"""Sync modes: ``update`` and ``upsert`` beside a create template.

Each record is looked up by its ``match_on`` field with the list endpoint's filter; then it
is created (upsert, nothing found), updated (``PUT {update_path}`` without the fields the
update cannot take), left alone (``unchanged``: nothing differs) or skipped (update mode,
nothing found). Lookups are paced like every call and cached for the run, including
resources created earlier in the same run, so a key repeated in one run is created once.

Every match is checked on our side (emails case-insensitively). A trashed ticket is not a
match: ``upsert`` creates a new ticket beside it (and says so), ``update`` skips the record.
A lookup that fails is never "nothing found": the record fails (``on_error``), reported as
``GET <lookup url>``. A create whose outcome is uncertain is looked up again before it is
re-sent (the client does that: the create carries its lookup).
"""

from __future__ import annotations

import dataclasses
import threading
from decimal import Decimal
from typing import Any

from target_gorgias.client import GorgiasClient, Result
from target_gorgias.outcomes import Mode, Outcome, SyncOutcome
from target_gorgias.request_builder import Call, from_json, path_segment, to_json

_UNKNOWN = object()


def matches(sent: Any, found: Any) -> bool:
    """True when ``found`` already holds everything ``sent`` would write.

    Objects compare on the keys sent only (Gorgias returns a ticket's ``customer`` in full
    where the record said ``{"email": ...}``); lists compare item by item.
    """
    if isinstance(sent, dict):
        return isinstance(found, dict) and all(
            k in found and matches(v, found[k]) for k, v in sent.items())
    if isinstance(sent, list):
        return (isinstance(found, list) and len(sent) == len(found)
                and all(matches(a, b) for a, b in zip(sent, found, strict=True)))
    return bool(sent == found and type(sent) is type(found)) or (
        _is_number(sent) and _is_number(found) and _exact(sent) == _exact(found))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _exact(value: Any) -> Any:
    """A number as an exact ``Decimal`` (a float by its shortest repr: 0.1 -> 0.1)."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def unchanged(update: dict[str, Any], found: dict[str, Any]) -> bool:
    """True when every field the update would send already has that value."""
    return matches(update, found)


class Syncer:
    """Runs ``mode: update | upsert`` calls; thread-safe; one per process."""

    def __init__(self, client: GorgiasClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._found: dict[tuple[str, str, str], Any] = {}
        self._key_locks: dict[tuple[str, str, str], threading.Lock] = {}

    def _key_lock(self, key: tuple[str, str, str]) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def send(self, call: Call) -> Result:
        """Look up, then create / update / leave unchanged / skip. Never raises."""
        assert call.match is not None and call.update_path is not None
        field, value = call.match
        key = (call.path, field, value)
        with self._key_lock(key):
            found = self._found.get(key, _UNKNOWN)
            trashed = None
            if found is _UNKNOWN:
                assert call.lookup is not None
                res, found, trashed = self.client.find(call.stream, call.lookup, call.headers)
                if not res.ok:
                    if res.outcome == Outcome.NOT_SENT:  # stopping: neither delivered nor failed
                        return Result(call=call, outcome=Outcome.NOT_SENT, url=res.url)
                    res.call = call
                    res.note = f"lookup by {field} failed: {res.note or res.status_code}"
                    return res
            result = self._write(call, found, trashed)
            if result.ok and isinstance(result.body, dict) and result.body.get("id") is not None:
                self._found[key] = result.body
            return result

    def _write(self, call: Call, found: dict[str, Any] | None,
               trashed: dict[str, Any] | None = None) -> Result:
        field, value = call.match or ("", "")
        if found is None:
            in_trash = (f"; only a trashed ticket (id {trashed.get('id')}) has it, and "
                        "trashed tickets are not a match" if trashed else "")
            if call.mode == Mode.UPDATE:
                return Result(call=call, outcome=Outcome.DELIVERED, sync_outcome=SyncOutcome.SKIPPED,
                              url=self.client.base_url + call.path, method=None,
                              note=f"nothing matches {field}={value}{in_trash}: skipped "
                                   "(mode update)")
            if trashed:
                self.client.logger.warning(
                    "Stream '%s', record %s: %s=%s%s: creating a new one (the trashed one is "
                    "left as it is)", call.stream, ", ".join(map(str, call.positions)),
                    field, value, in_trash)
            # Just looked up: no look before the create, but it carries its lookup, so an
            # uncertain outcome is looked up again before any re-send.
            result = self.client.send(dataclasses.replace(call, lookup_first=False))
            result.sync_outcome = SyncOutcome.CREATED if result.ok else None
            return result
        body = from_json(call.body) if call.body else {}
        update = {k: v for k, v in body.items() if k not in call.read_only}
        if unchanged(update, found):
            return Result(call=call, outcome=Outcome.DELIVERED,
                          sync_outcome=SyncOutcome.UNCHANGED, body=found,
                          url=self.client.base_url + call.path, method=None)
        assert call.update_path is not None
        path = call.update_path.replace("{id}", path_segment(found.get("id")))
        put = Call(call.stream, call.endpoint_id, "PUT", path, call.headers,
                   to_json(update).encode("utf-8"), call.units)
        result = self.client.send(put)
        if result.ok:
            result.sync_outcome = SyncOutcome.UPDATED
            if not isinstance(result.body, dict) or result.body.get("id") is None:
                result.body = {**found, **update}
        return result
