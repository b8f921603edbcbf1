"""Shared test settings: deterministic, small, CPU."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

torch.manual_seed(0)
# Two cores on CI: keep intra-op threads modest so parallel test processes do not thrash.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# Model-sized tests run on one intra-op thread: on a shared 2-core machine two OpenMP threads per process spin
# against the other processes and make a forward/backward 10-30x slower; one thread is never much slower.
_ONE_THREAD_DIRS = {"models", "integrations"}
_HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(1234)


@pytest.fixture(autouse=True)
def _one_thread_for_models(request: pytest.FixtureRequest) -> Iterator[None]:
    parts = Path(request.node.path).resolve().relative_to(_HERE).parts
    if not parts or parts[0] not in _ONE_THREAD_DIRS:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
