"""The plate stage: read every frame, report bad ones, convert it into the working space, and write it
as a scene-linear EXR (``<output.dir>/plate/<name>.####.exr``): the ``plate`` of the layer identity
``comp = rgb + (1 - A) * plate * shadow`` that later stages render against.

A bad frame is recorded and the rest of the shot goes on. A frame whose output already exists with the
same input hash is skipped, so a re-run redoes only what changed.
"""
from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Callable

from . import __version__
from .config import ShotConfig
from .errors import OutputError
from .fsutil import ensure_writable_folder, file_identity, sweep_stale_temps
from .outputs import FrameResult, StageReport, frame_error

if TYPE_CHECKING:
    from .shot import ShotContext


def plate_frame_hash(shot: ShotConfig, frame_file: str, cache_id: str) -> str:
    """The inputs hash of one plate-stage output frame: the identity of its source file ``frame_file``
    (``PlateSource.source_path(frame)``) and the settings, with ``cache_id`` the colour pipeline's.

    The stage stores it in each EXR (``vfxinsert/inputsHash``) and skips a frame whose stored hash
    equals it; ``vfxinsert.status`` compares the same two values.
    """
    p = shot.plate
    blob = json.dumps([__version__, file_identity(frame_file), p.colorspace, p.layer, p.view, p.overscan, p.nonfinite,
                       p.fps, shot.color_pipeline().working_space, cache_id, shot.output.precision,
                       shot.output.compression])
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def ingest(shot: ShotConfig, on_frame: Callable[[FrameResult, int], None] | None = None,
           frames: list[int] | None = None, context: ShotContext | None = None, force: bool = False) -> StageReport:
    """Convert the plate frames of ``shot`` (all, or ``frames``) into the working space; see the module docstring.

    ``force``: redo frames that are up to date too."""
    from .exr import FrameMetadata, stored_inputs_hash, write_exr
    from .plates import open_plate
    from .shot import ShotContext

    p = shot.plate
    context = context or ShotContext(shot)
    pipeline = shot.color_pipeline()
    ensure_writable_folder(shot.output.dir)   # an unwritable folder is one line for the shot, not one per frame
    sweep_stale_temps(shot.output.dir)        # what killed writers left behind, anywhere under output.dir
    _ = context.track   # read the camera track now: a bad track file stops the shot, not each frame
    timing = context.timing
    results = []
    with open_plate(p.path, p.frames, layer=p.layer, view=p.view, overscan=p.overscan, nonfinite=p.nonfinite,
                    missing=p.missing_frames) as plate:
        todo = list(plate.frames) if frames is None else [f for f in plate.frames if f in set(frames)]
        total = len(todo)
        for frame in todo:
            out = context.plate_file(frame)
            try:
                source = plate.source_path(frame)
                digest = plate_frame_hash(shot, source, pipeline.cache_id)
                if not force and out.is_file() and stored_inputs_hash(out) == digest:
                    result = FrameResult(frame, out, skipped=True)
                else:
                    image = plate.read(frame)
                    rgb = pipeline.to_working(image.rgb, p.colorspace)
                    h, w = rgb.shape[:2]
                    (x0, y0), (x1, y1) = image.display_window
                    c2w, intr = context.camera(frame, x1 - x0 + 1, y1 - y0 + 1, image.pixel_aspect)
                    meta = FrameMetadata(shot=shot.name, frame=frame, working_space=pipeline.working_space,
                                         ocio_config=pipeline.config_name, ocio_cache_id=pipeline.cache_id,
                                         plate_colorspace=p.colorspace, plate_path=source,
                                         software_version=__version__, fps=timing.fps,
                                         timecode=timing.timecode(frame), cam_to_world=c2w,
                                         intrinsics=intr, extra={"inputsHash": digest}, content="plate")
                    channels = {"R": rgb[..., 0], "G": rgb[..., 1], "B": rgb[..., 2]}
                    if image.alpha is not None:
                        channels["A"] = image.alpha
                    write_exr(out, channels, display_window=image.display_window, data_origin=image.origin,
                              precision=shot.output.precision, compression=shot.output.compression,
                              attributes=meta.to_attributes())
                    result = FrameResult(frame, out, held_from=image.held_from, nonfinite=image.nonfinite)
            except Exception as exc:  # any failure of one frame: record it, go on with the rest of the shot
                if isinstance(exc, OutputError) and exc.shot_level:   # the folder, not the frame: one line
                    raise                                                 # for the shot, not one per frame
                result = FrameResult(frame, error=frame_error(exc))
            results.append(result)
            if on_frame:
                on_frame(result, total)
    return StageReport("plate", tuple(results))
