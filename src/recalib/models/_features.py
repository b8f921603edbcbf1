"""``create_model(..., features_only=True)``: a zoo model as a backbone returning its stages' feature maps (timm's
``features_only``).

:class:`FeatureListNet` wraps a zoo model without its classifier; ``forward(x)`` runs the model's own
``forward_features`` and returns, as a list, the outputs of the ``feature_info`` stages ``out_indices`` (all by
default), e.g. for a CIFAR ResNet on 32x32 inputs ``[N x 16 x 32 x 32, N x 32 x 16 x 16, N x 64 x 8 x 8]``.
``feature_info`` lists the selected stages (``num_chs``, ``reduction``, ``module``, ``index``) with timm's
``channels()`` and ``reduction()``. The stage outputs are read with forward hooks registered for one call only.
Unlike timm's, the wrapped model's state-dict keys carry the prefix ``model.``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._common import ZooModel

__all__ = ["FeatureInfo", "FeatureListNet"]


class FeatureInfo(list[dict[str, Any]]):
    """The selected stages' ``feature_info`` dicts, with timm's accessors."""

    def channels(self) -> list[int]:
        return [int(f["num_chs"]) for f in self]

    def reduction(self) -> list[int]:
        return [int(f["reduction"]) for f in self]

    def module_name(self) -> list[str]:
        return [str(f["module"]) for f in self]


def _check_indices(out_indices: Sequence[int] | None, n: int) -> tuple[int, ...]:
    if out_indices is None:
        return tuple(range(n))
    if isinstance(out_indices, int) or not all(isinstance(i, int) and not isinstance(i, bool) for i in out_indices):
        raise ValueError(f"out_indices must be a sequence of stage indices in [-{n}, {n}), got {out_indices!r}")
    indices = tuple(i % n if -n <= i < n else -1 for i in out_indices)
    if not indices or -1 in indices or len(set(indices)) != len(indices):
        raise ValueError(f"out_indices must be distinct stage indices in [-{n}, {n}) (the model has {n} stages in "
                         f"feature_info), got {tuple(out_indices)!r}")
    return indices


class FeatureListNet(nn.Module):
    """A zoo model that returns the feature maps of its ``feature_info`` stages ``out_indices`` (a list)."""

    def __init__(self, model: ZooModel, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        indices = _check_indices(out_indices, len(model.feature_info))
        model.reset_classifier(0)  # a backbone: no classifier
        self.model = model
        self.out_indices = indices
        self.feature_info = FeatureInfo({**model.feature_info[i], "index": i} for i in indices)
        self.model_name = model.model_name
        self.pretrained_cfg = model.pretrained_cfg
        self.default_cfg = model.pretrained_cfg

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        names = self.feature_info.module_name()
        maps: dict[str, torch.Tensor] = {}
        handles = [self.model.get_submodule(name).register_forward_hook(
            lambda _module, _inputs, output, name=name: maps.__setitem__(name, output)) for name in names]
        try:
            self.model.forward_features(x)
        finally:
            for handle in handles:
                handle.remove()
        return [maps[name] for name in names]  # N, C_i, H / r_i, W / r_i
