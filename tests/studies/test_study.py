"""Studies: the TOML schema, the grid, run states, run locks, ``--dry-run`` of every shipped study, and a miniature study
run end to end whose report is checked against the runs' own ``metrics.jsonl``."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recalib import studies as st
from recalib.studies import cli as study_cli
from recalib.studies import cost, launch

REPO = Path(__file__).resolve().parents[2]
SHIPPED_DIR = REPO / "src" / "recalib" / "studies" / "shipped"  # package data: in the wheel
SHIPPED = sorted(SHIPPED_DIR.glob("*.toml"))

MINI = """
[study]
name = "mini"
description = "miniature study for CI"
recipe = "paper-cifar-resnet"
datasets = ["fashion-mnist"]
seeds = [0, 1]
baseline = "none"
schedule = "miniature (CI): 256 training images, 500 test images, 2 epochs"
overrides = { subset = 256, test_subset = 500, epochs = 2, batch_size = 64, milestones = [1], device = "cpu", threads = 1, tensorboard = false, eval_batch_size = 250 }

[grid]
models = ["resnet20"]

[[operators]]
key = "none"
label = "none"
spec = "none"

[[operators]]
key = "mssar"
label = "MS-SAR"
spec = "mssar(scales=(1, 2, 4))"

[variants.one]
seeds = [0]
operators = ["mssar"]
schedule = "one run"
"""


def _write(tmp_path: Path, text: str, name: str = "mini") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


# -------------------------------------------------------------------------------------------- schema ---
def test_parse_and_variant(tmp_path):
    study = st.load_study(_write(tmp_path, MINI))
    assert study.name == "mini" and study.seeds == (0, 1) and [o.key for o in study.operators] == ["none", "mssar"]
    assert study.overrides["milestones"] == (1,)
    one = st.load_study(_write(tmp_path, MINI), variant="one")
    assert one.variant == "one" and one.seeds == (0,) and [o.key for o in one.operators] == ["mssar"]
    assert one.schedule == "one run" and one.dir_name == "mini-one" and one.overrides["epochs"] == 2
    with pytest.raises(ValueError, match="unknown variant 'two'; variants: one"):
        st.load_study(_write(tmp_path, MINI), variant="two")
    assert st.auto_variant(study, cuda_available=False) is None  # no variant says auto = "no-gpu"


@pytest.mark.parametrize("old, new, message", [
    ('seeds = [0, 1]\n', 'seeds = [0, 1]\ncolour = "red"\n', "unknown key.*colour"),
    ('models = ["resnet20"]', 'models = ["resnet20"]\nmodel = "x"', r"\[grid\]: unknown key"),
    ('label = "MS-SAR"', 'label = "MS-SAR"\nargs = 1', "unknown key.*args"),
    ('recipe = "paper-cifar-resnet"', 'recipe = "fast"', "unknown recipe 'fast'"),
    ('baseline = "none"', 'baseline = "plain"', "baseline 'plain' is not an operator key"),
    ('key = "mssar"', 'key = "MS SAR"', "key must match"),
    ('key = "mssar"', 'key = "none"', "operator keys must be unique"),
    ('spec = "mssar(scales=(1, 2, 4))"', 'spec = "mssar(scales=(1, 2, 4)"', "spec"),
    ('epochs = 2,', 'epoch = 2,', "unknown TrainConfig field.*epoch"),
    ('epochs = 2,', 'seed = 2,', "overrides may not set seed"),
    ('seeds = [0, 1]', 'seeds = [0, 0]', "duplicates"),
    ('seeds = [0, 1]', 'seeds = [0, 4294967296]', r"seeds must be a non-empty list of integers in \[0, 4294967295\]"),
    ('seeds = [0]\noperators', 'seeds = [0]\nspeed = 1\noperators', r"variants.one.*unknown key.*speed"),
    ('operators = ["mssar"]', 'operators = ["se"]', r"operators \['se'\] are not in the study's grid"),
    ('name = "mini"', 'name = "other"', "must equal the file name"),
])
def test_schema_errors(tmp_path, old, new, message):
    assert old in MINI
    with pytest.raises(ValueError, match=message):
        st.load_study(_write(tmp_path, MINI.replace(old, new, 1)))


def test_unknown_study_lists_known_ones():
    with pytest.raises(FileNotFoundError, match="known studies:.*fashion-mnist"):
        st.find_study_file("no-such-study")


# ---------------------------------------------------------------------------------------------- grid ---
def test_plan_order_ids_configs_and_filters(tmp_path):
    study = st.load_study(_write(tmp_path, MINI))
    runs = st.plan_runs(study, tmp_path / "res")
    assert [r.run_id for r in runs] == [
        "resnet20__none__fashion-mnist__s0", "resnet20__mssar__fashion-mnist__s0",
        "resnet20__none__fashion-mnist__s1", "resnet20__mssar__fashion-mnist__s1",
    ]
    r = runs[1]
    assert r.out == tmp_path / "res" / "mini" / r.run_id
    assert (r.config.model, r.config.recalib, r.config.seed, r.config.subset, r.config.epochs) == (
        "resnet20", "mssar(scales=(1, 2, 4))", 0, 256, 2)
    assert r.config.milestones == (1,) and r.config.recipe == "paper-cifar-resnet"
    assert [x.run_id for x in st.select_runs(runs, ["operator=MS-SAR", "seed=1"])] == [runs[3].run_id]
    assert len(st.select_runs(runs, ["*__none__*"])) == 2
    assert len(st.select_runs(runs, ["operator=none,mssar", "model=resnet2?"])) == 4
    with pytest.raises(ValueError, match="unknown field 'size'"):
        st.select_runs(runs, ["size=1"])


def test_run_states(tmp_path):
    study = st.load_study(_write(tmp_path, MINI))
    run = st.plan_runs(study, tmp_path / "res")[0]
    assert st.run_status(run) == "pending"
    run.out.mkdir(parents=True)
    (run.out / "config.json").write_text(json.dumps(run.config.to_dict()))
    (run.out / "checkpoint.pt").write_bytes(b"x")
    assert st.run_status(run) == "resumable"
    (run.out / "summary.json").write_text(json.dumps({"status": "completed", "epochs_completed": 2}))
    assert st.run_status(run) == "finished"
    (run.out / "summary.json").write_text(json.dumps({"status": "diverged", "epochs_completed": 1}))
    assert st.run_status(run) == "diverged"
    changed = dict(run.config.to_dict(), lr=0.2)
    (run.out / "config.json").write_text(json.dumps(changed))
    assert st.run_status(run) == "stale"
    assert "lr: folder 0.2, plan 0.1" in st.stale_details(run)
    runtime_only = dict(run.config.to_dict(), threads=7, device="cuda")  # run-time fields never make a run stale
    (run.out / "config.json").write_text(json.dumps(runtime_only))
    assert st.run_status(run) == "diverged"


def test_a_finished_run_of_the_earlier_format_stays_finished(tmp_path):
    """Run folders written before the run lock and --dist-timeout existed (no .lock, no dist_timeout in
    config.json) are finished runs, not stale or pending ones."""
    study = st.load_study(_write(tmp_path, MINI))
    run = st.plan_runs(study, tmp_path / "res")[0]
    run.out.mkdir(parents=True)
    earlier = {k: v for k, v in run.config.to_dict().items() if k != "dist_timeout"}
    (run.out / "config.json").write_text(json.dumps(earlier, indent=2) + "\n")
    (run.out / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "test_error": 9.0}) + "\n" for e in (1, 2)))
    (run.out / "checkpoint.pt").write_bytes(b"x")
    (run.out / "summary.json").write_text(json.dumps({"status": "completed", "message": None, "epochs_completed": 2,
                                                      "final_test_error": 9.0, "config": earlier}))
    assert st.run_status(run) == "finished"
    lines: list[str] = []
    assert st.run_study(study, tmp_path / "res", filters=[run.run_id], echo=lines.append) == 0
    assert any("nothing to do: every selected run is finished" in x for x in lines)


def test_launch_commands(tmp_path):
    study = st.load_study(_write(tmp_path, MINI))
    run = st.plan_runs(study, tmp_path / "res")[0]
    cfg = str(run.out / st.PLANNED_CONFIG)
    assert st.launch_command(run, python="py") == ["py", "-m", "recalib", "train", "--config", cfg, "--resume"]
    assert st.launch_command(run, torchrun=True, gpus=8) == [
        "torchrun", "--standalone", "--nproc_per_node=8", "-m", "recalib", "train", "--config", cfg, "--resume"]
    est = st.estimate_seconds(run, "cpu")
    macs = cost.forward_macs(run)
    assert est == pytest.approx((3 * 256 + 500) * macs * 2 / st.THROUGHPUT_MACS_PER_S["cpu"])


def test_split_sizes_come_from_the_data_registry(tmp_path, monkeypatch):
    from recalib.data import get_dataset_info

    study = st.load_study(_write(tmp_path, MINI))
    run = st.plan_runs(study, tmp_path / "res")[0]
    full = dataclasses.replace(run, config=dataclasses.replace(run.config, subset=0, test_subset=0))
    info = get_dataset_info(run.dataset)
    assert cost.run_images(full) == (info.train_images, info.test_images)
    # Official sizes, written by hand from the data sets' documentation.
    sizes = {n: (get_dataset_info(n).train_images, get_dataset_info(n).test_images)
             for n in ("fashion-mnist", "cifar10", "cifar100", "imagenet")}
    assert sizes == {"fashion-mnist": (60000, 10000), "cifar10": (50000, 10000), "cifar100": (50000, 10000),
                     "imagenet": (1281167, 50000)}
    held_out = dataclasses.replace(full, config=dataclasses.replace(full.config, val_split=5000))
    assert cost.run_images(held_out) == (info.train_images - 5000, 5000)


FAKE_TRAINER = """#!{python}
# Stands in for `python -m recalib train --config FILE --resume`: records how it was launched, finishes the run.
import json, os, sys, time
cfg_path = sys.argv[sys.argv.index("--config") + 1]
cfg = json.load(open(cfg_path))
out = os.path.dirname(cfg_path)
time.sleep(0.3)
json.dump(cfg, open(os.path.join(out, "config.json"), "w"))
open(os.path.join(out, "metrics.jsonl"), "w").write(json.dumps({{"epoch": cfg["epochs"], "test_error": 5.0}}) + "\\n")
json.dump({{"status": "completed", "epochs_completed": cfg["epochs"], "final_test_error": 5.0}},
          open(os.path.join(out, "summary.json"), "w"))
json.dump({{"gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "threads": cfg["threads"], "argv": sys.argv[1:]}},
          open(os.path.join(out, "launch.json"), "w"))
"""


def test_scheduling_gpus_threads_and_skipping_finished(tmp_path):
    fake = tmp_path / "fake_python"
    fake.write_text(FAKE_TRAINER.format(python=sys.executable))
    fake.chmod(0o755)
    study = st.load_study(_write(tmp_path, MINI.replace('threads = 1, ', '')))
    results = tmp_path / "res"
    lines: list[str] = []
    assert st.run_study(study, results, parallel=3, gpus=2, python=str(fake), echo=lines.append) == 0
    launches = [json.loads((r.out / "launch.json").read_text()) for r in st.plan_runs(study, results)]
    assert [x["gpu"] for x in launches] == ["0", "1", "0", "1"]  # round-robin over the GPUs, in plan order
    assert all(x["argv"][:4] == ["-m", "recalib", "train", "--config"] and x["argv"][-1] == "--resume"
               for x in launches)
    assert all(x["threads"] == max(1, launch._cpu_count() // 3) for x in launches)
    assert any("4 run(s) finished, 0 failed" in line for line in lines)
    # Everything finished: a second call launches nothing.
    lines.clear()
    assert st.run_study(study, results, parallel=2, gpus=0, python=str(fake), echo=lines.append) == 0
    assert any("nothing to do" in line for line in lines)
    # A failing trainer is reported, and the others still run.
    bad = tmp_path / "bad_python"
    bad.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(3)\n")
    bad.chmod(0o755)
    study2 = st.load_study(_write(tmp_path, MINI.replace('threads = 1, ', '').replace("seeds = [0, 1]", "seeds = [5]")))
    lines.clear()
    assert st.run_study(study2, results, parallel=1, gpus=0, python=str(bad), echo=lines.append, threads=1) == 2
    assert sum("FAILED" in line for line in lines) == 2


# ----------------------------------------------------------------------------------- shipped studies ---
def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    study_cli.configure_parser(parser)
    return study_cli.run(parser.parse_args(argv))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_studies_dry_run(path, tmp_path, capsys, monkeypatch):
    # MACs come from recalib.complexity (tested with the models); a DenseNet-190 or ImageNet forward pass per
    # grid cell would make this test slow, so the estimate uses a stand-in here.
    monkeypatch.setattr(cost, "forward_macs", lambda run: 1_000_000 * (1 + len(run.model)))
    study = st.load_study(path, variant="none")
    for variant in ["none", *study.variants]:
        assert _cli(["run", path.stem, "--variant", variant, "--results", str(tmp_path), "--dry-run"]) == 0
        out = capsys.readouterr().out
        s = study if variant == "none" else study.with_variant(variant)
        n = len(s.models) * len(s.datasets) * len(s.operators) * len(s.seeds)
        assert f"{n} runs:" in out
        assert "estimated cost" in out
        if s.launcher == "torchrun":
            assert "torchrun --standalone --nproc_per_node=" in out


def test_shipped_study_grids():
    t2 = st.load_study(SHIPPED_DIR / "table2-cifar.toml", variant="none")
    assert len(st.plan_runs(t2, "r")) == 5 * 2 * 2 * 3
    assert t2.recipe_of("densenet_bc_190") == "paper-cifar-densenet"
    t3 = st.load_study(SHIPPED_DIR / "table3-scales.toml", variant="none")
    scales = {o.spec for o in t3.operators if o.key != "none"}
    assert len(scales) == 7
    fm = st.load_study(SHIPPED_DIR / "fashion-mnist.toml", variant="none")
    assert len(st.plan_runs(fm, "r")) == 36
    assert st.auto_variant(fm, cuda_available=False) == "cpu-budget"
    assert st.auto_variant(fm, cuda_available=True) is None
    budget = fm.with_variant("cpu-budget")
    assert "test_subset" not in budget.overrides and "val_split" not in budget.overrides  # always the full test set
    assert "subset" not in budget.overrides  # all 60,000 training images
    assert [r.seed for r in st.plan_runs(budget, "r")] == [0] * 6 + [1] * 6 + [2] * 6  # ResNet-20 x 6 x 3 seeds
    assert "budgeted CPU schedule" in budget.schedule
    assert (budget.overrides["schedule"], budget.overrides["epochs"]) == ("linear", 5)


# --------------------------------------------------------------------------------------- end to end ---
def _last(run: st.Run) -> dict:
    lines = [json.loads(x) for x in (run.out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return lines[-1]


@pytest.mark.slow
def test_miniature_study_end_to_end(tmp_path, capsys):
    from recalib.studies import write_report

    study = st.load_study(_write(tmp_path, MINI))
    results = tmp_path / "results"
    t0 = time.perf_counter()
    failed = st.run_study(study, results, parallel=2, python=sys.executable)
    assert failed == 0, capsys.readouterr().out
    runs = st.plan_runs(study, results)
    assert all(st.run_status(r) == "finished" for r in runs)

    # An interrupted run (checkpoint, no summary) is resumed, not restarted; finished ones are left alone.
    resumed = runs[2]
    (resumed.out / "summary.json").unlink()
    assert st.run_status(resumed) == "resumable"
    mtimes = {r.run_id: (r.out / "summary.json").stat().st_mtime for r in runs if r is not resumed}
    assert st.run_study(study, results, parallel=1, python=sys.executable) == 0
    assert st.run_status(resumed) == "finished"
    assert "resumed" in (resumed.out / st.LOG_FILE).read_text()
    assert all((r.out / "summary.json").stat().st_mtime == m for r in runs for k, m in mtimes.items()
               if r.run_id == k)

    out = write_report(study, results, out=tmp_path / "report")
    numbers = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    finals = {(r.operator.key, r.seed): _last(r) for r in runs}
    for e in finals.values():
        assert e["epoch"] == 2 and e["test_images"] == 500
    for row in numbers["rows"]:
        vals = [finals[(row["operator"], s)]["test_error"] for s in (0, 1)]
        assert row["mean"] == pytest.approx(statistics.mean(vals), abs=1e-9)
        assert row["std"] == pytest.approx(statistics.stdev(vals), abs=1e-9)
        assert f"{statistics.mean(vals):.2f} ± {statistics.stdev(vals):.2f} (n=2)" in md
        if row["operator"] == "mssar":
            diffs = [finals[("mssar", s)]["test_error"] - finals[("none", s)]["test_error"] for s in (0, 1)]
            half = 12.706205 * statistics.stdev(diffs) / math.sqrt(2)  # t_{0.975, 1}
            assert row["vs_baseline"]["mean"] == pytest.approx(statistics.mean(diffs))
            assert row["vs_baseline"]["high"] == pytest.approx(statistics.mean(diffs) + half, abs=1e-4)
    with open(out / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for r in rows:
        assert float(r["final_test_error"]) == pytest.approx(finals[(r["operator"], int(r["seed"]))]["test_error"])
    assert (out / "curves.png").stat().st_size > 0 and (out / "error_vs_macs.png").stat().st_size > 0
    assert "miniature (CI)" in md
    assert time.perf_counter() - t0 < 300


def test_operator_model_args_reach_the_run_config(tmp_path):
    # multi-stage.toml gives its "multi" operator model_args = { multi_stage = true }.
    study = st.load_study(SHIPPED_DIR / "multi-stage.toml", variant="none")
    runs = {r.operator.key: r for r in st.plan_runs(study, tmp_path) if r.seed == study.seeds[0]}
    assert runs["multi"].config.model_args == "multi_stage=True"
    assert runs["single"].config.model_args == ""


# --------------------------------------------------------------------------------------- run locks ---
# Stands in for `python -m recalib train --config FILE --resume`: checks that it was handed the run's lock,
# then trains "forever" (until the test kills it).
SLOW_TRAINER = """#!{python}
import os, sys, time
cfg_path = sys.argv[sys.argv.index("--config") + 1]
lock = os.path.join(os.path.dirname(os.path.abspath(cfg_path)), ".lock")
assert os.environ["RECALIB_RUN_LOCK_HELD"] == os.path.realpath(lock), os.environ.get("RECALIB_RUN_LOCK_HELD")
open(os.path.join(os.path.dirname(cfg_path), "trainer.pid"), "w").write(str(os.getpid()))
time.sleep(300)
"""

HOLDER = """
import sys, time
from recalib.train.runlock import RunLock
RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(300)
"""


def _fake(tmp_path: Path) -> Path:
    fake = tmp_path / "slow_python"
    fake.write_text(SLOW_TRAINER.format(python=sys.executable))
    fake.chmod(0o755)
    return fake


def _wait(cond, what: str, timeout: float = 60.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_run_locked_by_another_process_is_skipped(tmp_path) -> None:
    study = st.load_study(_write(tmp_path, MINI), variant="one")
    results = tmp_path / "res"
    (run,) = st.plan_runs(study, results)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run.out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert st.run_status(run) == "running"
        lines: list[str] = []
        assert st.run_study(study, results, python=str(_fake(tmp_path)), echo=lines.append) == 0
        assert any(f"running elsewhere, skipped: {run.run_id} (pid {holder.pid} on" in line for line in lines)
        assert not (run.out / st.PLANNED_CONFIG).exists()  # nothing written, nothing launched
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert st.run_status(run) == "pending"


@pytest.mark.slow
def test_restarted_runner_leaves_the_orphaned_child_alone(tmp_path) -> None:
    from recalib.train.runlock import RunLock, lock_holder

    path = _write(tmp_path, MINI)
    results = tmp_path / "res"
    study = st.load_study(path, variant="one")
    (run,) = st.plan_runs(study, results)
    fake = _fake(tmp_path)
    code = (f"from recalib import studies as st; "
            f"st.run_study(st.load_study({str(path)!r}, variant='one'), {str(results)!r}, python={str(fake)!r})")
    runner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    pid_file = run.out / "trainer.pid"
    try:
        _wait(lambda: pid_file.is_file() and pid_file.read_text(), "the runner's child")
        child = int(pid_file.read_text())
        runner.send_signal(signal.SIGKILL)  # the child lives on, orphaned, still holding the lock
        assert runner.wait(timeout=30) == -signal.SIGKILL
        assert f"pid {child} on" in (lock_holder(run.out) or "")
        lines: list[str] = []
        assert st.run_study(study, results, python=str(fake), echo=lines.append) == 0
        assert any("running elsewhere, skipped" in line for line in lines)
        assert (run.out / st.LOG_FILE).read_text().count("\n$ ") == 1  # launched once, not twice
        assert "running" in {st.run_status(run)}
    finally:
        if pid_file.is_file() and pid_file.read_text():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        runner.kill()
    _wait(lambda: lock_holder(run.out) is None, "the lock to drop with its holder", timeout=30)
    with RunLock(run.out):  # and it can be taken again
        pass
    assert json.loads((run.out / st.PLANNED_CONFIG).read_text())["seed"] == 0


# --------------------------------------------------------------------------------------- divergence ---
DIVERGING_TRAINER = """#!{python}
# Stands in for `python -m recalib train`: the run diverges in its second epoch (as run.py reports it).
import json, os, sys
cfg_path = sys.argv[sys.argv.index("--config") + 1]
cfg = json.load(open(cfg_path))
out = os.path.dirname(cfg_path)
json.dump(cfg, open(os.path.join(out, "config.json"), "w"))
message = ("the training loss is not finite (NaN or inf) at global step 5; training stopped and the last good "
           "checkpoint (epoch 1) was kept. Lower the learning rate (--lr)")
json.dump({{"status": "diverged", "message": message, "epochs_completed": 1}},
          open(os.path.join(out, "summary.json"), "w"))
sys.exit(1)
"""


def test_a_diverged_run_is_called_diverged_by_run_and_report(tmp_path):
    fake = tmp_path / "diverging_python"
    fake.write_text(DIVERGING_TRAINER.format(python=sys.executable))
    fake.chmod(0o755)
    study = st.load_study(_write(tmp_path, MINI), variant="one")
    results = tmp_path / "res"
    lines: list[str] = []
    assert st.run_study(study, results, python=str(fake), echo=lines.append) == 1
    assert any("DIVERGED resnet20__mssar" in x and "not finite (NaN or inf) at global step 5" in x for x in lines)
    lines.clear()
    assert st.run_study(study, results, python=str(fake), echo=lines.append) == 1  # nothing launched again
    assert not any("every selected run is finished" in x for x in lines)
    assert any(x.startswith("nothing to do: 1 diverged, 0 finished") for x in lines)
    assert any(x.startswith("diverged: resnet20__mssar") and "global step 5" in x for x in lines)
    from recalib.studies import write_report

    with pytest.raises(ValueError, match=r"no finished runs .*; 1 run\(s\) diverged: resnet20__mssar__fashion-mnist"
                                         r"__s0 \(the training loss is not finite \(NaN or inf\) at global step 5\)"):
        write_report(study, results)


# ------------------------------------------------------------ issue 22: broken folders, interleaved runners ---
FINISHING_TRAINER = """#!{python}
# Stands in for `python -m recalib train`: finishes the run at once and counts its launches.
import json, os, sys
cfg_path = sys.argv[sys.argv.index("--config") + 1]
cfg = json.load(open(cfg_path))
out = os.path.dirname(cfg_path)
json.dump(cfg, open(os.path.join(out, "config.json"), "w"))
open(os.path.join(out, "launches"), "a").write("x")
json.dump({{"status": "completed", "epochs_completed": cfg["epochs"], "final_test_error": 10.0}},
          open(os.path.join(out, "summary.json"), "w"))
"""


def _finishing(tmp_path: Path) -> Path:
    fake = tmp_path / "finishing_python"
    fake.write_text(FINISHING_TRAINER.format(python=sys.executable))
    fake.chmod(0o755)
    return fake


def test_a_bad_summary_is_reported_as_broken_and_the_rest_runs(tmp_path):
    """Issue 22, item 9: a summary.json holding [] or null crashed `study run`, --dry-run included."""
    study = st.load_study(_write(tmp_path, MINI))
    results = tmp_path / "res"
    runs = st.plan_runs(study, results)
    for run, text in zip(runs[:2], ("[]", "null")):
        run.out.mkdir(parents=True)
        (run.out / "summary.json").write_text(text)
    assert [st.run_status(r) for r in runs] == ["broken", "broken", "pending", "pending"]
    lines: list[str] = []
    assert st.run_study(study, results, dry_run=True, echo=lines.append) == 0
    assert "4 runs: 2 pending, 2 broken" in lines
    assert sum(x.startswith("broken: ") and "is not a JSON object" in x for x in lines) == 2
    lines.clear()
    assert st.run_study(study, results, python=str(_finishing(tmp_path)), echo=lines.append) == 2
    assert [st.run_status(r) for r in runs] == ["broken", "broken", "finished", "finished"]
    assert not (runs[0].out / "launches").exists() and (runs[0].out / "summary.json").read_text() == "[]"
    assert any("2 run(s) finished, 0 failed, 2 broken" in x for x in lines)


def test_planted_lock_and_log_files_fail_their_run_only(tmp_path):
    """Issue 22, item 1: train.log was opened through a planted link (the launcher appended to its target) and
    a FIFO named .lock hung the study runner."""
    study = st.load_study(_write(tmp_path, MINI))
    results = tmp_path / "res"
    runs = st.plan_runs(study, results)
    victim = tmp_path / "precious.txt"
    victim.write_text("DATA\n")
    for r in runs[:2]:
        r.out.mkdir(parents=True)
    (runs[0].out / st.LOG_FILE).symlink_to(victim)
    os.mkfifo(runs[1].out / ".lock")
    assert st.run_status(runs[1]) == "broken"
    lines: list[str] = []
    assert st.run_study(study, results, python=str(_finishing(tmp_path)), echo=lines.append) == 2
    assert victim.read_text() == "DATA\n" and (runs[0].out / st.LOG_FILE).is_symlink()
    assert any(x.startswith(f"BROKEN {runs[0].run_id}: the log ") and "symbolic link" in x for x in lines)
    assert any(x.startswith(f"broken: {runs[1].run_id}: the run lock") and "FIFO" in x for x in lines)
    assert [st.run_status(r) for r in runs[2:]] == ["finished", "finished"]
    assert not (runs[0].out / "launches").exists() and not (runs[1].out / "launches").exists()


def test_interleaved_runners_never_relaunch_a_finished_run(tmp_path, monkeypatch):
    """Issue 22, item 11: runner B planned while runner A still trained; once A had finished the run, B
    launched it again (rewriting its summary). B now checks again once it holds the run's lock."""
    study = st.load_study(_write(tmp_path, MINI), variant="one")
    results = tmp_path / "res"
    (run,) = st.plan_runs(study, results)
    fake = _finishing(tmp_path)
    real_status = launch.run_status
    interleaved: list[str] = []

    def status_then_runner_a(r, **kw):  # noqa: ANN001, ANN202
        before = real_status(r, **kw)
        if not interleaved:  # B has read the state; A now runs the whole study before B goes on
            interleaved.append(before)
            monkeypatch.setattr(launch, "run_status", real_status)
            assert st.run_study(study, results, python=str(fake), echo=lambda _: None) == 0
            monkeypatch.setattr(launch, "run_status", status_then_runner_a)
        return before

    monkeypatch.setattr(launch, "run_status", status_then_runner_a)
    lines: list[str] = []
    assert st.run_study(study, results, python=str(fake), echo=lines.append) == 0
    assert interleaved == ["pending"]
    assert (run.out / "launches").read_text() == "x"  # launched once, by runner A
    assert any("finished meanwhile" in x and run.run_id in x for x in lines)
