"""recalib operators as timm attention layers.

One factory, :func:`attn_layer`, fills both of timm's attention slots:

* ``attn_layer`` of the ResNet family (``timm.models.resnet``: ResNet, ResNeXt, SE-ResNet variants, ...), which
  builds one module per block with ``create_attn(attn_layer, channels, device=..., dtype=...)`` and applies it
  after the last BN of the residual branch, before the addition: exactly where docs/spec.md, section 5 puts
  an operator::

    import timm
    from recalib.integrations.timm import attn_layer

    model = timm.create_model("resnet50", block_args=dict(attn_layer=attn_layer("mssar")))
    model = timm.create_model("resnet18", block_args=dict(attn_layer=attn_layer("mssar(scales=(1, 2))")))

* ``se_layer`` of the EfficientNet builder (EfficientNet, MobileNetV2/V3, MixNet, MnasNet, FBNet, ...), which
  calls ``se_layer(channels, act_layer=..., rd_ratio=..., device=..., dtype=...)`` inside each inverted
  residual block, after the depthwise convolution (timm's placement of SE there, not docs/spec.md's)::

    model = timm.create_model("efficientnet_b0", se_layer=attn_layer("mssar"))

Budget: the adapter applies the ``"se"`` budget rule (:meth:`recalib.modules.RecalibSpec.complete`), so an
operator keeps the parameters of the SE layer it replaces: ``reduction = 1 / rd_ratio`` for every operator with a
``reduction`` argument, with the ``rd_ratio`` timm passes (EfficientNet's ``se_ratio`` relative to the expanded
channels) or SE's 1/16 when timm passes none (the ResNet family). ResNet-50 + MS-SAR is then within 2 % of
``seresnet50``, EfficientNet-B0 + MS-SAR within 5 % of the plain network. An argument given to
:func:`attn_layer` always wins. timm's other SE arguments (:data:`TIMM_SE_KWARGS`: ``act_layer``,
``gate_layer``, ...) are accepted and ignored: a recalib operator keeps its own definition (docs/spec.md).
docs/integrations.md lists the families tested. The channel-dependent defaults are the operators' own, as in
recalib's zoo (e.g. SGE's groups come from :func:`recalib.modules.sge_groups`). This module does not import timm;
timm is only needed to build timm models (``pip install 'recalib[timm]'``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models._common import RecalibLike, RecalibSlot, resolve_recalib
from ..modules import RecalibSpec

__all__ = ["TIMM_SE_KWARGS", "attn_layer", "RecalibAttnFactory"]

#: Keyword arguments timm passes to its SE-style layers; a recalib operator accepts and ignores them.
TIMM_SE_KWARGS = frozenset({
    "act_layer", "gate_layer", "force_act_layer", "rd_ratio", "rd_channels", "rd_divisor", "rd_round_fn",
    "norm_layer", "bias", "se_ratio", "divisor", "round_chs_fn",
})


class RecalibAttnFactory:
    """Callable ``factory(channels, *, device=None, dtype=None, rd_ratio=None) -> nn.Module`` for timm.

    timm calls attention layers as ``attn_layer(channels, **kwargs)``; ``device``/``dtype`` place the
    operator, ``rd_ratio`` sets the ``"se"`` budget of a registered operator (:meth:`spec_for`), timm's other SE
    arguments (:data:`TIMM_SE_KWARGS`) are ignored, and any other keyword argument goes to the operator's
    constructor (unknown ones are a ``ValueError`` listing the accepted ones).
    """

    def __init__(self, slot: RecalibSlot) -> None:
        self.slot = slot  # a registered operator's spec as given: completed per call, with timm's rd_ratio

    def spec_for(self, rd_ratio: float | None = None) -> RecalibSpec | None:
        """The complete spec built when timm passes ``rd_ratio`` (``None``: SE's 1/16); ``None`` if unregistered."""
        return None if self.slot.spec is None else self.slot.spec.complete("se", rd_ratio=rd_ratio)

    def __call__(
        self,
        channels: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        rd_ratio: float | None = None,
        **kwargs: Any,
    ) -> nn.Module:
        kwargs = {k: v for k, v in kwargs.items() if k not in TIMM_SE_KWARGS}
        spec = self.spec_for(rd_ratio)
        slot = self.slot if spec is None else RecalibSlot(self.slot.factory, spec)
        module = slot.make(channels, **kwargs)
        if device is not None or dtype is not None:
            module = module.to(device=device, dtype=dtype)
        return module

    def __repr__(self) -> str:
        return f"attn_layer({self.slot.describe()})"


def attn_layer(name: RecalibLike, **kwargs: Any) -> RecalibAttnFactory:
    """A timm ``attn_layer`` building recalib operator ``name`` (spec, name, textual form, class or callable).

    ``kwargs`` are the operator's arguments (``attn_layer("mssar", scales=(1, 2))``). Unknown operator names or
    arguments raise ``ValueError`` listing the valid ones, here rather than inside timm's model constructor.
    ``attn_layer("none")`` gives a factory of identities.
    """
    return RecalibAttnFactory(resolve_recalib(name, kwargs or None, budget=None))
