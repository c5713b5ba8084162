"""Shot lists from an edit: an OpenTimelineIO timeline names the shots to submit and their frames.

Each clip that names a shot file becomes (part of) a :class:`farm.ShotRequest`:

- the shot file: the clip's metadata ``vfxinsert: {shot: "path/shot.toml"}``, else its media reference's
  target when that is a ``.toml`` (a path or ``file://`` URL); relative paths are relative to the
  timeline file. Clips naming no shot file (reference footage, titles) are left out.
- the frames: the clip's source range. When its media reference has an available range (the media's
  own time, e.g. from the plate's start timecode), the source range is an offset into it, counted
  from the plate's first frame; without one, the source range's frame values are plate frame numbers.
  Several clips of one shot add up to one request.

OpenTimelineIO reads ``.otio`` itself; other formats (CMX 3600 EDL, AAF, FCP XML) through its adapter
plug-ins when they are installed (``otio-cmx3600-adapter`` for ``.edl``).
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError
from .farmresult import ShotRequest


def shots_from_timeline(path: str | os.PathLike) -> list[ShotRequest]:
    """One request per shot file the timeline's clips name, in the order of their first clip."""
    import opentimelineio as otio

    path = Path(path)
    try:
        timeline = otio.adapters.read_from_file(str(path))
    except Exception as exc:  # OTIO raises its own exception types, and plain ones for bad JSON
        raise ConfigError(f"cannot read the timeline ({type(exc).__name__}: {exc})", where=str(path),
                          fix="give an OpenTimelineIO file (.otio; other formats need their OTIO adapter installed)"
                          ) from exc
    frames: dict[Path, set[int]] = {}
    for clip in timeline.find_clips():
        shot = _shot_file(clip, path.parent)
        if shot is not None:
            frames.setdefault(shot, set()).update(_clip_frames(clip, shot, f"{path} clip {clip.name!r}"))
    if not frames:
        raise ConfigError("no clip of the timeline names a shot file", where=str(path),
                          fix='set a clip\'s metadata {"vfxinsert": {"shot": "path/shot.toml"}} or point its media '
                              "reference at the shot file")
    return [ShotRequest(shot, tuple(sorted(f))) for shot, f in frames.items()]


def _shot_file(clip, base: Path) -> Path | None:
    import opentimelineio as otio

    named = (clip.metadata.get("vfxinsert") or {}).get("shot")
    if not named:
        target = getattr(clip.media_reference, "target_url", None) or ""
        if not target.lower().endswith(".toml"):
            return None
        named = otio.url_utils.filepath_from_url(target) if target.startswith("file:") else target
    shot = Path(str(named)).expanduser()
    return (shot if shot.is_absolute() else base / shot).resolve()


def _clip_frames(clip, shot: Path, where: str) -> range:
    """The plate frames of ``clip``'s source range (see the module docstring)."""
    source = clip.source_range or clip.available_range()
    rate = source.start_time.rate
    count = round(source.duration.value_rescaled_to(rate))
    if count < 1:
        raise ConfigError("the clip's source range is empty", where=where, fix="give the clip a duration of 1 frame or more")
    available = clip.media_reference.available_range if clip.media_reference else None
    if available is None:
        first = round(source.start_time.value)
    else:
        from .config import load_shot
        from .shot import ShotContext

        offset = round((source.start_time - available.start_time).value_rescaled_to(rate))
        first = ShotContext(load_shot(shot, check_colors=False)).frames[0] + offset
    return range(first, first + count)
