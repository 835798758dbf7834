"""Custom-field values go out with the field's type.

Gorgias rejects a value whose JSON type does not match the field's ``data_type`` (a number
field needs a number, not ``"1250.00"``). Before the first value of a field is sent, its
definition is read once (``GET /api/custom-fields/{id}``, paced, cached for the run) and each
value is converted: a number field takes numbers and numeric strings, a boolean field
booleans and ``"true"``/``"false"``, a text field any scalar (as a string). A value that
cannot be converted fails its record (following ``on_error``) without a request.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from target_gorgias.client import GorgiasClient, Result
from target_gorgias.outcomes import Outcome
from target_gorgias.request_builder import Call, to_json

#: The templates whose values this module types.
CUSTOM_FIELD_TEMPLATES = frozenset({"set_ticket_custom_fields", "replace_ticket_custom_fields"})
_UNKNOWN = object()


def coerce(data_type: str | None, value: Any) -> Any:
    """``value`` as a field of ``data_type`` takes it; ``ValueError`` if it cannot be."""
    if value is None or data_type is None:
        return value
    if data_type == "number":
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                raise ValueError(f"{value!r} is not a number (the field is a number field)") \
                    from None
            if number.is_finite():
                return int(number) if number == number.to_integral_value() and \
                    "." not in value and "e" not in value.lower() else float(number)
        raise ValueError(f"{value!r} is not a number (the field is a number field)")
    if data_type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"{value!r} is not a boolean (the field is a boolean field)")
    if isinstance(value, (dict, list)):
        raise ValueError(f"a {type(value).__name__} is not a text value")
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


class CustomFieldTypes:
    """Reads each custom field's definition once and sends values with its type."""

    def __init__(self, client: GorgiasClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._types: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._replaced: set[str] = set()  # tickets whose values a replace-all call has set

    def data_type(self, stream: str, field_id: str) -> tuple[Any, Result | None]:
        """The field's ``data_type`` (None if the definition has none), or the failed GET."""
        with self._lock:
            lock = self._locks.setdefault(field_id, threading.Lock())
        with lock:
            known = self._types.get(field_id, _UNKNOWN)
            if known is not _UNKNOWN:
                return known, None
            res = self.client.send(Call(stream, "lookup", "GET",
                                        f"/api/custom-fields/{field_id}", {}, None))
            if not res.ok or not isinstance(res.body, dict):
                return None, res
            definition = res.body.get("definition")
            known = definition.get("data_type") if isinstance(definition, dict) else None
            self._types[field_id] = known
            return known, None

    def send(self, call: Call) -> Result:
        """Type the call's values, then send it. Never raises."""
        body = json.loads(call.body) if call.body else None
        if call.endpoint_id == "set_ticket_custom_fields" and isinstance(body, dict):
            items = [(unquote(call.path.rsplit("/", 1)[-1]), body)]
        elif isinstance(body, list):
            items = [(str(v.get("id")), v) for v in body if isinstance(v, dict)]
        else:
            return self.client.send(call)
        for field_id, item in items:
            if "value" not in item:
                continue
            data_type, failed = self.data_type(call.stream, field_id)
            if failed is not None:
                if failed.status_code == 404:
                    return self._refuse(call, field_id,
                                        f"custom field {field_id} does not exist in Gorgias")
                if failed.outcome != Outcome.NOT_SENT:
                    self.client.logger.warning(
                        "Stream '%s': could not read custom field %s (%s); sending the value "
                        "as it is", call.stream, field_id, failed.note or failed.status_code)
                continue
            try:
                item["value"] = coerce(data_type, item["value"])
            except ValueError as exc:
                return self._refuse(call, field_id, str(exc))
        if call.endpoint_id == "replace_ticket_custom_fields":
            with self._lock:
                again = call.path in self._replaced
                self._replaced.add(call.path)
            if again:
                self.client.logger.warning(
                    "Stream '%s': %s is replaced a second time in this run: the values of the "
                    "earlier call that this one does not repeat are DELETED by Gorgias (use "
                    "set_ticket_custom_fields to set fields one by one)", call.stream, call.path)
        typed = Call(call.stream, call.endpoint_id, call.method, call.path, call.headers,
                     to_json(body).encode("utf-8"), call.units)
        return self.client.send(typed)

    def _refuse(self, call: Call, field_id: str, problem: str) -> Result:
        note = f"custom field {field_id}: {problem}; not sent"
        return Result(call=call, outcome=Outcome.FAILED, url=self.client.base_url + call.path,
                      note=note, error={"msg": note, "data": {"value": [problem]}})
