#!/usr/bin/env bash
# The product is the installed wheel. Build it (`python -m build`: the sdist, then the wheel from the sdist;
# no deprecation warning allowed), install it with its dependencies into a fresh virtual environment outside
# the checkout that reuses the installed torch (--system-site-packages: nothing large is downloaded), and run
# there, from a folder outside the checkout, what a new user runs first (scripts/check_wheel.py).
# Usage: bash scripts/check_wheel.sh        (PYTHON=python3.x to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
unset PYTHONPATH  # nothing may come from the checkout's src/
WORK=$(mktemp -d "${TMPDIR:-/tmp}/recalib-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
start=$SECONDS

# --no-isolation: the build backend installed by scripts/setup.sh (setuptools, see [build-system]), no download.
if ! "$PY" -m build --no-isolation --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1; then
  cat "$WORK/build.log" >&2; echo "check_wheel: python -m build failed" >&2; exit 1
fi
if grep -i -B2 -A6 "deprecat" "$WORK/build.log" >&2; then
  echo "check_wheel: python -m build printed the deprecation warnings above" >&2; exit 1
fi
wheel=$(ls "$WORK"/dist/recalib-*.whl)

# --without-pip: the environment uses the system's pip (visible through the system site packages), which
# installs into the environment; creating a pip of its own costs more than the rest of this check.
"$PY" -m venv --system-site-packages --without-pip "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel"
mkdir "$WORK/elsewhere" && cd "$WORK/elsewhere"
PATH="$WORK/venv/bin:$PATH" "$WORK/venv/bin/python" "$ROOT/scripts/check_wheel.py" "$ROOT"
echo "check_wheel: $(basename "$wheel") passed in $((SECONDS - start)) s"
