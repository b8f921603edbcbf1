"""`python -m recalib ...` is the same as the `recalib` command."""

from .cli import main

raise SystemExit(main())
