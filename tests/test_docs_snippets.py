"""Every code snippet of README.md and docs/*.md runs as written.

``python`` blocks are executed from the repository root, each in a fresh namespace. ``bash`` blocks are split
into commands (backslash continuations joined, comments dropped); each runs in a scratch folder with this
checkout's ``src`` first on ``PYTHONPATH`` and ``recalib``/``python3`` meaning this interpreter. A command that
trains for minutes, needs a GPU, torchrun, ImageNet or network set-up is listed in :data:`SKIPPED` with the
reason, and the list is checked against the documents, so that it cannot go stale. Commands that need a run
folder (``runs/x``) get one from a tiny training run (256 images, one epoch).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\s*\n(.*?)^```\s*$", re.M | re.S)

_TRAINS = "trains for minutes to hours (covered by tests/train with tiny runs)"
#: Commands not run, with the reason (the exact text of the command, comments removed).
SKIPPED: dict[str, str] = {
    "bash scripts/setup.sh && python3 -m recalib quickstart": "installs packages, then trains for ~6 minutes",
    "bash scripts/test.sh": "is the whole test suite (this test is part of it)",
    "python3 -m recalib train --model resnet20 --recalib mssar --dataset fashion-mnist --recipe paper-cifar-resnet "
    "--out runs/x": _TRAINS + "; a tiny run stands in for runs/x",
    "recalib train --model resnet20 --recalib mssar --dataset fashion-mnist --recipe paper-cifar-resnet --out runs/x":
        _TRAINS + "; a tiny run stands in for runs/x",
    "torchrun --standalone --nproc_per_node=8 -m recalib train --recipe paper-imagenet --data-dir /data/imagenet "
    "--recalib mssar --out runs/r50": "needs 8 GPUs and ImageNet",
    "torchrun --standalone --nproc_per_node=8 -m recalib train --recipe paper-imagenet --data-dir /data/imagenet "
    "--recalib mssar --out runs/r50-mssar": "needs 8 GPUs and ImageNet",
    "torchrun --standalone --nproc_per_node=2 -m recalib train --recipe quick --out runs/ddp-cpu":
        "trains the quick-start for minutes (tests/train/test_distributed.py runs torchrun on a tiny run)",
    "torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=node0.example.com:29400 "
    "--rdzv-id=r50-mssar --max-restarts=3 -m recalib train --recipe paper-imagenet --data-dir /data/imagenet "
    "--recalib mssar --out /shared/runs/r50-mssar --resume": "needs two nodes with 8 GPUs each and ImageNet",
    "python3 -m recalib study run fashion-mnist --parallel 2": _TRAINS,
    "python3 -m recalib study run table2-cifar --dry-run":
        "plans 45 runs and counts their MACs: over a minute on a 2-core CPU (tests/analysis covers --dry-run)",
    "python3 -m recalib export runs/x --out hf/x --description 'ResNet-20 + MS-SAR, Fashion-MNIST'":
        "refuses a checkout with uncommitted changes, as a developer's often is (tests/test_pretrained_export.py)",
    "python3 -m recalib study run fashion-mnist --results results/studies --parallel 2": _TRAINS,
    "python3 scripts/make_readme_results.py":
        "rewrites results/fashion-mnist/ and README.md itself (tests/test_readme_results.py runs its --check)",
    "python3 -m recalib study report fashion-mnist":
        "reports the runs the previous command trains (tests/analysis reports tiny studies)",
}
#: Commands that need a finished run in runs/x.
_NEEDS_RUN = re.compile(r"runs/x\b")


def _blocks() -> list[tuple[str, int, str, str]]:
    found = []
    for doc in DOCUMENTS:
        text = doc.read_text()
        for m in _FENCE.finditer(text):
            lang = m.group(1).lower()
            if lang in ("python", "bash"):
                line = text.count("\n", 0, m.start()) + 1
                found.append((doc.relative_to(REPO).as_posix(), line, lang, m.group(2)))
    return found


def _commands(block: str) -> list[str]:
    """One string per shell command: continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(" ".join(shlex.quote(w) if w != "&&" else w for w in words))
    return commands


BLOCKS = _blocks()
PYTHON = [(f"{doc}:{line}", code) for doc, line, lang, code in BLOCKS if lang == "python"]
BASH = [(f"{doc}:{line}", cmd) for doc, line, lang, code in BLOCKS if lang == "bash" for cmd in _commands(code)]


def test_snippets_are_found_and_skips_are_current() -> None:
    assert len(PYTHON) >= 4 and len(BASH) >= 10
    documented = {cmd for _, cmd in BASH}
    stale = sorted(set(SKIPPED) - documented)
    assert not stale, f"SKIPPED lists commands no document contains any more: {stale}"


@pytest.mark.slow
@pytest.mark.parametrize("where, code", PYTHON, ids=[w for w, _ in PYTHON])
def test_python_snippet_runs(where: str, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    namespace: dict[str, object] = {"__name__": "__snippet__"}
    exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the documentation's own code; raising fails
    assert set(namespace) - {"__name__", "__builtins__"}, f"{where}: the snippet defines nothing a reader can use"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return env


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``recalib`` and ``python3`` shims for this interpreter and a tiny finished run in runs/x."""
    root = tmp_path_factory.mktemp("snippets")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "recalib").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m recalib "$@"\n')
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for shim in bin_dir.iterdir():
        shim.chmod(0o755)
    env = _env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    tiny = [sys.executable, "-m", "recalib", "train", "--recipe", "quick", "--dataset", "fashion-mnist",
            "--subset", "256", "--test-subset", "200", "--epochs", "1", "--batch-size", "64", "--threads", "1",
            "--out", "runs/x"]
    out = subprocess.run(tiny, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return root


def _first_occurrence() -> dict[str, str]:
    """Command with ``recalib`` spelled ``python3 -m recalib`` -> where it first appears (run once only)."""
    first: dict[str, str] = {}
    for where, cmd in BASH:
        first.setdefault(re.sub(r"^recalib ", "python3 -m recalib ", cmd), where)
    return first


_FIRST = _first_occurrence()


@pytest.mark.slow
@pytest.mark.parametrize("where, command", BASH, ids=[f"{w}:{c[:60]}" for w, c in BASH])
def test_bash_snippet_runs(where: str, command: str, scratch: Path) -> None:
    if command in SKIPPED:
        pytest.skip(SKIPPED[command])
    first = _FIRST[re.sub(r"^recalib ", "python3 -m recalib ", command)]
    if first != where:
        pytest.skip(f"the same command as {first} (the `recalib` script is `python -m recalib`)")
    env = _env()
    env["PATH"] = f"{scratch / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    assert not _NEEDS_RUN.search(command) or (scratch / "runs" / "x" / "checkpoint.pt").is_file()
    out = subprocess.run(["bash", "-c", command], cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{where}: `{command}` exited {out.returncode}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
