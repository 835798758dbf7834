"""A fake Gorgias REST API on loopback, for the tests, the README example and the benchmarks.

It follows ``/work/shared/reference/gorgias_api.md`` where the target depends on Gorgias:
HTTP Basic (email + API key) or Bearer auth with Gorgias' 401 body; the write endpoints with
their success codes (201 create, 202 update, 204 delete, 200 + empty body for a message
DELETE, 201/202 with no content for ticket tags); marshmallow-style 400 bodies
(``{"error": {"msg": "Failed to create ticket", "data": {field: [...]}}}``) for missing,
unknown ("No such field.") and mistyped fields; 404 / 405 / 409 / 413; cursor-shaped lists
with ``email`` / ``external_id`` lookups; one account-wide leaky bucket with
``X-Gorgias-Account-Api-Call-Limit`` on every ``/api`` answer and 429 + ``Retry-After``;
and fault rules (5xx before/after the write, forced 429, dropped connections, slow and
malformed answers, answers that echo the request's credentials). Every ``/api`` request is
logged so tests can assert what arrived.

    python -m gorgias_fake --port 8080 [--rate-limit 40 --rate-window 20]
                                         [--latency-ms 50,200]

Control API (no auth, not rate limited, not logged): ``GET /_fake/requests[?since=N]``,
``GET /_fake/store``, ``GET /_fake/stats``, ``GET /_fake/faults``, ``POST /_fake/reset``,
``POST /_fake/faults`` (one rule or a list), ``POST /_fake/config`` (``rate_limit``,
``rate_window``, ``latency_ms``: [min, max]), ``POST /_fake/consume`` (``{"n": 5}``).

Modules: ``model`` (field tables, enums, resource kinds, validation: data, not code),
``api`` (routes, store, handlers), ``limits`` (leaky bucket, fault rules), ``server``
(``FakeGorgias``, HTTP handler, control API), ``__main__`` (command line).

Choices where Gorgias is undocumented (see the reference's "UNCONFIRMED" list):

- Order of checks: auth (401, not counted) -> bucket (429, not counted) -> fault rule ->
  413 -> route (404 / 405) -> Content-Type and JSON (400) -> the handler (404, 400, 409).
  So fault rules only match authenticated requests the bucket admitted. A request that
  fails validation changes nothing (no customer or tag is created on the way).
- A POST/PUT/DELETE without a body is handled as ``{}``; a body with another Content-Type
  than application/json is a 400; NaN/Infinity are not JSON.
- Nested references (a ticket's ``customer``, ``tags``, a message's ``sender``) are stored
  and returned as sent; a ``customer``/``sender`` given by email reuses or creates the
  customer, one given by ``id`` must exist (else 400). Real Gorgias returns expanded objects.
- ``rate_limit`` 0 (or None) means unlimited: nothing is refused and the header reads
  ``<requests in the last rate_window seconds>/1000000``.
- ``consume(n)`` cannot push the bucket past its capacity (the other client would have been
  refused too). A forced 429 (fault) is not counted, like a real one.
- Lists are ordered ``created_datetime:desc`` (then id) by default; cursors are real.
- A duplicate tag name (case-sensitive) is 409, like a duplicate customer or user email
  (case-insensitive). Unknown tag ids in ticket-tag bodies are 404; unknown custom-field ids
  in ``PUT /api/tickets/{id}/custom-fields`` are accepted.
- A dropped connection is logged with ``status`` 0 and ``dropped`` "before" / "after".
"""

from gorgias_fake.limits import LeakyBucket, check_fault
from gorgias_fake.model import KINDS, LIMIT_HEADER, RESOURCES, UNLIMITED, ApiError
from gorgias_fake.server import FakeGorgias, is_loopback

__all__ = ["KINDS", "LIMIT_HEADER", "RESOURCES", "UNLIMITED", "ApiError", "FakeGorgias",
           "LeakyBucket", "check_fault", "is_loopback"]
