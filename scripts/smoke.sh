#!/usr/bin/env bash
# Installation check: the whole pipeline on the panda example with the smoke preset (tiny random priors built
# on the fly, CPU, offline). The images it writes are not meaningful. Usage, from any folder:
#   bash scripts/smoke.sh [OUTPUT_FOLDER]      (default: <repository>/out/smoke)
# The first run creates <repository>/.venv and installs torch 2.13.0 (CPU) and requirements.txt at the
# versions CI tests (360 MB of downloads, 1.6 GB installed); later runs reuse it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(realpath -m "${1:-$root/out/smoke}")"  # a relative OUTPUT_FOLDER is taken from where you stand
image="$(realpath -m "$root/../shared/data/examples/panda-dance/rgba.png")"
if [ ! -f "$image" ]; then
  echo "error: the example image $image is missing (it lives in ../shared beside the repository)" >&2
  exit 2
fi
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "smoke: creating $venv"
  python3 -m venv "$venv"
fi
stamp="$venv/.smoke-requirements"  # what was installed: reinstall only when the requirement files change
want="$(cat "$root/requirements.txt" "$root/requirements-ci.txt" | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "smoke: installing torch 2.13.0 (CPU) into $venv"
  "$venv/bin/python" -m pip install -q torch==2.13.0
  echo "smoke: installing requirements.txt (diffusers, transformers, ...) at the versions in requirements-ci.txt"
  "$venv/bin/python" -m pip install -q -r "$root/requirements.txt" -c "$root/requirements-ci.txt"
  echo "$want" > "$stamp"
fi
echo "smoke: running the pipeline on $image; writing to $out"
export HF_HUB_OFFLINE=1
cd "$root"
"$venv/bin/python" -m a124_core run --image "$image" --prompt "a panda is dancing" --preset smoke --out "$out" --overwrite
echo "smoke: videos in $out/renders, summary in $out/summary.json"
