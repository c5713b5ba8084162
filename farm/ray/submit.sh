#!/usr/bin/env bash
# Submit shots to a running Ray cluster as one Ray job whose driver is `vfxinsert submit`.
#
#   farm/ray/submit.sh [--address URL] [--chunk N] [--max-retries N] [--frames RANGE] [--force STAGE]
#                      [--submission-id ID] [--no-wait] SHOT.toml [SHOT.toml ...]
#
# The job server address is --address, else $RAY_ADDRESS, else http://127.0.0.1:8265 (the head's own
# job server: run this on the head, or keep `ray dashboard farm/ray/cluster.yaml` open for a tunnel).
# Shot files must be on the storage every node mounts at the same path; they are passed as absolute
# paths. Needs `ray[default]` on this machine (the jobs CLI). Waits for the job and exits with its
# status, 0 when every shot finished and 1 otherwise, as `ray job submit` does, unless --no-wait.
# Then follow it with: ray job logs --follow ID / ray job status ID / ray job stop ID.
# --frames and --force go to `vfxinsert submit` (fileseq ranges: 1001-1050, 1001-1100x2; a stage name).
# Each shot's frames, .nk, preview.mp4 and QC report land in its output.dir, its log in output.dir/logs/.
# Authentication: the cluster's token (see farm/README.md) in ~/.ray/auth_token or $RAY_AUTH_TOKEN.
set -euo pipefail

die() { printf 'submit.sh: error: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

address="${RAY_ADDRESS:-http://127.0.0.1:8265}"
chunk=10
retries=2
id=""
extra=()
wait_flag=()
shots=()
while [ $# -gt 0 ]; do
  case "$1" in
    --address) [ $# -ge 2 ] || die "--address needs a value"; address="$2"; shift 2 ;;
    --chunk) [ $# -ge 2 ] || die "--chunk needs a value"; chunk="$2"; shift 2 ;;
    --max-retries) [ $# -ge 2 ] || die "--max-retries needs a value"; retries="$2"; shift 2 ;;
    --submission-id) [ $# -ge 2 ] || die "--submission-id needs a value"; id="$2"; shift 2 ;;
    --frames) [ $# -ge 2 ] || die "--frames needs a range"; extra+=(--frames "$2"); shift 2 ;;
    --force) [ $# -ge 2 ] || die "--force needs a stage (plate, lighting, render, handoff)"
             case "$2" in plate|lighting|render|handoff) ;; *) die "--force: unknown stage '$2'" ;; esac
             extra+=("--force=$2"); shift 2 ;;
    --no-wait) wait_flag=(--no-wait); shift ;;
    -h|--help) usage 0 ;;
    --) shift; shots+=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) shots+=("$1"); shift ;;
  esac
done
[ ${#shots[@]} -gt 0 ] || die "no shot file given (see --help)"
[[ "$chunk" =~ ^[1-9][0-9]*$ ]] || die "--chunk must be a whole number >= 1, got '$chunk'"
[[ "$retries" =~ ^[0-9]+$ ]] || die "--max-retries must be a whole number >= 0, got '$retries'"
command -v ray >/dev/null || die "no 'ray' on PATH: pip install 'ray[default]==2.60.0' (the jobs CLI needs the extras)"

# Ray clusters use token authentication: send this machine's token (~/.ray/auth_token, or
# $RAY_AUTH_TOKEN_PATH / $RAY_AUTH_TOKEN) when there is one, as Ray itself does for `ray start`.
if [ -z "${RAY_AUTH_MODE:-}" ] && { [ -n "${RAY_AUTH_TOKEN:-}" ] || [ -f "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]; }; then
  export RAY_AUTH_MODE=token
fi

absolute=()
for shot in "${shots[@]}"; do
  [ -f "$shot" ] || die "shot file not found: $shot"
  absolute+=("$(cd "$(dirname "$shot")" && pwd -P)/$(basename "$shot")")
done
# A readable, unique job id: the first shot's folder, how many more, and the time (UTC).
if [ -z "$id" ]; then
  first="$(basename "$(dirname "${absolute[0]}")")"
  more=$(( ${#absolute[@]} - 1 ))
  id="vfxinsert-${first}$([ "$more" -gt 0 ] && printf -- '-and-%d' "$more")-$(date -u +%Y%m%d-%H%M%S)"
  id="$(printf '%s' "$id" | tr -c 'A-Za-z0-9_.-' '_')"
fi

echo "submit.sh: job $id: ${#absolute[@]} shot(s) to $address" >&2
# The driver needs no CPU of its own (it waits on the shot tasks); `ray job submit` quotes each
# argument after -- for the shell that runs the entrypoint on the head.
exec ray job submit --address "$address" --submission-id "$id" --entrypoint-num-cpus 0 "${wait_flag[@]}" \
  -- vfxinsert submit --chunk "$chunk" --max-retries "$retries" "${extra[@]}" "${absolute[@]}"
