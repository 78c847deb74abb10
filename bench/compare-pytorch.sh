#!/usr/bin/env bash
# bfl-node training vs PyTorch (Debian's python3-torch, installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-numpy
fi
exec npx node bench/compare-pytorch.ts "$@"
