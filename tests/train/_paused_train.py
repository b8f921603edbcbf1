"""``python tests/train/_paused_train.py EPOCH:SECONDS ARGS...``: the ``recalib`` command line (ARGS as for
``python -m recalib``) with the checkpoint write of epoch EPOCH held for SECONDS once the temporary file is written,
before it is renamed into place, so that a test can kill the process there. The library has no switch for this:
the script patches :func:`recalib.train.checkpoint._write_temporary`, the step between the two."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from recalib.cli import main
from recalib.train import checkpoint


def hold_checkpoint_write(epoch: int, seconds: float) -> None:
    """Make the checkpoint write of ``epoch`` sleep ``seconds`` after serialising, before the rename."""
    write = checkpoint._write_temporary

    def paused(state: dict[str, Any], f: IO[bytes], data: memoryview) -> None:
        write(state, f, data)
        if state.get("epoch") == epoch:
            f.flush()
            time.sleep(seconds)

    checkpoint._write_temporary = paused  # type: ignore[assignment]


if __name__ == "__main__":
    at, _, pause = sys.argv[1].partition(":")
    hold_checkpoint_write(int(at), float(pause))
    sys.exit(main(sys.argv[2:]))
