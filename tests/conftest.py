"""Shared fixtures: a fresh fake Gorgias server on 127.0.0.1 for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from target_gorgias.fake_server import FakeGorgias


@pytest.fixture
def fake_gorgias() -> Iterator[FakeGorgias]:
    """A fake Gorgias with a generous rate limit (tests that need a tight one configure it)."""
    with FakeGorgias(port=0, rate_limit=1000, rate_window=1) as srv:
        yield srv
