"""LLVM discovery for Mitsuba's CPU backend."""
from __future__ import annotations

import os

import pytest

from vfxinsert import env
from vfxinsert.errors import SetupError


@pytest.mark.parametrize("name,major", [("libLLVM-19.so", 19), ("libLLVM.so.19.1", 19), ("libLLVM-14.0.6.so.1", 14),
                                        ("libLLVM-15.so.1", 15), ("libLLVM.dylib", None)])
def test_llvm_major(name, major):
    assert env.llvm_major(name) == major


def test_finds_a_usable_llvm():
    found = env.find_llvm()
    assert found is not None and env.llvm_major(found) >= env.MIN_LLVM_MAJOR


def test_user_setting_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("DRJIT_LIBLLVM_PATH", str(tmp_path / "libLLVM-19.so"))
    with pytest.raises(SetupError, match="missing file"):
        env.configure_llvm()
    old = tmp_path / "libLLVM-14.so"
    old.write_bytes(b"")
    monkeypatch.setenv("DRJIT_LIBLLVM_PATH", str(old))
    with pytest.raises(SetupError, match="LLVM 14, which crashes"):
        env.configure_llvm()


def test_unset_is_filled_in(monkeypatch):
    monkeypatch.delenv("DRJIT_LIBLLVM_PATH", raising=False)
    path = env.configure_llvm()
    import os

    assert os.environ["DRJIT_LIBLLVM_PATH"] == str(path)


def test_kernel_runs():
    assert "runs with" in env.check_llvm_runs()


def test_cpu_count_follows_affinity_and_the_omp_budget(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    allowed = len(os.sched_getaffinity(0))
    assert env.cpu_count() == allowed
    monkeypatch.setenv("OMP_NUM_THREADS", "1")      # a Ray task's CPU budget
    assert env.cpu_count() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", str(allowed + 7))   # never more than the process may use
    assert env.cpu_count() == allowed
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")   # not a number: ignored
    assert env.cpu_count() == allowed
