#!/usr/bin/env bash
# The test command of the README: set-up, lint, the API reference, the installed wheel, then the whole test
# suite on CPU. Every check runs; the exit status is non-zero if any failed. Usage: bash scripts/test.sh [pytest args]
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
python3 -m ruff check src tests benchmarks scripts hubconf.py || exit 1
python3 -m mypy || exit 1  # the package, as configured in pyproject.toml
failed=()
# The API reference from the docstrings (mkdocs.yml), warnings as errors, built into a temporary folder.
site=$(mktemp -d)
python3 -m mkdocs build --quiet --strict --site-dir "$site" || failed+=("the API reference (mkdocs build --strict)")
rm -rf "$site"
bash scripts/check_wheel.sh || failed+=("the wheel (scripts/check_wheel.sh)")
python3 -m pytest -q -p no:cacheprovider --durations=15 tests "$@"
rc=$?
# pytest exits 5 when it collected no tests: a broken suite, not a pass.
if [ "$rc" -eq 5 ]; then echo "test.sh: pytest collected no tests" >&2; exit 1; fi
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'test.sh: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
exit "$rc"
