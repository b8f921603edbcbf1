"""The specification ships with the project: docs/spec.md exists, every reference to it names a section it has,
and nothing in the repository points at a specification or papers kept outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "docs" / "spec.md"
_TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml", ".sh", ".json", ""}
# Built from pieces so that this file does not match its own patterns.
_OLD_NAME = re.compile(r"\b" + "SP" + r"EC\b")
_OUTSIDE = re.compile("|".join([r"\.\./" + "shared", "shared/" + "papers", "shared/" + "SP" + "EC",
                                 r"papers/[\w.-]+\.txt"]))
_REFERENCE = re.compile(r"docs/spec\.md,? sections? ([0-9a-z]+)(?:\s*[-–]\s*([0-9a-z]+))?")


def _repo_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, text=True, check=True, timeout=60).stdout
        names = [REPO / n for n in out.splitlines()]
    except (OSError, subprocess.SubprocessError):  # not a git checkout: walk it
        names = [p for p in REPO.rglob("*") if ".git" not in p.parts]
    return [p for p in names if p.is_file() and p.suffix in _TEXT_SUFFIXES and "results" not in p.relative_to(REPO).parts[:1]]


def _sections() -> set[str]:
    return {m.group(1) for m in re.finditer(r"^## ([0-9]+[a-z]?)\. ", SPEC.read_text(), re.M)}


def test_spec_has_the_numbered_sections() -> None:
    assert SPEC.is_file()
    assert {"1", "1b", "2", "3", "4", "5", "6"} <= _sections()


def test_every_reference_names_an_existing_section_and_nothing_points_outside() -> None:
    sections = _sections()
    problems = []
    for path in _repo_files():
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(REPO)
        for lineno, line in enumerate(text.splitlines(), 1):
            if _OLD_NAME.search(line):
                problems.append(f"{rel}:{lineno}: refers to the specification by its old name: {line.strip()}")
            if _OUTSIDE.search(line):
                problems.append(f"{rel}:{lineno}: refers to a file outside the repository: {line.strip()}")
            for m in _REFERENCE.finditer(line):
                first, last = m.group(1), m.group(2)
                wanted = [first] if last is None else [str(i) for i in range(int(first), int(last) + 1)]
                missing = [s for s in wanted if s not in sections]
                if missing:
                    problems.append(f"{rel}:{lineno}: docs/spec.md has no section {', '.join(missing)}")
    assert not problems, "\n".join(problems)
