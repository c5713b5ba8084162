"""Movies (.mp4 .mov .m4v .mkv .avi) with PyAV: frame-accurate random access to a video stream.

Frame 1 is the first frame of the file, as in Nuke's Read node. ``plates.PlateSource`` wraps a
:class:`Movie` into the plate interface; PyAV is imported inside the methods that use it.
"""
from __future__ import annotations

import bisect
from fractions import Fraction

import numpy as np

from .errors import PlateError


class Movie:
    """Frame-accurate random access to the first video stream of a movie (frame 1 = first frame).

    The index of presentation timestamps (pts) is built once by demuxing packets (no decoding). A read
    of the frame after the last one read keeps decoding; any other read seeks back to the keyframe at or
    before it and decodes forward to the frame whose pts equals the target.
    """

    def __init__(self, path: str):
        import av

        self.path = path
        try:
            self._container = av.open(path)
        except (av.FFmpegError, OSError) as exc:
            raise PlateError(f"cannot open movie ({exc})", where=path,
                             fix="check it is a complete movie FFmpeg can read (re-export or re-copy it)") from exc
        try:
            if not self._container.streams.video:
                raise PlateError("the movie has no video stream", where=path, fix="point plate.path at a video file")
            self._stream = self._container.streams.video[0]
            pts, keyframes, discarded = [], [], 0
            for packet in self._container.demux(self._stream):
                if packet.size == 0:  # the empty packet that ends demuxing
                    continue
                if packet.is_discard:  # before an edit list's start: the decoder drops it, so it is no frame
                    discarded += 1
                    continue
                if packet.pts is None:
                    raise PlateError("the movie's video packets have no timestamps, so frames cannot be found "
                                     "exactly", where=path, fix="convert it to an image sequence or remux it (mp4/mov)")
                pts.append(packet.pts)
                if packet.is_keyframe:
                    # dts <= pts: seeking to it lands on this keyframe or an earlier one, never a later one,
                    # whichever of the two the container's index is keyed on.
                    keyframes.append((packet.pts, packet.pts if packet.dts is None else min(packet.pts, packet.dts)))
        except av.FFmpegError as exc:
            self.close()
            raise PlateError(f"cannot read movie packets ({exc})", where=path,
                             fix="the movie is corrupt or truncated: re-export or re-copy it") from exc
        except PlateError:
            self.close()
            raise
        if not pts or not keyframes:
            self.close()
            raise PlateError("the movie has no decodable video frames", where=path, fix="re-export the movie")
        listed = self._stream.frames - discarded  # 0 when the container does not say
        if len(pts) < listed:
            self.close()
            raise PlateError(f"the movie is truncated: its header lists {listed} frames but only {len(pts)} are "
                             "in the file", where=path, fix="re-copy or re-export the movie")
        self.pts = sorted(pts)
        keyframes.sort()
        self._keyframe_pts = [k[0] for k in keyframes]
        self._keyframe_seek = [k[1] for k in keyframes]
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = Fraction(rate) if rate else None
        self.timecode = _start_timecode(self._container, self._stream)
        """The timecode of frame 1 (``HH:MM:SS:FF``, ``;`` when drop-frame), or None when the movie has none."""
        sar = self._stream.codec_context.sample_aspect_ratio
        self.pixel_aspect = float(sar) if sar else 1.0
        self._decoded = None  # the decode iterator ...
        self._next_index: int | None = None  # ... and the index of the frame it gives next (None: unknown)

    @property
    def frame_count(self) -> int:
        return len(self.pts)

    def read(self, frame: int) -> np.ndarray:
        """Frame ``frame`` (1-based) as (H, W, 3) float32 RGB in 0..1; PlateError when it cannot be decoded."""
        import av

        index = frame - 1
        target = self.pts[index]
        try:
            if index != self._next_index:
                self._next_index = None
                k = bisect.bisect_right(self._keyframe_pts, target) - 1
                seek_to = self._keyframe_seek[max(k, 0)]
                self._container.seek(seek_to, stream=self._stream, backward=True, any_frame=False)
                self._decoded = self._container.decode(self._stream)
            for decoded in self._decoded:
                if decoded.pts is None or decoded.pts < target:
                    continue
                if decoded.pts > target:
                    break
                image = self._to_rgb(decoded)
                self._next_index = index + 1
                return image
        except av.FFmpegError as exc:
            self._next_index = None
            raise PlateError(f"cannot decode movie frame {frame} ({exc})", where=self.path,
                             fix="the movie is corrupt here: re-export it or convert it to an image sequence") from exc
        self._next_index = None
        raise PlateError(f"movie frame {frame} (pts {target}) was not produced by the decoder", where=self.path,
                         fix="the movie is damaged or its timestamps are inconsistent: re-export it")

    def _to_rgb(self, decoded) -> np.ndarray:
        deep = max(c.bits for c in decoded.format.components) > 8
        pixels = decoded.to_ndarray(format="rgb48le" if deep else "rgb24", src_color_range=decoded.color_range)
        return np.divide(pixels, 65535.0 if deep else 255.0, dtype=np.float32)

    def close(self) -> None:
        self._decoded = self._next_index = None
        self._container.close()


def _start_timecode(container, stream) -> str | None:
    """The movie's start timecode: its video stream's ``timecode`` tag, a ``tmcd`` track's, or the file's."""
    tagged = [stream.metadata, *(s.metadata for s in container.streams if s.type == "data"), container.metadata]
    return next((str(tags["timecode"]) for tags in tagged if tags.get("timecode")), None)
