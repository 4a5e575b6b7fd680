"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import huggingface_hub.constants
import pytest
import torch

from fake_hub import FakeHub


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    """A running fake Hub on 127.0.0.1 (see tests/fake_hub.py); `fake_hub.endpoint` is its URL."""
    with FakeHub() as hub:
        yield hub


@pytest.fixture
def hub_endpoint(fake_hub: FakeHub, monkeypatch) -> FakeHub:
    """The fake Hub as this process's endpoint (what HF_ENDPOINT sets when the client is imported), with a token."""
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", fake_hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", "dummy")
    return fake_hub


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: tiny models run fastest on one, and do not slow (or spin-wait behind) other processes
    sharing the CPU. Modules use it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
