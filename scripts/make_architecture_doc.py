"""Generate docs/architecture.md: the package map (who imports whom, read from the code) and "where is X?".

Usage: python3 scripts/make_architecture_doc.py [--out docs/architecture.md] [--check]

The map is computed from the ``import`` statements of ``src/recalib`` (parsed with :mod:`ast`, nothing is
imported): an edge A -> B for every module of A that imports from B, at module level or inside a function.
"Where is X?" is the hand-kept list :data:`WHERE` below; every entry names a file and a symbol, and the
script stops if the symbol is not defined there, so the page cannot point at code that moved.
``tests/test_architecture_doc.py`` checks that the committed page is what this script writes.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "recalib"
DOC = ROOT / "docs" / "architecture.md"

#: The floors, lowest first: a package may import the ones before it, never one after it (docs/STYLE).
FLOORS = ("modules", "data", "models", "train", "pretrained", "studies", "cli")

#: "Where is X?": (what contributors look for, file under src/recalib, symbol defined there, one line on it).
WHERE: tuple[tuple[str, str, str, str], ...] = (
    ("the MS-SAR operator (Eq. 1-3)", "modules/mssar.py", "MSSAR",
     "one module per operator family; its docstring names the paper's equations"),
    ("the MS-SAR pooling (regional cells)", "modules/_pooling.py", "region_means",
     "mean of every K x K cell of every scale; `window_means` (sliding) and `regions_times` (Eq. 2: x times the gate) beside it"),
    ("the MS-SAR geometry (cell bounds, windows)", "modules/_geometry.py", "region_bands",
     "pure Python, cached: the partition of docs/spec.md and the sliding window sizes"),
    ("the operator as a value (RecalibSpec)", "modules/spec.py", "RecalibSpec",
     "name + complete arguments: parsed from `\"mssar(scales=(1, 2))\"`, budget rules, `build_recalib`; the "
     "registry of names is `modules/registry.py`"),
    ("the model zoo", "models/__init__.py", "create_model", "every backbone by name, with an operator slot"),
    ("params / MACs of a model", "models/complexity.py", "complexity",
     "counted by dispatch, not by formulas; `params_and_macs` is what runs record and studies estimate with"),
    ("loading pretrained weights", "models/_weights.py", "resolve_weights",
     "tags before folders, folders only as paths; then `load_weights`: SHA-256 before safetensors parses; Hub "
     "folders in `models/_hub.py`"),
    ("exporting a run's weights (Hub layout)", "pretrained/export.py", "export_pretrained",
     "config.json, model.safetensors and a model card; `recalib export` calls it"),
    ("the training loop (one epoch)", "train/engine.py", "train_one_epoch", "plain function; `evaluate` beside it"),
    ("the LR schedule", "train/schedule.py", "LRSchedule", "a function of the global step (exact resume)"),
    ("the recipes (paper protocols)", "train/config.py", "RECIPES", "`TrainConfig` and its validation beside them"),
    ("the checkpoint write", "train/checkpoint.py", "save_checkpoint",
     "atomic through `recalib._io.atomic_write`; read back with `weights_only=True`"),
    ("the atomic write of any file", "_io.py", "atomic_write", "with `sha256_file`, `write_json_atomic`"),
    ("the DDP sampler (ImageNet)", "data/imagenet.py", "build_imagenet_loaders",
     "a `DistributedSampler` per rank; the small sets shard in `data/device_loader.py`"),
    ("the data set registry", "data/registry.py", "get_dataset_info", "names, classes, image sizes, loaders"),
    ("a study file's schema", "studies/schema.py", "parse_study", "TOML -> `Study`; unknown keys are errors"),
    ("the study cost model's throughputs", "studies/cost.py", "THROUGHPUT_MACS_PER_S",
     "every constant of `--dry-run`'s estimate"),
    ("the report's confidence interval", "studies/stats.py", "paired_difference",
     "per-seed differences, t quantile with n - 1 degrees of freedom (`t_quantile`)"),
    ("the command line", "cli.py", "COMMANDS", "name -> module; each command's parser lives beside its code"),
)


def package_of(module: str) -> str:
    """``recalib.train.run`` -> ``train``; ``recalib._io`` -> ``_io``; ``recalib`` -> ``recalib``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _submodule(package: str, name: str) -> str:
    """``package.name`` when that is a module (``from . import cli``), else ``package`` (``from . import x``)."""
    folder = SRC.parent.joinpath(*package.split("."))
    return f"{package}.{name}" if (folder / name).is_dir() or (folder / f"{name}.py").is_file() else package


def imported_modules(path: Path) -> Iterable[tuple[str, bool]]:
    """(absolute module imported, whether at module level) for every recalib import of a file."""
    tree = ast.parse(path.read_text(), str(path))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [_submodule(target, a.name) for a in node.names]
            else:
                names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name == "recalib" or name.startswith("recalib."):
                yield name, id(node) in top_level


def import_graph() -> dict[str, dict[str, bool]]:
    """package -> {package it imports: True if some import is at module level}."""
    graph: dict[str, dict[str, bool]] = {}
    for path in sorted(SRC.rglob("*.py")):
        src = package_of(module_name(path))
        graph.setdefault(src, {})
        for target, at_top in imported_modules(path):
            dst = package_of(target)
            if dst in (src, "recalib"):
                continue
            graph[src][dst] = graph[src].get(dst, False) or at_top
    return graph


def cycles(graph: dict[str, dict[str, bool]]) -> list[list[str]]:
    """The strongly connected components with more than one package (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def floor_violations(graph: dict[str, dict[str, bool]]) -> list[tuple[str, str]]:
    """Edges (a, b) between floors where b is above a: a lower floor reaching up, in any import."""
    return sorted((a, b) for a in graph for b in graph[a]
                  if a in FLOORS and b in FLOORS and FLOORS.index(b) > FLOORS.index(a))


def _defines(path: Path, symbol: str) -> bool:
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == symbol:
            return True
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == symbol for t in targets):
            return True
    return False


def _modules_of(package: str) -> str:
    if package == "recalib":
        return "`__init__`"
    folder = SRC / package
    if not folder.is_dir():
        return f"`{package}.py`"
    return ", ".join(f"`{p.stem}`" for p in sorted(folder.glob("*.py")) if p.stem != "__init__") or "`__init__`"


def render() -> str:
    graph = import_graph()
    importers: dict[str, list[str]] = {p: sorted(q for q in graph if p in graph[q]) for p in graph}
    order = sorted(graph, key=lambda p: (p.startswith("_"), FLOORS.index(p) if p in FLOORS else len(FLOORS), p))
    lines = [
        "# Architecture", "",
        "<!-- Generated by scripts/make_architecture_doc.py from the imports of src/recalib; do not edit by hand. -->",
        "", "recalib is built in floors, lowest first: " + " ← ".join(f"`{f}`" for f in FLOORS)
        + ". A floor imports the ones below it, never one above, not even inside a function. Private helpers "
        "shared by several packages live in top-level `_`-modules (`_io`, `_format`, `_spec`, `_provenance`).", "",
        "## Package map", "",
        "Who imports whom, read from the `import` statements (*italic*: only inside functions). `cli` loads the "
        "module of the command being run by name (`COMMANDS`), so its edges to `train`, `analysis`, `studies` "
        "and `demo` do not show here.", "",
        "| package | modules | imports | imported by |", "|---|---|---|---|",
    ]
    for p in order:
        deps = ", ".join(f"`{d}`" if top else f"*`{d}`*" for d, top in sorted(graph[p].items())) or "–"
        users = ", ".join(f"`{u}`" for u in importers[p]) or "–"
        lines.append(f"| `{p}` | {_modules_of(p)} | {deps} | {users} |")
    found = cycles(graph)
    lines += ["", "## Package cycles", ""]
    if found:
        lines += ["Packages that import each other (directly or through others); each is a floor to split:", ""]
        for comp in found:
            edges = [f"`{a}` → `{b}`" + ("" if graph[a][b] else " (in functions)")
                     for a in comp for b in sorted(graph[a]) if b in comp]
            lines.append(f"* {', '.join(f'`{c}`' for c in comp)}: " + "; ".join(edges))
    else:
        lines.append("None: no package imports one that imports it back.")
    upward = floor_violations(graph)
    lines += ["", "## Floors reached from below", ""]
    lines += [f"* `{a}` imports `{b}`" + ("" if graph[a][b] else " (in functions)") for a, b in upward] or [
        "None: every floor imports only the floors below it."]
    lines += ["", "## Where is X?", "", "| what | where | |", "|---|---|---|"]
    for what, file, symbol, note in WHERE:
        path = SRC / file
        if not path.is_file() or not _defines(path, symbol):
            raise SystemExit(f"make_architecture_doc: {symbol} is not defined in src/recalib/{file}; update WHERE")
        lines.append(f"| {what} | `src/recalib/{file}`: `{symbol}` | {note} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOC)
    parser.add_argument("--check", action="store_true", help="exit 1 if --out differs from what would be written")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not args.out.is_file() or args.out.read_text() != text:
            print(f"{args.out} is out of date: run python3 scripts/make_architecture_doc.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
