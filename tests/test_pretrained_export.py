"""Items 4 and 6 of issue 13: weights carry their preprocessing (timm's ``pretrained_cfg``), and a run exports to
the Hugging Face layout (config.json + model.safetensors + README.md) that ``create_model(pretrained=...)`` loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recalib import complexity, create_model

pytest.importorskip("safetensors")
REPO = Path(__file__).resolve().parents[1]


def test_fashion_mnist_weights_state_the_input_they_were_trained_on() -> None:
    model = create_model("resnet20", recalib="mssar", in_chans=1, num_classes=10, pretrained="fashion-mnist")
    cfg = model.pretrained_cfg
    assert model.default_cfg is cfg  # timm's older name
    assert cfg["input_size"] == (1, 28, 28) and cfg["crop_pct"] == 1.0 and cfg["dataset"] == "fashion-mnist"
    # The normalisation of the training loader, measured here on the training images themselves.
    from recalib.data import load_small

    images = load_small("fashion-mnist", "train").images.double() / 255  # N, 1, 28, 28
    assert cfg["mean"][0] == pytest.approx(images.mean().item(), abs=1e-3)
    assert cfg["std"][0] == pytest.approx(images.std().item(), abs=1e-3)
    assert complexity(model) == complexity(model, (1, 1, 28, 28))


def test_timm_resolve_data_config_reads_it() -> None:
    timm_data = pytest.importorskip("timm.data")
    fm = timm_data.resolve_data_config({}, model=create_model("resnet20", in_chans=1))
    assert fm["input_size"] == (1, 28, 28) and len(fm["mean"]) == 1
    inet = timm_data.resolve_data_config({}, model=create_model("resnet50"))
    assert inet["input_size"] == (3, 224, 224) and inet["crop_pct"] == 0.875
    assert inet["mean"] == pytest.approx((0.485, 0.456, 0.406))
    c100 = create_model("resnet56", num_classes=100).pretrained_cfg
    assert c100["input_size"] == (3, 32, 32) and c100["dataset"] == "cifar100"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recalib.train import resolve_config, train

    out = tmp_path_factory.mktemp("run") / "r"
    train(resolve_config("quick", recalib="se", subset=256, test_subset=200, epochs=1, batch_size=64, threads=1,
                         out=str(out), progress=False))
    return out


def _export(run_dir: Path, out: Path, monkeypatch: pytest.MonkeyPatch, commit: str = "0" * 40) -> Path:
    from recalib.pretrained import export, export_pretrained

    monkeypatch.setattr(export, "_code_commit", lambda: commit)
    summary = json.loads((run_dir / "summary.json").read_text())
    if str(summary.get("git_commit", "")).endswith("-dirty"):  # the test's own checkout may be mid-edit
        summary["git_commit"] = commit
        (run_dir / "summary.json").write_text(json.dumps(summary))
    return export_pretrained(run_dir, out)


def test_export_writes_the_hub_layout_and_loads_back(run_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from recalib.pretrained import from_pretrained
    from recalib.train import load_checkpoint

    out = _export(run_dir, tmp_path / "export", monkeypatch)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["pretrained_cfg"]["input_size"] == [1, 28, 28]
    assert config["provenance"]["exported_at_commit"] == "0" * 40 and config["provenance"]["export_versions"]["torch"]
    card = (out / "README.md").read_text()
    assert "library_name: recalib" in card and "(1, 28, 28)" in card and "(0.286,)" in card
    model = create_model("resnet20", recalib="se", in_chans=1, num_classes=10, pretrained=str(out))
    state = load_checkpoint(run_dir / "checkpoint.pt")["model"]
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.pretrained_cfg["input_size"] == (1, 28, 28) and model.pretrained_cfg["source"] == str(out)
    assert type(from_pretrained(str(out))).__name__ == "CifarResNet"
    with pytest.raises(ValueError, match="for another model"):
        create_model("resnet20", recalib="mssar", in_chans=1, num_classes=10, pretrained=str(out))


def test_hf_hub_id_goes_through_huggingface_hub(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = pytest.importorskip("huggingface_hub")
    out = _export(run_dir, tmp_path / "export", monkeypatch)
    asked = []

    def snapshot_download(repo_id: str, revision: str | None = None, **kwargs: object) -> str:
        asked.append((repo_id, revision))
        return str(out)  # the Hub is unreachable here: a local folder stands in for the download

    monkeypatch.setattr(hub, "snapshot_download", snapshot_download)
    model = create_model("resnet20", recalib="se", in_chans=1, num_classes=10, pretrained="hf-hub:org/fm-se@v1")
    assert asked == [("org/fm-se", "v1")] and model.pretrained_cfg["dataset"] == "fashion-mnist"


def test_tampered_weights_are_refused_before_parsing(run_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = _export(run_dir, tmp_path / "export", monkeypatch)
    blob = bytearray((out / "model.safetensors").read_bytes())
    blob[-1] ^= 1
    (out / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="checksum mismatch"):
        create_model("resnet20", recalib="se", in_chans=1, num_classes=10, pretrained=str(out))


def test_export_refuses_a_dirty_tree(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="uncommitted changes"):
        _export(run_dir, tmp_path / "export", monkeypatch, commit="abc-dirty")
    assert not (tmp_path / "export").exists()


def test_export_cli_errors_are_one_line(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "recalib", "export", str(tmp_path / "nope"), "--out",
                          str(tmp_path / "e")], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "does not exist" in out.stderr


# -------------------------------------------------------------------------------------------- issue 22 ---
def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_export_refuses_a_run_folder_or_a_foreign_folder(run_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22, item 4: `recalib export runs/x --out runs/x` replaced the run's config.json (no more resume)."""
    before = _tree(run_dir)
    with pytest.raises(ValueError, match="is a run folder"):
        _export(run_dir, run_dir, monkeypatch)
    assert _tree(run_dir) == before
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds files that are not a recalib export \(todo.txt\)"):
        _export(run_dir, notes, monkeypatch)
    assert _tree(notes) == {"todo.txt": b"mine"}


def test_a_failed_export_over_an_export_leaves_the_old_one_whole(run_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22, item 4: a write failing during an export over an earlier one left new weights with the old
    config.json (a checksum mismatch) and the old export gone."""
    import os
    import shutil

    from recalib.train import load_checkpoint, save_checkpoint

    out = _export(run_dir, tmp_path / "export", monkeypatch)
    before = _tree(out)
    other = tmp_path / "other"  # the same run with different weights
    shutil.copytree(run_dir, other, ignore=shutil.ignore_patterns(".lock"))
    ckpt = load_checkpoint(other / "checkpoint.pt")
    ckpt["model"]["fc.bias"] += 1.0
    save_checkpoint(ckpt, other / "checkpoint.pt")
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:  # the disk fills up while config.json is written
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).lstrip(".").startswith("config.json"):
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        _export(other, out, monkeypatch)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "other"]  # no temporary folder left
    create_model("resnet20", recalib="se", in_chans=1, num_classes=10, pretrained=str(out))  # still verifies
    again = _export(other, out, monkeypatch)  # and an export over an export replaces it
    assert _tree(again)["model.safetensors"] != before["model.safetensors"]
