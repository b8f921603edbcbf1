"""The `recalib` dispatcher and the demo command, run as a user runs them (a subprocess)."""

import subprocess
import sys

from recalib.cli import COMMANDS, main


def test_help_lists_every_command(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_exits_with_choices(capsys) -> None:
    try:
        main(["nope"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_every_command_has_a_parser() -> None:
    from recalib.cli import build_parser

    for name in COMMANDS:
        parser = build_parser(name)
        assert parser.format_help()


def test_demo_runs_as_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "recalib", "demo", "--images", "4", "--channels", "16", "--ops", "se;mssar;sge(groups=4)"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line[:1].isalpha()}
    assert lines["se"][1] == str(2 * 16 * 1 + 1 + 16)  # SE params at C=16, r=16: 2*C*(C//r) + C//r + C
    assert lines["mssar"][1] == str(3 * (16 * 5 + 16 * 5 + 2 * 5))  # L*(C*D' + C*D' + 2D'), D' = 16 // 3


def test_every_public_name_has_a_docstring() -> None:
    """Every public module of recalib, and every function and class it lists in ``__all__``, is documented."""
    import importlib
    import inspect
    import pkgutil

    import recalib

    missing = []
    for info in pkgutil.walk_packages(recalib.__path__, "recalib."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:  # an optional extra that is not installed (never recalib itself)
            assert exc.name and not exc.name.startswith("recalib"), exc
            continue
        if not (module.__doc__ or "").strip():
            missing.append(info.name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not (obj.__doc__ or "").strip():
                missing.append(f"{info.name}.{name}")
    assert missing == []
