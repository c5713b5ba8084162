"""``preview.mp4``: the display-referred composite of every rendered frame, for review.

H.264, yuv420p, the shot's frame rate and timecode (``timing.py``: a ``tmcd`` track starting at the
first frame's timecode), written with PyAV through an atomic temporary file. The ``comp`` layer goes through the shot's display view (``[color] display`` /
``view``; "Rec.1886 Rec.709 - Display" for Rec.709 dailies), then from R'G'B' to Y'CbCr with the
BT.709 matrix in video range, set explicitly: swscale's default is the BT.601 matrix, which a
BT.709-tagged file would show with shifted hues (pure red: Y' = 81 instead of 63). The stream is
tagged with the BT.709 matrix, video range, and the display's primaries and transfer
(:data:`DISPLAY_TAGS`), so players decode what the view produced; the sample aspect ratio is the
plate's pixel aspect (2:1 anamorphic plays unsqueezed). yuv420p needs even sizes: an odd
width or height is padded by one pixel (edge-replicated) rather than scaled.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from .config import ShotConfig
from .errors import OutputError

#: The colour tags (ISO/IEC 23091-2 codes: colour primaries, transfer characteristics) of the display a
#: preview is encoded for. A display not listed is tagged "unspecified" (2) for both.
DISPLAY_TAGS: dict[str, tuple[int, int]] = {
    "sRGB - Display": (1, 13),                 # BT.709 primaries, IEC 61966-2-1 (sRGB) transfer
    "Rec.1886 Rec.709 - Display": (1, 1),      # BT.709 primaries, BT.709 transfer (BT.1886 is tagged so)
    "Gamma 2.2 Rec.709 - Display": (1, 4),     # BT.709 primaries, gamma 2.2
    "Display P3 - Display": (12, 13),          # P3-D65 primaries, sRGB transfer
}
#: Matrix coefficients (BT.709) and range (video: Y' 16-235) of every preview.
MATRIX_BT709, RANGE_VIDEO = 1, 1


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
    primaries, transfer = DISPLAY_TAGS.get(pipeline.display, (2, 2))
    with atomic_output(out) as tmp:
        container = av.open(str(tmp), mode="w", format="mp4")
        try:
            stream = None
            for frame in frames:
                layers, header = read_layers(insert_path(shot, frame))
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
                    cc.color_primaries, cc.color_trc = primaries, transfer
                    cc.colorspace, cc.color_range = MATRIX_BT709, RANGE_VIDEO
                    # non-square plate pixels (anamorphic): players stretch by the sample aspect ratio
                    cc.sample_aspect_ratio = Fraction(float(header.get("pixelAspectRatio", 1.0))).limit_denominator(1000)
                    if timecode:  # FFmpeg's mp4 muxer writes it as a tmcd track
                        stream.metadata["timecode"] = timecode
                rgb = av.VideoFrame.from_ndarray((display * 255.0 + 0.5).astype(np.uint8), format="rgb24")
                yuv = rgb.reformat(format="yuv420p", src_colorspace="ITU709", dst_colorspace="ITU709",
                                   src_color_range="JPEG", dst_color_range="MPEG",
                                   interpolation="BILINEAR", dst_color_trc=transfer, dst_color_primaries=primaries)
                for packet in stream.encode(yuv):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return out
