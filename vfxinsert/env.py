"""Process setup for the heavy parts: the system LLVM Mitsuba's CPU backend drives, and thread counts.

Mitsuba's ``llvm_ad_rgb`` variant loads a system libLLVM at run time. LLVM 14 and 15 crash on its
kernels ("Cannot select fminimum"; design/mitsuba-notes.md section 1), so we look for the newest
libLLVM >= 16 and set ``DRJIT_LIBLLVM_PATH`` before mitsuba is imported, unless the user set it.
"""
from __future__ import annotations

import glob
import math
import os
import re
import subprocess
import sys
from pathlib import Path

from .errors import SetupError

MIN_LLVM_MAJOR = 16
_LLVM_GLOBS = (
    "/usr/lib/*/libLLVM*.so*",
    "/usr/lib/libLLVM*.so*",
    "/usr/lib64/libLLVM*.so*",
    "/usr/lib/llvm-*/lib/libLLVM*.so*",
    "/usr/local/lib/libLLVM*.so*",
    "/opt/homebrew/opt/llvm/lib/libLLVM*.dylib",
    "/usr/local/opt/llvm/lib/libLLVM*.dylib",
)
_INSTALL_HINT = "install Debian's libllvm19 (apt-get install libllvm19) or point DRJIT_LIBLLVM_PATH at a libLLVM >= 16"


def llvm_major(path: str | os.PathLike) -> int | None:
    """The LLVM major version in a library file name (libLLVM-19.so, libLLVM.so.19.1, ...), or None."""
    name = Path(path).name
    match = re.search(r"libLLVM[-.]?(\d+)", name) or re.search(r"\.so\.(\d+)", name)
    return int(match.group(1)) if match else None


def find_llvm() -> Path | None:
    """The newest usable (>= 16) libLLVM on this machine, or None."""
    found: dict[Path, int] = {}
    for pattern in _LLVM_GLOBS:
        for candidate in glob.glob(pattern):
            major = llvm_major(candidate)
            if major is not None and major >= MIN_LLVM_MAJOR and os.path.isfile(candidate):
                found.setdefault(Path(candidate).resolve(), major)
    if not found:
        return None
    return max(found, key=lambda p: (found[p], str(p)))


def configure_llvm() -> Path:
    """Make sure ``DRJIT_LIBLLVM_PATH`` names a usable libLLVM; return it.

    A user's setting wins, but one that points at a missing file or at LLVM 14/15 is an error, because
    drjit would crash later with an unhelpful message.
    """
    current = os.environ.get("DRJIT_LIBLLVM_PATH")
    if current:
        if not os.path.isfile(current):
            raise SetupError(f"DRJIT_LIBLLVM_PATH points at a missing file {current!r}",
                             where="environment", fix=_INSTALL_HINT)
        major = llvm_major(current)
        if major is not None and major < MIN_LLVM_MAJOR:
            raise SetupError(f"DRJIT_LIBLLVM_PATH points at LLVM {major}, which crashes Mitsuba's kernels",
                             where="environment", fix=_INSTALL_HINT)
        return Path(current)
    found = find_llvm()
    if found is None:
        raise SetupError(f"no libLLVM >= {MIN_LLVM_MAJOR} found for Mitsuba's CPU backend",
                         where="system libraries", fix=_INSTALL_HINT)
    os.environ["DRJIT_LIBLLVM_PATH"] = str(found)
    return found


def cpu_count() -> int:
    """CPUs this process may use: the affinity mask (``os.process_cpu_count`` where Python has it), no
    more than its cgroup's CPU quota (a ``docker run --cpus=2`` container on a 64-core node: 2), and no
    more than ``OMP_NUM_THREADS`` when a scheduler (Ray sets it to a task's CPU budget) has set it."""
    if hasattr(os, "process_cpu_count"):  # Python >= 3.13: the affinity mask
        n = os.process_cpu_count() or 1
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:  # not on Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        n = min(n, math.ceil(quota))
    budget = os.environ.get("OMP_NUM_THREADS", "")
    n = max(1, n)
    return min(n, int(budget)) if budget.isdigit() and int(budget) > 0 else n


def cgroup_cpu_quota(proc_cgroup: str | os.PathLike = "/proc/self/cgroup",
                     root: str | os.PathLike = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in CPUs (quota / period), or None when it has none.

    cgroup v2: ``cpu.max`` (``"200000 100000"``, or ``"max 100000"`` for none); v1: ``cpu.cfs_quota_us``
    (-1 for none) over ``cpu.cfs_period_us``. The process's own group and every group above it count
    (the smallest quota wins); inside a container the group's path in ``proc_cgroup`` may not exist
    under ``root`` (the container sees its own group as the root), so the mount's top is read as well.
    """
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        _, controllers, group = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # v2, the unified hierarchy
            folders, read = [Path(root)], _cpu_max
        elif "cpu" in controllers.split(","):  # v1, mounted as cpu,cpuacct (or cpu, with a link)
            folders, read = [Path(root) / controllers, Path(root) / "cpu"], _cfs_quota
        else:
            continue
        for top in folders:
            here = top / group.lstrip("/")
            for folder in dict.fromkeys([here, *here.parents, top]):
                if folder == top or top in folder.parents:
                    value = read(folder)
                    if value is not None:
                        quotas.append(value)
    return min(quotas) if quotas else None


def _cpu_max(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _cfs_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def import_mitsuba(variant: str | None = None):
    """Import mitsuba with LLVM configured, a variant set and the thread count set explicitly.

    ``variant`` defaults to ``cuda_ad_rgb`` when a CUDA device is usable, else ``llvm_ad_rgb``.
    drjit's default thread count ignores cgroup quotas (mitsuba-notes section 1), so set it from
    the CPUs this process may use; torch gets the same number.
    """
    if variant is None or variant.startswith("llvm"):
        configure_llvm()
    import drjit as dr
    import mitsuba as mi

    if variant is None:
        variant = "cuda_ad_rgb" if "cuda_ad_rgb" in mi.variants() and _cuda_usable() else "llvm_ad_rgb"
        if variant == "llvm_ad_rgb":
            configure_llvm()
    try:
        mi.set_variant(variant)
    except Exception as exc:  # drjit raises plain exceptions for a backend it cannot start
        raise SetupError(f"Mitsuba variant {variant!r} cannot start: {exc}", where="mitsuba",
                         fix=_INSTALL_HINT if variant.startswith("llvm") else "check the CUDA driver") from exc
    threads = cpu_count()
    dr.set_thread_count(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    return mi


def _cuda_usable() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def check_llvm_runs(timeout_s: float = 120.0) -> str:
    """Compile and run one tiny Mitsuba kernel in a child process; return a one-line summary.

    A child process, because a bad LLVM kills the interpreter (segfault) instead of raising.
    """
    path = configure_llvm()
    code = (
        "import mitsuba as mi, drjit as dr; mi.set_variant('llvm_ad_rgb');"
        "x = dr.arange(mi.Float, 1024); print(dr.sum(dr.sqrt(x * x))[0])"
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout_s, env=dict(os.environ, DRJIT_LIBLLVM_PATH=str(path)))
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"a test kernel on {path} did not finish in {timeout_s:.0f} s", where="LLVM",
                         fix=_INSTALL_HINT) from exc
    expected = float(sum(range(1024)))
    if proc.returncode != 0 or not proc.stdout.strip() or abs(float(proc.stdout.split()[-1]) - expected) > 1e-3:
        detail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise SetupError(f"Mitsuba's CPU backend failed with {path}: {detail}", where="LLVM", fix=_INSTALL_HINT)
    return f"Mitsuba llvm_ad_rgb runs with {path}"
