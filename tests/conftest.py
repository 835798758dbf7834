"""Shared fixtures: a fake Gorgias server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gorgias_fake import FakeGorgias


@pytest.fixture
def fake_gorgias() -> Iterator[FakeGorgias]:
    """A fresh fake Gorgias per test, with a generous rate limit (tests that need a tight
    one call ``configure``)."""
    with FakeGorgias(port=0, rate_limit=1000, rate_window=1) as srv:
        yield srv


@pytest.fixture(scope="session")
def fake_gorgias_session() -> Iterator[FakeGorgias]:
    """One fake Gorgias for the whole session; call ``reset()`` if a test needs it empty."""
    with FakeGorgias(port=0, rate_limit=1000, rate_window=1) as srv:
        yield srv
