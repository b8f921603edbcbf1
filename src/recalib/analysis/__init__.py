"""Analysis tools: the ``recalib profile`` tables (:mod:`.profile`), gate inspection (:mod:`.gates`) and
visualisation (:mod:`.visualize`). Complexity counting lives below training, in :mod:`recalib.models.complexity`
(re-exported here)."""

from ..models.complexity import complexity

__all__ = ["complexity"]
