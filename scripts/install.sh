#!/usr/bin/env bash
# Fresh-machine setup: system packages (where we may), a virtualenv, the project and its models.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  need=()
  for pkg in espeak-ng sox chromium chromium-driver; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  fi
fi

PY=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch pinned first and exactly: anything looser pulls gigabytes of CUDA wheels.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[dev]"
# Smart Turn v3.2 (end of turn from the audio) ships in the pipecat-ai wheel; we read its ONNX
# file and numpy feature extractor by path, so none of pipecat's own dependencies are needed.
.venv/bin/pip install -q --no-deps pipecat-ai==1.14.0
echo "installed: $(.venv/bin/huikuan --help >/dev/null && echo huikuan CLI ready)"
