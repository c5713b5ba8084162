#!/usr/bin/env bash
# Set up everything vfxinsert needs on a fresh machine, idempotently; sourced by scripts/demo.sh and
# scripts/test.sh. Installs: a virtual environment (.venv, or $VFXINSERT_VENV) with the pinned Python
# packages of requirements.lock, this package in editable mode, and a system libLLVM >= 16 for Mitsuba's
# CPU backend (Debian's libllvm19) when none is present.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VFXINSERT_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

command -v "$PY" >/dev/null || die "no $PY on PATH: install Python 3.10 or newer"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PY is older than 3.10"

# --- system LLVM (Mitsuba's llvm_ad_rgb JIT; LLVM 14/15 crash, so only >= 16 counts) --------------
have_llvm() {
  if [ -n "${DRJIT_LIBLLVM_PATH:-}" ] && [ -f "$DRJIT_LIBLLVM_PATH" ]; then return 0; fi
  local f v
  for f in /usr/lib/*/libLLVM*.so* /usr/lib/libLLVM*.so* /usr/lib64/libLLVM*.so* /usr/lib/llvm-*/lib/libLLVM*.so*; do
    [ -f "$f" ] || continue
    v=$(basename "$f" | sed -nE 's/^libLLVM[-.]?([0-9]+).*/\1/p; s/^libLLVM\.so\.([0-9]+).*/\1/p' | head -n1)
    [ -n "$v" ] && [ "$v" -ge 16 ] && return 0
  done
  return 1
}
if ! have_llvm; then
  say "no libLLVM >= 16 found: installing Debian's libllvm19"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
  if command -v apt-get >/dev/null && { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; }; then
    $SUDO apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libllvm19 >&2 \
      || die "apt-get could not install libllvm19. Install LLVM >= 16 yourself and set DRJIT_LIBLLVM_PATH to its libLLVM .so"
  else
    die "Mitsuba's CPU renderer needs libLLVM >= 16 and apt-get is not usable here. Install LLVM 19 (e.g. libllvm19) and set DRJIT_LIBLLVM_PATH to its libLLVM .so"
  fi
  have_llvm || die "libllvm19 installed but no libLLVM >= 16 found; set DRJIT_LIBLLVM_PATH"
fi

# --- Python environment ----------------------------------------------------------------------------
STAMP="$VENV/.vfxinsert-lock"
WANT="$(cat "$ROOT/requirements.lock" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating the virtual environment $VENV"
  "$PY" -m venv "$VENV" || die "python venv failed (on Debian: apt-get install python3-venv)"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  say "installing pinned Python packages (requirements.lock)"
  "$VENV/bin/python" -m pip install -q --upgrade pip setuptools >&2
  "$VENV/bin/python" -m pip install -q -r "$ROOT/requirements.lock" >&2
  "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT" >&2
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
