"""The shot's input files: that they exist, and that no output can ever be written over one.

Paths here are already resolved against the shot file by the loader (config.py); every check runs at
load, so `check`, `run` and a farm task refuse the same shots with the same message.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import ShotConfig


def check_files(shot: ShotConfig, where: str) -> None:
    """Named files exist (a sequence pattern: its folder exists; frames are checked by `check`)."""
    def need(p: Path | None, key: str, fix: str) -> None:
        if p is not None and not p.exists():
            raise ConfigError(f"file not found: {p}", where=f"{where} {key}", fix=fix)

    from .sequences import parse_pattern

    def need_media(p: Path | None, key: str) -> None:
        if p is not None and parse_pattern(str(p)) is not None:
            need(p.parent, key, "check the folder of the frame pattern (paths are relative to the shot file)")
        else:
            need(p, key, "check the path (relative to the shot file)")

    need_media(shot.plate.path, "[plate] path")
    if parse_pattern(str(shot.plate.path)) is not None and shot.plate.frames is None:
        raise ConfigError("a frame pattern needs a frame range", where=f"{where} [plate] frames",
                          fix="add frames = [first, last]")
    need_media(shot.optimize.reference, "[optimize] reference")
    need(shot.camera.track, "[camera] track", "check the .chan path (relative to the shot file)")
    for i, asset in enumerate(shot.asset):
        need(asset.mesh, f"[[asset]] #{i + 1} mesh", "check the mesh path (relative to the shot file)")
    need(shot.lighting.hdri, "[lighting] hdri", "check the HDRI path (relative to the shot file)")
    need(shot.lighting.prior, "[lighting] prior", "check the .safetensors path (relative to the shot file)")
    need(shot.lighting.compare_hdri, "[lighting] compare_hdri", "check the HDRI path (relative to the shot file)")


def check_output_dir(shot: ShotConfig, where: str) -> None:
    """Inputs are never written, by construction: with symlinks resolved, no plate or reference sequence
    may live in ``output.dir`` or in a folder the stages write into, no other input may sit where an
    output is written, and the folders the stages write into may not be symlinks (they would be written
    through)."""
    from .outputs import OUTPUT_SUBFOLDERS, is_output_name

    out = shot.output.dir.resolve()
    zones = [out / sub for sub in OUTPUT_SUBFOLDERS]
    fix = 'give the shot an output folder of its own (e.g. [output] dir = "out")'
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{existing} is a file, so the output folder {out} cannot be made there",
                          where=f"{where} [output] dir", fix="move the file away or choose another [output] dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"no permission to write in {existing}", where=f"{where} [output] dir",
                          fix="choose a folder you can write to, or ask for write access")
    for sub in OUTPUT_SUBFOLDERS:
        link = shot.output.dir / sub
        if link.is_symlink():
            raise ConfigError(f"{link} is a symbolic link (to {os.readlink(link)}); vfxinsert writes into it and "
                              "would write through it", where=f"{where} [output] dir",
                              fix="remove the link (vfxinsert makes a real folder there) or choose another [output] dir")

    def within(path: Path, folder: Path) -> bool:
        return path == folder or folder in path.parents

    media = [("[plate] path", shot.plate.path), ("[optimize] reference", shot.optimize.reference)]
    others = [("[lighting] hdri", shot.lighting.hdri), ("[lighting] prior", shot.lighting.prior),
              ("[lighting] compare_hdri", shot.lighting.compare_hdri), ("[camera] track", shot.camera.track),
              ("shot file", shot.path), ("[guidance] model folder", _local_model(shot)),
              *((f"[[asset]] #{i + 1} mesh", a.mesh) for i, a in enumerate(shot.asset))]
    for key, path in media:
        if path is None:
            continue
        folder = path.parent.resolve()   # a sequence's frames, a still or a movie: all beside each other
        if folder == out or any(within(folder, z) for z in zones):
            raise ConfigError(f"the output folder {out} is where the {key} frames are ({folder}): the outputs would "
                              "overwrite or mix with them", where=f"{where} [output] dir", fix=fix)
    for key, path in others:
        if path is None:
            continue
        real = path.resolve()
        if any(within(real, z) for z in zones) or (real.parent == out and is_output_name(real.name, shot.name)):
            raise ConfigError(f"the {key} file {real} is where vfxinsert writes its outputs ({out})",
                              where=f"{where} [output] dir", fix=fix)


def _local_model(shot: ShotConfig) -> Path | None:
    """``[guidance] model`` when it names a local folder (not a pinned hub id), resolved as the loader does."""
    if not shot.guidance.model:
        return None
    path = Path(shot.guidance.model).expanduser()
    path = path if path.is_absolute() else shot.path.parent / path
    return path if path.exists() else None
