#!/usr/bin/env bash
# The main job on the embedded default: the whole pipeline on the panda example with the smoke preset
# (tiny random priors built on the fly, CPU, offline, a few minutes). Results are not meaningful images.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q torch==2.13.0
python -m pip install -q -r requirements.txt -c requirements-ci.txt  # the versions CI tests
export HF_HUB_OFFLINE=1
python -m a124_core run --image ../shared/data/examples/panda-dance/rgba.png --prompt "a panda is dancing" \
  --preset smoke --out "${1:-out/smoke}"
