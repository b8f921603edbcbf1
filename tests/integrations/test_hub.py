"""hubconf.py: torch.hub.load from a local checkout builds every zoo model with an operator."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from recalib.models import list_models
from recalib.modules import MSSAR

REPO = str(Path(__file__).resolve().parents[2])


def test_hubconf_entry_points_are_the_zoo() -> None:
    """torch.hub.list (GitHub only) lists the public callables of hubconf.py: exactly the zoo."""
    spec = importlib.util.spec_from_file_location("recalib_hubconf", Path(REPO) / "hubconf.py")
    assert spec is not None and spec.loader is not None
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    entries = [f for f in dir(hub) if callable(getattr(hub, f)) and not f.startswith("_")]
    assert sorted(entries) == sorted(list_models())
    assert hub.dependencies == ["torch"]


def test_hub_load_resnet56_with_mssar() -> None:
    model = torch.hub.load(REPO, "resnet56", recalib="mssar", source="local")
    ops = [m for m in model.modules() if isinstance(m, MSSAR)]
    assert len(ops) == 27 and model.model_name == "resnet56" and str(model.recalib_spec) == "mssar(context_channels=None, reduction=1, scales=(1, 2, 4), strategy='regional')"
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_hub_forwards_model_arguments() -> None:
    model = torch.hub.load(REPO, "densenet_bc_100", recalib="mssar", multi_stage=True, num_classes=100,
                           in_chans=1, source="local")
    assert model.cfg.multi_stage and model.num_classes == 100 and model.conv1.in_channels == 1


def test_hub_load_runs_the_checkouts_code_not_another_installed_copy(tmp_path: Path) -> None:
    """A stale recalib first on sys.path (an installed copy) must not be what torch.hub.load(source="local") runs."""
    import subprocess
    import sys

    stale = tmp_path / "stale" / "recalib"
    (stale / "models").mkdir(parents=True)
    (stale / "__init__.py").write_text("STALE = True\n")
    (stale / "models" / "__init__.py").write_text("def create_model(name, **kwargs):\n    return 'stale copy'\n")
    code = (
        "import sys, torch\n"
        f"m = torch.hub.load({REPO!r}, 'resnet20', recalib='mssar', in_chans=1, source='local')\n"
        "print(type(m).__name__, sys.modules[type(m).__module__].__file__)\n"
        "import recalib; print(recalib.__file__)\n"
    )
    for preimport in ("", "import recalib\n"):  # installed but not imported / already imported
        out = subprocess.run([sys.executable, "-c", preimport + code], capture_output=True, text=True, timeout=300,
                             env={"PYTHONPATH": str(tmp_path / "stale"), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        model_line, package_line = out.stdout.splitlines()[-2:]
        assert model_line.startswith("CifarResNet " + str(Path(REPO) / "src" / "recalib")), out.stdout
        assert package_line == str(Path(REPO) / "src" / "recalib" / "__init__.py")
        if preimport:
            assert "torch.hub: using recalib from" in out.stderr


def test_hubconf_docstring_calls_torch_hub_with_arguments_it_accepts() -> None:
    import ast
    import inspect
    import textwrap

    spec = importlib.util.spec_from_file_location("recalib_hubconf_doc", Path(REPO) / "hubconf.py")
    assert spec is not None and spec.loader is not None
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    doc = hub.__doc__ or ""
    code = "\n".join(line for line in doc.splitlines() if line.startswith("    "))
    calls = [n for n in ast.walk(ast.parse(textwrap.dedent(code))) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and ast.unparse(n.func).startswith("torch.hub.")]
    assert calls, "the docstring shows how to call torch.hub"
    for call in calls:
        fn = getattr(torch.hub, call.func.attr)  # type: ignore[attr-defined]
        params = inspect.signature(fn).parameters
        has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        for kw in call.keywords:
            assert kw.arg in params or has_var_kw, f"torch.hub.{call.func.attr} takes no {kw.arg}="  # type: ignore[attr-defined]
        if call.func.attr != "load":  # type: ignore[attr-defined]
            assert "source" not in {kw.arg for kw in call.keywords}
