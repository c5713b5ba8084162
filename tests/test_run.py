"""``vfxinsert run`` and ``status`` with frame ranges, forced stages, single stages and the shot log, on
real tiny shots; and the fileseq frame-range text they read and write."""
from __future__ import annotations

import json

import pytest
from test_cli import make_shot

from vfxinsert.cli import main
from vfxinsert.errors import ConfigError
from vfxinsert.sequences import format_frames, parse_frames


@pytest.mark.parametrize("text,frames", [("1001-1005", (1001, 1002, 1003, 1004, 1005)),
                                         ("1001-1009x4", (1001, 1005, 1009)), ("1010,1020", (1010, 1020)),
                                         ("1-6y3", (2, 3, 5, 6)), ("3-1", (1, 2, 3)), ("-2-1", (-2, -1, 0, 1)),
                                         ("1001-1003, 1010", (1001, 1002, 1003, 1010))])
def test_frame_ranges_read_and_write_back(text, frames):
    assert parse_frames(text) == frames
    assert parse_frames(format_frames(frames)) == frames


@pytest.mark.parametrize("text,needle", [("1-10:2", "write a step with 'x'"), ("ten", "cannot be read"),
                                         ("1.5", "sub-frames"), ("", "has no frames")])
def test_a_bad_frame_range_is_one_clear_error(text, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_frames(text)


def _status(shot, capsys, *extra):
    capsys.readouterr()
    assert main(["status", str(shot), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _mtimes(out):
    return {p.name: p.stat().st_mtime_ns for p in out.glob("sh.*.exr")}


def test_frames_force_and_single_stages(tmp_path, shared_data, capsys):
    shot = make_shot(tmp_path, shared_data, frames=(1, 4))
    out = tmp_path / "out"
    assert main(["run", str(shot), "--frames", "2-4x2"]) == 0
    assert sorted(_mtimes(out)) == ["sh.0002.exr", "sh.0004.exr"]
    assert "sh.nk and preview.mp4 not written: frame(s) 1,3" in capsys.readouterr().out
    status = _status(shot, capsys)
    assert status["plate"]["done"] == [1, 2, 3, 4]  # the plate stage covers the shot: the lighting needs it
    assert status["render"]["done"] == [2, 4] and status["render"]["missing_text"] == "1,3"
    assert status["lighting"] == {"state": "solved", "source": "hdri"} and status["complete"] is False
    only = _status(shot, capsys, "--frames", "4")
    assert only["render"]["done"] == [4] and only["render"]["missing"] == [] and only["frames"] == [4]
    assert not (out / "sh.nk").exists()   # frames 1 and 3 have no layers yet: no handoff that looks complete

    before = _mtimes(out)
    assert main(["run", str(shot), "--frames", "1,3"]) == 0   # the other frames: the handoff covers all four
    assert _mtimes(out)["sh.0002.exr"] == before["sh.0002.exr"]
    assert "first_frame 1" in (out / "sh.nk").read_text() and "last_frame 4" in (out / "sh.nk").read_text()
    assert _status(shot, capsys)["complete"] is True

    before = _mtimes(out)
    assert main(["run", str(shot), "--frames", "3", "--force", "render"]) == 0
    after = _mtimes(out)
    assert [name for name in before if before[name] != after[name]] == ["sh.0003.exr"]

    plate_before = (out / "plate" / "sh.0001.exr").stat().st_mtime_ns
    assert main(["run", str(shot), "--stage", "render", "--frames", "1", "--force=render"]) == 0  # a farm step
    assert (out / "plate" / "sh.0001.exr").stat().st_mtime_ns == plate_before
    assert main(["run", str(shot), "--force"]) == 0   # every stage again
    assert (out / "plate" / "sh.0001.exr").stat().st_mtime_ns != plate_before

    log = (out / "logs" / "sh.log").read_text().splitlines()
    assert any(line.endswith("run render 1: render: frame 1 -> " + str(out / "sh.0001.exr")) for line in log)
    assert any(" run 1,3: start: stages plate, lighting, render, handoff; frames 1,3" in line for line in log)
    assert all(line[:4].isdigit() and line.split()[0].endswith("Z") for line in log)  # UTC time first

    assert main(["run", str(shot), "--frames", "9"]) == 1
    assert "frame(s) 9 are not frames of the shot (1-4)" in capsys.readouterr().err


def test_a_render_step_without_a_solved_lighting_fails_clearly(tmp_path, shared_data, capsys):
    shot = make_shot(tmp_path, shared_data, frames=(1, 1))
    assert main(["run", str(shot), "--stage", "plate"]) == 0
    assert main(["run", str(shot), "--stage", "render"]) == 1
    assert "Fix:" in capsys.readouterr().err
    assert main(["run", str(shot), "--stage", "lighting"]) == 0
    assert main(["run", str(shot), "--stage", "render"]) == 0 and (tmp_path / "out" / "sh.0001.exr").is_file()
    assert main(["run", str(shot), "--stage", "handoff"]) == 0 and (tmp_path / "out" / "preview.mp4").is_file()


def test_the_cli_names_the_pipeline_s_stages():
    from vfxinsert.cli import STAGE_NAMES
    from vfxinsert.pipeline import STAGES

    assert STAGE_NAMES == STAGES
