"""The render farm on a real local Ray cluster (2 CPUs, no mocks), and the shot status it resumes from.

One cluster serves the whole module (Ray takes seconds to start). Its worker processes inherit
``farm.KILL_MARKER_ENV`` from this process, so a test arms the kill hook by creating the marker file:
the first render worker that then writes a frame deletes it and SIGKILLs itself.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from test_cli import make_shot
from vfxinsert import farm
from vfxinsert.cli import main
from vfxinsert.config import load_shot
from vfxinsert.errors import VfxInsertError
from vfxinsert.exr import read_layers
from vfxinsert.pipeline import lighting_stage, plate_stage, render_stage
from vfxinsert.sequences import format_frames
from vfxinsert.status import format_status, shot_status

LAYERS = {"R", "G", "B", "A", "shadow.R", "shadow.G", "shadow.B", "comp.R", "comp.G", "comp.B"}


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local 2-CPU Ray for the module; on teardown, every process it started must be gone."""
    marker = tmp_path_factory.mktemp("farm-hook") / "kill-once"
    os.environ[farm.KILL_MARKER_ENV] = str(marker)  # before start-up: the cluster's workers inherit it
    try:
        with farm.local_ray(num_cpus=2) as address:
            ray_processes = _descendants(os.getpid())
            yield address, marker
    finally:
        os.environ.pop(farm.KILL_MARKER_ENV, None)
    deadline = time.monotonic() + 15
    while _alive(ray_processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(ray_processes), "Ray processes left running after shutdown"


TWO_SHOTS = {"a": {"frames": (1, 3)}, "b": {"frames": (1, 2), "extra_plate": 'fps = "25"'}}


@pytest.fixture(scope="module")
def finished(cluster, tmp_path_factory, shared_data):
    """Two tiny shots submitted together, with what submit returned and reported on the way."""
    root = tmp_path_factory.mktemp("farm-two")
    shots = [make_shot(root / name, shared_data, **kwargs) for name, kwargs in TWO_SHOTS.items()]
    events: list[str] = []
    results = farm.submit(shots, cluster[0], chunk=2, on_event=events.append)
    return shots, results, events


def _deliverables(out_dir: Path) -> list[str]:
    return sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())


def test_a_submitted_shot_delivers_what_run_delivers(finished, tmp_path, shared_data):
    import av
    import nkparser

    shots, results, _ = finished
    for (name, kwargs), shot, result in zip(TWO_SHOTS.items(), shots, results):
        reference = make_shot(tmp_path / name, shared_data, **kwargs)
        assert main(["run", str(reference)]) == 0
        out = shot.parent / "out"
        assert _deliverables(out) == _deliverables(reference.parent / "out")
        assert {"sh.nk", "preview.mp4", "report/index.html", "logs/sh.log"} <= set(_deliverables(out))
        assert [p.name for p in result.handoff] == ["sh.nk", "preview.mp4", "index.html"]
        frames = list(range(kwargs["frames"][0], kwargs["frames"][1] + 1))
        script = nkparser.Script.from_file(out / "sh.nk")
        assert script.errors() == [] and script.diagnostics == []
        root = script.root()
        assert (int(root.get("first_frame")), int(root.get("last_frame"))) == (frames[0], frames[-1])
        assert float(root.get("fps")) == (25.0 if name == "b" else 24.0)
        layers = next(n for n in script.all_nodes() if n.name == "ReadLayers")
        assert layers.get_string("file") == (out / "sh.####.exr").as_posix()
        with av.open(str(out / "preview.mp4")) as movie:
            stream = movie.streams.video[0]
            assert stream.average_rate == (25 if name == "b" else 24)
            assert sum(1 for _ in movie.decode(stream)) == len(frames)  # every frame decodes
        log = (out / "logs" / "sh.log").read_text()
        assert " prepare: lighting: " in log and " render 1-2: render: frame 1 -> " in log
        assert " handoff: handoff: " in log and " driver: finished after " in log


def _complete_frames(out_dir: Path) -> list[str]:
    """Names of the final-named EXRs in ``out_dir``; each must hold every layer (a complete write)."""
    names = []
    for path in sorted(out_dir.glob("sh.*.exr")):
        layers, _ = read_layers(path)
        assert set(layers) == LAYERS, path
        names.append(path.name)
    return names


def test_local_ray_listens_on_loopback_only(cluster):
    import ray

    assert cluster[0].startswith("127.0.0.1:")
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    assert ray.cluster_resources()["CPU"] == 2


def test_two_shots_submitted_together_both_complete(finished):
    shots, results, events = finished
    assert [r.path for r in results] == shots
    for shot, result, frames, tasks in zip(shots, results, (3, 2), (2, 1)):
        assert result.ok, farm.format_result(result)
        assert [r.frame for r in result.render.results] == list(range(1, frames + 1))
        assert all(not r.skipped and not r.error for r in result.render.results)
        assert result.render_tasks == tasks  # chunk = 2: 3 frames -> 2 + 1, 2 frames -> 2
        assert result.lighting and result.timings.total_s >= result.timings.prepare_s > 0
        assert _complete_frames(shot.parent / "out") == [f"sh.{f:04d}.exr" for f in range(1, frames + 1)]
        assert shot_status(load_shot(shot)).complete
    assert "sh: render: 3 frame(s) written, 0 up to date, 0 failed in 2 render task(s)" in farm.format_result(results[0])
    assert sum("finished" in e for e in events) == 2 and any("rendered" in e for e in events)
    assert sum("handoff: " in e and e.endswith("preview.mp4") for e in events) == 2


def test_resubmitting_a_finished_shot_renders_nothing_and_says_so(cluster, finished):
    shots, _, _ = finished
    before = {p: p.stat().st_mtime_ns for p in (shots[0].parent / "out").rglob("*.exr")}
    (result,) = farm.submit([shots[0]], cluster[0])
    assert result.ok and result.render_tasks == 0
    assert all(r.skipped for r in result.render.results) and len(result.render.results) == 3
    lines = farm.format_result(result)
    assert "sh: render: 0 frame(s) written, 3 up to date, 0 failed; nothing to render" in lines
    assert "sh: plate: 0 frame(s) written, 3 up to date, 0 failed" in lines
    assert before == {p: p.stat().st_mtime_ns for p in (shots[0].parent / "out").rglob("*.exr")}


def test_worker_killed_during_a_render_is_retried_and_the_shot_completes(cluster, tmp_path, shared_data):
    address, marker = cluster
    shot = make_shot(tmp_path, shared_data, frames=(1, 3))
    marker.touch()
    (result,) = farm.submit([shot], address, chunk=3, max_retries=1)
    assert not marker.exists()  # the hook fired: a worker was SIGKILLed after writing a frame
    assert result.ok, farm.format_result(result)
    # The retry found the frame the killed worker had finished and rendered only the others.
    assert [(r.frame, r.skipped) for r in result.render.results] == [(1, True), (2, False), (3, False)]
    assert _complete_frames(tmp_path / "out") == ["sh.0001.exr", "sh.0002.exr", "sh.0003.exr"]
    assert not [p for p in (tmp_path / "out").iterdir() if ".tmp" in p.name]


def test_retries_are_bounded_and_a_rerun_resumes(cluster, tmp_path, shared_data):
    address, marker = cluster
    shot = make_shot(tmp_path, shared_data, frames=(1, 3))
    marker.touch()
    (result,) = farm.submit([shot], address, chunk=3, max_retries=0)
    assert not result.ok and not marker.exists()
    assert [r.frame for r in result.failed_frames] == [1, 2, 3]
    reason = result.failed_frames[0].error
    assert "render task for frames 1-3 failed" in reason and "after 0 retries" in reason
    # Only complete EXRs are left: the frame written before the kill, nothing half written.
    assert _complete_frames(tmp_path / "out") == ["sh.0001.exr"]
    assert "render: 1/3 frame(s) done; missing 2-3" in format_status(shot_status(load_shot(shot)))
    log = (tmp_path / "out" / "logs" / "sh.log").read_text()
    assert " render 1-3: render: frame 1 -> " in log and " driver: FAILED: render task for frames 1-3 failed" in log
    (again,) = farm.submit([shot], address, chunk=3)
    assert again.ok
    assert "sh: render: 2 frame(s) written, 1 up to date, 0 failed in 1 render task(s)" in farm.format_result(again)


def test_frames_render_only_those_and_force_redoes_them(cluster, tmp_path, shared_data):
    shot = make_shot(tmp_path, shared_data, frames=(1, 3))
    (result,) = farm.submit([farm.ShotRequest(shot, (2, 3))], cluster[0], chunk=1)
    assert result.ok, farm.format_result(result)
    assert [(r.frame, r.skipped) for r in result.render.results] == [(2, False), (3, False)]
    assert result.render_tasks == 2 and [r.frame for r in result.plate.results] == [1, 2, 3]  # the whole plate
    status = shot_status(load_shot(shot))
    assert status.render.done == (2, 3) and status.render.missing == (1,)
    assert not (tmp_path / "out" / "sh.nk").exists()       # no handoff that covers part of the shot
    assert not (tmp_path / "out" / "preview.mp4").exists() and (tmp_path / "out" / "report" / "index.html").is_file()
    before = {f: (tmp_path / "out" / f"sh.{f:04d}.exr").stat().st_mtime_ns for f in (2, 3)}
    (forced,) = farm.submit([farm.ShotRequest(shot, (3,))], cluster[0], force="render")
    assert forced.ok and [(r.frame, r.skipped) for r in forced.render.results] == [(3, False)]
    assert (tmp_path / "out" / "sh.0002.exr").stat().st_mtime_ns == before[2]
    assert (tmp_path / "out" / "sh.0003.exr").stat().st_mtime_ns != before[3]
    (outside,) = farm.submit([farm.ShotRequest(shot, (7,))], cluster[0])
    assert not outside.ok and "frame(s) 7 are not frames of the shot (1-3)" in outside.error


def test_a_broken_shot_fails_with_its_reason_and_the_others_complete(cluster, tmp_path, shared_data):
    good = make_shot(tmp_path / "good", shared_data, frames=(1, 1))
    unsolvable = make_shot(tmp_path / "nolight", shared_data, frames=(1, 1))
    (tmp_path / "nolight" / "env.hdr").write_bytes(b"#?RADIANCE\nnot really\n")  # the lighting stage fails
    typo = make_shot(tmp_path / "typo", shared_data, frames=(1, 1))
    typo.write_text(typo.read_text().replace("spp = 8", "sps = 8"))
    missing = tmp_path / "nowhere" / "shot.toml"
    bad_frame = make_shot(tmp_path / "badframe", shared_data, frames=(1, 2))
    (tmp_path / "badframe" / "plate" / "sh.0002.exr").write_bytes(b"not an exr at all")
    results = farm.submit([typo, unsolvable, missing, bad_frame, good], cluster[0])
    by_path = {r.path: r for r in results}
    assert by_path[good].ok
    assert not by_path[bad_frame].ok and by_path[bad_frame].error is None  # a bad frame, not a bad shot
    assert [r.frame for r in by_path[bad_frame].failed_frames] == [2]
    assert [r.frame for r in by_path[bad_frame].render.results] == [1]  # the good frame was rendered
    assert any(line.startswith("sh: plate frame 2 FAILED:") for line in farm.format_result(by_path[bad_frame]))
    assert "unknown key 'sps'" in by_path[typo].error and by_path[typo].plate is None
    assert "shot file not found" in by_path[missing].error
    assert farm.format_result(by_path[missing]) == [f"{missing}: FAILED: shot file not found. Fix: check the path"]
    assert "env.hdr" in by_path[unsolvable].error
    assert by_path[unsolvable].plate is not None and by_path[unsolvable].render is None  # the plate stage ran
    assert f"sh: FAILED: {by_path[unsolvable].error}" in farm.format_result(by_path[unsolvable])


def test_two_shots_with_the_same_outputs_are_refused(cluster, finished):
    shots, _, _ = finished
    first, second = farm.submit([shots[1], shots[1]], cluster[0])
    assert first.ok and "writes the same outputs as" in second.error


def test_cpu_tasks_are_pinned_to_cores_of_their_own(cluster, tmp_path):
    import ray

    def claim_and_report(name: str) -> list[int]:
        farm._claim_cores(1)
        (tmp_path / name).touch()  # a barrier: hold the core until the other task has claimed one too
        deadline = time.monotonic() + 60
        while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        return sorted(os.sched_getaffinity(0))

    probe = ray.remote(max_calls=1)(claim_and_report).options(num_cpus=1)
    first, second = ray.get([probe.remote("a"), probe.remote("b")])
    assert len(first) == len(second) == 1 and first != second


def test_status_shows_done_stale_and_missing_frames(tmp_path, shared_data):
    path = make_shot(tmp_path, shared_data, frames=(1, 4))
    shot = load_shot(path)
    fresh = shot_status(shot)
    assert fresh.plate.missing == (1, 2, 3, 4) and fresh.lighting.state == "missing" and not fresh.complete
    plate_stage(shot)
    env = lighting_stage(shot)
    render_stage(shot, frames=[1, 2], env=env)
    status = shot_status(shot)
    assert status.plate.done == (1, 2, 3, 4) and status.lighting.state == "solved"
    assert status.render.done == (1, 2) and status.render.missing == (3, 4)
    assert format_status(status)[2:5] == ["plate: 4/4 frame(s) done", "lighting: solved, up to date (hdri)",
                                          "render: 2/4 frame(s) done; missing 3-4"]
    path.write_text(path.read_text().replace("spp = 8", "spp = 4"))  # a render setting changed
    changed = shot_status(load_shot(path))
    assert changed.plate.done == (1, 2, 3, 4)
    assert changed.render.stale == (1, 2) and changed.render.missing == (3, 4)
    assert "render: 0/4 frame(s) done; stale 1-2; missing 3-4" in format_status(changed)


def test_frame_lists_and_chunks():
    assert format_frames([1003, 1001, 1002, 1005, 1007, 1008]) == "1001-1003,1005,1007-1008"
    assert format_frames([]) == "-" and format_frames([1001, 1003, 1005]) == "1001-1005x2"
    assert farm._chunks(tuple(range(1, 13)), 10) == [tuple(range(1, 7)), tuple(range(7, 13))]
    assert farm._chunks((1, 2, 3), 10) == [(1, 2, 3)] and farm._chunks((), 10) == []


@pytest.mark.parametrize("kwargs,needle", [({"chunk": 0}, "chunk"), ({"max_retries": -1}, "max_retries"),
                                           ({"cpus_per_task": 0}, "cpus_per_task")])
def test_bad_arguments_are_refused_before_any_work(kwargs, needle):
    with pytest.raises(VfxInsertError, match=needle):
        farm.submit(["shot.toml"], **kwargs)


def test_submit_takes_its_shots_and_frames_from_an_edit(cluster, tmp_path, shared_data, capsys):
    from test_edit import _range, write_timeline

    shot = make_shot(tmp_path / "a", shared_data, frames=(1, 3))
    write_timeline(tmp_path / "edit.otio", [("sh_a", _range(2, 2), {"vfxinsert": {"shot": "a/shot.toml"}}, None)])
    assert main(["submit", "--otio", str(tmp_path / "edit.otio"), "--address", cluster[0]]) == 0
    out = capsys.readouterr().out
    assert f"submit: {shot.resolve()}: frames 2-3" in out and "submit: 1 of 1 shot(s) finished" in out
    assert sorted(p.name for p in (tmp_path / "a" / "out").glob("sh.*.exr")) == ["sh.0002.exr", "sh.0003.exr"]
    assert main(["submit", "--otio", str(tmp_path / "edit.otio"), str(shot)]) == 2   # shots come from one place
