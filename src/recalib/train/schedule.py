"""Learning rate as a pure function of the global step.

Because the rate depends on nothing but the step (no scheduler object with hidden state), a resumed run
reproduces it exactly, and so does a run on a different number of processes with the same global batch.

Shapes (``E`` = steps per epoch, ``T`` = total steps, ``W`` = warm-up steps, ``t = (s - W) / (T - W)``):

* ``multistep``: ``lr * gamma ** #{m in milestones : s >= m * E}`` (He et al. 2016; docs/spec.md, section 6).
* ``cosine``: ``lr * (1 + cos(pi t)) / 2`` (Loshchilov and Hutter, SGDR, arXiv:1608.03983).
* ``linear``: ``lr * (1 - t)``; with a warm-up this is the triangular one-cycle of airbench.
* ``onecycle``: Smith's 1cycle (arXiv:1708.07120) as ``torch.optim.lr_scheduler.OneCycleLR`` draws it:
  a cosine rise from ``lr / 25`` to ``lr`` over the ``W`` steps, then a cosine fall to ``lr / 25e4``.
* ``constant``: ``lr``.

Every shape but ``onecycle`` is multiplied during the first ``W`` steps by a linear warm-up
``(s + 1) / W`` (Goyal et al., arXiv:1706.02677), so no step has a zero rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import SCHEDULES, TrainConfig

__all__ = ["LRSchedule"]

_ONECYCLE_DIV = 25.0  # torch's OneCycleLR defaults: initial = max / 25, final = initial / 1e4
_ONECYCLE_FINAL_DIV = 1e4


@dataclass(frozen=True)
class LRSchedule:
    """``schedule(step) -> lr`` for global steps ``0 <= step < total_steps`` (later steps keep the last shape)."""

    lr: float
    steps_per_epoch: int
    total_steps: int
    kind: str = "multistep"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.kind!r}; valid choices: {', '.join(SCHEDULES)}")
        if self.steps_per_epoch < 1 or self.total_steps < 1:
            raise ValueError(
                f"schedule needs at least one step per epoch, got steps_per_epoch={self.steps_per_epoch}, "
                f"total_steps={self.total_steps}; use a smaller batch size or more data"
            )
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} must lie in [0, total_steps={self.total_steps}]")

    @classmethod
    def from_config(cls, config: TrainConfig, steps_per_epoch: int) -> LRSchedule:
        """The schedule of ``config`` for a loader of ``steps_per_epoch`` batches (global batches)."""
        return cls(
            lr=config.lr,
            steps_per_epoch=steps_per_epoch,
            total_steps=config.epochs * steps_per_epoch,
            kind=config.schedule,
            milestones=config.milestones,
            gamma=config.gamma,
            warmup_steps=round(config.warmup_epochs * steps_per_epoch),
        )

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        w, total = self.warmup_steps, self.total_steps
        if self.kind == "onecycle":
            if step < w:
                low = self.lr / _ONECYCLE_DIV
                return low + (self.lr - low) * (1 - math.cos(math.pi * step / w)) / 2
            t = min(1.0, (step - w) / max(1, total - w))
            final = self.lr / (_ONECYCLE_DIV * _ONECYCLE_FINAL_DIV)
            return final + (self.lr - final) * (1 + math.cos(math.pi * t)) / 2
        warm = (step + 1) / w if step < w else 1.0
        t = min(1.0, max(0.0, (step - w) / max(1, total - w)))
        if self.kind == "multistep":
            passed = sum(step >= m * self.steps_per_epoch for m in self.milestones)
            factor = self.gamma**passed
        elif self.kind == "cosine":
            factor = (1 + math.cos(math.pi * t)) / 2
        elif self.kind == "linear":
            factor = 1 - t
        else:  # constant
            factor = 1.0
        return self.lr * warm * factor
