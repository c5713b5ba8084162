"""preview.mp4: the BT.709 matrix and the display view really reach the pixels, and the tags say so.

The decoded file is turned back into R'G'B' here with the BT.709 equations written out (not with
swscale, which encodes), and compared with the comp layer through the same OCIO display view.
"""
from __future__ import annotations

import dataclasses

import av
import numpy as np
import pytest
from test_cli import make_shot

from vfxinsert.config import load_shot
from vfxinsert.exr import write_exr
from vfxinsert.outputs import insert_path
from vfxinsert.preview import write_preview

#: Linear Rec.709 patch colours: primaries, secondaries, greys, a skin tone, a highlight above 1.
PATCHES = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.5, 0.5), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0),
           (0.18, 0.18, 0.18), (0.02, 0.02, 0.02), (0.9, 0.9, 0.9), (0.45, 0.28, 0.2), (0.1, 0.3, 0.05), (4.0, 2.0, 1.0)]
SIDE = 32  # patch size in pixels: whole 2x2 chroma blocks, interiors far from the edges
FRAMES = (1, 2, 3)


def _bt709_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Video-range Y'CbCr (8-bit codes) -> R'G'B' in 0..255 by the BT.709 equations (Kr 0.2126, Kb 0.0722)."""
    kr, kb = 0.2126, 0.0722
    yn, pb, pr = (y - 16.0) / 219.0, (cb - 128.0) / 224.0, (cr - 128.0) / 224.0
    r = yn + 2 * (1 - kr) * pr
    b = yn + 2 * (1 - kb) * pb
    g = (yn - kr * r - kb * b) / (1 - kr - kb)
    return np.stack([r, g, b], axis=-1) * 255.0


@pytest.fixture
def patch_shot(tmp_path, shared_data):
    shot = load_shot(make_shot(tmp_path, shared_data))
    comp = np.zeros((2 * SIDE, 6 * SIDE, 3), np.float32)
    for i, colour in enumerate(PATCHES):
        comp[(i // 6) * SIDE:(i // 6 + 1) * SIDE, (i % 6) * SIDE:(i % 6 + 1) * SIDE] = colour
    shot.output.dir.mkdir(parents=True, exist_ok=True)
    for frame in FRAMES:
        write_exr(insert_path(shot, frame), {f"comp.{c}": comp[..., i] for i, c in enumerate("RGB")}, precision="float")
    return shot, comp


def _decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        cc = stream.codec_context
        tags = (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range)
        planes = []
        for frame in container.decode(stream):
            assert frame.format.name == "yuv420p"
            a = frame.to_ndarray().astype(np.float64)   # (H * 3/2, W): Y, then U and V (H/2 x W/2 each)
            h, w = frame.height, frame.width
            u = a[h:h + h // 4].reshape(h // 2, w // 2)
            v = a[h + h // 4:].reshape(h // 2, w // 2)
            planes.append((a[:h], u.repeat(2, 0).repeat(2, 1), v.repeat(2, 0).repeat(2, 1)))
    return tags, planes


@pytest.mark.parametrize("display, tags", [("sRGB - Display", (1, 13, 1, 1)),
                                           ("Rec.1886 Rec.709 - Display", (1, 1, 1, 1))])
def test_preview_matches_the_comp_through_the_display_view(patch_shot, display, tags):
    shot, comp = patch_shot
    shot = dataclasses.replace(shot, color=dataclasses.replace(shot.color, display=display))
    path = write_preview(shot, list(FRAMES))
    found, planes = _decode(path)
    assert found == tags  # primaries, transfer, matrix (BT.709), range (video)
    assert len(planes) == len(FRAMES)
    expected = np.clip(shot.color_pipeline().to_display(comp), 0.0, 1.0) * 255.0
    y, u, v = planes[-1]
    decoded = _bt709_rgb(y, u, v)
    inner = np.zeros(comp.shape[:2], bool)
    for i in range(len(PATCHES)):
        y0, x0 = (i // 6) * SIDE, (i % 6) * SIDE
        inner[y0 + 6:y0 + SIDE - 6, x0 + 6:x0 + SIDE - 6] = True
        err = np.abs(decoded[y0 + 6:y0 + SIDE - 6, x0 + 6:x0 + SIDE - 6] - expected[y0 + 6:y0 + SIDE - 6, x0 + 6:x0 + SIDE - 6])
        assert err.mean() < 2.0, (PATCHES[i], err.mean())   # under 2 code values on every patch
    red = y[6:SIDE - 6, 6:SIDE - 6].mean()
    assert abs(red - (16 + 219 * 0.2126)) < 1.0   # BT.709 luma of pure red: 63 (BT.601 would give 81)


def test_the_rec1886_view_is_not_the_srgb_curve(patch_shot):
    """The display view reaches the pixels: mid grey encodes differently for sRGB and Rec.1886."""
    shot, _ = patch_shot
    greys = {}
    for display in ("sRGB - Display", "Rec.1886 Rec.709 - Display"):
        s = dataclasses.replace(shot, color=dataclasses.replace(shot.color, display=display))
        _, planes = _decode(write_preview(s, list(FRAMES)))
        greys[display] = planes[0][0][SIDE + 6:2 * SIDE - 6, 6:SIDE - 6].mean()   # the 0.18 patch
    srgb = 16 + 219 * (1.055 * 0.18 ** (1 / 2.4) - 0.055)
    bt1886 = 16 + 219 * 0.18 ** (1 / 2.4)   # the inverse of BT.1886's 2.4 gamma (black 0)
    assert abs(greys["sRGB - Display"] - srgb) < 1.0 and abs(greys["Rec.1886 Rec.709 - Display"] - bt1886) < 1.0
