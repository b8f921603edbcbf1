"""train_one_epoch / evaluate on small hand-made models and tensors."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from recalib.train.engine import NonFiniteLossError, evaluate, train_one_epoch

CPU = torch.device("cpu")


def _batches(n_batches: int = 5, b: int = 8, k: int = 4, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(b, 3, 4, 4, generator=g), torch.randint(0, k, (b,), generator=g)) for _ in range(n_batches)]


def _model(k: int = 4) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(),
                         nn.Linear(6 * 16, k))


def test_zero_lr_epoch_measures_the_fixed_model() -> None:
    torch.manual_seed(0)
    model, data = _model(), _batches()
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    before = [p.detach().clone() for p in model.parameters()]
    # Reference: a plain loop, BN in train mode (batch statistics), nothing updated.
    with torch.no_grad():
        model.train()
        losses = [F.cross_entropy(model(x), y, reduction="sum").item() for x, y in data]
        wrong = sum(int((model(x).argmax(1) != y).sum()) for x, y in data)
    seen: list[int] = []
    m = train_one_epoch(model, data, opt, lr_at=lambda s: seen.append(s) or 0.0, step=7, device=CPU)
    assert seen[0] == 7 and seen[1:] == list(range(7, 12))  # once before the loop, then once per step
    assert m["step"] == 12 and m["train_images"] == 40 and m["lr"] == 0.0
    assert m["train_loss"] == pytest.approx(sum(losses) / 40, rel=1e-5)
    assert m["train_error"] == pytest.approx(100 * wrong / 40)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert m["images_per_s"] > 0 and m["seconds"] > 0


def test_training_reduces_the_loss_and_sets_lr_per_step() -> None:
    torch.manual_seed(0)
    model, data = _model(), _batches(4, 16)
    opt = torch.optim.SGD(model.parameters(), lr=123.0)
    lrs: list[float] = []

    class Spy(torch.optim.SGD):
        def step(self, closure=None):  # noqa: ANN001, ANN201
            lrs.append(self.param_groups[0]["lr"])
            return super().step(closure)

    opt = Spy(model.parameters(), lr=123.0)
    first = train_one_epoch(model, data, opt, lr_at=lambda s: 0.05 + 0.001 * s, step=0, device=CPU)
    for _ in range(15):
        last = train_one_epoch(model, data, opt, lr_at=lambda s: 0.05, step=0, device=CPU)
    assert lrs[:4] == pytest.approx([0.05, 0.051, 0.052, 0.053])
    assert last["train_loss"] < first["train_loss"]


def test_one_host_sync_per_epoch(monkeypatch) -> None:
    torch.manual_seed(0)
    model, data = _model(), _batches(10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    calls = {"item": 0, "tolist": 0}
    item, tolist = torch.Tensor.item, torch.Tensor.tolist

    def counting(name, fn):  # noqa: ANN001, ANN202
        def wrapper(self, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
            calls[name] += 1
            return fn(self, *a, **k)
        return wrapper

    monkeypatch.setattr(torch.Tensor, "item", counting("item", item))
    monkeypatch.setattr(torch.Tensor, "tolist", counting("tolist", tolist))
    train_one_epoch(model, data, opt, lr_at=lambda s: 0.01, step=0, device=CPU)
    assert calls["item"] + calls["tolist"] <= 2, calls  # the non-finite flag and the totals, once each


class _NaNAt(nn.Module):
    """A linear model whose output is NaN on its ``bad``-th call."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.lin, self.calls, self.bad = nn.Linear(48, 4), 0, bad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x.flatten(1))
        self.calls += 1
        return out * float("nan") if self.calls == self.bad + 1 else out


@pytest.mark.parametrize("sync_every", [0, 2])
def test_non_finite_loss_stops_with_the_step(sync_every: int) -> None:
    model = _NaNAt(bad=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(NonFiniteLossError, match="global step 13") as info:
        train_one_epoch(model, _batches(6), opt, lr_at=lambda s: 0.1, step=10, device=CPU, sync_every=sync_every)
    assert info.value.step == 13
    if sync_every:
        assert model.calls == 4  # stopped at the first check after the bad step, not at the end of the epoch


class _Fixed(nn.Module):
    """Returns preset logits, batch after batch."""

    def __init__(self, logits: list[torch.Tensor]) -> None:
        super().__init__()
        self.logits, self.i = logits, 0
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.logits[self.i]
        self.i += 1
        return out + self.dummy


def test_evaluate_counts_top1_top5_by_hand() -> None:
    k = 7
    y1, y2 = torch.tensor([0, 1, 2]), torch.tensor([6, 5])
    ranked = torch.arange(k, 0, -1).float()  # class 0 best, class 6 worst
    l1 = ranked.repeat(3, 1)  # predicts 0: top-1 right for y=0 only; top-5 = {0..4}: all three right
    l2 = ranked.repeat(2, 1)  # y=6 and y=5: both wrong at top-1 and top-5
    logits = [l1, l2]
    m = evaluate(_Fixed(logits), [(torch.zeros(3, 1), y1), (torch.zeros(2, 1), y2)], device=CPU)
    assert m["test_images"] == 5
    assert m["test_error"] == pytest.approx(100 * 4 / 5)
    assert m["test_top5_error"] == pytest.approx(100 * 2 / 5)
    ref = (F.cross_entropy(l1, y1, reduction="sum") + F.cross_entropy(l2, y2, reduction="sum")) / 5
    assert m["test_loss"] == pytest.approx(ref.item(), rel=1e-6)


def test_evaluate_restores_mode_and_leaves_bn_alone() -> None:
    model = _model()
    model.train()
    stats = model[1].running_mean.clone()
    evaluate(model, _batches(2), device=CPU)
    assert model.training and torch.equal(stats, model[1].running_mean)


def test_freeze_bn_keeps_running_statistics() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mean, var = model[1].running_mean.clone(), model[1].running_var.clone()
    train_one_epoch(model, _batches(3), opt, lr_at=lambda s: 0.1, step=0, device=CPU, freeze_bn=True)
    assert torch.equal(mean, model[1].running_mean) and torch.equal(var, model[1].running_var)
    assert not model[1].training and model[0].training
    train_one_epoch(model, _batches(3), opt, lr_at=lambda s: 0.1, step=0, device=CPU)
    assert not torch.equal(mean, model[1].running_mean)


def test_bf16_autocast_runs_on_cpu() -> None:
    torch.manual_seed(0)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    m = train_one_epoch(model, _batches(2), opt, lr_at=lambda s: 0.01, step=0, device=CPU, amp_dtype=torch.bfloat16)
    e = evaluate(model, _batches(2), device=CPU, amp_dtype=torch.bfloat16, channels_last=True)
    assert m["train_loss"] > 0 and 0 <= e["test_error"] <= 100


def test_one_hook_sees_every_step_with_the_rate_the_optimizer_used() -> None:
    """One per-step hook (no separate progress/loss/step callbacks): the new global step, the rate the
    optimizer stepped with (read from its parameter group at ``optimizer.step``) and that step's loss."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=123.0)  # never used: the schedule sets every step's rate
    used: list[float] = []
    step_fn = opt.step

    def spy_step(*args: object, **kw: object) -> object:
        used.append(opt.param_groups[0]["lr"])
        return step_fn(*args, **kw)

    opt.step = spy_step  # type: ignore[method-assign]
    seen: list[tuple[int, float, float]] = []
    train_one_epoch(model, _batches(5), opt, lr_at=lambda s: 0.01 * (s + 1), step=3, device=CPU,
                    on_step=lambda step, lr, loss: seen.append((step, lr, float(loss))))
    assert [s for s, _, _ in seen] == [4, 5, 6, 7, 8]
    assert [lr for _, lr, _ in seen] == used == pytest.approx([0.04, 0.05, 0.06, 0.07, 0.08])
    assert all(math.isfinite(loss) and loss > 0 for _, _, loss in seen)


def test_run_step_hook_drives_the_progress_bar_and_the_loggers(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from recalib.train import run as run_mod

    class Bar:
        def __init__(self) -> None:
            self.n, self.postfix = 0, []

        def update(self, k: int) -> None:
            self.n += k

        def set_postfix(self, **kw: object) -> None:
            self.postfix.append(kw)

    class Loggers:
        def __init__(self) -> None:
            self.calls: list[tuple[int, float, float]] = []

        def on_step(self, step: int, lr: float, loss: torch.Tensor) -> None:
            self.calls.append((step, lr, float(loss)))

    monkeypatch.setattr(run_mod, "_SYNC_EVERY", 2)
    bar, loggers = Bar(), Loggers()
    fake_run = SimpleNamespace(cfg=SimpleNamespace(check_ranks=False), loggers=loggers)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    train_one_epoch(model, _batches(5), opt, lr_at=lambda s: 0.01, step=0, device=CPU,
                    on_step=run_mod.StepHook(fake_run, bar))  # type: ignore[arg-type]
    assert bar.n == 5 and len(bar.postfix) == 2 and {"loss", "lr"} <= set(bar.postfix[0])
    assert [c[0] for c in loggers.calls] == [1, 2, 3, 4, 5] and {c[1] for c in loggers.calls} == {0.01}
