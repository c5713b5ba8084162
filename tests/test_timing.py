"""Frame rate and timecode: parsed from the shot file, read from real EXR and movie plates, and carried
into every output (EXR headers, preview.mp4's rate and timecode track, the .nk Root fps, the report)."""
from __future__ import annotations

from fractions import Fraction

import av
import nkparser
import numpy as np
import OpenEXR
import pytest
from test_cli import make_shot

from vfxinsert.cli import main
from vfxinsert.config import load_shot
from vfxinsert.errors import ConfigError
from vfxinsert.exr import read_layers, write_exr
from vfxinsert.pipeline import plate_stage
from vfxinsert.shot import ShotContext
from vfxinsert.timing import ShotTiming, exr_timecode, format_exr_timecode, parse_fps

NTSC_FILM = Fraction(24000, 1001)


@pytest.mark.parametrize("value,rate", [("24000/1001", NTSC_FILM), (23.976, NTSC_FILM), ("23.98", NTSC_FILM),
                                        ("29.97", Fraction(30000, 1001)), (59.94, Fraction(60000, 1001)),
                                        (25, Fraction(25)), ("24", Fraction(24)), ("12.5", Fraction(25, 2)),
                                        ("2997/125", Fraction(2997, 125))])  # an exact fraction is kept as written
def test_frame_rates_parse_to_exact_fractions(value, rate):
    assert parse_fps(value, "shot.toml [plate] fps") == rate


@pytest.mark.parametrize("value", ["fast", "1/0", 0, -24, "5000"])
def test_a_bad_frame_rate_says_where_and_how_to_fix_it(value):
    with pytest.raises(ConfigError, match=r"shot.toml \[plate\] fps.*Fix: write the rate"):
        parse_fps(value, "shot.toml [plate] fps")


def test_timecodes_count_as_smpte_does():
    # SMPTE 12M reference values: drop-frame skips frames 0 and 1 of every minute but every tenth.
    df = ShotTiming(Fraction(30000, 1001), "shot file", anchor=(0, "00:00:00;00"))
    assert [df.timecode(f) for f in (1799, 1800, 17982, 107892)] == \
        ["00:00:59;29", "00:01:00;02", "00:10:00;00", "01:00:00;00"]
    film = ShotTiming(NTSC_FILM, "plate", anchor=(1001, "01:00:00:00"))  # 23.976 counts 24 frames a second
    assert [film.timecode(f) for f in (1001, 1024, 1025, 1000)] == \
        ["01:00:00:00", "01:00:00:23", "01:00:01:00", "00:59:59:23"]
    assert ShotTiming(Fraction(24), "default").timecode(1001) is None
    assert format_exr_timecode(exr_timecode("10:11:12;13")) == "10:11:12;13"


def _write_timed_plates(shot_file, frames, fps, first_timecode):
    """Rewrite make_shot's plate EXRs with a frame rate and each frame's own timecode (as a camera writes them)."""
    timing = ShotTiming(fps, "plate", anchor=(frames[0], first_timecode))
    for frame in frames:
        path = shot_file.parent / "plate" / f"sh.{frame:04d}.exr"
        layers, _ = read_layers(path)
        write_exr(path, layers, attributes={"framesPerSecond": fps, "timeCode": exr_timecode(timing.timecode(frame))})


def _header(path):
    with OpenEXR.File(str(path), header_only=True) as exr:
        header = exr.header()
        return Fraction(header["framesPerSecond"]), format_exr_timecode(header["timeCode"])


def test_an_exr_plate_s_rate_and_timecode_reach_every_output(tmp_path, shared_data, capsys):
    shot_file = make_shot(tmp_path, shared_data, frames=(1, 3))
    _write_timed_plates(shot_file, (1, 2, 3), NTSC_FILM, "01:00:00:22")
    assert main(["run", str(shot_file)]) == 0
    assert "warning: no frame rate" not in capsys.readouterr().out
    out = tmp_path / "out"
    expected = {1: "01:00:00:22", 2: "01:00:00:23", 3: "01:00:01:00"}
    for frame, timecode in expected.items():
        assert _header(out / f"sh.{frame:04d}.exr") == (NTSC_FILM, timecode)
        assert _header(out / "plate" / f"sh.{frame:04d}.exr") == (NTSC_FILM, timecode)
    assert float(nkparser.Script.from_file(out / "sh.nk").root().get("fps")) == pytest.approx(24000 / 1001, abs=1e-9)
    with av.open(str(out / "preview.mp4")) as movie:
        assert movie.streams.video[0].average_rate == NTSC_FILM
        assert movie.streams.video[0].metadata["timecode"] == "01:00:00:22"
        assert sum(1 for _ in movie.decode(video=0)) == 3
    report = (out / "report" / "index.html").read_text()
    assert "24000/1001 fps (23.976, plate); timecode 01:00:00:22 - 01:00:01:00" in report


def test_the_shot_file_rate_wins_and_no_rate_at_all_is_a_warning(tmp_path, shared_data, capsys):
    plain = make_shot(tmp_path / "plain", shared_data, frames=(1, 1))
    assert main(["check", "--no-llvm", str(plain)]) == 0
    assert "warn timing: no frame rate known" in capsys.readouterr().out
    assert ShotContext(load_shot(plain)).timing == ShotTiming(Fraction(24), "default")
    timed = make_shot(tmp_path / "timed", shared_data, frames=(1, 2), extra_plate='fps = "25"')
    _write_timed_plates(timed, (1, 2), NTSC_FILM, "00:00:10:00")
    timing = ShotContext(load_shot(timed)).timing
    assert (timing.fps, timing.source, timing.plate_fps) == (25, "shot file", NTSC_FILM)
    assert timing.timecode(2) == "00:00:10:01"
    assert main(["check", "--no-llvm", str(timed)]) == 0
    assert "[plate] fps = 25 overrides the plate's own 24000/1001 fps" in capsys.readouterr().out


def _movie(path, rate, timecode, frames=4):
    with av.open(str(path), "w", format="mov") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        stream.metadata["timecode"] = timecode
        for i in range(frames):
            image = np.full((36, 64, 3), 40 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_a_movie_plate_at_24000_1001_carries_its_rate_and_start_timecode(tmp_path, shared_data):
    shot_file = make_shot(tmp_path, shared_data, frames=(1, 1))
    _movie(tmp_path / "plate.mov", NTSC_FILM, "00:59:59:20")
    text = shot_file.read_text().replace('path = "plate/sh.####.exr"', 'path = "plate.mov"')
    shot_file.write_text(text.replace("frames = [1, 1]\n", ""))
    shot = load_shot(shot_file)
    timing = ShotContext(shot).timing
    assert (timing.fps, timing.source, timing.anchor) == (NTSC_FILM, "plate", (1, "00:59:59:20"))
    report = plate_stage(shot)
    assert [r.frame for r in report.results if not r.error] == [1, 2, 3, 4]
    assert [_header(tmp_path / "out" / "plate" / f"sh.{f:04d}.exr") for f in (1, 4)] == \
        [(NTSC_FILM, "00:59:59:20"), (NTSC_FILM, "00:59:59:23")]
