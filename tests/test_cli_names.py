"""The command line's conventions: names checked before any work, with a did-you-mean (issue 18 item 6, issue 19
item 5); no abbreviated options; ``--version``; canonical data-set names stored; defaults in ``--help``;
``quickstart --subset``; ``study report NAME`` without ``--results``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from recalib.cli import COMMANDS, build_parser, main
from recalib.train.config import RECIPES, TrainConfig, resolve_config

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

REPO = Path(__file__).resolve().parents[1]


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors
        return int(exc.code or 0)


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def no_data_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to read a data set fails the test: a bad name must be reported before."""
    import recalib.data.registry as registry

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a data set was read before the names were checked")

    monkeypatch.setattr(registry, "load_fashion_mnist", refuse)
    monkeypatch.setattr(registry, "load_cifar", refuse)


# Each bad name with the suggestion a user expects (written by hand).
BAD_NAMES = [
    (["train", "--recipe", "quick", "--recalib", "msar"], "did you mean 'mssar'?"),
    (["train", "--recipe", "quick", "--model", "resnet21"], "did you mean 'resnet20'?"),
    (["train", "--recipe", "quick", "--dataset", "fashion_mnst"], "did you mean 'fashion-mnist'?"),
    (["train", "--recipe", "quik"], "did you mean 'quick'?"),
    (["train", "--recipe", "quick", "--schedule", "cosin"], "did you mean 'cosine'?"),
    (["train", "--recipe", "quick", "--recalib", "mssar(scale=(1, 2))"], "unknown argument(s) scale"),
    (["train", "--recipe", "quick", "--amp", "bf61"], "did you mean 'bf16'?"),
    (["train", "--recipe", "quick", "--logger", "tensorbord"], "did you mean 'tensorboard'?"),
    (["train", "--recipe", "quick", "--device", "cpuu"], "did you mean 'cpu'?"),
    (["eval", "--checkpoint", "missing.pt", "--amp", "bf61"], "did you mean 'bf16'?"),
    (["eval", "--checkpoint", "missing.pt", "--dataset", "cifar01"], "did you mean 'cifar10'?"),
    (["profile", "--models", "resnet20", "--recalib", "none,msar"], "did you mean 'mssar'?"),
    (["profile", "--models", "resnet2O", "--recalib", "se"], "did you mean 'resnet20'?"),
    (["visualize", "--pretrained", "fashion-mnist", "--recalib", "sse"], "did you mean 'se'?"),
    (["visualize", "--pretrained", "fashion-mnist", "--dataset", "fmnst"], "did you mean 'fashion-mnist'?"),
    (["demo", "--ops", "se;gee"], "did you mean 'ge'?"),
    (["demo", "--ops", "mssar(strategy='slidng')"], "did you mean 'sliding'?"),
    (["study", "run", "fashion-mnst", "--dry-run"], "did you mean 'fashion-mnist'?"),
    (["study", "run", "fashion-mnist", "--variant", "cpu-budgt", "--dry-run"], "did you mean 'cpu-budget'?"),
    (["study", "report", "table2-cifa"], "did you mean 'table2-cifar'?"),
    (["study", "rum", "fashion-mnist"], "did you mean 'run'?"),
    (["trian", "--recipe", "quick"], "did you mean 'train'?"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_NAMES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_names_exit_2_with_a_suggestion_before_any_work(argv: list[str], message: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str], no_data_reads: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    extra = ["--out", str(out)] if argv[0] in ("train", "trian") else []
    assert _exit_code(argv + extra) == 2
    assert message in _one_line(capsys)
    assert not out.exists()  # no run folder, no lock file
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere


def test_a_study_with_an_unknown_operator_is_refused_when_planned(tmp_path: Path) -> None:
    from recalib import studies as st

    path = tmp_path / "typo.toml"
    path.write_text('[study]\nname = "typo"\nrecipe = "quick"\ndatasets = ["fashion-mnist"]\nseeds = [0]\n'
                    '[grid]\nmodels = ["resnet20"]\n[[operators]]\nkey = "m"\nlabel = "MS-SAR"\nspec = "msar"\n')
    with pytest.raises(ValueError, match="did you mean 'mssar'"):
        st.plan_runs(st.load_study(path, variant="none"), tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_abbreviated_options_are_refused(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for argv in (["train", "--epoch", "2", "--print-config"], ["eval", "--checkpoint", "x.pt", "--batch", "8"],
                 ["study", "run", "fashion-mnist", "--dry"], ["profile", "--model", "resnet20"]):
        assert _exit_code(argv) == 2, argv
        assert "unrecognized arguments" in _one_line(capsys), argv
    from recalib.train import quickstart  # its own `python -m recalib.train.quickstart` parser too

    monkeypatch.setattr(quickstart, "run", lambda args: 0)
    with pytest.raises(SystemExit) as exc:
        quickstart.main(["--epoch", "1"])
    assert exc.value.code == 2


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    expected = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert _exit_code(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"recalib {expected}"


def test_data_set_aliases_are_stored_under_the_canonical_name(capsys: pytest.CaptureFixture[str]) -> None:
    """Decision: an alias is accepted and stored canonical (config.json, summaries and run folders agree)."""
    assert main(["train", "--recipe", "quick", "--dataset", "fmnist", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["dataset"] == "fashion-mnist"
    assert resolve_config("quick", dataset="CIFAR-10").dataset == "cifar10"
    stored = resolve_config("quick").to_dict()
    assert TrainConfig.from_dict({**stored, "dataset": "fashion_mnist"}).dataset == "fashion-mnist"


def _parsers(parser: argparse.ArgumentParser):  # noqa: ANN202
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_help_shows_every_default() -> None:
    """Every option that has a value when not given says which in ``--help`` (train: the dataclass and recipes)."""
    from recalib.train.config import FIELD_NAMES

    fields = {f"--{name.replace('_', '-')}": name for name in FIELD_NAMES}
    for command in COMMANDS:
        for parser in _parsers(build_parser(command)):
            text = " ".join(parser.format_help().split())
            for action in parser._actions:
                if not action.option_strings or isinstance(action, argparse._HelpAction):
                    continue
                flag = action.option_strings[0]
                if command == "train" and flag in fields:
                    default = getattr(TrainConfig(), fields[flag])
                    if default in (None, ""):
                        continue
                    shown = " ".join(map(str, default)) if isinstance(default, tuple) else str(default)
                elif action.default in (None, "", [], argparse.SUPPRESS) or isinstance(action.default, bool):
                    continue
                else:
                    shown = str(action.default)
                help_text = " ".join(parser._get_formatter()._expand_help(action).split())
                assert "default" in help_text and (shown in help_text or "default:" not in help_text), \
                    (parser.prog, flag, help_text)
            assert "%(default)" not in text


def test_train_help_names_the_recipes_that_change_a_default() -> None:
    text = " ".join(build_parser("train").format_help().split())
    epochs = {name: values["epochs"] for name, values in RECIPES.items() if "epochs" in values}
    for recipe, value in epochs.items():
        assert f"{recipe}: {value}" in text


def test_quickstart_subset_is_a_cheap_smoke_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(RECIPES, "quick", {**RECIPES["quick"], "progress": False, "tensorboard": False})
    assert main(["quickstart", "--out", str(tmp_path / "qs"), "--device", "cpu", "--threads", "1", "--epochs", "1",
                 "--subset", "256", "--test-subset", "100"]) == 0
    summary = json.loads((tmp_path / "qs" / "summary.json").read_text())
    assert (summary["train_images"], summary["test_images"], summary["config"]["epochs"]) == (256, 100, 1)
    assert "test error" in capsys.readouterr().out


def test_study_report_finds_the_committed_results_of_a_shipped_study(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from recalib import studies as st
    from recalib.studies.cli import report_results

    committed = REPO / "results" / "studies"
    study = st.load_study("fashion-mnist", variant="cpu-budget")
    assert (committed / study.dir_name).is_dir()  # the checkout's committed runs of this study
    monkeypatch.chdir(tmp_path)  # a folder without runs/studies or results/studies
    assert report_results(study).resolve() == committed.resolve()
    (tmp_path / "runs" / "studies" / study.dir_name).mkdir(parents=True)  # the user's own runs come first
    assert report_results(study) == Path("runs", "studies")
    with pytest.raises(FileNotFoundError, match="pass --results"):
        report_results(st.load_study("table2-cifar", variant="none"))


def test_study_report_without_results_writes_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["recalib"])
    assert main(["study", "report", "fashion-mnist", "--variant", "cpu-budget", "--allow-incomplete",
                 "--out", str(tmp_path / "report")]) == 0, capsys.readouterr().err
    assert (tmp_path / "report" / "runs.csv").is_file()
