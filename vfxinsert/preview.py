"""``preview.mp4``: the display-referred composite of every rendered frame, for review.

H.264, yuv420p, the shot's frame rate and timecode (``timing.py``: a ``tmcd`` track starting at the
first frame's timecode), BT.709 tags, written with PyAV through
an atomic temporary file. yuv420p needs even sizes: an odd width or height is padded by one pixel
(edge-replicated) rather than scaled.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from .config import ShotConfig
from .errors import OutputError


def write_preview(shot: ShotConfig, frames: list[int], fps: Fraction | None = None, out_path: Path | None = None,
                  timecode: str | None = None) -> Path:
    """Encode the ``comp`` layer of ``frames`` (in order) to ``<output.dir>/preview.mp4`` at ``fps`` (default
    24), with ``timecode`` (of the first frame, ``HH:MM:SS:FF``) as its timecode track when given."""
    import av

    from .exr import read_layers
    from .fsutil import atomic_output
    from .outputs import insert_path

    if not frames:
        raise OutputError("no rendered frame to preview", where=str(shot.output.dir), fix="render the shot first")
    out = Path(out_path or shot.output.dir / "preview.mp4")
    pipeline = shot.color_pipeline()
    rate = Fraction(fps) if fps else Fraction(24)
    with atomic_output(out) as tmp:
        container = av.open(str(tmp), mode="w", format="mp4")
        try:
            stream = None
            for frame in frames:
                layers, _ = read_layers(insert_path(shot, frame))
                comp = np.stack([layers[f"comp.{c}"] for c in "RGB"], axis=-1)
                display = np.clip(pipeline.to_display(np.ascontiguousarray(comp)), 0.0, 1.0)
                h, w = display.shape[:2]
                display = np.pad(display, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                if stream is None:
                    stream = container.add_stream("libx264", rate=rate)
                    stream.width, stream.height = display.shape[1], display.shape[0]
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": "18", "preset": "medium"}
                    cc = stream.codec_context
                    cc.color_primaries = cc.color_trc = cc.colorspace = 1  # BT.709
                    if timecode:  # FFmpeg's mp4 muxer writes it as a tmcd track
                        stream.metadata["timecode"] = timecode
                image = av.VideoFrame.from_ndarray((display * 255.0 + 0.5).astype(np.uint8), format="rgb24")
                for packet in stream.encode(image):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return out
