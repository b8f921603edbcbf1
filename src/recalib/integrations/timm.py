"""recalib operators as timm attention layers.

timm's ResNet family (``timm.models.resnet``: ResNet, ResNeXt, SE-ResNet variants, ...) builds one attention
module per block with ``create_attn(attn_layer, channels, device=..., dtype=...)`` and applies it after the last
BN of the residual branch, before the addition, which is exactly where docs/spec.md, section 5 puts an operator::

    import timm
    from recalib.integrations.timm import attn_layer

    model = timm.create_model("resnet50", block_args=dict(attn_layer=attn_layer("mssar")))
    model = timm.create_model("resnet18", block_args=dict(attn_layer=attn_layer("mssar(scales=(1, 2))")))

The factory uses the same resolution and small-channel defaults as recalib's own zoo
(:func:`recalib.models.resolve_recalib`: e.g. SGE groups = the largest divisor of the channels <= 64).
This module does not import timm; timm is only needed to build timm models (``pip install 'recalib[timm]'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..models._common import RecalibLike, RecalibSlot, resolve_recalib

__all__ = ["attn_layer", "RecalibAttnFactory"]


class RecalibAttnFactory:
    """Callable ``factory(channels, *, device=None, dtype=None) -> nn.Module`` wrapping a recalib operator.

    timm calls attention layers as ``attn_layer(channels, **kwargs)``; ``device``/``dtype`` place the
    operator, other keyword arguments are passed to the operator's constructor.
    """

    def __init__(self, slot: RecalibSlot) -> None:
        self.slot = slot

    def __call__(
        self,
        channels: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> nn.Module:
        module = self.slot.make(channels, **kwargs)
        if device is not None or dtype is not None:
            module = module.to(device=device, dtype=dtype)
        return module

    def __repr__(self) -> str:
        return f"attn_layer({self.slot.describe()})"


def attn_layer(name: RecalibLike, **kwargs: Any) -> RecalibAttnFactory:
    """A timm ``attn_layer`` building recalib operator ``name`` (name, textual form, class or callable).

    ``kwargs`` are the operator's arguments (``attn_layer("mssar", scales=(1, 2))``). Unknown operator names or
    arguments raise ``ValueError`` listing the valid ones, here rather than inside timm's model constructor.
    ``attn_layer("none")`` gives a factory of identities.
    """
    args: Mapping[str, Any] | None = kwargs or None
    return RecalibAttnFactory(resolve_recalib(name, args))
