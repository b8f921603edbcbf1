"""What every zoo model shares: the recalibration slot, the backbone initialisation and the model base class.

The slot (:class:`RecalibSlot`) turns the user's ``recalib`` + ``recalib_args`` into one factory
``make(channels, *, context_channels=None, feat_size=None) -> nn.Module``, called once per block, like timm's
``create_attn``. ``recalib`` may be

* no operator: ``None``, ``"none"``, ``"identity"`` or ``""`` (:func:`recalib.modules.is_no_operator`; an
  ``nn.Identity`` fills the slot, so state dicts match the plain backbone);
* a :class:`recalib.modules.RecalibSpec`, a registered name or its textual form,
  ``"mssar(scales=(1, 2), strategy='sliding')"``, or a registered class: these become the complete spec
  (:meth:`RecalibSpec.complete`) under the model family's budget rule, which the model records;
* any other ``nn.Module`` subclass or callable taking ``channels`` (e.g. a ``functools.partial``): called as given.

``recalib_args`` are keyword arguments added to (and overriding) those of the spec.

Defaults that depend on the placement (docs/spec.md, section 5; resolved before the model records its spec):

* the channel count: each operator's own rule, e.g. SGE's groups (:func:`recalib.modules.sge_groups`: at least 4
  channels per group, 64 groups where the channels allow), the same through every door;
* the model family: the budget rule (:data:`recalib.modules.BUDGETS`): ``"paper"`` on the CIFAR zoo (every
  operator's own default; MS-SAR's D' = D/L, ``reduction=1``), ``"se"`` on the ImageNet ResNets (MS-SAR
  ``reduction=16``, the paper's Table 5 budget; SE and GE keep their 16);
* the stage's feature size, for an operator with a ``feat_size`` argument left at ``None`` (``ge`` with
  ``variant="theta"``/``"theta+"`` and a global extent), when the model was built with ``img_size``.

Initialisation (He et al. 2015, as torchvision and the original Torch ResNets): every backbone convolution
``kaiming_normal_(mode="fan_out", nonlinearity="relu")``, BatchNorm weight 1 and bias 0, linear layers keep
PyTorch's default. The operators keep their own initialisation (SGE's gamma = 0, beta = 1 matter). Nothing is
zero-initialised unless ``zero_init_residual=True`` is asked for (ResNets).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..modules import MSSAR, RecalibSpec, get_recalib_class, list_recalibs

__all__ = [
    "RecalibSlot",
    "RecalibLike",
    "resolve_recalib",
    "ZooModel",
    "init_backbone",
    "paired_init",
    "feature_size",
    "check_config_kwargs",
]

RecalibLike = str | RecalibSpec | type | Callable[..., nn.Module] | None


def _registered_name(cls: type) -> str | None:
    for name in list_recalibs():
        if get_recalib_class(name) is cls:
            return name
    return None


def _accepted_kwargs(factory: Any) -> set[str] | None:
    """Keyword names the factory accepts; ``None`` when it takes ``**kwargs`` or cannot be inspected."""
    try:
        sig = inspect.signature(factory)  # a class: its constructor's parameters without self
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return {p for p in sig.parameters if p not in ("self", "channels")}


def _underlying_class(factory: Any) -> type | None:
    """The class a factory builds, looking through ``functools.partial``; ``None`` if unknown."""
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory if isinstance(factory, type) else None


@dataclass(frozen=True)
class RecalibSlot:
    """A resolved ``recalib`` argument: ``make(channels)`` builds the operator for one block.

    Attributes:
        factory: the class or callable, or ``None`` for no operator.
        spec: the complete :class:`RecalibSpec` of a registered operator (what the model records), or ``None``
            for no operator or an unregistered factory.
    """

    factory: Callable[..., nn.Module] | None
    spec: RecalibSpec | None = None

    @property
    def enabled(self) -> bool:
        """Whether the slot holds an operator (``False`` for the plain backbone)."""
        return self.factory is not None

    @property
    def is_mssar(self) -> bool:
        """Whether the operator is MS-SAR (or a subclass), which some backbones place differently."""
        cls = _underlying_class(self.factory)
        return cls is not None and issubclass(cls, MSSAR)

    def make(
        self,
        channels: int,
        *,
        context_channels: int | None = None,
        feat_size: tuple[int, int] | None = None,
        **extra: Any,
    ) -> nn.Module:
        """The operator for a ``channels``-channel feature map (``nn.Identity`` when the slot is empty).

        ``context_channels`` asks for multi-stage recalibration (MS-SAR only); ``feat_size`` is the stage's
        feature size when known and is passed to operators that take it and were not given one; ``extra`` goes
        to the factory.
        """
        if self.factory is None:
            return nn.Identity()
        kwargs = self.spec.kwargs if self.spec is not None else {}
        accepted = _accepted_kwargs(self.factory)
        if context_channels is not None:
            if not self.is_mssar:
                raise ValueError(
                    f"multi-stage recalibration needs the MS-SAR operator (it takes context_channels), got {self.describe()}"
                )
            kwargs["context_channels"] = context_channels
        if feat_size is not None and kwargs.get("feat_size") is None and accepted is not None and "feat_size" in accepted:
            kwargs["feat_size"] = feat_size
        kwargs.update(extra)
        try:
            return self.factory(channels, **kwargs)
        except ValueError as exc:
            hint = ""
            if accepted is not None and "feat_size" in accepted and kwargs.get("feat_size") is None:
                hint = "; create_model(..., img_size=H) gives every stage its feature size"
            raise ValueError(f"building {self.describe()} for {channels} channels: {exc}{hint}") from None

    def describe(self) -> str:
        """The operator as text: its spec, ``no operator``, or the factory's repr."""
        if self.spec is not None:
            return repr(str(self.spec))
        if self.factory is None:
            return "no operator"
        return repr(self.factory)


def resolve_recalib(recalib: RecalibLike | RecalibSlot, recalib_args: Mapping[str, Any] | None = None,
                    budget: str | None = "paper") -> RecalibSlot:
    """Turn a ``recalib`` argument (see the module docstring) into a :class:`RecalibSlot`.

    A registered operator (name, text, :class:`RecalibSpec` or registered class) becomes its complete spec under
    the ``budget`` rule (:meth:`RecalibSpec.complete`; ``None`` keeps the spec as given, for a door that completes
    it later, like the timm adapter). Unknown operator names raise ``ValueError`` listing the
    valid ones; unknown arguments of a registered or inspectable operator raise ``ValueError`` listing the
    accepted ones.
    """
    if isinstance(recalib, RecalibSlot):
        if recalib_args:
            return resolve_recalib(recalib.spec or recalib.factory, recalib_args, budget)
        return recalib
    if recalib_args is not None and not isinstance(recalib_args, Mapping):
        raise TypeError(f"recalib_args must be a dict of keyword arguments, got {type(recalib_args).__name__}")
    if isinstance(recalib, type):
        if not issubclass(recalib, nn.Module):
            raise TypeError(f"recalib class must be an nn.Module subclass taking channels, got {recalib!r}")
        name = _registered_name(recalib)
        if name is not None:
            recalib = name
    if recalib is None or isinstance(recalib, (str, RecalibSpec)):
        spec = RecalibSpec.parse(recalib, recalib_args)  # ValueError listing the valid names or arguments
        if spec.is_none:
            return RecalibSlot(None)
        return RecalibSlot(spec.operator_class, spec if budget is None else spec.complete(budget))
    if not callable(recalib):
        raise TypeError(
            f"recalib must be None, an operator name or spec ({', '.join(list_recalibs())}), "
            f"an nn.Module class or a callable taking channels; got {type(recalib).__name__}"
        )
    args = dict(recalib_args or {})
    accepted = _accepted_kwargs(recalib)
    unknown = sorted(set(args) - accepted) if accepted is not None else []
    if unknown:
        owner = getattr(recalib, "__name__", repr(recalib))
        raise ValueError(f"{owner}: unknown argument(s) {', '.join(unknown)}; valid arguments: {', '.join(sorted(accepted or ()))}")
    return RecalibSlot(functools.partial(recalib, **args) if args else recalib)


def feature_size(img_size: int | tuple[int, int] | None, reduction: int) -> tuple[int, int] | None:
    """Feature size after ``reduction`` of stride-2 stages (each maps n -> ceil(n / 2), with the usual padding)."""
    if img_size is None:
        return None
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    return (-(-h // reduction), -(-w // reduction))


def init_backbone(model: nn.Module) -> None:
    """He-normal (fan-out) convolutions, unit BatchNorm; leaves the operators (every ``recalib`` slot) alone."""
    for name, m in model.named_modules():
        if "recalib" in name.split("."):
            continue  # an operator or one of its parts: it keeps its own initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def paired_init(model: nn.Module, seed: int) -> None:
    """Redraw the backbone's random weights from a generator seeded with ``seed`` alone ("paired" initialisation).

    Every convolution outside the operator slots gets the He-normal draw of :func:`init_backbone` and every
    linear layer PyTorch's default draw, in the order of ``named_modules``, from one ``torch.Generator``. As the
    backbone's module names and shapes do not depend on the operator, models of one architecture and seed start
    from identical backbone tensors whichever operator they carry, so a paired difference between two operators
    of one seed is the operators' and not the initialisation's. The operators keep the weights drawn when they
    were built (from the global random stream); BatchNorm and zero-initialised layers are not random and are
    left as they are. The global random stream is not consumed.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if "recalib" in name.split("."):
                continue
            if isinstance(m, nn.Conv2d):
                w = torch.empty(m.weight.shape)
                nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", generator=g)
                m.weight.copy_(w)
            elif isinstance(m, nn.Linear):  # nn.Linear.reset_parameters, drawn from g
                w = torch.empty(m.weight.shape)
                nn.init.kaiming_uniform_(w, a=5 ** 0.5, generator=g)
                m.weight.copy_(w)
                if m.bias is not None:
                    bound = 1 / m.in_features ** 0.5 if m.in_features > 0 else 0.0
                    m.bias.copy_(torch.empty(m.bias.shape).uniform_(-bound, bound, generator=g))


def check_config_kwargs(model_name: str, config_cls: type, kwargs: Mapping[str, Any]) -> None:
    """``ValueError`` naming the unknown model arguments and the valid ones."""
    valid = sorted(config_cls.__dataclass_fields__)  # type: ignore[attr-defined]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"{model_name}: unknown model argument(s) {', '.join(unknown)}; valid arguments: {', '.join(valid)}")


class ZooModel(nn.Module):
    """The interface every zoo model offers (timm's, so the models serve as backbones elsewhere).

    ``forward_features(x)`` returns the last feature map (N, C, h, w); ``forward_head(x, pre_logits=False)``
    pools and classifies it; ``reset_classifier(num_classes)`` replaces the classifier (0: identity);
    ``feature_info`` lists ``{"num_chs", "reduction", "module"}`` per stage.
    """

    model_name: str = ""
    recalib_spec: RecalibSpec | None = None
    pretrained_cfg: dict[str, Any]
    default_cfg: dict[str, Any]
    num_classes: int
    num_features: int
    feature_info: list[dict[str, Any]]
    fc: nn.Module

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """The last feature map, before pooling (timm's ``forward_features``): N x C x H' x W'."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pooling, then the classifier (the pooled N x C features with ``pre_logits``)."""
        x = x.mean((2, 3))  # N, C: global average pooling
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits N x num_classes of images N x in_chans x H x W."""
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The final linear layer (timm's ``get_classifier``)."""
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes`` (0 removes it)."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative int, got {num_classes!r}")
        ref = next(self.parameters())
        self.num_classes = num_classes
        self.fc = (
            nn.Linear(self.num_features, num_classes, device=ref.device, dtype=ref.dtype) if num_classes else nn.Identity()
        )
