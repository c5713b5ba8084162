"""Colour management with OpenColorIO.

Plates go from their declared colorspace into the scene-linear working space (Rec.709 primaries,
what Mitsuba's RGB variants render); the composite goes to a display view for previews and for the
diffusion model. Config resolution: the shot's setting, then ``$OCIO``, then a pinned built-in config
(never a ``-latest`` alias, which moves between OCIO releases).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from .errors import ColorError

#: The built-in config used when neither the shot nor $OCIO names one. The studio config (not the
#: smaller cg config) because it carries camera log spaces (ARRI, Sony, RED, ...) that plates arrive in.
PINNED_CONFIG = "ocio://studio-config-v2.2.0_aces-v1.3_ocio-v2.4"
WORKING_SPACE = "Linear Rec.709 (sRGB)"
DISPLAY = "sRGB - Display"
VIEW = "Un-tone-mapped"
RGB_LUMINANCE = (0.2126, 0.7152, 0.0722)
"""Luminance weights of the working space (Rec.709 primaries)."""


def resolve_config_source(shot_setting: str = "") -> tuple[str, str]:
    """(source, how) of the OCIO config to use: shot setting, then $OCIO, then the pinned built-in."""
    if shot_setting:
        return shot_setting, "shot file [color] config"
    env = os.environ.get("OCIO", "").strip()
    if env:
        return env, "$OCIO"
    return PINNED_CONFIG, "pinned built-in config"


@functools.lru_cache(maxsize=8)
def load_config(source: str):
    """Load (and cache) an OCIO config from a file path or an ``ocio://`` URI."""
    import PyOpenColorIO as ocio

    if not source.startswith("ocio://") and not os.path.isfile(source):
        raise ColorError(f"OCIO config file {source!r} does not exist", where="[color] config / $OCIO",
                         fix=f"give a path to a config.ocio, an ocio:// URI, or leave it empty for {PINNED_CONFIG}")
    try:
        config = ocio.Config.CreateFromFile(source)
        config.validate()
    except ocio.Exception as exc:
        raise ColorError(f"OCIO cannot load config {source!r}: {exc}", where="[color] config / $OCIO",
                         fix=f"fix the config, or leave [color] config empty and unset $OCIO for {PINNED_CONFIG}") from exc
    return config


@dataclass(frozen=True)
class ColorPipeline:
    """Processors between a plate colorspace, the working space and a display view, for one config."""

    source: str = PINNED_CONFIG
    working_space: str = WORKING_SPACE
    display: str = DISPLAY
    view: str = VIEW

    @property
    def config(self):
        return load_config(self.source)

    @property
    def config_name(self) -> str:
        return self.config.getName() or self.source

    @property
    def cache_id(self) -> str:
        return self.config.getCacheID()

    def canonical(self, name: str, where: str) -> str:
        """The config's canonical name for a colorspace name, alias or role; ColorError if unknown."""
        canonical = self.config.getCanonicalName(name)
        if not canonical:
            known = sorted(cs.getName() for cs in self.config.getColorSpaces())
            raise ColorError(f"colorspace {name!r} is not in OCIO config {self.config_name!r}", where=where,
                             fix=f"use one of: {', '.join(known)}")
        return canonical

    def check_display_view(self, where: str) -> None:
        """ColorError unless the display and view exist in the config."""
        displays = list(self.config.getDisplays())
        if self.display not in displays:
            raise ColorError(f"display {self.display!r} is not in OCIO config {self.config_name!r}", where=where,
                             fix=f"use one of: {', '.join(displays)}")
        views = list(self.config.getViews(self.display))
        if self.view not in views:
            raise ColorError(f"view {self.view!r} is not a view of display {self.display!r}", where=where,
                             fix=f"use one of: {', '.join(views)}")

    def to_working(self, rgb: np.ndarray, src: str) -> np.ndarray:
        """Convert (H, W, 3) pixels from colorspace ``src`` into the working space."""
        return _apply(self._processor(self.canonical(src, "plate colorspace"),
                                      self.canonical(self.working_space, "working space"), inverse=False), rgb)

    def from_working(self, rgb: np.ndarray, dst: str) -> np.ndarray:
        """Convert (H, W, 3) working-space pixels into colorspace ``dst``."""
        return _apply(self._processor(self.canonical(self.working_space, "working space"),
                                      self.canonical(dst, "colorspace"), inverse=False), rgb)

    def to_display(self, rgb: np.ndarray) -> np.ndarray:
        """Working-space pixels through the display view (display-referred, what a monitor shows)."""
        return _apply(self._display_processor(inverse=False), rgb)

    def from_display(self, rgb: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_display` (exact only where the view is invertible)."""
        return _apply(self._display_processor(inverse=True), rgb)

    def _processor(self, src: str, dst: str, inverse: bool):
        return _cpu_processor(self.source, self.cache_id, "cs", src, dst, inverse)

    def _display_processor(self, inverse: bool):
        self.check_display_view("[color] display/view")
        return _cpu_processor(self.source, self.cache_id, "view",
                              self.canonical(self.working_space, "working space"),
                              f"{self.display}\0{self.view}", inverse)


@functools.lru_cache(maxsize=64)
def _cpu_processor(source: str, cache_id: str, kind: str, src: str, dst: str, inverse: bool):
    """Build once per (config, transform): processor construction is the slow part of OCIO."""
    import PyOpenColorIO as ocio

    config = load_config(source)
    if kind == "cs":
        processor = config.getProcessor(src, dst)
    else:
        display, view = dst.split("\0")
        direction = ocio.TRANSFORM_DIR_INVERSE if inverse else ocio.TRANSFORM_DIR_FORWARD
        transform = ocio.DisplayViewTransform(src=src, display=display, view=view, direction=direction)
        processor = config.getProcessor(transform)
    return processor.getDefaultCPUProcessor()


def _apply(cpu, rgb: np.ndarray) -> np.ndarray:
    """Apply a CPU processor to a whole image at once (PackedImageDesc needs float32, C-contiguous)."""
    import PyOpenColorIO as ocio

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ColorError(f"expected an (H, W, 3) image, got shape {rgb.shape}", where="color conversion")
    out = np.array(rgb, dtype=np.float32, order="C", copy=True)
    if out.size:
        cpu.apply(ocio.PackedImageDesc(out, out.shape[1], out.shape[0], 3))
    return out


# --------------------------------------------------------------------------------------------------
# The sRGB transfer (IEC 61966-2-1), for what is not an OCIO image conversion: the diffusion model's
# display view of a composite (torch, differentiable) and 8-bit sRGB textures of glTF assets (numpy).


def srgb_encode_torch(x, clip: bool = True):
    """Linear Rec.709 -> sRGB-encoded display values (the OCIO 'Un-tone-mapped' sRGB view): in 0..1 with
    ``clip``, else the same curve continued above 1 (so highlights keep a gradient)."""
    import torch

    x = x.clamp(0.0, 1.0) if clip else x.clamp_min(0.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def srgb_decode(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in 0..1 -> linear (numpy): the inverse of :func:`srgb_encode_torch`."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
