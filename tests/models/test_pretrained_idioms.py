"""timm's pretrained idioms (issue 19, item 2) and the pinned-weight check (issue 22, items 2, 10 and the Hub-config
part of 11): ``pretrained=True``, classes and channels from the weights, a new head, ``list_models`` patterns,
``features_only``, package tags before folders, hashes required, records that never fetch weights.

The Hub is never contacted: ``huggingface_hub.snapshot_download`` is replaced, or runs in offline mode on a cache
folder the test builds."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from recalib.models import create_model, list_models
from recalib.pretrained import MANIFEST, canonical_recalib, from_pretrained, list_pretrained

safetensors_torch = pytest.importorskip("safetensors.torch")

SE = next(e for e in list_pretrained() if canonical_recalib(e.recalib) == canonical_recalib("se"))


def _packaged(entry: Any) -> dict[str, torch.Tensor]:
    """The packaged file's tensors, read directly with safetensors (the reference every load is compared with)."""
    return safetensors_torch.load_file(str(MANIFEST.parent / entry.file))


def _same(model: torch.nn.Module, state: dict[str, torch.Tensor], skip: str = "\0") -> bool:
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(skip)}
    return set(own) == {k for k in state if not k.startswith(skip)} and all(torch.equal(v, state[k]) for k, v in own.items())


def _export(folder: Path, state: dict[str, torch.Tensor], *, hashed: bool = True, **fields: Any) -> Path:
    """A folder in the export layout holding ``state`` (resnet20 + se, one channel, ten classes by default)."""
    folder.mkdir(parents=True, exist_ok=True)
    blob = safetensors_torch.save({k: v.contiguous() for k, v in state.items()})
    (folder / "model.safetensors").write_bytes(blob)
    config: dict[str, Any] = {"format": "recalib-pretrained-v1", "architecture": "resnet20", "recalib": "se",
                              "in_chans": 1, "num_classes": 10, "model_kwargs": {},
                              "pretrained_cfg": {"dataset": "fashion-mnist", "input_size": [1, 28, 28]}}
    if hashed:
        config["files"] = {"model.safetensors": {"sha256": hashlib.sha256(blob).hexdigest()}}
    config.update(fields)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _zeros() -> dict[str, torch.Tensor]:
    return {k: torch.zeros_like(v) for k, v in create_model("resnet20", recalib="se", in_chans=1).state_dict().items()}


# ------------------------------------------------------------------------------------ issue 19, item 2 ---
def test_pretrained_true_loads_the_default_weights_with_their_channels_and_classes() -> None:
    model = create_model("resnet20", recalib="se", pretrained=True)  # no in_chans / num_classes given
    assert (model.conv1.in_channels, model.num_classes) == (SE.in_chans, SE.num_classes) == (1, 10)
    assert _same(model, _packaged(SE))
    assert model.pretrained_cfg["input_size"] == (1, 28, 28) and model.pretrained_cfg["verified"] is True
    tagged = create_model("resnet20", recalib="se", pretrained="fashion-mnist")  # a tag: the same defaults
    assert tagged.conv1.in_channels == 1 and _same(tagged, _packaged(SE))
    assert not _same(create_model("resnet20", recalib="se", in_chans=1, pretrained=False), _packaged(SE))
    with pytest.raises(ValueError, match=r"no weights for resnet56 \+ se.*packaged: resnet20"):
        create_model("resnet56", recalib="se", pretrained=True)


@pytest.mark.parametrize("num_classes", [5, 0])
def test_another_num_classes_loads_the_backbone_and_names_the_keys_not_loaded(num_classes: int) -> None:
    with pytest.warns(UserWarning, match=r"not loaded: fc\.bias, fc\.weight \(the weights' 10-class classifier\)"):
        model = create_model("resnet20", recalib="se", pretrained="fashion-mnist", num_classes=num_classes)
    assert _same(model, _packaged(SE), skip="fc.")
    assert model.num_classes == num_classes == model.pretrained_cfg["num_classes"]
    with torch.no_grad():
        out = model.eval()(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, num_classes or 64)  # 0: pooled features, as timm


def test_other_input_channels_adapt_the_first_convolution_as_timm_does(tmp_path: Path) -> None:
    """Grey weights on three channels: the filters repeated and divided by three, so a grey image given as three
    equal channels gives exactly the grey model's output."""
    grey = create_model("resnet20", recalib="se", pretrained=True).eval()
    with pytest.warns(UserWarning, match=r"conv1.weight adapted from 1 to 3 input channel\(s\)"):
        rgb = create_model("resnet20", recalib="se", pretrained=True, in_chans=3).eval()
    packaged = _packaged(SE)
    torch.testing.assert_close(rgb.conv1.weight, packaged["conv1.weight"].repeat(1, 3, 1, 1) / 3)
    assert _same(rgb, packaged, skip="conv1.")
    cfg = rgb.pretrained_cfg
    assert cfg["input_size"] == (3, 28, 28) and cfg["mean"] == grey.pretrained_cfg["mean"] * 3
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(rgb(x.expand(-1, 3, -1, -1)), grey(x), rtol=1e-4, atol=1e-5)
    with pytest.warns(UserWarning, match="from 3 to 1"):  # and back: the three filters summed
        back = create_model("resnet20", recalib="se", in_chans=1, pretrained=_export(
            tmp_path / "rgb", rgb.state_dict(), in_chans=3, pretrained_cfg={"input_size": [3, 28, 28]}))
    torch.testing.assert_close(back.conv1.weight, packaged["conv1.weight"])


def test_torch_hub_entry_points_take_pretrained_true() -> None:
    repo = str(Path(__file__).resolve().parents[2])
    model = torch.hub.load(repo, "resnet20", recalib="se", pretrained=True, source="local")
    assert _same(model, _packaged(SE))


def test_list_models_takes_fnmatch_patterns() -> None:
    every = list_models()
    assert list_models("resnet*") == [n for n in every if n.startswith("resnet")]
    assert list_models(["resnet2?", "dense*"]) == [n for n in every if n == "resnet20" or n.startswith("densenet")]
    assert list_models("resnet*", exclude_filters="*0") == [n for n in every if fnmatch.fnmatchcase(n, "resnet*")
                                                           and not n.endswith("0")]
    assert list_models(pretrained=True) == [n for n in every if n in {e.architecture for e in list_pretrained()}]
    assert list_models("nothing*") == [] and list_models("") == every


@pytest.mark.parametrize("name, in_chans, size", [("resnet20", 1, 28), ("densenet_bc_100", 3, 32),
                                                  ("resnet18", 3, 64)])
def test_features_only_returns_the_feature_maps_of_feature_info(name: str, in_chans: int, size: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_chans=in_chans).eval()
    features = create_model(name, in_chans=in_chans, features_only=True).eval()
    features.model.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("fc.")})
    x = torch.randn(2, in_chans, size, size)
    with torch.no_grad():  # the reference: each family's stages run by hand, in the paper's order
        if name == "resnet20":
            h = F.relu(model.bn1(model.conv1(x)))
            stages = [model.layer1, model.layer2, model.layer3]
        elif name == "resnet18":
            h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
            stages = [model.layer1, model.layer2, model.layer3, model.layer4]
        else:
            h = model.conv1(x)
            stages = [model.block1, torch.nn.Sequential(model.trans1, model.block2),
                      torch.nn.Sequential(model.trans2, model.block3)]
        expected = []
        for stage in stages:
            h = stage(h)
            expected.append(h)
        got = features(x)
    assert isinstance(got, list) and len(got) == len(model.feature_info) == len(expected)
    for g, e, info in zip(got, expected, model.feature_info):
        assert g.shape[1] == info["num_chs"] and g.shape[-1] == -(-size // info["reduction"])
        torch.testing.assert_close(g, e)
    assert features.feature_info.channels() == [f["num_chs"] for f in model.feature_info]


def test_features_only_with_out_indices_and_pretrained_weights() -> None:
    features = create_model("resnet20", recalib="se", pretrained=True, features_only=True, out_indices=(1, -1))
    assert features.feature_info.channels() == [32, 64] and features.feature_info.reduction() == [2, 4]
    assert _same(features.model, _packaged(SE), skip="fc.")
    with torch.no_grad():
        maps = features.eval()(torch.randn(1, 1, 28, 28))
    assert [tuple(m.shape) for m in maps] == [(1, 32, 14, 14), (1, 64, 7, 7)]
    for bad in [(3,), (0, 0), 1, ()]:
        with pytest.raises(ValueError, match="out_indices"):
            create_model("resnet20", features_only=True, out_indices=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="features_only=True"):
        create_model("resnet20", out_indices=(0,))


def test_from_pretrained_accepts_package_tags() -> None:
    model = from_pretrained("fashion-mnist", recalib="se")
    assert type(model).__name__ == "CifarResNet" and _same(model, _packaged(SE))
    with pytest.raises(ValueError, match=r"6 packaged weights match; pick one with model_name=/recalib= \(.*'se'"):
        from_pretrained("fashion-mnist")
    with pytest.raises(ValueError, match="did you mean 'fashion-mnist'"):
        from_pretrained("fashion-mnst", recalib="se")


def test_messages_tell_a_mistyped_folder_from_an_unknown_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _export(tmp_path / "runs" / "export", _zeros())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"no pretrained weights tagged 'fashion-mnst' \(did you mean 'fashion-mnist'"):
        create_model("resnet20", recalib="se", pretrained="fashion-mnst")
    with pytest.raises(FileNotFoundError, match=r"folder 'runs/exprt' does not exist; did you mean 'runs/export'"):
        create_model("resnet20", recalib="se", pretrained="runs/exprt")
    with pytest.raises(FileNotFoundError, match=r"folder './runs/exprt' does not exist; did you mean"):
        create_model("resnet20", recalib="se", pretrained="./runs/exprt")
    (tmp_path / "mine").mkdir()
    with pytest.raises(ValueError, match=r"tagged 'mine'.*a folder 'mine' exists here.*pretrained='./mine'"):
        create_model("resnet20", recalib="se", pretrained="mine")


def test_an_org_name_string_is_a_missing_folder_with_the_hub_spelling_named(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"folder 'hf/nonexistent' does not exist; a Hugging Face Hub "
                                                r"repository is written 'hf-hub:hf/nonexistent'"):
        create_model("resnet20", recalib="se", pretrained="hf/nonexistent")


def test_hub_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = pytest.importorskip("huggingface_hub")
    from huggingface_hub import errors

    def missing(repo_id: str, **kwargs: object) -> str:
        exc = errors.RepositoryNotFoundError.__new__(errors.RepositoryNotFoundError)  # no HTTP response to build it from
        Exception.__init__(exc, f"404 Client Error\nRepository Not Found: {repo_id}")
        raise exc

    monkeypatch.setattr(hub, "snapshot_download", missing)
    with pytest.raises(FileNotFoundError, match=r"^hf-hub:hf/nonexistent: no Hub repository hf/nonexistent") as err:
        create_model("resnet20", recalib="se", pretrained="hf-hub:hf/nonexistent")
    assert "\n" not in str(err.value)


def test_hub_offline_mode_uses_the_local_cache_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real ``snapshot_download`` with ``HF_HUB_OFFLINE``: a cached repository loads, an uncached one is one line."""
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--org--fm-se"
    state = {k: v + 1 for k, v in _zeros().items()}
    _export(repo / "snapshots" / commit, state)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    model = create_model("resnet20", recalib="se", pretrained="hf-hub:org/fm-se")
    assert _same(model, state) and model.pretrained_cfg["source"] == "hf-hub:org/fm-se"
    assert from_pretrained("hf-hub:org/fm-se").pretrained_cfg["source"] == "hf-hub:org/fm-se"
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache"):
        create_model("resnet20", recalib="se", pretrained="hf-hub:org/other")


# ------------------------------------------------------------------------------------ issue 22, item 2 ---
def test_a_package_tag_is_never_shadowed_by_a_folder_of_that_name(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _export(tmp_path / "fashion-mnist", _zeros())  # hashed, loadable, and all zeros
    monkeypatch.chdir(tmp_path)
    model = create_model("resnet20", recalib="se", in_chans=1, pretrained="fashion-mnist")
    assert _same(model, _packaged(SE)) and model.pretrained_cfg["tag"] == "fashion-mnist"
    for explicit in ("./fashion-mnist", Path("fashion-mnist"), str(tmp_path / "fashion-mnist")):  # a path: the folder
        assert _same(create_model("resnet20", recalib="se", pretrained=explicit), _zeros())


def test_a_folder_without_a_recorded_hash_is_refused_unless_loaded_loudly_as_unverified(tmp_path: Path) -> None:
    folder = _export(tmp_path / "unhashed", _zeros(), hashed=False)
    with pytest.raises(ValueError, match="records no SHA-256 for model.safetensors.*allow_unverified=True"):
        create_model("resnet20", recalib="se", pretrained=folder)
    with pytest.raises(ValueError, match="records no SHA-256"):
        from_pretrained(folder)
    with pytest.warns(UserWarning, match="loaded UNVERIFIED weights"):
        model = create_model("resnet20", recalib="se", pretrained=folder, allow_unverified=True)
    assert _same(model, _zeros()) and model.pretrained_cfg["verified"] is False
    with pytest.warns(UserWarning, match="UNVERIFIED"):
        assert from_pretrained(folder, allow_unverified=True).pretrained_cfg["verified"] is False


# ---------------------------------------------------------------------------------- issue 22, item 10 ---
def test_a_checkpoint_naming_weights_rebuilds_nothing_and_fetches_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from recalib.train import TrainConfig, model_from_checkpoint, save_checkpoint
    from recalib.train.checkpoint import FORMAT_VERSION

    asked: list[str] = []
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(hub, "snapshot_download", lambda repo_id, **kw: asked.append(repo_id) or str(tmp_path))
    model = create_model("resnet20", recalib="se", in_chans=1)
    for kwargs in ({"pretrained": "hf-hub:org/evil"}, {"pretrained": True}, {"features_only": True}):
        path = save_checkpoint({"format_version": FORMAT_VERSION, "model": model.state_dict(), "config": {},
                                "model_args": {"name": "resnet20", "num_classes": 10, "in_chans": 1,
                                               "recalib": "se", "kwargs": kwargs}}, tmp_path / "checkpoint.pt")
        with pytest.raises(ValueError, match=f"may only describe the architecture, not {next(iter(kwargs))}"):
            model_from_checkpoint(path)
    with pytest.raises(ValueError, match="may only describe the architecture, not pretrained"):
        TrainConfig(model_args="pretrained='hf-hub:org/evil'")  # so no run records one
    from recalib.cli import main

    save_checkpoint({"format_version": FORMAT_VERSION, "model": model.state_dict(), "config": {},
                     "model_args": {"name": "resnet20", "num_classes": 10, "in_chans": 1, "recalib": "se",
                                    "kwargs": {"pretrained": "hf-hub:org/evil"}}}, tmp_path / "checkpoint.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "checkpoint.pt"), "--device", "cpu"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    from recalib.pretrained.export import export_pretrained

    (tmp_path / "summary.json").write_text(json.dumps({"status": "completed"}))
    with pytest.raises(ValueError, match="may only describe the architecture, not pretrained"):
        export_pretrained(tmp_path, tmp_path / "export", allow_dirty=True)  # export rebuilds it the same way
    assert not (tmp_path / "export").exists()
    assert asked == []


# ------------------------------------------------------------------------- issue 22, item 11 (Hub part) ---
@pytest.mark.parametrize("field, value, named", [
    ("files", [], "files must be an object"),
    ("files", {"model.safetensors": {"sha256": 5}}, "files.model.safetensors must be"),
    ("files", {"model.safetensors": "abc"}, "files.model.safetensors must be"),
    ("recalib", 5, "recalib must be an operator spec string"),
    ("in_chans", "1", "in_chans must be a positive int"),
    ("num_classes", 1e11, "num_classes must be a non-negative int"),
    ("model_kwargs", [], "model_kwargs must be an object"),
    ("model_kwargs", {"pretrained": "hf-hub:org/evil"}, "not pretrained"),
    ("pretrained_cfg", {"mean": "x"}, "pretrained_cfg.mean must be"),
    ("pretrained_cfg", 3, "pretrained_cfg must be an object"),
])
def test_malformed_hub_configs_are_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str,
                                                   value: Any, named: str) -> None:
    hub = pytest.importorskip("huggingface_hub")
    folder = _export(tmp_path / "repo", _zeros(), **{field: value})
    monkeypatch.setattr(hub, "snapshot_download", lambda repo_id, **kw: str(folder))
    with pytest.raises(ValueError, match=named) as err:
        create_model("resnet20", recalib="se", pretrained="hf-hub:org/bad")
    assert "\n" not in str(err.value) and len(str(err.value)) < 400


def test_a_deeply_nested_hub_config_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = pytest.importorskip("huggingface_hub")
    folder = _export(tmp_path / "repo", _zeros())
    (folder / "config.json").write_text('{"format": "recalib-pretrained-v1", "files": ' + "[" * 100_000 + "]" * 100_000 + "}")
    monkeypatch.setattr(hub, "snapshot_download", lambda repo_id, **kw: str(folder))
    with pytest.raises(ValueError, match="nested too deeply") as err:
        from_pretrained("hf-hub:org/deep")
    assert "\n" not in str(err.value)
