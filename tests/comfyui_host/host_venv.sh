#!/usr/bin/env bash
# Builds the virtual environment a real ComfyUI runs in for the host tests (tests/comfyui_host), as a user installs it:
# ComfyUI's requirements.txt, then this pack's. Usage: host_venv.sh VENV COMFYUI_DIR
# CPU only: torch 2.13.0 from the local CPU wheel; torchvision 0.28.0 without its dependencies (its CUDA build: the host
# tests import it through the patched copy comfy_server.py makes); torchaudio left out (only ComfyUI's audio nodes
# need it, they then fail to import and say so in the log). `requests` is missing from ComfyUI's list.
set -euo pipefail
venv=$1
comfyui=$2
pack=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q torch==2.13.0
"$venv/bin/python" -m pip install -q --no-deps torchvision==0.28.0
grep -v -E '^(torch|torchvision|torchaudio)([<>=~ ;]|$)' "$comfyui/requirements.txt" >"$venv/comfyui-requirements.txt"
"$venv/bin/python" -m pip install -q -r "$venv/comfyui-requirements.txt" requests
"$venv/bin/python" -m pip install -q -r "$pack/requirements.txt"
