"""Shared test settings: deterministic, small, CPU."""

import os

import pytest
import torch

torch.manual_seed(0)
# Two cores on CI: keep intra-op threads modest so parallel test processes do not thrash.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(1234)
