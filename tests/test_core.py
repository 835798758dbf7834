"""The SDK's standard target tests, run against the fake Gorgias server.

Every standard test stream is routed by the ``*`` glob to ``PUT /api/tickets/{id}/tags`` of
one ticket with an empty allowlist (the test records carry fields Gorgias would reject, and
``{}`` is a body Gorgias takes there: it clears the ticket's tags), so each record really
becomes a request the fake server answers 202.
"""

from __future__ import annotations

import requests
from singer_sdk.testing import get_target_test_class

from target_gorgias.fake_server import FakeGorgias
from target_gorgias.target import TargetGorgias
from tests.support import API_KEY, EMAIL

SERVER = FakeGorgias(port=0, rate_limit=0)  # unlimited: rate limiting has its own tests
SERVER.start()
TICKET = requests.post(SERVER.base_url + "/api/tickets", auth=(EMAIL, API_KEY), timeout=10, json={
    "messages": [{"channel": "email", "from_agent": False,
                  "source": {"type": "email", "from": {"address": "a@example.com"}}}]}).json()
TAGS_PATH = f"/api/tickets/{TICKET['id']}/tags"

CONFIG = {
    "api_url": SERVER.base_url,
    "email": EMAIL,
    "api_key": API_KEY,
    "rate_limit": 1000,
    "rate_limit_window": 1,
    "streams": {"*": {"method": "PUT", "path": TAGS_PATH, "include_attributes": []}},
}

StandardTargetTests = get_target_test_class(TargetGorgias, config=CONFIG)


class TestTargetGorgias(StandardTargetTests):  # type: ignore[misc,valid-type]
    """Standard Singer target tests (the server above lives for the whole module)."""


def test_standard_suite_reached_the_server():
    """The suite above really sent records: every call after the set-up was that PUT."""
    calls = SERVER.requests[1:]  # the first is the set-up's ticket
    assert len(calls) > 10, "the standard tests sent (almost) nothing"
    assert {(r["method"], r["path"]) for r in calls} == {("PUT", TAGS_PATH)}
    statuses = {r["status"] for r in calls}
    assert statuses == {202}, statuses
