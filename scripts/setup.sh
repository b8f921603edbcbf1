#!/usr/bin/env bash
# One-time set-up for a fresh Linux machine with Python >= 3.10: the Fashion-MNIST data set from
# Debian's package (where apt-get exists) and recalib with its test extras.
# Idempotent; safe to run again. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
    || echo "setup: could not install dataset-fashion-mnist; recalib will download Fashion-MNIST instead" >&2
fi
# `pip install torch` gives the default (CUDA-enabled) build, which also runs on CPU.
"$PY" -m pip install -q --disable-pip-version-check -e ".[test]"
