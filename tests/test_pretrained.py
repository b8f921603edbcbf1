"""Pretrained weights: manifest look-up, SHA-256 verification before loading, and the committed weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from recalib.models import create_model
from recalib.pretrained import (
    MANIFEST,
    canonical_recalib,
    find_pretrained,
    list_pretrained,
    load_pretrained,
)

safetensors_torch = pytest.importorskip("safetensors.torch")


def _tiny_manifest(tmp_path: Path, recalib: str = "mssar") -> tuple[Path, dict[str, torch.Tensor]]:
    model = create_model("resnet20", recalib=recalib, in_chans=1, num_classes=10)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)  # differs from a fresh model's initialisation
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    file = tmp_path / "w.safetensors"
    safetensors_torch.save_file(state, str(file))
    entry = {"tag": "toy", "architecture": "resnet20", "recalib": recalib, "in_chans": 1, "num_classes": 10,
             "file": file.name, "sha256": hashlib.sha256(file.read_bytes()).hexdigest(), "config": {},
             "metrics": {}, "card": "test"}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"format_version": 1, "weights": [entry]}))
    return manifest, state


def test_canonical_recalib_fills_defaults():
    assert canonical_recalib("mssar") == canonical_recalib("mssar(scales=(1, 2, 4), strategy='regional')")
    assert canonical_recalib("mssar") == canonical_recalib("mssar(scales=[1, 2, 4])")
    assert canonical_recalib("mssar") != canonical_recalib("mssar(strategy='sliding')")
    assert canonical_recalib(None) == canonical_recalib("none") == "none"
    assert canonical_recalib("se") == canonical_recalib("se(reduction=16)")


def test_load_verifies_and_loads(tmp_path):
    manifest, state = _tiny_manifest(tmp_path)
    model = create_model("resnet20", recalib="mssar", in_chans=1, num_classes=10)
    entry = load_pretrained(model, "toy", model_name="resnet20", recalib="mssar(scales=(1, 2, 4))", in_chans=1,
                            num_classes=10, manifest=manifest)
    assert entry.tag == "toy"
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_checksum_mismatch_is_refused_before_parsing(tmp_path):
    manifest, _ = _tiny_manifest(tmp_path)
    file = tmp_path / "w.safetensors"
    blob = bytearray(file.read_bytes())
    blob[-1] ^= 0xFF  # one flipped bit in the last tensor's data: still parseable, but not the published file
    file.write_bytes(bytes(blob))
    model = create_model("resnet20", recalib="mssar", in_chans=1, num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_pretrained(model, "toy", model_name="resnet20", recalib="mssar", in_chans=1, num_classes=10,
                        manifest=manifest)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), "weights changed although the checksum failed"


def test_unknown_tag_architecture_and_shape_list_what_exists(tmp_path):
    manifest, _ = _tiny_manifest(tmp_path)
    with pytest.raises(ValueError, match=r"available tags: toy.*resnet20 \+ mssar"):
        find_pretrained("imagenet", model_name="resnet20", recalib="mssar", in_chans=1, num_classes=10,
                        manifest=manifest)
    with pytest.raises(ValueError, match=r"no pretrained 'toy' weights for resnet56 \+ mssar; available"):
        find_pretrained("toy", model_name="resnet56", recalib="mssar", in_chans=1, num_classes=10, manifest=manifest)
    with pytest.raises(ValueError, match=r"for resnet20 \+ se; available"):
        find_pretrained("toy", model_name="resnet20", recalib="se", in_chans=1, num_classes=10, manifest=manifest)
    with pytest.raises(ValueError, match="expect in_chans=1"):
        find_pretrained("toy", model_name="resnet20", recalib="mssar", in_chans=3, num_classes=10, manifest=manifest)


def test_missing_file(tmp_path):
    manifest, _ = _tiny_manifest(tmp_path)
    (tmp_path / "w.safetensors").unlink()
    model = create_model("resnet20", recalib="mssar", in_chans=1, num_classes=10)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_pretrained(model, "toy", model_name="resnet20", recalib="mssar", in_chans=1, num_classes=10,
                        manifest=manifest)


# ------------------------------------------------------------------------------ committed weights ---
COMMITTED = list_pretrained()


def test_committed_manifest_files_match_their_checksums():
    for e in COMMITTED:
        path = MANIFEST.parent / e.file
        assert path.is_file(), e.file
        assert hashlib.sha256(path.read_bytes()).hexdigest() == e.sha256, e.file
        assert e.card and e.metrics.get("final_test_error") is not None


@pytest.mark.skipif(not COMMITTED, reason="no pretrained weights committed yet")
@pytest.mark.parametrize("entry", COMMITTED, ids=lambda e: f"{e.architecture}-{e.recalib}")
def test_committed_weights_load_through_create_model(entry):
    model = create_model(entry.architecture, recalib=entry.recalib, in_chans=entry.in_chans,
                         num_classes=entry.num_classes, pretrained=entry.tag)
    fresh = create_model(entry.architecture, recalib=entry.recalib, in_chans=entry.in_chans,
                         num_classes=entry.num_classes)
    differs = [not torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values())]
    assert any(differs)


@pytest.mark.skipif(not COMMITTED, reason="no pretrained weights committed yet")
def test_committed_mssar_weights_classify_fashion_mnist():
    """The MS-SAR weights' error on the first 1,000 test images is near their reported full-test error."""
    from recalib.data import DeviceLoader, load_small

    entry = next(e for e in COMMITTED if canonical_recalib(e.recalib) == canonical_recalib("mssar"))
    model = create_model(entry.architecture, recalib=entry.recalib, in_chans=1, num_classes=10,
                         pretrained=entry.tag).eval()
    try:
        test = load_small("fashion-mnist", "test", download=False)
    except Exception as exc:  # the data set is on every machine of the project; elsewhere skip
        pytest.skip(f"Fashion-MNIST not available: {exc}")
    first = type(test)(test.images[:1000], test.labels[:1000], test.info, "test")
    x, y = next(iter(DeviceLoader(first, 1000, train=False, device=torch.device("cpu"))))  # normalised as in training
    with torch.no_grad():
        pred = model(x).argmax(1)
    error = 100 * (pred != y).float().mean().item()
    # Binomial sd of an error rate near 25% on 1,000 images is ~1.4 points: 6 points is > 4 sd.
    assert abs(error - entry.metrics["final_test_error"]) < 6.0, (error, entry.metrics)


@pytest.mark.slow
@pytest.mark.skipif(not COMMITTED, reason="no pretrained weights committed yet")
@pytest.mark.parametrize("entry", COMMITTED, ids=lambda e: f"{e.architecture}-{e.recalib}")
def test_card_error_is_reproduced_from_the_stated_preprocessing(entry):
    """Raw test images, the preprocessing the model states ((x / 255 - mean) / std at its input size), and the
    packaged weights give exactly the card's last-epoch test error on all 10,000 test images."""
    from recalib.data import load_small

    try:
        test = load_small("fashion-mnist", "test", download=False)
    except Exception as exc:  # the data set is on every machine of the project; elsewhere skip
        pytest.skip(f"Fashion-MNIST not available: {exc}")
    model = create_model(entry.architecture, recalib=entry.recalib, in_chans=entry.in_chans,
                         num_classes=entry.num_classes, pretrained=entry.tag).eval()
    cfg = model.pretrained_cfg
    assert tuple(cfg["input_size"]) == tuple(test.images.shape[1:]) == (1, 28, 28)
    mean = torch.tensor(cfg["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, -1, 1, 1)
    wrong = 0
    with torch.no_grad():
        for i in range(0, len(test.labels), 1000):
            x = (test.images[i:i + 1000].float() / 255 - mean) / std
            wrong += int((model(x).argmax(1) != test.labels[i:i + 1000]).sum())
    assert wrong == round(entry.metrics["final_test_error"] * len(test.labels) / 100), (wrong, entry.metrics)
