"""Analysis tools: complexity counting (:mod:`.complexity`), the ``recalib profile`` tables (:mod:`.profile`)
and gate inspection (:mod:`.gates`)."""

from .complexity import complexity

__all__ = ["complexity"]
