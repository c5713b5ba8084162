"""The per-shot QC report: ``<output.dir>/report/index.html`` with PNG images beside it.

What a supervisor looks at before a shot goes to comp: for the first, middle and last rendered frame,
the plate, the composite, the object over grey and the shadow layer; a contact sheet of every
composite (``contact.png``); the recovered environment (``lighting.exr``, tone-mapped); the loss curve
and the per-frame tone curves when the shot was optimised; the stage timings; and every frame error
the stages recorded. All images are display-referred: working-space pixels go through the shot's OCIO
display view (``ColorPipeline.to_display``), then to 8-bit sRGB-encoded PNGs. Plots are drawn with
numpy and Pillow. Every file is written atomically; the HTML is written last, so a report whose
``index.html`` exists is complete.
"""
from __future__ import annotations

import html
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .config import ShotConfig
from .errors import OutputError
from .fsutil import atomic_folder, atomic_write_bytes, atomic_write_text
from .outputs import StageReport, insert_path, working_plate_path
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
#: Plot size in pixels.
PLOT_SIZE_PX = (520, 280)

_CHANNEL_COLOURS = ((220, 60, 60), (60, 170, 60), (70, 110, 230))  # R, G, B curves
_LINE_COLOUR = (40, 40, 40)


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
    comparison = _comparison_section(shot, pipeline, lighting, folder) if shot.lighting.compare_hdri else ""
    loss_png = None
    if loss is not None:
        loss_png = "loss.png"
        _plot([(np.arange(loss.size, dtype=np.float64), loss, _LINE_COLOUR)], folder / loss_png,
              title="loss per iteration", x_label="iteration", y_label="loss")
    tone_pngs = _write_tone_plots(curves, folder)

    body = [
        f"<h1>vfxinsert QC report: shot {_e(shot.name)}</h1>",
        _summary(shot, pipeline, rendered, failed),
        _errors_section(frame_results),
        _frames_section(previews),
        _image_section("Contact sheet: every composite" if len(rendered) <= CONTACT_MAX_FRAMES
                       else f"Contact sheet: {CONTACT_MAX_FRAMES} of {len(rendered)} composites, evenly sampled",
                       contact, missing="no frame was rendered"),
        _image_section("Recovered environment (lighting.exr, tone-mapped)", lighting_png,
                       missing="no lighting.exr in the output folder"),
        comparison,
        _image_section("Loss curve", loss_png, missing="no optimisation loss given (lighting not optimised)"),
        _tone_section(curves, tone_pngs, tone),
        _timings_section(timings),
    ]
    atomic_write_text(folder / "index.html", _page(shot.name, body))


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
    names = {}
    for kind, rgb in views.items():
        names[kind] = f"frame_{frame:04d}_{kind}.png"
        _write_png(folder / names[kind], _display8(pipeline, _resize_linear(rgb, MAX_PREVIEW_WIDTH_PX)))
    return FramePreview(frame, names.get("plate"), names["comp"], names["object"], names["shadow"])


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


def _comparison_section(shot: ShotConfig, pipeline, lighting: Path, folder: Path) -> str:
    """The recovered lighting beside the known HDRI (``[lighting] compare_hdri``, turned by ``rotate_y_deg``)
    and the angle between their dominant lights."""
    from .lighting.panorama import sample_bilinear, texel_directions
    from .lighting.sg import angular_error_deg, dominant_direction_latlong
    from .plates import read_image

    title = f"Recovered lighting against the known HDRI ({_e(shot.lighting.compare_hdri.name)})"
    if not lighting.is_file():
        return f"<h2>{title}</h2><p>no lighting.exr in the output folder</p>"
    recovered = _read_latlong(lighting)
    h = recovered.shape[0]
    truth = sample_bilinear(read_image(shot.lighting.compare_hdri).rgb.astype(np.float32), texel_directions(h, 2 * h),
                            shot.lighting.rotate_y_deg)
    true_png = _write_lighting(np.maximum(truth, 0.0), pipeline, folder / "lighting_true.png")
    a, b = dominant_direction_latlong(recovered), dominant_direction_latlong(truth)

    def where(d) -> str:
        return (f"azimuth {np.degrees(np.arctan2(d[0], -d[2])):.0f} deg, "
                f"elevation {np.degrees(np.arcsin(np.clip(d[1], -1, 1))):.0f} deg")

    return (f"<h2>{title}</h2><p>Dominant light: recovered {where(a)}; true {where(b)}; "
            f"<b>direction error {angular_error_deg(a, b):.1f} deg</b> (azimuth 0 = -Z, 90 = +X).</p>"
            + _img("lighting.png", "recovered (lighting.exr)") + _img(true_png, "true (compare_hdri)"))


def _write_lighting(env: np.ndarray, pipeline, out: Path) -> str:
    """A lat-long exposed so its mean luminance is mid grey, Reinhard-compressed, then displayed."""
    from .color import RGB_LUMINANCE

    mean = float((env @ np.asarray(RGB_LUMINANCE, np.float32)).mean())
    exposed = env * (GREY_LINEAR / mean) if mean > 0 else env
    toned = exposed / (1.0 + exposed)  # Reinhard: a sun 1000x brighter than the sky still shows its shape
    _write_png(out, _display8(pipeline, _resize_linear(toned, MAX_PREVIEW_WIDTH_PX)))
    return out.name


# --------------------------------------------------------------------------------------------------
# Plots (numpy + Pillow: no plotting library is a dependency)


def _plot(series: Sequence[tuple[np.ndarray, np.ndarray, tuple[int, int, int]]], path: Path, *, title: str,
          x_label: str, y_label: str, diagonal: bool = False) -> None:
    """A line plot of ``(x, y, colour)`` series with a framed axis box, the axis ranges and labels.

    Non-finite points are dropped. ``diagonal``: a light y = x reference line (identity curve).
    """
    from PIL import Image, ImageDraw

    width, height = PLOT_SIZE_PX
    left, right, top, bottom = 62, 14, 24, 38
    pts = []
    for x, y, colour in series:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        finite = np.isfinite(x) & np.isfinite(y)
        if finite.any():
            pts.append((x[finite], y[finite], colour))
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((left, 6), title, fill=_LINE_COLOUR)
    draw.rectangle((left, top, width - right, height - bottom), outline=_LINE_COLOUR)
    if pts:
        xs = np.concatenate([x for x, _, _ in pts])
        ys = np.concatenate([y for _, y, _ in pts])
        x0, x1 = float(xs.min()), float(xs.max())
        y0, y1 = float(ys.min()), float(ys.max())
        if diagonal:
            y0, y1 = min(y0, x0), max(y1, x1)
        x1 = x1 if x1 > x0 else x0 + 1.0
        y1 = y1 if y1 > y0 else y0 + 1.0

        def to_px(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
            px = left + (x - x0) / (x1 - x0) * (width - right - left)
            py = height - bottom - (y - y0) / (y1 - y0) * (height - bottom - top)
            return list(zip(px.tolist(), py.tolist()))

        if diagonal:
            lo, hi = max(x0, y0), min(x1, y1)
            if hi > lo:
                draw.line(to_px(np.array([lo, hi]), np.array([lo, hi])), fill=(190, 190, 190), width=1)
        for x, y, colour in pts:
            line = to_px(x, y)
            if len(line) == 1:
                draw.point(line, fill=colour)
            else:
                draw.line(line, fill=colour, width=1)
        draw.text((left, height - bottom + 4), f"{x0:.4g}", fill=_LINE_COLOUR)
        draw.text((width - right - 40, height - bottom + 4), f"{x1:.4g}", fill=_LINE_COLOUR)
        draw.text((4, top), f"{y1:.4g}", fill=_LINE_COLOUR)
        draw.text((4, height - bottom - 10), f"{y0:.4g}", fill=_LINE_COLOUR)
    draw.text(((width - len(x_label) * 6) // 2, height - 16), x_label, fill=_LINE_COLOUR)
    draw.text((4, height // 2), y_label[:9], fill=_LINE_COLOUR)
    _write_png(path, np.asarray(image))


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
        series = [(c.x, c.y[i], _CHANNEL_COLOURS[i]) for c in mine for i in range(3)]
        files[name] = f"tone_{_safe(name)}.png"
        _plot(series, folder / files[name], title=f"tone curve {name}: {len(mine)} frame(s), R/G/B",
              x_label=mine[0].x_label, y_label=mine[0].y_label, diagonal=True)
    return files


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text) or "curve"


# --------------------------------------------------------------------------------------------------
# HTML


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _check_timings(timings: Mapping[str, float], where: str) -> None:
    for name, seconds in timings.items():
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
                or seconds < 0:
            raise OutputError(f"timing {name!r} = {seconds!r} is not a duration in seconds", where=where,
                              fix="pass stage name -> elapsed seconds (a finite number >= 0)")


def _page(shot_name: str, body: Sequence[str]) -> str:
    style = ("body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
             "img{image-rendering:pixelated;max-width:100%}img.frame{width:320px}figure{display:inline-block;margin:4px}"
             "figcaption{font-size:small;color:#555}.error{color:#b00}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>vfxinsert QC: {_e(shot_name)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
            + "\n".join(part for part in body if part) + "\n</body>\n</html>\n")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    cls = f' class="{css}"' if css else ""
    body = "".join("<tr>" + "".join(f"<td{cls}>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(src: str, caption: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<figure><img src="{_e(src)}"{cls} alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _summary(shot: ShotConfig, pipeline, rendered: Sequence[int], failed: set[int]) -> str:
    rows = [("shot file", shot.path), ("output folder", shot.output.dir),
            ("frames rendered", format_frames(rendered) if rendered else "none"), ("frames failed", format_frames(failed) if failed else "none"),
            ("plate", f"{shot.plate.path} ({shot.plate.colorspace})"),
            ("frame rate, timecode", ShotContext(shot).timing.describe(list(rendered))),
            ("colour", f"OCIO {pipeline.source}; working space {pipeline.working_space}; images shown "
                       f"through {pipeline.display} / {pipeline.view}")]
    return "<h2>Summary</h2>" + _table(("item", "value"), rows)


def _errors_section(reports: Sequence[StageReport]) -> str:
    errors = [(r.stage, res.frame, res.error) for r in reports for res in r.results if res.error]
    notes = [(r.stage, res.frame, "; ".join(
        ([f"held from frame {res.held_from}"] if res.held_from is not None else [])
        + ([f"{res.nonfinite} NaN/Inf values sanitised"] if res.nonfinite else [])))
        for r in reports for res in r.results if res.held_from is not None or res.nonfinite]
    text = f"<h2>Frame errors ({len(errors)})</h2>"
    text += _table(("stage", "frame", "error"), errors, css="error") if errors else "<p>none</p>"
    if notes:
        text += "<h3>Frame notes</h3>" + _table(("stage", "frame", "note"), notes)
    return text


def _frames_section(previews: Sequence[FramePreview]) -> str:
    if not previews:
        return "<h2>Frames</h2><p>no frame was rendered</p>"
    rows = []
    for p in previews:
        cells = [_img(p.plate, "plate", "frame") if p.plate else "<p>no working-space plate EXR</p>",
                 _img(p.comp, "composite", "frame"), _img(p.object_over_grey, "object over grey", "frame"),
                 _img(p.shadow, "shadow (white = untouched)", "frame")]
        rows.append(f"<tr><th>frame {p.frame}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ("<h2>Frames: first, middle, last</h2><table><tr><th></th><th>plate</th><th>composite</th>"
            "<th>object over grey</th><th>shadow</th></tr>" + "".join(rows) + "</table>")


def _image_section(title: str, src: str | None, missing: str = "not available") -> str:
    return f"<h2>{_e(title)}</h2>" + (_img(src, title) if src else f"<p>{_e(missing)}</p>")


def _tone_section(curves: Sequence[ToneCurve], pngs: Mapping[str, str], tone: Mapping | None) -> str:
    if tone is None:
        return "<h2>Tone curves</h2><p>no tone curves given (lighting not optimised)</p>"
    text = "<h2>Tone curves per frame</h2>" + "".join(_img(src, f"tone curve {name}") for name, src in pngs.items())
    values: dict[int, dict[str, str]] = {}
    for entry in tone["frames"]:
        for key, value in entry.items():
            if key != "frame" and not isinstance(value, Mapping):
                values.setdefault(entry["frame"], {})[key] = _format_value(value)
    columns = list(dict.fromkeys(k for row in values.values() for k in row))
    if columns:
        text += _table(("frame", *columns), [(f, *(row.get(c, "") for c in columns)) for f, row in values.items()])
    return text


def _format_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _timings_section(timings: Mapping[str, float]) -> str:
    if not timings:
        return "<h2>Timings</h2><p>none recorded</p>"
    total = float(sum(timings.values()))
    rows = [(name, f"{seconds:.2f}", f"{100.0 * seconds / total:.1f} %" if total > 0 else "")
            for name, seconds in timings.items()]
    rows.append(("total", f"{total:.2f}", "100 %" if total > 0 else ""))
    return "<h2>Timings</h2>" + _table(("stage", "seconds", "share"), rows)
