"""``recalib export RUN --out FOLDER``: a trained run's weights in the Hugging Face Hub layout.

Writes ``config.json`` (with the preprocessing and provenance), ``model.safetensors`` and a ``README.md`` model
card (:func:`recalib.pretrained.export_pretrained`). Refuses a dirty git tree unless ``--allow-dirty``.
"""

from __future__ import annotations

import argparse
import sys


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Write a trained run's weights in the Hugging Face Hub layout: config.json (preprocessing, "
                          "provenance, SHA-256), model.safetensors and a README.md model card. Refuses a git tree "
                          "with uncommitted changes unless --allow-dirty.")
    parser.add_argument("source", metavar="RUN", help="run folder (holding checkpoint.pt) or a checkpoint.pt")
    parser.add_argument("--out", required=True, help="folder to write config.json, model.safetensors, README.md")
    parser.add_argument("--description", default="", help="first paragraph of the model card")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="export even with uncommitted changes (recorded in config.json and the card)")


def run(args: argparse.Namespace) -> int:
    from .export import export_pretrained

    if sys.stderr.isatty():  # the checkpoint is read, loaded into its model and hashed: seconds for a ResNet-50
        print(f"exporting {args.source} to {args.out} (reading, checking and hashing the weights) ...", file=sys.stderr)
    try:
        out = export_pretrained(args.source, args.out, allow_dirty=args.allow_dirty, description=args.description)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"recalib export: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}/config.json, model.safetensors, README.md")
    return 0
