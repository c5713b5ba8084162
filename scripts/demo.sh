#!/usr/bin/env bash
# The main job, from a fresh machine: installs what it needs, then checks and runs the demo shot offline
# on the CPU twice: with its on-set HDRI (shots/demo/shot.toml) and from the plate alone through the
# shipped lighting prior (shots/demo/shot_prior.toml). Pass shot files to run those instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
export HF_HUB_OFFLINE=1
if [ "$#" -eq 0 ]; then
  set -- "$ROOT/shots/demo/shot.toml" "$ROOT/shots/demo/shot_prior.toml"
fi
for SHOT in "$@"; do
  vfxinsert check "$SHOT"
  vfxinsert run "$SHOT"
done
