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


def _group(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_cgroup_quota_v2_the_smallest_quota_up_the_tree(tmp_path):
    root = tmp_path / "fs"
    (tmp_path / "cgroup").write_text("0::/farm/job7\n")
    _group(root, **{"cpu.max": "max 100000\n"})
    _group(root / "farm", **{"cpu.max": "400000 100000\n"})
    _group(root / "farm" / "job7", **{"cpu.max": "max 100000\n"})
    assert env.cgroup_cpu_quota(tmp_path / "cgroup", root) == 4.0
    (root / "farm" / "job7" / "cpu.max").write_text("150000 100000\n")
    assert env.cgroup_cpu_quota(tmp_path / "cgroup", root) == 1.5
    (root / "farm" / "job7" / "cpu.max").write_text("max 100000\n")
    (root / "farm" / "cpu.max").write_text("max 100000\n")
    assert env.cgroup_cpu_quota(tmp_path / "cgroup", root) is None


def test_cgroup_quota_v1_and_a_container_that_sees_its_group_as_the_root(tmp_path):
    root = tmp_path / "fs"
    # docker --cpus=2 on cgroup v1 without a cgroup namespace: the host's path is not mounted inside
    (tmp_path / "cgroup").write_text("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
    _group(root / "cpu,cpuacct", **{"cpu.cfs_quota_us": "200000\n", "cpu.cfs_period_us": "100000\n"})
    assert env.cgroup_cpu_quota(tmp_path / "cgroup", root) == 2.0
    (root / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("-1\n")
    assert env.cgroup_cpu_quota(tmp_path / "cgroup", root) is None
    assert env.cgroup_cpu_quota(tmp_path / "absent", root) is None


def test_cpu_count_is_within_this_machine_s_cgroup_quota(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    quota = env.cgroup_cpu_quota()
    assert 1 <= env.cpu_count() <= (len(os.sched_getaffinity(0)) if quota is None else max(1, -(-quota // 1)))
    monkeypatch.setattr(env, "cgroup_cpu_quota", lambda: 1.2)   # a 1.2-CPU container: 2 threads at most
    assert env.cpu_count() == min(2, len(os.sched_getaffinity(0)))
