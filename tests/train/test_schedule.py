"""The learning rate as a pure function of the step, against values worked out by hand."""

import math

import pytest

from recalib.train.config import resolve_config
from recalib.train.schedule import LRSchedule


def test_multistep_by_hand() -> None:
    s = LRSchedule(lr=0.1, steps_per_epoch=10, total_steps=50, kind="multistep", milestones=(2, 3), gamma=0.1)
    assert [s(k) for k in (0, 19)] == [0.1, 0.1]
    assert s(20) == pytest.approx(0.01) and s(29) == pytest.approx(0.01)
    assert s(30) == pytest.approx(0.001) and s(49) == pytest.approx(0.001)


def test_paper_cifar_schedule_in_steps() -> None:
    # 50,000 CIFAR images / 128 = 390 steps per epoch; 0.1, 0.01 from epoch 80, 0.001 from epoch 120.
    s = LRSchedule.from_config(resolve_config("paper-cifar-resnet"), 390)
    assert s.total_steps == 160 * 390
    assert s(80 * 390 - 1) == 0.1 and s(80 * 390) == pytest.approx(0.01) and s(120 * 390) == pytest.approx(0.001)


def test_warmup_is_linear_and_never_zero() -> None:
    s = LRSchedule(lr=1.0, steps_per_epoch=10, total_steps=100, kind="constant", warmup_steps=4)
    assert [s(k) for k in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_cosine_and_linear_by_hand() -> None:
    cos = LRSchedule(lr=2.0, steps_per_epoch=10, total_steps=110, kind="cosine", warmup_steps=10)
    assert cos(10) == 2.0 and cos(60) == pytest.approx(1.0) and cos(35) == pytest.approx(1 + math.cos(math.pi / 4))
    lin = LRSchedule(lr=2.0, steps_per_epoch=10, total_steps=110, kind="linear", warmup_steps=10)
    assert lin(9) == 2.0 and lin(60) == pytest.approx(1.0) and lin(109) == pytest.approx(2.0 / 100)
    assert lin(109) > 0


def test_onecycle_shape() -> None:
    s = LRSchedule(lr=1.0, steps_per_epoch=10, total_steps=100, kind="onecycle", warmup_steps=30)
    assert s(0) == pytest.approx(1 / 25) and s(30) == pytest.approx(1.0)
    assert s(15) == pytest.approx(1 / 25 + (1 - 1 / 25) / 2)
    assert s(100) == pytest.approx(1 / 25 / 1e4)
    values = [s(k) for k in range(100)]
    assert values.index(max(values)) == 30


def test_pure_function_of_step() -> None:
    s = LRSchedule.from_config(resolve_config("quick"), 234)
    forward = [s(k) for k in range(0, s.total_steps, 7)]
    backward = [s(k) for k in reversed(range(0, s.total_steps, 7))]
    assert forward == backward[::-1]


def test_bad_schedule_arguments() -> None:
    with pytest.raises(ValueError, match="valid choices"):
        LRSchedule(lr=1.0, steps_per_epoch=1, total_steps=1, kind="exp")
    with pytest.raises(ValueError, match="at least one step"):
        LRSchedule(lr=1.0, steps_per_epoch=0, total_steps=0)
