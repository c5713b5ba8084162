#!/usr/bin/env bash
# The test suite, from a fresh machine: installs what it needs, then runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k exr -x).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec python -m pytest "$@"
