"""Shot lists from an OpenTimelineIO timeline, built here with OpenTimelineIO itself."""
from __future__ import annotations

import opentimelineio as otio
import pytest
from test_cli import make_shot

from vfxinsert.edit import shots_from_timeline
from vfxinsert.errors import ConfigError

RATE = 24


def _range(start: float, frames: int) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(otio.opentime.RationalTime(start, RATE), otio.opentime.RationalTime(frames, RATE))


def write_timeline(path, clips) -> None:
    """An edit with one video track of ``clips`` (name, source range, metadata, media reference)."""
    track = otio.schema.Track(name="V1")
    for name, source, metadata, reference in clips:
        track.append(otio.schema.Clip(name=name, source_range=source, metadata=metadata or {},
                                      media_reference=reference))
    timeline = otio.schema.Timeline(name="edit")
    timeline.tracks.append(track)
    otio.adapters.write_to_file(timeline, str(path))


def test_clips_name_their_shots_and_frames(tmp_path, shared_data):
    a = make_shot(tmp_path / "a", shared_data, frames=(1, 4))
    b = make_shot(tmp_path / "b", shared_data, frames=(1001, 1003))
    plate_time = otio.opentime.from_timecode("01:00:00:00", RATE)  # b's media: its own time, from a timecode
    b_media = otio.schema.ExternalReference(target_url=b.as_uri(),
                                            available_range=otio.opentime.TimeRange(plate_time, _range(0, 3).duration))
    write_timeline(tmp_path / "edit.otio", [
        ("sh_a_1", _range(2, 2), {"vfxinsert": {"shot": "a/shot.toml"}}, None),    # plate frames 2-3
        ("reference", _range(0, 10), None, otio.schema.ExternalReference(target_url="ref/cut.mov")),  # no shot: left out
        ("sh_b", otio.opentime.TimeRange(plate_time + otio.opentime.RationalTime(1, RATE), _range(0, 2).duration),
         None, b_media),                                                           # 2nd-3rd frame of b: 1002-1003
        ("sh_a_2", _range(1, 1), {"vfxinsert": {"shot": str(a)}}, None),           # a again: frame 1
    ])
    requests = shots_from_timeline(tmp_path / "edit.otio")
    assert [(r.path, r.frames) for r in requests] == [(a.resolve(), (1, 2, 3)), (b.resolve(), (1002, 1003))]
    assert [r.frames_text for r in requests] == ["1-3", "1002-1003"]


def test_a_timeline_without_shots_or_unreadable_is_one_clear_error(tmp_path):
    write_timeline(tmp_path / "edit.otio", [("title", _range(0, 5), None, None)])
    with pytest.raises(ConfigError, match="no clip of the timeline names a shot file"):
        shots_from_timeline(tmp_path / "edit.otio")
    (tmp_path / "bad.otio").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read the timeline"):
        shots_from_timeline(tmp_path / "bad.otio")
