"""The SDK's standard target tests, run against the fake Gorgias server.

Every standard test stream is routed by the ``*`` glob to ``create_customer`` with an empty
allowlist (the test records carry fields Gorgias would reject), so each record really
becomes ``POST /api/customers`` on the fake server.
"""

from __future__ import annotations

from singer_sdk.testing import get_target_test_class

from target_gorgias.fake_server import FakeGorgias
from target_gorgias.target import TargetGorgias
from tests.support import API_KEY, EMAIL

SERVER = FakeGorgias(port=0, rate_limit=0)  # unlimited: rate limiting has its own tests
SERVER.start()

CONFIG = {
    "api_url": SERVER.base_url,
    "email": EMAIL,
    "api_key": API_KEY,
    "rate_limit": 1000,
    "rate_limit_window": 1,
    "streams": {"*": {"endpoint": "create_customer", "include_attributes": []}},
}

StandardTargetTests = get_target_test_class(TargetGorgias, config=CONFIG)


class TestTargetGorgias(StandardTargetTests):  # type: ignore[misc,valid-type]
    """Standard Singer target tests (the server above lives for the whole module)."""


def test_standard_suite_reached_the_server():
    """The suite above really sent records: customers exist and every call was a create."""
    assert SERVER.store["customers"], "no customer was created by the standard tests"
    methods = {(r["method"], r["path"].rstrip("/")) for r in SERVER.requests}
    assert methods == {("POST", "/api/customers")}
    statuses = {r["status"] for r in SERVER.requests}
    assert statuses == {201}, statuses
