#!/usr/bin/env bash
# The test command of the README: set-up, lint, then the whole test suite on CPU.
# Usage: bash scripts/test.sh [extra pytest args]
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
python3 -m ruff check src tests benchmarks scripts hubconf.py || exit 1
python3 -m mypy || exit 1  # the package, as configured in pyproject.toml
python3 -m pytest -q -p no:cacheprovider --durations=15 tests "$@"
rc=$?
# pytest exits 5 when it collected no tests: a broken suite, not a pass.
if [ "$rc" -eq 5 ]; then echo "test.sh: pytest collected no tests" >&2; exit 1; fi
exit "$rc"
