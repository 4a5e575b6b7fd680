"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fake_hub import FakeHub


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    """A running fake Hub on 127.0.0.1 (see tests/fake_hub.py); `fake_hub.endpoint` is its URL."""
    with FakeHub() as hub:
        yield hub
