"""Recipes, config validation and the command-line mapping of TrainConfig."""

import argparse
import json

import pytest

from recalib.train.cli import config_from_args, configure_parser
from recalib.train.config import RECIPES, TrainConfig, config_diff, resolve_config


def test_recipe_names() -> None:
    assert set(RECIPES) == {"paper-cifar-resnet", "paper-cifar-densenet", "paper-imagenet", "quick"}


@pytest.mark.parametrize(
    ("recipe", "batch", "epochs", "lr", "milestones"),
    [  # docs/spec.md, section 6, typed from the table
        ("paper-cifar-resnet", 128, 160, 0.1, (80, 120)),
        ("paper-cifar-densenet", 64, 300, 0.1, (150, 225)),
        ("paper-imagenet", 1024, 100, 0.6, (30, 60, 90)),
    ],
)
def test_paper_recipes_follow_spec(recipe: str, batch: int, epochs: int, lr: float, milestones: tuple) -> None:
    c = resolve_config(recipe)
    assert (c.batch_size, c.epochs, c.lr, c.milestones) == (batch, epochs, lr, milestones)
    assert (c.schedule, c.gamma, c.momentum, c.nesterov, c.wd) == ("multistep", 0.1, 0.9, True, 1e-4)
    assert c.recipe == recipe


def test_quick_recipe_is_the_quickstart() -> None:
    c = resolve_config("quick")
    assert (c.model, c.recalib, c.dataset, c.subset, c.val_split, c.test_subset) == (
        "resnet20", "mssar", "fashion-mnist", 0, 0, 0)


def test_overrides_and_roundtrip() -> None:
    c = resolve_config("paper-cifar-resnet", epochs=3, lr=1, milestones=[1, 2])
    assert c.epochs == 3 and c.lr == 1.0 and isinstance(c.lr, float) and c.milestones == (1, 2)
    d = json.loads(json.dumps(c.to_dict()))
    assert TrainConfig.from_dict(d) == c
    assert config_diff(c, resolve_config("paper-cifar-resnet", epochs=3, lr=1, milestones=[1, 2], device="cpu")) == {}
    assert config_diff(c, resolve_config("paper-cifar-resnet", epochs=4, lr=1, milestones=[1, 2])) == {"epochs": (3, 4)}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bogus": 1}, "unknown field.*bogus.*valid fields"),
        ({"epochs": 0}, "epochs"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"schedule": "step"}, "unknown schedule 'step'; valid choices: multistep"),
        ({"amp": "fp8"}, "unknown amp"),
        ({"milestones": (5, 3)}, "milestones"),
        ({"nesterov": True, "momentum": 0.0}, "no-nesterov"),
        ({"flip": "yes"}, "flip must be true or false"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
    ],
)
def test_bad_values_are_value_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resolve_config("paper-cifar-resnet", **kwargs)


def test_unknown_recipe_lists_choices() -> None:
    with pytest.raises(ValueError, match="unknown recipe 'paper'.*paper-cifar-resnet.*quick"):
        resolve_config("paper")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return parser.parse_args(argv)


def test_cli_maps_onto_every_field() -> None:
    args = _parse(["--recipe", "quick", "--epochs", "2", "--batch-size", "64", "--lr", "0.05", "--wd", "0",
                   "--seed", "3", "--subset", "100", "--device", "cpu", "--data-dir", "/x", "--milestones", "1",
                   "--no-flip", "--channels-last", "--schedule", "multistep"])
    c = config_from_args(args)
    assert (c.recipe, c.epochs, c.batch_size, c.lr, c.wd, c.seed, c.subset, c.device, c.data_dir) == (
        "quick", 2, 64, 0.05, 0.0, 3, 100, "cpu", "/x")
    assert c.milestones == (1,) and c.flip is False and c.channels_last is True
    # Not given -> the recipe's value.
    assert c.model == "resnet20" and c.pad == RECIPES["quick"]["pad"]
    for name in TrainConfig.__dataclass_fields__:
        if name != "recipe":
            assert f"--{name.replace('_', '-')}" in _help_text()


def _help_text() -> str:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return parser.format_help()


def test_cli_config_file_and_resume_base(tmp_path) -> None:
    c = resolve_config("quick", epochs=2, lr=0.123, out=str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(c.to_dict()))
    from_file = config_from_args(_parse(["--config", str(tmp_path / "run" / "config.json"), "--epochs", "5"]))
    assert from_file.lr == 0.123 and from_file.epochs == 5 and from_file.recipe == "quick"
    resumed = config_from_args(_parse(["--out", str(tmp_path / "run"), "--resume"]))
    assert resumed == c
    with pytest.raises(ValueError, match="differs from the recipe"):
        config_from_args(_parse(["--out", str(tmp_path / "run"), "--resume", "--recipe", "paper-imagenet"]))
    (tmp_path / "bad.json").write_text(json.dumps({"epochs": 1, "colour": "red"}))
    with pytest.raises(ValueError, match="colour"):
        config_from_args(_parse(["--config", str(tmp_path / "bad.json")]))


@pytest.mark.parametrize("text", ["multi_stage=True, 1", "shortcut=B", "x=__import__('os')", "**kw"])
def test_model_args_are_keyword_literals(text: str) -> None:
    with pytest.raises(ValueError, match="model_args"):
        resolve_config("quick", model_args=text)


def test_model_args_parse() -> None:
    from recalib.train.config import parse_model_args

    assert parse_model_args("") == {}
    assert parse_model_args("multi_stage=True, shortcut='B'") == {"multi_stage": True, "shortcut": "B"}
