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


def resolve_working_space(source: str, setting: str) -> str:
    """The working space of a shot: ``[color] working_space`` (a colorspace, alias or role such as
    ``scene_linear``) by its canonical name; empty: the ``scene_linear`` role of a studio config (the shot's
    or ``$OCIO``), or ``WORKING_SPACE`` for the pinned built-in config (whose scene_linear is ACEScg, while
    Mitsuba's RGB variants and every default here are Rec.709)."""
    config = load_config(source)
    if not setting:
        setting = "scene_linear" if source != PINNED_CONFIG and config.hasRole("scene_linear") else WORKING_SPACE
    return config.getCanonicalName(setting) or setting   # an unknown name is reported by canonical()


@dataclass(frozen=True)
class ColorPipeline:
    """Processors between a plate colorspace, the working space and a display view, for one config.

    ``context``: OCIO context variables (name, value) of the shot (``[color] context``), e.g. ``SHOT``
    for a config whose file transforms read ``luts/$SHOT.cube``; they take precedence over the
    environment and the config's own defaults, and enter the cache ID (so the inputs hashes)."""

    source: str = PINNED_CONFIG
    working_space: str = WORKING_SPACE
    display: str = DISPLAY
    view: str = VIEW
    context: tuple[tuple[str, str], ...] = ()

    @property
    def config(self):
        return load_config(self.source)

    @property
    def config_name(self) -> str:
        return self.config.getName() or self.source

    @property
    def cache_id(self) -> str:
        return self.config.getCacheID(_context(self.source, self.context)) if self.context else self.config.getCacheID()

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

    def processor(self, src: str, dst: str):
        """The OCIO processor colorspace ``src`` -> ``dst`` under the shot's context."""
        return _processor(self.source, self.context, "cs", src, dst, False)

    def display_processor(self, inverse: bool = False):
        """The OCIO processor working space -> display view (or back) under the shot's context."""
        self.check_display_view("[color] display/view")
        return _processor(self.source, self.context, "view", self.canonical(self.working_space, "working space"),
                          f"{self.display}\0{self.view}", inverse)

    def _processor(self, src: str, dst: str, inverse: bool):
        return _cpu_processor(self.source, self.cache_id, "cs", src, dst, inverse, self.context)

    def _display_processor(self, inverse: bool):
        self.check_display_view("[color] display/view")
        return _cpu_processor(self.source, self.cache_id, "view",
                              self.canonical(self.working_space, "working space"),
                              f"{self.display}\0{self.view}", inverse, self.context)


#: The OCIO profile version of :func:`portable_config`: 2.0, read by every OCIO 2 (Nuke 13 and later).
PORTABLE_PROFILE_VERSION = (2, 0)


def display_colorspace_name(display: str, view: str) -> str:
    """The colorspace that stands for a display view in :func:`portable_config`."""
    return f"{view} ({display})"


def portable_config(pipeline: ColorPipeline, colorspaces: list[str], name: str) -> tuple[str, dict[str, str]]:
    """A self-contained OCIO config (profile 2.0) holding ``colorspaces``, the working space and the
    pipeline's display view, each as the exact transforms ``pipeline``'s own config resolves it to.

    Why: a built-in config such as the pinned ``ocio://studio-config-v2.2.0_aces-v1.3_ocio-v2.4`` needs
    OCIO 2.4, while Nuke 13/14/15 ship OCIO 2.0/2.1/2.2. The working space is the reference space; each
    colorspace is ``processor(colorspace -> working space)`` written out as its primitive transforms
    (matrices, log/exponent curves, ACES fixed functions, grading curves: all OCIO 2.0 types), and the
    display view is a colorspace ``processor(working -> display view)``, so a Read, Write or Viewer in
    Nuke converts exactly as vfxinsert did. Names stay the source config's canonical names; the shot's
    OCIO context (``pipeline.context``) is baked in, so the file needs no variables. LUTs (a studio
    config's file transforms), which a config cannot hold inline, become CLF files beside it.

    Returns (the config's text, {CLF file name: its text}) for the caller to write into one folder.
    """
    import PyOpenColorIO as ocio

    working = pipeline.canonical(pipeline.working_space, "[color] working_space")
    source = pipeline.config

    luts: dict[str, str] = {}

    def exact(processor):
        group = processor.getOptimizedProcessor(ocio.OPTIMIZATION_NONE).createGroupTransform()
        out = ocio.GroupTransform()
        for child in group:
            if isinstance(child, (ocio.Lut1DTransform, ocio.Lut3DTransform)):   # no inline YAML for LUTs
                file_name = f"lut_{len(luts) + 1:03d}.clf"
                luts[file_name] = ocio.GroupTransform([child]).write("Academy/ASC Common LUT Format")
                child = ocio.FileTransform(src=file_name, interpolation=ocio.INTERP_BEST)
            out.appendTransform(child)
        return out

    out = ocio.Config.CreateRaw()
    for existing in list(out.getColorSpaceNames()):
        out.removeColorSpace(existing)
    out.setMajorVersion(PORTABLE_PROFILE_VERSION[0])
    out.setMinorVersion(PORTABLE_PROFILE_VERSION[1])
    out.setName(name)
    out.setDescription(f"Exported by vfxinsert from {pipeline.config_name!r} ({pipeline.source}) for hosts with an "
                       "older OCIO: the colorspaces of one shot as exact transforms; reference space = " + working)
    out.addColorSpace(ocio.ColorSpace(ocio.REFERENCE_SPACE_SCENE, name=working, family="vfxinsert",
                                      encoding="scene-linear", description="the working space (reference)"))
    for cs in dict.fromkeys(pipeline.canonical(c, "colorspace") for c in colorspaces):
        if cs == working:
            continue
        space = ocio.ColorSpace(ocio.REFERENCE_SPACE_SCENE, name=cs, family="vfxinsert",
                                encoding=source.getColorSpace(cs).getEncoding(),
                                isData=source.getColorSpace(cs).isData())
        space.setTransform(exact(pipeline.processor(cs, working)), ocio.COLORSPACE_DIR_TO_REFERENCE)
        out.addColorSpace(space)
    view_cs = display_colorspace_name(pipeline.display, pipeline.view)
    space = ocio.ColorSpace(ocio.REFERENCE_SPACE_SCENE, name=view_cs, family="vfxinsert/display", encoding="sdr-video")
    space.setTransform(exact(pipeline.display_processor()), ocio.COLORSPACE_DIR_FROM_REFERENCE)
    out.addColorSpace(space)
    out.addColorSpace(ocio.ColorSpace(ocio.REFERENCE_SPACE_SCENE, name="Raw", family="vfxinsert", isData=True,
                                      description="data: never converted"))
    out.addDisplayView(pipeline.display, pipeline.view, view_cs, "")
    out.addDisplayView(pipeline.display, "Raw", "Raw", "")
    out.setActiveDisplays(pipeline.display)
    out.setActiveViews(f"{pipeline.view}, Raw")
    for role, cs in (("default", working), ("scene_linear", working), ("reference", working),
                     ("data", "Raw"), ("color_picking", view_cs)):
        out.setRole(role, cs)
    out.setSearchPath(".")   # the CLF files, beside the config
    out.validate()
    return out.serialize(), luts


def _context(source: str, variables: tuple[tuple[str, str], ...]):
    """The config's current context (environment, its defaults) with the shot's ``variables`` set."""
    import copy

    context = copy.deepcopy(load_config(source).getCurrentContext())   # never edit the shared config's own
    for name, value in variables:
        context.setStringVar(name, value)
    return context


def _processor(source: str, variables: tuple[tuple[str, str], ...], kind: str, src: str, dst: str, inverse: bool):
    import PyOpenColorIO as ocio

    config = load_config(source)
    context = _context(source, variables)
    try:
        if kind == "cs":
            return config.getProcessor(context, src, dst)
        display, view = dst.split("\0")
        direction = ocio.TRANSFORM_DIR_INVERSE if inverse else ocio.TRANSFORM_DIR_FORWARD
        transform = ocio.DisplayViewTransform(src=src, display=display, view=view, direction=direction)
        return config.getProcessor(context, transform, ocio.TRANSFORM_DIR_FORWARD)
    except (ocio.Exception, ocio.ExceptionMissingFile) as exc:   # e.g. a LUT named by a $VARIABLE the context lacks
        raise ColorError(f"OCIO cannot build the transform {src} -> {dst.replace(chr(0), ' / ')}: {exc}",
                         where="[color] config / context",
                         fix="set the variables the config uses in [color] context (or the environment)") from exc


@functools.lru_cache(maxsize=64)
def _cpu_processor(source: str, cache_id: str, kind: str, src: str, dst: str, inverse: bool,
                   variables: tuple[tuple[str, str], ...] = ()):
    """Build once per (config, context, transform): processor construction is the slow part of OCIO."""
    return _processor(source, variables, kind, src, dst, inverse).getDefaultCPUProcessor()


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
