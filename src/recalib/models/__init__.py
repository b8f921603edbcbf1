"""The model zoo: the MS-SAR paper's backbones, each with a recalibration slot in every block.

``create_model(name, *, num_classes, in_chans, recalib, recalib_args, pretrained, features_only, **model_kwargs)``
(timm's idioms: ``pretrained=True``, classes and channels taken from the weights, a new head for another
``num_classes``, ``features_only``; ``list_models("resnet*")``):

| name | paper | default classes / input |
|---|---|---|
| ``resnet20 resnet32 resnet44 resnet56 resnet110`` | He et al. 2016, CIFAR (option-A shortcuts; ``shortcut="B"``) | 10 / 32x32 |
| ``densenet_bc_100`` (k = 12), ``densenet_bc_190`` (k = 40) | Huang et al. 2017, DenseNet-BC (``multi_stage=True``) | 10 / 32x32 |
| ``resnet18 resnet34 resnet50 resnet101`` | He et al. 2016, torchvision layout (v1.5) | 1000 / 224x224 |
| ``resnext50_32x4d`` | Xie et al. 2017, torchvision layout | 1000 / 224x224 |

Where the operator sits: docs/spec.md, section 5 (residual branch after the last BN; DenseNet-BC's k new features).
``recalib`` accepts what :func:`recalib.models._common.resolve_recalib` documents (a
:class:`~recalib.modules.RecalibSpec`, a name, the textual form, a class, a callable taking ``channels``); the
placement defaults (channel count, the family's budget rule) are resolved there before anything is recorded, and
``model.recalib_spec`` is the complete spec: ``build_recalib(model.recalib_spec, C)`` builds the operator of a
C-channel block and ``create_model(name, recalib=model.recalib_spec)`` the same network.
Every model has ``model_name``, ``recalib_spec``, ``pretrained_cfg`` (timm's keys: input size, mean, std,
interpolation, crop; ``default_cfg`` is the same dict; :mod:`recalib.models._cfg`) and the interface of
:class:`recalib.models._common.ZooModel`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

from torch import nn

from .._names import unknown_name
from ._cfg import default_pretrained_cfg
from ._common import RecalibLike, RecalibSlot, ZooModel, check_config_kwargs, resolve_recalib
from ._features import FeatureListNet
from ._weights import PretrainedLike, architecture_kwargs, list_pretrained, load_weights, resolve_weights
from .cifar_resnet import CifarResNet, CifarResNetConfig
from .densenet import DenseNet, DenseNetConfig
from .imagenet_resnet import ImageNetResNet, ImageNetResNetConfig

__all__ = [
    "architecture_kwargs",
    "create_model",
    "FeatureListNet",
    "list_models",
    "register_model",
    "model_info",
    "resolve_recalib",
    "RecalibSlot",
    "ZooModel",
    "CifarResNet",
    "CifarResNetConfig",
    "DenseNet",
    "DenseNetConfig",
    "ImageNetResNet",
    "ImageNetResNetConfig",
    "OPERATOR_PLACEMENT_KWARGS",
    "FAMILY_BUDGETS",
]

# Model arguments that only say how the operator is placed; the plain backbone (no operator) drops them.
OPERATOR_PLACEMENT_KWARGS = frozenset({"multi_stage"})

Builder = Callable[..., nn.Module]

#: The operators' budget rule of each model family (:data:`recalib.modules.BUDGETS`): the CIFAR zoo keeps the
#: papers' D' = D/L, the ImageNet models SE's parameters (MS-SAR paper, Table 5).
FAMILY_BUDGETS = {"cifar": "paper", "imagenet": "se"}


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: ``builder(slot, num_classes=, in_chans=, **model_kwargs)``, its defaults."""

    name: str
    builder: Builder
    num_classes: int
    input_size: int
    family: str

    @property
    def budget(self) -> str:
        """The operators' budget rule of this model (:data:`FAMILY_BUDGETS`)."""
        return FAMILY_BUDGETS[self.family]


_MODELS: dict[str, ModelInfo] = {}


def register_model(name: str, *, num_classes: int, input_size: int, family: str) -> Callable[[Builder], Builder]:
    """Decorator adding ``builder(slot, *, num_classes, in_chans, **model_kwargs) -> nn.Module`` to the zoo."""

    def deco(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = ModelInfo(name, builder, num_classes, input_size, family)
        return builder

    return deco


def list_models(
    filter: str | Sequence[str] = "",
    *,
    pretrained: bool = False,
    exclude_filters: str | Sequence[str] = (),
) -> list[str]:
    """Names accepted by :func:`create_model`, in the zoo's order (CIFAR ResNets, DenseNets, ImageNet).

    As timm's: ``filter`` is an ``fnmatch`` pattern or several (``"resnet*"``, ``["resnet2?", "dense*"]``; empty:
    every model), ``exclude_filters`` removes the names they match, and ``pretrained=True`` keeps the models the
    package has weights for (:func:`recalib.pretrained.list_pretrained`).
    """
    include = [filter] if isinstance(filter, str) else list(filter)
    exclude = [exclude_filters] if isinstance(exclude_filters, str) else list(exclude_filters)
    with_weights = {e.architecture for e in list_pretrained()} if pretrained else set()
    return [name for name in _MODELS
            if (not any(include) or any(fnmatch.fnmatchcase(name, p) for p in include if p))
            and not any(fnmatch.fnmatchcase(name, p) for p in exclude if p)
            and (not pretrained or name in with_weights)]


def model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; ``ValueError`` listing the valid names otherwise."""
    if name not in _MODELS:
        raise unknown_name("model", name, _MODELS)
    return _MODELS[name]


@overload
def create_model(name: str, *, features_only: Literal[False] = False, **kwargs: Any) -> ZooModel: ...


@overload
def create_model(name: str, *, features_only: Literal[True], **kwargs: Any) -> FeatureListNet: ...


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    recalib: RecalibLike | RecalibSlot = None,
    recalib_args: Mapping[str, Any] | None = None,
    pretrained: PretrainedLike = None,
    allow_unverified: bool = False,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    **model_kwargs: Any,
) -> ZooModel | FeatureListNet:
    """Build zoo model ``name`` with the operator ``recalib`` in every block.

    Args:
        name: one of :func:`list_models`.
        num_classes: classifier outputs; default: the weights' with ``pretrained``, else 10 for the CIFAR zoo and
            1000 for the ImageNet models; 0 gives a model without classifier (``forward`` returns pooled
            features). A count other than the weights' loads the backbone and keeps a new classifier (a warning
            names the keys not loaded), as timm does.
        in_chans: input channels; default: the weights' with ``pretrained``, else 3 (Fashion-MNIST: 1). Other
            channels than the weights' adapt their first convolution, as timm does (a warning says so).
        recalib: no operator (``None``, ``"none"``, ``"identity"``, ``""``), a ``RecalibSpec``, an operator
            name, its textual form (``"mssar(scales=(1, 2), strategy='sliding')"``), an ``nn.Module`` class or a
            callable taking ``channels``.
        recalib_args: keyword arguments for the operator, overriding those of the textual form.
        pretrained: ``True`` (the model's default packaged weights), a tag of the package's manifest
            (``"fashion-mnist"``; always the packaged weights), an exported folder given as a path (``"./x"``,
            ``pathlib.Path("x")``; Hugging Face layout: ``config.json``, ``model.safetensors``, ``README.md``) or
            ``"hf-hub:<org>/<name>[@revision]"`` (:mod:`recalib.models._weights`). The weights are refused unless
            their SHA-256 equals the recorded one, and ``model.pretrained_cfg`` becomes the preprocessing they
            were trained with. ``None``/``False``: no weights.
        allow_unverified: load a folder whose ``config.json`` records no SHA-256 (with a warning; the model's
            ``pretrained_cfg["verified"]`` is then False).
        features_only: return a :class:`~recalib.models._features.FeatureListNet` whose ``forward`` gives the
            feature maps of the ``feature_info`` stages ``out_indices`` (default: all) as a list.
        out_indices: with ``features_only``: which ``feature_info`` stages (negative indices count from the end).
        model_kwargs: fields of the family's config dataclass, e.g. ``shortcut="B"`` (CIFAR ResNets),
            ``multi_stage=True`` (DenseNets), ``stride_in_1x1=True`` (ImageNet bottlenecks), ``img_size``.

    Raises:
        ValueError: unknown model, operator, operator argument, model argument or weights (the message lists the
            valid ones), or an impossible combination such as ``multi_stage=True`` without MS-SAR.
        FileNotFoundError: a pretrained folder or Hub repository that does not exist.
    """
    info = model_info(name)
    for value, what, low in ((in_chans, "in_chans", 1), (num_classes, "num_classes", 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ValueError(f"{what} must be {'a positive' if low else 'a non-negative'} int, got {value!r}")
    if out_indices is not None and not features_only:
        raise ValueError("out_indices selects feature maps: pass features_only=True with it")
    slot = resolve_recalib(recalib, recalib_args, budget=info.budget)  # the complete spec, before any recording
    source = None
    if pretrained is not None and pretrained is not False:
        if slot.enabled and slot.spec is None:
            raise ValueError("pretrained weights are catalogued by operator name; pass recalib as a name or spec string")
        source = resolve_weights(pretrained, model_name=name, recalib=slot.spec, model_kwargs=model_kwargs,
                                 allow_unverified=allow_unverified)
    if in_chans is None:
        in_chans = source.in_chans if source is not None else 3
    if num_classes is None:
        num_classes = source.num_classes if source is not None else info.num_classes
    model = info.builder(slot, num_classes=num_classes, in_chans=in_chans, **model_kwargs)
    assert isinstance(model, ZooModel)
    model.model_name = name
    model.recalib_spec = slot.spec
    text = None if slot.spec is None else str(slot.spec)
    model.pretrained_cfg = default_pretrained_cfg(name, family=info.family, num_classes=num_classes,
                                                  in_chans=in_chans, recalib=text, model_kwargs=model_kwargs)
    model.default_cfg = model.pretrained_cfg  # timm's older name, the same dict
    if source is not None:
        load_weights(model, source)
    return FeatureListNet(model, out_indices) if features_only else model


# ------------------------------------------------------------------------------------------- the zoo ---
def _cifar_resnet(depth: int) -> Builder:
    def build(slot: RecalibSlot, **kwargs: Any) -> nn.Module:
        check_config_kwargs(f"resnet{depth}", CifarResNetConfig, kwargs)
        if "depth" in kwargs:
            raise ValueError(f"resnet{depth} fixes depth={depth}; pick another zoo name instead")
        return CifarResNet(CifarResNetConfig(depth=depth, **kwargs), slot)

    return build


def _densenet(name: str, depth: int, growth_rate: int) -> Builder:
    def build(slot: RecalibSlot, **kwargs: Any) -> nn.Module:
        check_config_kwargs(name, DenseNetConfig, kwargs)
        fixed = sorted({"depth", "growth_rate"} & set(kwargs))
        if fixed:
            raise ValueError(f"{name} fixes depth={depth} and growth_rate={growth_rate}; got {fixed}")
        return DenseNet(DenseNetConfig(depth=depth, growth_rate=growth_rate, **kwargs), slot)

    return build


def _imagenet_resnet(name: str, **arch: Any) -> Builder:
    def build(slot: RecalibSlot, **kwargs: Any) -> nn.Module:
        check_config_kwargs(name, ImageNetResNetConfig, kwargs)
        fixed = sorted(set(arch) & set(kwargs))
        if fixed:
            raise ValueError(f"{name} fixes {', '.join(f'{k}={arch[k]!r}' for k in fixed)}; pick another zoo name")
        return ImageNetResNet(ImageNetResNetConfig(**arch, **kwargs), slot)

    return build


for _depth in (20, 32, 44, 56, 110):
    register_model(f"resnet{_depth}", num_classes=10, input_size=32, family="cifar")(_cifar_resnet(_depth))
register_model("densenet_bc_100", num_classes=10, input_size=32, family="cifar")(_densenet("densenet_bc_100", 100, 12))
register_model("densenet_bc_190", num_classes=10, input_size=32, family="cifar")(_densenet("densenet_bc_190", 190, 40))
_IMAGENET_ARCHS: dict[str, dict[str, Any]] = {
    "resnet18": dict(layers=(2, 2, 2, 2), block="basic"),
    "resnet34": dict(layers=(3, 4, 6, 3), block="basic"),
    "resnet50": dict(layers=(3, 4, 6, 3), block="bottleneck"),
    "resnet101": dict(layers=(3, 4, 23, 3), block="bottleneck"),
    "resnext50_32x4d": dict(layers=(3, 4, 6, 3), block="bottleneck", groups=32, width_per_group=4),
}
for _name, _arch in _IMAGENET_ARCHS.items():
    register_model(_name, num_classes=1000, input_size=224, family="imagenet")(_imagenet_resnet(_name, **_arch))
