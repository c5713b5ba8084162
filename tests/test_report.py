"""The QC report on a really rendered shot: the page, the images it references, their sizes and colour,
frame errors, loss and tone plots, and malformed arguments."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_cli import make_shot

from vfxinsert import report
from vfxinsert.cli import main
from vfxinsert.config import load_shot
from vfxinsert.errors import OutputError
from vfxinsert.exr import read_layers
from vfxinsert.outputs import FrameResult, StageReport
from vfxinsert.report import sample_frames, tone_curves, write_report

KINDS = ("plate", "comp", "object", "shadow", "alpha", "difference")


class _Page(HTMLParser):
    """The img sources and the visible text of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.images: list[str] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def _reports(out: Path, frames=(1, 2, 3), failed: dict[int, str] | None = None) -> list[StageReport]:
    failed = failed or {}
    plate = StageReport("plate", tuple(FrameResult(f, out / "plate" / f"sh.{f:04d}.exr") for f in frames))
    render = StageReport("render", tuple(FrameResult(f, error=failed[f]) if f in failed
                                         else FrameResult(f, out / f"sh.{f:04d}.exr") for f in frames))
    return [plate, render]


def _tone(frames=(1, 2, 3)) -> dict:
    """A tone.json document as the tone module writes it (curves sampled per frame, 3 x N outputs)."""
    xs = np.linspace(-10.0, 6.0, 33)
    ratio = np.linspace(0.0, 1.5, 31)
    return {"description": "test", "frames": [
        {"frame": f, "exposure_log2": [0.1 * f, 0.0, -0.1],
         "fg": {"log2_in": xs.tolist(), "log2_out": [(xs + 0.1 * c).tolist() for c in range(3)]},
         "sh": {"ratio_in": ratio.tolist(), "out": [(ratio ** 1.2).tolist()] * 3}} for f in frames]}


@pytest.fixture(scope="module")
def shot(tmp_path_factory, shared_data):
    folder = tmp_path_factory.mktemp("report_shot")
    shot_file = make_shot(folder, shared_data, frames=(1, 3))
    assert main(["run", str(shot_file)]) == 0
    return load_shot(shot_file)


def test_report_references_images_that_exist(shot, tmp_path):
    index = write_report(shot, frame_results=_reports(shot.output.dir), timings={"plate": 0.5, "render": 1.25},
                         loss_curve=[1.0, 0.5, 0.3, 0.2], tone=_tone(), out_dir=tmp_path)
    assert index == tmp_path / "index.html"
    page = _Page(index.read_text(encoding="utf-8"))
    assert page.images and all((tmp_path / src).is_file() for src in page.images)
    expected = {f"frame_{f:04d}_{k}.png" for f in (1, 2, 3) for k in KINDS}
    expected |= {"contact.png", "lighting.png", "loss.png", "tone_fg.png", "tone_sh.png"}
    assert set(page.images) == expected
    text = " ".join(page.text)
    assert "Frame errors (0)" in text and "1.25" in text and "1.75" in text  # timings and their total
    assert "exposure_log2" in text and "[0.3, 0, -0.1]" in text              # per-frame tone values
    assert not list(tmp_path.glob(".*"))                                      # no temporary file left


def test_default_folder_and_optional_sections(shot):
    index = write_report(shot, frame_results=_reports(shot.output.dir), timings={})
    assert index == shot.output.dir / "report" / "index.html"
    page = _Page(index.read_text(encoding="utf-8"))
    assert "loss.png" not in page.images and not any(src.startswith("tone_") for src in page.images)
    text = " ".join(page.text)
    assert "no optimisation loss given" in text and "no tone curves given" in text and "none recorded" in text


def test_failed_frame_is_listed_and_not_shown(shot, tmp_path):
    error = "frame 2 is <missing> & bad. Fix: render it"
    index = write_report(shot, frame_results=_reports(shot.output.dir, failed={2: error}), timings={},
                         out_dir=tmp_path)
    raw = index.read_text(encoding="utf-8")
    page = _Page(raw)
    assert error in " ".join(page.text)            # listed as written ...
    assert "<missing>" not in raw                  # ... and escaped, not markup
    assert "Frame errors (1)" in " ".join(page.text)
    assert not any(src.startswith("frame_0002") for src in page.images)
    assert {src for src in page.images if src.startswith("frame_")} == \
        {f"frame_{f:04d}_{k}.png" for f in (1, 3) for k in KINDS}


def test_pngs_have_the_plate_size_and_are_display_referred(shot, tmp_path):
    write_report(shot, frame_results=_reports(shot.output.dir), timings={}, loss_curve=[3.0, 2.0, 1.0],
                 tone=_tone(), out_dir=tmp_path)
    for kind in KINDS:
        assert Image.open(tmp_path / f"frame_0002_{kind}.png").size == (64, 36)
    # contact sheet: 3 thumbnails of 64 x 36 in one row, 4 px gaps, a 14 px label strip
    assert Image.open(tmp_path / "contact.png").size == (3 * (64 + 4) + 4, 36 + 14 + 4 + 4)
    env = read_layers(shot.output.dir / "lighting.exr")[0]["R"]
    assert Image.open(tmp_path / "lighting.png").size == (env.shape[1], env.shape[0])
    for plot in ("loss.png", "tone_fg.png", "tone_sh.png"):
        assert Image.open(tmp_path / plot).size == report.PLOT_SIZE_PX
    layers = read_layers(shot.output.dir / "sh.0002.exr")[0]
    comp = np.stack([layers[f"comp.{c}"] for c in "RGB"], axis=-1)
    expected = np.round(np.clip(shot.color_pipeline().to_display(comp), 0, 1) * 255)
    png = np.asarray(Image.open(tmp_path / "frame_0002_comp.png"), dtype=np.float64)
    assert np.abs(png - expected).max() <= 1.0
    assert np.abs(png / 255.0 - np.clip(comp, 0, 1)).max() > 0.05  # sRGB-encoded, not linear


def test_wide_frames_are_downscaled_in_linear_light(shot, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "MAX_PREVIEW_WIDTH_PX", 32)
    write_report(shot, frame_results=_reports(shot.output.dir), timings={}, out_dir=tmp_path)
    assert Image.open(tmp_path / "frame_0001_comp.png").size == (32, 18)


def test_a_shot_without_rendered_frames_still_gets_a_page(shot, tmp_path):
    plate = StageReport("plate", (FrameResult(9, error="frame 9 is missing"),))
    page = _Page(write_report(shot, frame_results=[plate], timings={}, out_dir=tmp_path).read_text())
    text = " ".join(page.text)
    assert "no frame was rendered" in text and "frame 9 is missing" in text
    assert page.images == ["lighting.png"]


def test_sample_frames():
    assert sample_frames([]) == []
    assert sample_frames([7]) == [7]
    assert sample_frames([3, 1]) == [1, 3]
    assert sample_frames(range(1001, 1025)) == [1001, 1013, 1024]


def test_tone_curves_accept_the_channel_layouts():
    xs = [0.0, 0.5, 1.0]
    doc = {"frames": [{"frame": 5, "a": {"x": xs, "y": [0.0, 0.4, 1.0]},
                       "b": {"ratio_in": xs, "out": [[0, 0, 0], [0.5, 0.4, 0.3], [1, 1, 1]]},
                       "gain": 1.5}]}
    curves = tone_curves(doc)
    assert [(c.frame, c.name, c.x_label, c.y_label) for c in curves] == [(5, "a", "x", "y"), (5, "b", "ratio_in", "out")]
    assert curves[0].y.shape == (3, 3) and np.allclose(curves[1].y[:, 1], [0.5, 0.4, 0.3])


@pytest.mark.parametrize("tone,needle", [
    ({"curves": []}, '"frames" list'),
    ({"frames": [{"fg": {"x": [0], "y": [0]}}]}, "no integer 'frame'"),
    ({"frames": [{"frame": 1, "fg": {"a": [0], "b": [0]}}]}, "one x key"),
    ({"frames": [{"frame": 1, "fg": {"x": [0, 1], "y": [0, 1, 2]}}]}, "x has shape"),
    ({"frames": [{"frame": 1, "fg": {"x": ["a"], "y": [0]}}]}, "non-numbers"),
])
def test_malformed_tone_is_an_output_error_and_writes_nothing(shot, tmp_path, tone, needle):
    with pytest.raises(OutputError, match=needle):
        write_report(shot, frame_results=_reports(shot.output.dir), timings={}, tone=tone, out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_bad_timings_and_loss_are_output_errors(shot, tmp_path):
    with pytest.raises(OutputError, match="not a duration"):
        write_report(shot, frame_results=[], timings={"render": float("nan")}, out_dir=tmp_path)
    with pytest.raises(OutputError, match="flat list"):
        write_report(shot, frame_results=[], timings={}, loss_curve=[[1.0, 2.0]], out_dir=tmp_path)


def test_settings_provenance_and_links(shot, tmp_path):
    import subprocess

    from vfxinsert import __version__
    from vfxinsert.nuke import write_nuke_script

    write_nuke_script(shot, [1, 2, 3])
    index = write_report(shot, frame_results=_reports(shot.output.dir), timings={}, out_dir=tmp_path / "r")
    raw = index.read_text(encoding="utf-8")
    text = " ".join(_Page(raw).text)
    assert "8 spp, max depth 3" in text and "init hdri (env.hdr)" in text and "source hdri" in text
    assert f"vfxinsert {__version__}" in text.replace("\n", " ") or __version__ in text
    head = subprocess.run(["git", "-C", str(Path(report.__file__).parent), "rev-parse", "HEAD"],
                          capture_output=True, text=True)
    if head.returncode == 0:   # run from a checkout: the revision is on the page
        assert head.stdout.strip() in text
    hrefs = [h for h in __import__("re").findall(r'href="([^"]+)"', raw)]
    assert {Path(h).name for h in hrefs} >= {"sh.nk", "sh.ocio", "lighting.exr", "lighting.json"}
    assert any(h.endswith("out/ocio/sh.ocio") for h in hrefs)
    assert all((index.parent / h).resolve().is_file() for h in hrefs)   # relative links that resolve
    rows = report.summary_rows(shot, shot.color_pipeline(), [1, 2, 3], set())
    assert all(isinstance(label, str) and isinstance(value, str) for label, value in rows)


def test_difference_alpha_and_ab_views(shot, tmp_path):
    index = write_report(shot, frame_results=_reports(shot.output.dir), timings={}, out_dir=tmp_path)
    raw = index.read_text(encoding="utf-8")
    assert raw.count('class="ab"') == 3 and 'type="range"' in raw   # one A/B wipe per sample frame
    comp = np.asarray(Image.open(tmp_path / "frame_0002_comp.png"), np.float64)
    plate = np.asarray(Image.open(tmp_path / "frame_0002_plate.png"), np.float64)
    diff = np.asarray(Image.open(tmp_path / "frame_0002_difference.png"), np.float64)
    assert np.array_equal(diff, np.clip(np.round(np.abs(comp - plate) * report.DIFFERENCE_GAIN), 0, 255))
    assert diff.max() > 0 and (diff == 0).mean() > 0.3   # the insert changed some pixels, not the whole plate
    alpha = np.asarray(Image.open(tmp_path / "frame_0002_alpha.png"), np.float64)[..., 0] / 255.0
    stored = read_layers(shot.output.dir / "sh.0002.exr")[0]["A"]
    assert np.abs(alpha - np.clip(stored, 0, 1)).max() <= 0.5 / 255 + 1e-6


def test_plot_ticks_are_round_numbers_covering_the_range():
    from vfxinsert.plots import nice_ticks, plot_png

    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(-10.0, 6.0) == [-10.0, -5.0, 0.0, 5.0]
    for lo, hi in ((0.0, 599.0), (0.013, 0.41), (-3.2, 7.9), (1e-4, 3e-4)):
        ticks = nice_ticks(lo, hi)
        assert 3 <= len(ticks) <= 11 and lo - 1e-12 <= ticks[0] and ticks[-1] <= hi + 1e-12
        step = np.diff(ticks)
        assert np.allclose(step, step[0]) and any(np.isclose(step[0] / 10.0 ** np.floor(np.log10(step[0])), m)
                                                   for m in (1, 2, 5))
    image = plot_png([(np.arange(10.0), np.arange(10.0) ** 2, (0, 0, 0))], title="t", x_label="x", y_label="y")
    assert image.shape == (*report.PLOT_SIZE_PX[::-1], 3)
    # tick marks: short dark strokes just below the x axis, one per tick
    axis_row = report.PLOT_SIZE_PX[1] - 40 + 2
    dark = (image[axis_row, 66:, 0] < 100).nonzero()[0]   # right of the y axis (66 px from the left)
    assert len(np.split(dark, np.nonzero(np.diff(dark) > 1)[0] + 1)) == len(nice_ticks(0.0, 9.0))
