"""A frame's layers do not depend on where or how it was rendered: one uninterrupted `run`, chunks of 2
on a real local Ray farm (`submit`), and a `run` killed with SIGKILL mid-render and then resumed give
bit-identical layers. Every value a render depends on is computed once per shot (the ground albedo is
stored with the solve) and the samples are seeded by (shot, frame)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np

from test_cli import make_shot
from vfxinsert import farm
from vfxinsert.cli import main
from vfxinsert.exr import read_layers
from vfxinsert.lighting.environment import read_environment
from vfxinsert.config import load_shot

FRAMES = (1, 4)


def _shot(folder, shared_data):
    shot = make_shot(folder, shared_data, frames=FRAMES)
    shot.write_text(shot.read_text().replace("spp = 8", "spp = 512"))   # a frame takes long enough to be killed in
    return shot


def _layers(shot):
    return {f: read_layers(shot.parent / "out" / f"sh.{f:04d}.exr")[0] for f in range(FRAMES[0], FRAMES[1] + 1)}


def _assert_identical(a: dict, b: dict, how: str) -> None:
    for frame, layers in a.items():
        assert set(layers) == set(b[frame])
        different = [n for n in layers if not np.array_equal(layers[n], b[frame][n])]
        assert not different, f"frame {frame} rendered {how} differs in {different}"


def test_one_run_farm_chunks_and_a_killed_resumed_run_give_identical_layers(tmp_path, shared_data):
    whole = _shot(tmp_path / "whole", shared_data)
    assert main(["run", str(whole)]) == 0
    reference = _layers(whole)
    albedo = read_environment(load_shot(whole)).ground_albedo
    assert albedo is not None and all(0.02 <= c <= 0.9 for c in albedo)   # measured once, stored with the solve

    chunked = _shot(tmp_path / "chunked", shared_data)
    with farm.local_ray(num_cpus=2) as address:
        (result,) = farm.submit([chunked], address, chunk=2)
    assert result.ok and result.render_tasks == 2, farm.format_result(result)
    _assert_identical(reference, _layers(chunked), "in chunks of 2 on the farm")

    killed = _shot(tmp_path / "killed", shared_data)
    first = killed.parent / "out" / "sh.0001.exr"
    proc = subprocess.Popen([sys.executable, "-m", "vfxinsert", "run", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not first.exists() and proc.poll() is None:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    survived = sorted(p.name for p in first.parent.glob("sh.*.exr"))
    assert "sh.0001.exr" in survived and len(survived) < FRAMES[1], survived   # killed part-way through
    assert main(["run", str(killed)]) == 0
    _assert_identical(reference, _layers(killed), "after a kill -9 and a resume")
