#!/usr/bin/env bash
# The main job, from a fresh machine: installs what it needs, checks the demo shot, then runs it
# offline on the CPU. Pass another shot file to run that one instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
SHOT="${1:-$ROOT/shots/demo/shot.toml}"
export HF_HUB_OFFLINE=1
vfxinsert check "$SHOT"
vfxinsert run "$SHOT"
