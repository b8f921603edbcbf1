"""Model tests run on one intra-op thread: on a shared 2-core machine two OpenMP threads per process spin
against the other processes and make a forward/backward 10-30x slower; one thread is never much slower."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
