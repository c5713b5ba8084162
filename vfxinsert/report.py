"""The per-shot QC report: ``<output.dir>/report/index.html`` with PNG images beside it.

What a supervisor looks at before a shot goes to comp: the summary (as ``(label, value)`` rows), the
render settings, the provenance (vfxinsert version, git revision, date, user, host) and links to the
``.nk``, its OCIO config and ``preview.mp4``; for the first, middle and last rendered frame an A/B wipe
of plate and composite, their difference, the object over grey, its alpha and the shadow layer; a
contact sheet of every composite (``contact.png``); the recovered environment (``lighting.exr``,
tone-mapped); the loss curve and the per-frame tone curves when the shot was optimised, plotted with
ticked axes (``plots.py``); the stage timings; and every frame error the stages recorded.

The page is the Jinja2 template ``templates/report.html.j2`` (autoescaped) filled from plain values
built here. All colour images are display-referred: working-space pixels go through the shot's OCIO
display view (``ColorPipeline.to_display``), then to 8-bit PNGs; alpha is shown as stored. Every file is
written atomically; the HTML is written last, so a report whose ``index.html`` exists is complete.
"""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .config import RenderConfig, ShotConfig
from .errors import OutputError
from .fsutil import atomic_folder, atomic_write_bytes, atomic_write_text
from .outputs import StageReport, insert_path, working_plate_path
from .plots import CHANNEL_COLOURS, LINE_COLOUR, PLOT_SIZE_PX, plot_png  # noqa: F401  (tests read it here)
from .sequences import format_frames
from .shot import ShotContext

#: Widest preview written for a frame (plates are 2-4k wide; the report only needs to be looked at).
MAX_PREVIEW_WIDTH_PX = 960
#: Width of one contact-sheet thumbnail, its columns, and the most frames it shows (evenly sampled).
CONTACT_THUMB_WIDTH_PX = 240
CONTACT_COLUMNS = 6
CONTACT_MAX_FRAMES = 60
#: Linear mid grey behind the object in the "object over grey" view.
GREY_LINEAR = 0.18
#: The difference view: |display(comp) - display(plate)| times this gain, so small changes show.
DIFFERENCE_GAIN = 4.0


@dataclass(frozen=True)
class FramePreview:
    """The PNG files (names relative to the report folder) written for one sample frame."""

    frame: int
    plate: str | None
    """The working-space plate; None when the plate stage's EXR for the frame is missing."""
    comp: str
    """The ``comp`` layer."""
    object_over_grey: str
    """``rgb + (1 - A) * 0.18``: the object alone, over linear mid grey."""
    shadow: str
    """The ``shadow`` multiplier (1 = untouched plate: white)."""
    alpha: str
    """The object's alpha ``A`` (white = opaque)."""
    difference: str | None
    """``DIFFERENCE_GAIN * |comp - plate|`` on the display-referred images; None without a plate."""


@dataclass(frozen=True)
class ToneCurve:
    """One sampled curve of one frame, from tone.json."""

    frame: int
    name: str
    """The curve's key in tone.json (e.g. ``fg``, ``sh``)."""
    x_label: str
    y_label: str
    x: np.ndarray
    """(N,) input samples."""
    y: np.ndarray
    """(3, N) output samples per channel (R, G, B)."""


def sample_frames(frames: Sequence[int]) -> list[int]:
    """The first, middle and last of ``frames`` (fewer when there are fewer), in order."""
    ordered = sorted(set(frames))
    if not ordered:
        return []
    return sorted({ordered[0], ordered[len(ordered) // 2], ordered[-1]})


def write_report(shot: ShotConfig, *, frame_results: Sequence[StageReport], timings: Mapping[str, float],
                 loss_curve: Sequence[float] | None = None, tone: Mapping | None = None,
                 out_dir: str | os.PathLike | None = None) -> Path:
    """Write the shot's QC report and return the path of its ``index.html``.

    ``frame_results``: the stage reports of the run (plate, render, ...): frames without an error in
    any stage whose layers EXR exists are shown; every error is listed. ``timings``: stage name ->
    seconds. ``loss_curve``: the optimisation loss per iteration. ``tone``: the tone.json document
    (``{"frames": [{"frame": 1001, "<curve>": {"<x>_in": [...], "<y>": [[r...], [g...], [b...]]},
    "<value>": number or [r, g, b]}, ...]}``; see :func:`tone_curves`). ``out_dir`` defaults to
    ``<output.dir>/report``. Raises OutputError when an output cannot be written or an argument is
    malformed. The folder is replaced as a whole (``fsutil.atomic_folder``): its page and images always
    belong to one run.
    """
    final = Path(out_dir) if out_dir is not None else shot.output.dir / "report"
    with atomic_folder(final) as folder:
        _fill_report(shot, folder, str(final / "index.html"), frame_results, timings, loss_curve, tone)
    return final / "index.html"


def _fill_report(shot: ShotConfig, folder: Path, where: str, frame_results: Sequence[StageReport],
                 timings: Mapping[str, float], loss_curve: Sequence[float] | None, tone: Mapping | None) -> None:
    pipeline = shot.color_pipeline()
    _check_timings(timings, where)  # arguments first: a malformed one writes nothing
    loss = None
    if loss_curve is not None and len(loss_curve):
        loss = np.asarray(loss_curve, dtype=np.float64)
        if loss.ndim != 1:
            raise OutputError(f"loss_curve must be a flat list of numbers, got shape {loss.shape}", where=where,
                              fix="pass one loss value per iteration")
    curves = tone_curves(tone, where) if tone is not None else []
    failed = {r.frame for report in frame_results for r in report.results if r.error}
    mentioned = {r.frame for report in frame_results for r in report.results}
    rendered = sorted(f for f in mentioned - failed if insert_path(shot, f).is_file())

    previews = [_write_frame_previews(shot, pipeline, frame, folder) for frame in sample_frames(rendered)]
    contact = _write_contact_sheet(shot, pipeline, rendered, folder / "contact.png") if rendered else None
    lighting = shot.output.dir / "lighting.exr"
    lighting_png = _write_lighting(_read_latlong(lighting), pipeline, folder / "lighting.png") if lighting.is_file() else None
    comparison = _comparison(shot, pipeline, lighting, folder) if shot.lighting.compare_hdri else None
    loss_png = None
    if loss is not None:
        loss_png = "loss.png"
        _write_png(folder / loss_png, plot_png([(np.arange(loss.size, dtype=np.float64), loss, LINE_COLOUR)],
                                               title="loss per iteration", x_label="iteration", y_label="loss"))
    page = {
        "shot_name": shot.name,
        "summary": summary_rows(shot, pipeline, rendered, failed),
        "settings": settings_rows(shot),
        "provenance": provenance_rows(),
        "links": _links(shot, folder),
        "errors": [(r.stage, res.frame, res.error) for r in frame_results for res in r.results if res.error],
        "notes": _notes(frame_results),
        "frames": previews,
        "contact": contact,
        "contact_title": ("Contact sheet: every composite" if len(rendered) <= CONTACT_MAX_FRAMES else
                          f"Contact sheet: {CONTACT_MAX_FRAMES} of {len(rendered)} composites, evenly sampled"),
        "lighting": lighting_png,
        "comparison": comparison,
        "loss": loss_png,
        "tone": None if tone is None else _tone_context(curves, _write_tone_plots(curves, folder), tone),
        "timings": _timing_rows(timings),
        "difference_gain": f"{DIFFERENCE_GAIN:g}",
    }
    atomic_write_text(folder / "index.html", render_page(page))


def render_page(page: Mapping) -> str:
    """The report's HTML: ``templates/report.html.j2`` filled with ``page`` (autoescaped, strict)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**page)


# --------------------------------------------------------------------------------------------------
# Images


def _write_png(path: Path, rgb8: np.ndarray) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb8, dtype=np.uint8)).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _resize_linear(rgb: np.ndarray, width: int) -> np.ndarray:
    """Box-filter (H, W, 3) scene-linear pixels to ``width`` (averaging light, before the display view)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    if w <= width:
        return rgb
    height = max(1, round(h * width / w))
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c], dtype=np.float32))
                           .resize((width, height), Image.Resampling.BOX)) for c in range(3)]
    return np.stack(channels, axis=-1)


def _display8(pipeline, rgb_linear: np.ndarray) -> np.ndarray:
    """Working-space pixels through the display view, as 8-bit."""
    display = pipeline.to_display(np.nan_to_num(rgb_linear.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0))
    return np.round(np.clip(display, 0.0, 1.0) * 255.0).astype(np.uint8)


def _write_frame_previews(shot: ShotConfig, pipeline, frame: int, folder: Path) -> FramePreview:
    from .exr import channels_in_display, read_layers

    source = insert_path(shot, frame)
    layers, header = read_layers(source)
    rgba = channels_in_display(layers, header, ("R", "G", "B", "A"), str(source))
    views = {
        "comp": channels_in_display(layers, header, ("comp.R", "comp.G", "comp.B"), str(source)),
        "object": rgba[..., :3] + (1.0 - rgba[..., 3:]) * GREY_LINEAR,
        "shadow": channels_in_display(layers, header, ("shadow.R", "shadow.G", "shadow.B"), str(source)),
    }
    plate_file = working_plate_path(shot, frame)
    if plate_file.is_file():
        plate_layers, plate_header = read_layers(plate_file)
        views["plate"] = channels_in_display(plate_layers, plate_header, ("R", "G", "B"), str(plate_file))
    names, shown = {}, {}
    for kind, rgb in views.items():
        names[kind] = f"frame_{frame:04d}_{kind}.png"
        shown[kind] = _display8(pipeline, _resize_linear(rgb, MAX_PREVIEW_WIDTH_PX))
        _write_png(folder / names[kind], shown[kind])
    if "plate" in views and shown["plate"].shape == shown["comp"].shape:
        diff = np.abs(shown["comp"].astype(np.float64) - shown["plate"].astype(np.float64)) * DIFFERENCE_GAIN
        names["difference"] = f"frame_{frame:04d}_difference.png"
        _write_png(folder / names["difference"], np.clip(np.round(diff), 0, 255).astype(np.uint8))
    alpha = np.clip(_resize_linear(np.repeat(rgba[..., 3:], 3, axis=-1), MAX_PREVIEW_WIDTH_PX), 0.0, 1.0)
    names["alpha"] = f"frame_{frame:04d}_alpha.png"
    _write_png(folder / names["alpha"], np.round(alpha * 255.0).astype(np.uint8))
    return FramePreview(frame, names.get("plate"), names["comp"], names["object"], names["shadow"], names["alpha"],
                        names.get("difference"))


def _write_contact_sheet(shot: ShotConfig, pipeline, frames: Sequence[int], path: Path) -> str:
    """Thumbnails of the ``comp`` layer of ``frames`` (at most CONTACT_MAX_FRAMES), labelled by frame."""
    from PIL import Image, ImageDraw

    from .exr import channels_in_display, read_layers

    if len(frames) > CONTACT_MAX_FRAMES:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, CONTACT_MAX_FRAMES).round().astype(int)]
    thumbs = []
    for frame in frames:
        source = insert_path(shot, frame)
        layers, header = read_layers(source)
        comp = channels_in_display(layers, header, ("comp.R", "comp.G", "comp.B"), str(source))
        thumbs.append((frame, _display8(pipeline, _resize_linear(comp, CONTACT_THUMB_WIDTH_PX))))
    cell_w = max(t.shape[1] for _, t in thumbs)
    cell_h = max(t.shape[0] for _, t in thumbs)
    label_h, pad = 14, 4
    columns = min(CONTACT_COLUMNS, len(thumbs))
    rows = math.ceil(len(thumbs) / columns)
    sheet = Image.new("RGB", (columns * (cell_w + pad) + pad, rows * (cell_h + label_h + pad) + pad), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    for i, (frame, thumb) in enumerate(thumbs):
        x = pad + (i % columns) * (cell_w + pad)
        y = pad + (i // columns) * (cell_h + label_h + pad)
        sheet.paste(Image.fromarray(thumb), (x, y))
        draw.text((x + 2, y + cell_h + 1), str(frame), fill=(220, 220, 220))
    _write_png(path, np.asarray(sheet))
    return path.name


def _read_latlong(path: Path) -> np.ndarray:
    from .exr import channels_in_display, read_layers

    layers, header = read_layers(path)
    return np.maximum(channels_in_display(layers, header, ("R", "G", "B"), str(path)), 0.0)


def _comparison(shot: ShotConfig, pipeline, lighting: Path, folder: Path) -> dict:
    """The recovered lighting beside the known HDRI (``[lighting] compare_hdri``, turned by ``rotate_y_deg``)
    and the angle between their dominant lights."""
    from .lighting.panorama import sample_bilinear, texel_directions
    from .lighting.sg import angular_error_deg, dominant_direction_latlong
    from .plates import read_image

    title = f"Recovered lighting against the known HDRI ({shot.lighting.compare_hdri.name})"
    if not lighting.is_file():
        return {"title": title, "text": "no lighting.exr in the output folder", "images": []}
    recovered = _read_latlong(lighting)
    h = recovered.shape[0]
    truth = sample_bilinear(read_image(shot.lighting.compare_hdri).rgb.astype(np.float32), texel_directions(h, 2 * h),
                            shot.lighting.rotate_y_deg)
    true_png = _write_lighting(np.maximum(truth, 0.0), pipeline, folder / "lighting_true.png")
    a, b = dominant_direction_latlong(recovered), dominant_direction_latlong(truth)

    def where(d) -> str:
        return (f"azimuth {np.degrees(np.arctan2(d[0], -d[2])):.0f} deg, "
                f"elevation {np.degrees(np.arcsin(np.clip(d[1], -1, 1))):.0f} deg")

    return {"title": title, "text": f"Dominant light: recovered {where(a)}; true {where(b)}",
            "error": f"direction error {angular_error_deg(a, b):.1f} deg", "note": "(azimuth 0 = -Z, 90 = +X)",
            "images": [("lighting.png", "recovered (lighting.exr)"), (true_png, "true (compare_hdri)")]}


def _write_lighting(env: np.ndarray, pipeline, out: Path) -> str:
    """A lat-long exposed so its mean luminance is mid grey, Reinhard-compressed, then displayed."""
    from .color import RGB_LUMINANCE

    mean = float((env @ np.asarray(RGB_LUMINANCE, np.float32)).mean())
    exposed = env * (GREY_LINEAR / mean) if mean > 0 else env
    toned = exposed / (1.0 + exposed)  # Reinhard: a sun 1000x brighter than the sky still shows its shape
    _write_png(out, _display8(pipeline, _resize_linear(toned, MAX_PREVIEW_WIDTH_PX)))
    return out.name


# --------------------------------------------------------------------------------------------------
# Tone curves


def tone_curves(tone: Mapping, where: str = "tone.json") -> list[ToneCurve]:
    """The sampled curves of a tone.json document, one per (frame, curve).

    Accepted shape: ``{"frames": [{"frame": int, <name>: {<x key>: [N numbers], <y key>: [N numbers]
    or [[N], [N], [N]] (R, G, B) or [[r, g, b] x N]}, ...}, ...]}``. The x key is ``"x"`` or ends in
    ``_in``; the curve's other key holds y. Other entries of a frame (numbers, ``[r, g, b]``) are not
    curves and are shown as a table by the report. OutputError when the document has another shape.
    """
    frames = tone.get("frames") if isinstance(tone, Mapping) else None
    if not isinstance(frames, list):
        raise OutputError('tone must be a mapping with a "frames" list', where=where,
                          fix='pass the tone.json document: {"frames": [{"frame": 1001, "fg": {...}}, ...]}')
    out = []
    for entry in frames:
        if not isinstance(entry, Mapping) or isinstance(entry.get("frame"), bool) \
                or not isinstance(entry.get("frame"), int):
            raise OutputError(f"tone frame entry {str(entry)[:80]!r} has no integer 'frame'", where=where,
                              fix='give every entry of "frames" its frame number')
        for name, curve in entry.items():
            if isinstance(curve, Mapping):
                out.append(_tone_curve(entry["frame"], name, curve, where))
    return out


def _tone_curve(frame: int, name: str, curve: Mapping, where: str) -> ToneCurve:
    x_keys = [k for k in curve if k == "x" or str(k).endswith("_in")]
    if len(curve) != 2 or len(x_keys) != 1:
        raise OutputError(f"tone curve {name!r} of frame {frame} has keys {sorted(curve)}; expected one x key "
                          "('x' or '..._in') and one y key", where=where, fix="sample each curve as {x, y}")
    y_key = next(k for k in curve if k != x_keys[0])
    try:
        x = np.asarray(curve[x_keys[0]], dtype=np.float64)
        y = np.asarray(curve[y_key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise OutputError(f"tone curve {name!r} of frame {frame} holds non-numbers: {exc}", where=where,
                          fix="store curves as lists of numbers") from exc
    n = x.size
    if x.ndim == 1 and y.shape == (n,):
        y = np.broadcast_to(y, (3, n))
    elif x.ndim == 1 and y.shape == (n, 3):
        y = y.T
    elif not (x.ndim == 1 and y.shape == (3, n)):
        raise OutputError(f"tone curve {name!r} of frame {frame}: x has shape {x.shape}, y {y.shape}",
                          where=where, fix="y must have N, 3 x N or N x 3 values for N x samples")
    return ToneCurve(frame, str(name), str(x_keys[0]), str(y_key), x, np.ascontiguousarray(y))


def _write_tone_plots(curves: Sequence[ToneCurve], folder: Path) -> dict[str, str]:
    """One plot per curve name, every frame's R, G and B drawn over each other; name -> PNG file."""
    files = {}
    for name in dict.fromkeys(c.name for c in curves):
        mine = [c for c in curves if c.name == name]
        series = [(c.x, c.y[i], CHANNEL_COLOURS[i]) for c in mine for i in range(3)]
        files[name] = f"tone_{_safe(name)}.png"
        _write_png(folder / files[name], plot_png(series, title=f"tone curve {name}: {len(mine)} frame(s), R/G/B",
                                                  x_label=mine[0].x_label, y_label=mine[0].y_label, diagonal=True))
    return files


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text) or "curve"


# --------------------------------------------------------------------------------------------------
# The page's values (rows of (label, value) and the like; the template lays them out)


def _check_timings(timings: Mapping[str, float], where: str) -> None:
    for name, seconds in timings.items():
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
                or seconds < 0:
            raise OutputError(f"timing {name!r} = {seconds!r} is not a duration in seconds", where=where,
                              fix="pass stage name -> elapsed seconds (a finite number >= 0)")


def summary_rows(shot: ShotConfig, pipeline, rendered: Sequence[int], failed: set[int]) -> list[tuple[str, str]]:
    """The summary table: (label, value) rows, in order (a stage adds its row here)."""
    return [("shot file", str(shot.path)), ("output folder", str(shot.output.dir)),
            ("frames rendered", format_frames(rendered) if rendered else "none"),
            ("frames failed", format_frames(failed) if failed else "none"),
            ("plate", f"{shot.plate.path} ({shot.plate.colorspace})"),
            ("frame rate, timecode", ShotContext(shot).timing.describe(list(rendered))),
            ("colour", f"OCIO {pipeline.source}; working space {pipeline.working_space}; images shown "
                       f"through {pipeline.display} / {pipeline.view}")]


def settings_rows(shot: ShotConfig) -> list[tuple[str, str]]:
    """What the frames were rendered with: render, lighting, guidance, camera, assets, ground, output."""
    import json

    lighting_json = shot.output.dir / "lighting.json"
    source = ""
    if lighting_json.is_file():
        try:
            source = str(json.loads(lighting_json.read_text(encoding="utf-8")).get("source", ""))
        except (OSError, ValueError, AttributeError):
            source = "unreadable lighting.json"
    li, op, c = shot.lighting, shot.optimize, shot.camera
    rows = [("render", _render_row(shot.render)),
            ("lighting", f"init {li.init}" + (f" ({li.hdri.name})" if li.hdri else "") + f", rotate_y {li.rotate_y_deg:g} deg"
             + (f"; source {source}" if source else "")),
            ("optimisation", f"{op.objective}: {op.iterations} iterations, {op.spp} spp, crop {op.crop_px} px, "
                             f"{op.keyframes} keyframes" if li.optimize else "off (initial lighting rendered as it is)"),
            ("guidance", f"{shot.guidance.method} with {shot.guidance.model}" if shot.guidance.model else "none"),
            ("camera", f"USD {c.usd.name} {c.usd_prim or '(first camera)'}" if c.usd else
                       f"focal {c.focal_length_mm:g} mm, filmback {c.filmback_mm[0]:g} x {c.filmback_mm[1]:g} mm, "
                       + (f"track {c.track.name}" if c.track else "static")),
            *((f"asset {i + 1}", f"{a.label or a.mesh.stem}: {a.mesh.name}, position {list(a.position_m)} m, "
               f"rotation {list(a.rotation_deg)} deg, scale {a.scale:g}") for i, a in enumerate(shot.asset)),
            ("ground", f"y = {shot.ground.height_m:g} m, albedo {shot.ground.albedo}"),
            ("output", f"{shot.output.precision} EXR, {shot.output.compression}")]
    return rows


def provenance_rows() -> list[tuple[str, str]]:
    """Who wrote the report with what: vfxinsert version, git revision (when run from a checkout), date, user, host."""
    import datetime
    import getpass
    import platform
    import socket

    from . import __version__

    try:
        user = getpass.getuser()
    except (OSError, KeyError):   # no login name and no $USER (some containers)
        user = "unknown"
    return [("vfxinsert", __version__), ("git revision", git_revision() or "none (not run from a git checkout)"),
            ("written", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
            ("user", user), ("host", socket.gethostname()), ("python", platform.python_version())]


def git_revision() -> str | None:
    """The commit of the vfxinsert checkout this code runs from (``+ local changes`` when modified), or None."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + (" + local changes" if dirty.stdout.strip() else "")


def _links(shot: ShotConfig, folder: Path) -> list[tuple[str, str]]:
    """(file name, href relative to the report) of the handoff files that exist."""
    names = (f"{shot.name}.nk", f"ocio/{shot.name}.ocio", "preview.mp4", "lighting.exr", "lighting.json", "tone.json")
    return [(name, Path(os.path.relpath(shot.output.dir / name, folder)).as_posix())
            for name in names if (shot.output.dir / name).is_file()]


def _notes(reports: Sequence[StageReport]) -> list[tuple[str, int, str]]:
    return [(r.stage, res.frame, "; ".join(
        ([f"held from frame {res.held_from}"] if res.held_from is not None else [])
        + ([f"{res.nonfinite} NaN/Inf values sanitised"] if res.nonfinite else [])))
        for r in reports for res in r.results if res.held_from is not None or res.nonfinite]


def _tone_context(curves: Sequence[ToneCurve], pngs: Mapping[str, str], tone: Mapping) -> dict:
    values: dict[int, dict[str, str]] = {}
    for entry in tone["frames"]:
        for key, value in entry.items():
            if key != "frame" and not isinstance(value, Mapping):
                values.setdefault(entry["frame"], {})[key] = _format_value(value)
    columns = list(dict.fromkeys(k for row in values.values() for k in row))
    return {"plots": list(pngs.items()), "columns": columns,
            "rows": [(f, *(row.get(c, "") for c in columns)) for f, row in values.items()]}


def _format_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _timing_rows(timings: Mapping[str, float]) -> list[tuple[str, str, str]]:
    if not timings:
        return []
    total = float(sum(timings.values()))
    rows = [(name, f"{seconds:.2f}", f"{100.0 * seconds / total:.1f} %" if total > 0 else "")
            for name, seconds in timings.items()]
    rows.append(("total", f"{total:.2f}", "100 %" if total > 0 else ""))
    return rows


def _render_row(render: RenderConfig) -> str:
    """The final renders' settings in words."""
    from .denoise import BATCH_SPP

    spp = (f"noise target {render.noise_target:g} (batches of {BATCH_SPP} spp, at most {render.spp})"
           if render.noise_target else f"{render.spp} spp")
    return f"{spp}, max depth {render.max_depth}, denoise {render.denoise}"
