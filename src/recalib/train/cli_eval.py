"""``recalib eval``: re-evaluate a training checkpoint on a data set's test split.

    recalib eval --checkpoint runs/x [--dataset fashion-mnist] [--device cpu] [--threads 2] [--json out.json]

Reports the cross-entropy loss and the top-1 / top-5 error (%) over every test image (under torchrun,
each process evaluates its shard and the counts are summed). On a terminal a progress bar counts the
batches (on stderr; nothing is written there when it is a pipe or a log file).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .._format import progress_bar
from .._io import write_json_atomic

__all__ = ["configure_parser", "evaluate_checkpoint", "run"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``recalib eval``'s options to ``parser``."""
    parser.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="checkpoint.pt written by recalib train, or the run folder holding it")
    parser.add_argument("--dataset", default=None, help="data set to evaluate on (default: the one trained on)")
    parser.add_argument("--data-dir", default=None, help="folder holding the data set")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--batch-size", type=int, default=500, help="evaluation batch size per process")
    parser.add_argument("--subset", type=int, default=0, metavar="N", help="a class-balanced subset of N test images")
    parser.add_argument("--amp", default="off", choices=("auto", "off", "bf16", "fp16"), help="mixed precision")
    parser.add_argument("--workers", type=int, default=8, help="loader workers (folder data sets)")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="CPU threads per process (0: OMP_NUM_THREADS if set, else the cores divided among the "
                             "local processes)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the metrics to this JSON file")


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    dataset: str | None = None,
    data_dir: str | None = None,
    device: str = "auto",
    batch_size: int = 500,
    subset: int = 0,
    amp: str = "off",
    workers: int = 8,
    progress: bool = False,
) -> dict[str, Any]:
    """Metrics of the model in ``checkpoint`` on ``dataset``'s test split (see :func:`recalib.train.evaluate`).

    ``progress``: a bar counting the batches on stderr, on rank 0 when stderr is a terminal (``recalib eval``).
    """
    import torch

    from ..data import DeviceLoader, build_imagenet_loaders, get_dataset_info, load_small
    from . import distributed
    from .checkpoint import model_from_checkpoint
    from .engine import evaluate
    from .run import resolve_amp, resolve_device

    if batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    _, _, local_rank, _ = distributed.env_world()
    dev = resolve_device(device, local_rank)
    dinfo = distributed.setup(dev)
    try:
        model, config = model_from_checkpoint(checkpoint, map_location=dev)
        info = get_dataset_info(dataset or config["dataset"])
        num_classes = getattr(model, "num_classes", None)
        trained_on = get_dataset_info(config["dataset"])
        if (info.num_classes, info.in_chans) != (trained_on.num_classes, trained_on.in_chans) or (
            num_classes is not None and num_classes != info.num_classes
        ):
            raise ValueError(
                f"{checkpoint} was trained on {trained_on.name} ({trained_on.num_classes} classes, "
                f"{trained_on.in_chans} channels); {info.name} has {info.num_classes} classes and {info.in_chans} "
                "channels"
            )
        start = time.perf_counter()
        loader: Any
        if info.kind == "folder":
            if data_dir is None:
                raise ValueError(f"{info.name} needs --data-dir")
            _, loader = build_imagenet_loaders(data_dir, batch_size, workers=workers, rank=dinfo.rank,
                                               world_size=dinfo.world_size)
        else:
            test = load_small(info.name, "test", data_dir=data_dir)
            if subset:
                test = test.subset(subset, seed=0)
            loader = DeviceLoader(test, batch_size, train=False, device=dev, rank=dinfo.rank,
                                  world_size=dinfo.world_size)
        bar = progress_bar(len(loader), f"eval {info.name}", unit="batch") if progress and dinfo.is_main else None
        try:
            batches = loader if bar is None else _counted(loader, bar)
            metrics: dict[str, Any] = dict(evaluate(model, batches, device=dev, amp_dtype=resolve_amp(amp, dev)))
        finally:
            if bar is not None:
                bar.close()
        metrics.update(checkpoint=str(checkpoint), dataset=info.name, device=str(dev),
                       seconds=time.perf_counter() - start, model=config["model"], recalib=config["recalib"],
                       threads=torch.get_num_threads())
        return metrics
    finally:
        distributed.cleanup(dinfo)


def _counted(batches: Iterable[Any], bar: Any) -> Iterator[Any]:
    """The batches of ``batches``, advancing ``bar`` by one for each."""
    for batch in batches:
        yield batch
        bar.update(1)


def _check_output_file(path: str, flag: str) -> None:
    """A file can be written at ``path``: its folder exists and it is not itself a folder (checked up front)."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{flag} {path} is a folder; give a file name, e.g. {p / 'eval.json'}")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"{flag} {path}: the folder {p.parent} does not exist; create it first")


def run(args: argparse.Namespace) -> int:
    """``recalib eval``: evaluate a checkpoint on a test set; return the exit status."""
    import torch

    from ._device import cpu_threads
    from .cli import check_names
    from .distributed import env_world

    try:
        if args.json:
            _check_output_file(args.json, "--json")
        if args.subset < 0:
            raise ValueError(f"--subset must be 0 (all) or a positive number of images, got {args.subset}")
        if not 1 <= args.batch_size <= 2**20 or not 0 <= args.workers <= 1024 or not 0 <= args.threads <= 1024:
            raise ValueError(f"--batch-size must be in [1, {2**20}], --workers and --threads in [0, 1024], got "
                             f"{args.batch_size}, {args.workers} and {args.threads}")
        if args.dataset is not None:
            check_names(dataset=args.dataset)
        torch.set_num_threads(cpu_threads(args.threads, env_world()[3]))  # the entry point's business
        m = evaluate_checkpoint(args.checkpoint, dataset=args.dataset, data_dir=args.data_dir, device=args.device,
                                batch_size=args.batch_size, subset=args.subset, amp=args.amp, workers=args.workers,
                                progress=True)
    except (ValueError, FileNotFoundError) as exc:
        print(f"recalib eval: error: {exc}", file=sys.stderr)
        return 2
    if env_world()[0] == 0:
        print(
            f"{m['model']} + {m['recalib']} on {m['dataset']} test ({m['test_images']} images): "
            f"top-1 error {m['test_error']:.2f}%, top-5 error {m['test_top5_error']:.2f}%, "
            f"loss {m['test_loss']:.4f}  [{m['device']}, {m['seconds']:.1f} s]"
        )
        if args.json:
            write_json_atomic(args.json, m)
    return 0
