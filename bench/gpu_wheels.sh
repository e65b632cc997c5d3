#!/usr/bin/env bash
# Fetches into .whl/ the wheels bench/gpu_check.py needs on a GPU machine that has JAX and
# PyTorch (Python 3.12) but no Keras and no network: Keras at this project's pin, and the two
# packages Keras needs that such a machine lacks (namex, optree). Run it here, where pip can
# reach the registry; .whl/ is git-ignored and travels with the command (carry: [".whl"]):
#
#   bench/gpu_wheels.sh
#   # on the GPU machine, from the repository root:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
#     && PYTHONPATH=/tmp/site python3 bench/gpu_check.py --require_gpu
set -euo pipefail
cd "$(dirname "$0")/.."
keras=$(grep '^keras==' requirements.txt)
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  "$keras" namex optree
ls .whl
