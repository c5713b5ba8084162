"""The shot file: TOML, ``schema = 1``, loaded into typed, frozen, validated dataclasses.

Every key is a dataclass field (its comment says what it means). The loader is driven by the type
hints, so a new key is one new field: unknown keys, wrong types, bad values and missing files all
fail at load with what / where / how to fix. Paths are relative to the shot file.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from .errors import ConfigError
from .inputs import check_files, check_output_dir
from .method_config import GuidanceConfig, GuidanceMethod, OptimizeConfig  # noqa: F401  (the [guidance] / [optimize] sections)
from .tomltypes import build, shot_keys  # noqa: F401  (shot_keys: re-exported)
from .usd import USD_SUFFIXES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_VERSION = 1
MAX_FRAMES = 100_000
"""The most frames one shot may have (over an hour at 24 fps): a longer range is a typo, not a shot."""
Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class PlateConfig:
    path: Path
    """Image, sequence (``name.####.exr`` or ``%04d``) or movie (.mp4/.mov), relative to the shot file."""
    colorspace: str
    """OCIO colorspace (name or alias) the plate is stored in; mandatory: file rules are never guessed."""
    frames: tuple[int, int] | None = None
    """Inclusive [first, last]; required with a pattern; omit for one image or a whole movie (frames from 1)."""
    layer: str = ""
    """EXR layer holding the plate ("" = main R,G,B(,A); "beauty" = beauty.R/G/B)."""
    view: str = ""
    """Multi-view EXR: the view to read ("left", "right"); "" = the first part holding the layer."""
    overscan: Literal["crop", "keep"] = "crop"
    """EXR data window larger than the display window: crop to the display window, or keep the overscan."""
    missing_frames: Literal["error", "hold"] = "error"
    """A missing frame of a sequence: fail that frame, or hold the previous present frame."""
    nonfinite: Literal["zero", "clamp", "error"] = "zero"
    """NaN/Inf pixels: set to 0; clamp Inf to +-65504 and NaN to 0; or fail the frame. Always reported."""
    fps: str | float | None = None
    """Frame rate of the plate, e.g. "24000/1001", 25, 23.976 (= 24000/1001); default: the plate's own
    (EXR framesPerSecond, a movie's rate), else 24 with a warning. Every output carries it."""

    @property
    def frame_rate(self) -> Fraction | None:
        """``fps`` as an exact fraction (None when not set)."""
        from .timing import parse_fps

        return None if self.fps is None else parse_fps(self.fps, "[plate] fps")

    def validate(self, where: str) -> None:
        if self.fps is not None:
            from .timing import parse_fps

            parse_fps(self.fps, f"{where} fps")
        if self.frames is not None and self.frames[0] > self.frames[1]:
            raise ConfigError(f"first frame {self.frames[0]} is after last frame {self.frames[1]}",
                              where=f"{where} frames", fix="write frames = [first, last] with first <= last")
        if self.frames is not None and self.frames[1] - self.frames[0] + 1 > MAX_FRAMES:
            raise ConfigError(f"frames {list(self.frames)} is {self.frames[1] - self.frames[0] + 1} frames; a shot has at "
                              f"most {MAX_FRAMES}", where=f"{where} frames",
                              fix="check the range (split a longer sequence into shots)")


@dataclass(frozen=True)
class CameraConfig:
    focal_length_mm: float | None = None
    """Focal length in mm (Nuke's focal); required unless the camera comes from ``usd``."""
    filmback_mm: tuple[float, float] | None = None
    """Filmback [horizontal, vertical] in mm (Nuke's haperture, vaperture); the horizontal one fixes the FOV.
    Required unless the camera comes from ``usd``."""
    cam_to_world: tuple[tuple[float, float, float, float], ...] | None = None
    """Static camera: 4x4 row-major camera-to-world, OpenGL convention (looks down -Z, +Y up, +X right)."""
    track: Path | None = None
    """Moving camera: a Nuke .chan file (frame tx ty tz rx ry rz [vfov]; degrees; ZXY order)."""
    usd: Path | None = None
    """Or a USD stage with a UsdGeomCamera (pose, lens and apertures per frame; time code = plate frame)."""
    usd_prim: str = ""
    """The camera prim's path in ``usd`` ("/world/cam"); empty: the stage's first UsdGeomCamera."""
    distortion: Path | None = None
    """Lens distortion: a redistort ST-map EXR at the plate's format ("lens/stmap.####.exr" per frame, or one
    file), Nuke's convention: R,G = u,v of the undistorted image per plate pixel, v from the bottom (lens.py)."""

    def validate(self, where: str) -> None:
        if sum(x is not None for x in (self.cam_to_world, self.track, self.usd)) != 1:
            raise ConfigError("give exactly one of cam_to_world (static camera), track (a .chan file) or usd "
                              "(a USD camera)", where=where, fix="keep one of the three keys")
        if self.usd is not None:
            if self.focal_length_mm is not None or self.filmback_mm is not None:
                raise ConfigError("focal_length_mm / filmback_mm come from the USD camera", where=where,
                                  fix="remove them (or use cam_to_world / track instead of usd)")
            if not self.usd.is_file():
                raise ConfigError("USD camera file not found", where=f"{where} usd", fix="check the path (relative to the shot file)")
            return
        if self.usd_prim:
            raise ConfigError("usd_prim names a prim of the usd key, which is not set", where=f"{where} usd_prim",
                              fix="remove usd_prim or set usd")
        if self.focal_length_mm is None or self.filmback_mm is None or self.focal_length_mm <= 0 or min(self.filmback_mm) <= 0:
            raise ConfigError("focal length and filmback must be positive millimetres", where=where,
                              fix="e.g. focal_length_mm = 35.0, filmback_mm = [36.0, 24.0]")
        if self.cam_to_world is not None:
            if len(self.cam_to_world) != 4:
                raise ConfigError(f"cam_to_world has {len(self.cam_to_world)} rows, expected 4",
                                  where=f"{where} cam_to_world", fix="write a 4x4 row-major matrix")
            from .camera import validate_cam_to_world

            validate_cam_to_world(self.cam_to_world, where=f"{where} cam_to_world")


@dataclass(frozen=True)
class GroundConfig:
    height_m: float = 0.0
    """Proxy ground plane y = height_m (normal +Y), in metres."""
    albedo: Literal["plate"] | Vec3 = "plate"
    """"plate": the mean plate colour under the object (scene-linear); or an explicit [r, g, b] in 0..1."""

    def validate(self, where: str) -> None:
        if self.albedo != "plate" and not all(0.0 <= c <= 1.0 for c in self.albedo):
            raise ConfigError(f"albedo {list(self.albedo)} is outside 0..1", where=f"{where} albedo",
                              fix='use "plate" or [r, g, b] with each value in 0..1')


@dataclass(frozen=True)
class MaterialConfig:
    base_color: Vec3 = (0.8, 0.8, 0.8)
    """Linear base colour in 0..1 (Mitsuba principled BSDF); a GLB's own textures win when present."""
    roughness: float = 0.4
    """0 = mirror-like, 1 = fully rough."""
    metallic: float = 0.0
    """0 = dielectric, 1 = metal."""

    def validate(self, where: str) -> None:
        for name, values in (("base_color", self.base_color), ("roughness", (self.roughness,)),
                             ("metallic", (self.metallic,))):
            if not all(0.0 <= v <= 1.0 for v in values):
                raise ConfigError(f"{name} must lie in 0..1", where=f"{where} {name}", fix="clamp it to 0..1")


@dataclass(frozen=True)
class AssetConfig:
    mesh: Path
    """OBJ, PLY, glTF-binary (.glb) or USD (.usd/.usda/.usdc: every mesh under the default prim) mesh,
    modelled with its base at y = 0."""
    position_m: Vec3 = (0.0, 0.0, 0.0)
    """World position of the mesh origin, metres."""
    rotation_deg: Vec3 = (0.0, 0.0, 0.0)
    """XYZ Euler angles, X first: R = Rz * Ry * Rx; world = T * R * S."""
    scale: float = 1.0
    """Uniform scale."""
    material: MaterialConfig | None = None
    """Principled material; unset: a USD's bound UsdPreviewSurface, else the defaults (a GLB's own always wins)."""
    label: str = ""
    """What the object is ("teapot"), used as {class} in prompts; default: the mesh file name."""

    @property
    def shot_material(self) -> MaterialConfig:
        """``material``, or the defaults when the shot sets none."""
        return self.material or MaterialConfig()

    def validate(self, where: str) -> None:
        if not 1e-6 <= self.scale <= 1e6:
            raise ConfigError(f"scale {self.scale} is outside 1e-6..1e6", where=f"{where} scale",
                              fix="e.g. scale = 1.0 for a mesh modelled in metres, 0.01 for centimetres")
        if self.mesh.suffix.lower() not in (".obj", ".ply", ".glb", *USD_SUFFIXES):
            raise ConfigError(f"mesh format {self.mesh.suffix!r} is not supported", where=f"{where} mesh",
                              fix="convert it to .obj, .ply, .glb or .usd")


@dataclass(frozen=True)
class LightingConfig:
    init: Literal["auto", "prior", "plate", "hdri", "sky"] = "auto"
    """Initial lighting: "prior" (the learned lighting prior, from the plate alone), "plate" (the plate
    projected onto the sphere), "hdri" (an on-set HDRI) or "sky" (a sun + sky). "auto": "hdri" when an
    HDRI is given, else "prior"."""
    hdri: Path | None = None
    """Lat-long HDRI (EXR/HDR), required when init = "hdri"."""
    prior: Path | None = None
    """init = "prior": a studio-trained prior (.safetensors from `vfxinsert train-prior`); default: the shipped one."""
    compare_hdri: Path | None = None
    """A known HDRI of the scene to compare recovered lighting against (validation shots): the QC report
    shows both and the angle between their dominant lights. Never used for the lighting itself."""
    rotate_y_deg: float = 0.0
    """Rotation of the HDRI about +Y (right-hand rule: +90 turns +Z to +X)."""
    optimize: bool = True
    """false: render with the initial lighting as it is."""
    sun_direction: Vec3 | None = None
    """init = "sky": world direction towards the sun (need not be normalised), e.g. [0.5, 0.6, -0.6]."""
    lobes: int = 32
    """Spherical-Gaussian lobes for init = "plate" (and the exported fit)."""

    def __post_init__(self) -> None:
        if self.init == "auto":   # resolved once here, so every stage and hash sees the init that runs
            object.__setattr__(self, "init", "hdri" if self.hdri is not None else "prior")

    def validate(self, where: str) -> None:
        if self.init == "hdri" and self.hdri is None:
            raise ConfigError('init = "hdri" needs an HDRI file', where=f"{where} hdri",
                              fix='add hdri = "path/to/onset.exr" or choose another init')
        if self.init == "sky" and (self.sun_direction is None or not any(self.sun_direction)):
            raise ConfigError('init = "sky" needs the sun direction', where=f"{where} sun_direction",
                              fix="add sun_direction = [x, y, z] (world, +Y up, towards the sun)")
        if not 1 <= self.lobes <= 256:
            raise ConfigError(f"lobes = {self.lobes} is outside 1..256", where=f"{where} lobes", fix="e.g. lobes = 32")


@dataclass(frozen=True)
class RenderConfig:
    spp: int = 16
    """Samples per pixel for final renders, a power of two (with noise_target: the most a frame may take). The default with
    the denoiser measured as accurate on the object as 128 raw spp and more accurate in the shadow, for a
    fifth of the time (docs/benchmarks.md); partly covered edge pixels keep the noise of 16 spp."""
    max_depth: int = 8
    """Path depth for final renders (optimisation may use less)."""
    denoise: Literal["off", "oidn"] = "oidn"
    """Denoiser of final renders: "off" or "oidn" (Intel Open Image Denoise on the CPU; vfxinsert/denoise.py)."""
    noise_target: float = 0.0
    """0: spp samples; > 0: stop once the object's relative noise and the shadow's are at most this (0.02 = 2 %)."""

    def validate(self, where: str) -> None:
        if self.spp < 1 or self.max_depth < 1 or not 0.0 <= self.noise_target < 1.0:
            raise ConfigError("need spp >= 1, max_depth >= 1, 0 <= noise_target < 1", where=where,
                              fix="e.g. spp = 16, max_depth = 8, noise_target = 0.02 (or 0: a fixed spp)")
        if self.spp & (self.spp - 1):
            lower = 1 << (self.spp.bit_length() - 1)
            raise ConfigError(f"spp = {self.spp} is not a power of two", where=f"{where} spp",
                              fix=f"use {lower} or {2 * lower}: with a power of two every machine renders a frame "
                                  "bit-identically (its samples never straddle the renderer's thread blocks)")


@dataclass(frozen=True)
class OutputConfig:
    dir: Path = Path("out")
    """Output folder, relative to the shot file unless absolute."""
    precision: Literal["half", "float"] = "half"
    """Colour layers as 16-bit half (default) or 32-bit float."""
    compression: Literal["zip", "piz", "dwaa"] = "zip"
    """EXR compression: zip (lossless, default), piz (lossless, grainy plates), dwaa (lossy: previews only)."""


@dataclass(frozen=True)
class ColorConfig:
    config: str = ""
    """OCIO config path (relative to the shot file) or ocio:// URI; empty: $OCIO, then the pinned built-in config."""
    working_space: str = ""
    """Scene-linear working space of renders and outputs: a colorspace or role ("scene_linear"). Empty: a studio
    config's scene_linear role, or "Linear Rec.709 (sRGB)" with the built-in config (color.resolve_working_space)."""
    display: str = "sRGB - Display"
    """Display for previews and for the diffusion model."""
    view: str = "Un-tone-mapped"
    """View of that display."""
    context: tuple[tuple[str, str], ...] = ()
    """OCIO context variables, e.g. [["SHOT", "sh010"], ["SEQ", "sq01"]]: per-show/per-shot looks of the config."""

    def validate(self, where: str) -> None:
        names = [name for name, _ in self.context]
        if len(set(names)) != len(names) or not all(n and (n[0].isalpha() or n[0] == "_") and
                                                     all(c.isalnum() or c == "_" for c in n) for n in names):
            raise ConfigError(f"context names {names} must be unique variable names", where=f"{where} context",
                              fix='e.g. context = [["SHOT", "sh010"], ["SEQ", "sq01"]]')


@dataclass(frozen=True)
class ShotConfig:
    schema: int
    """Shot-file schema version; this vfxinsert reads schema 1."""
    name: str
    """Shot name, used in output file names (letters, digits, '_', '-', '.')."""
    plate: PlateConfig
    camera: CameraConfig
    asset: tuple[AssetConfig, ...]
    """One or more [[asset]] tables."""
    ground: GroundConfig = GroundConfig()
    lighting: LightingConfig = LightingConfig()
    guidance: GuidanceConfig = GuidanceConfig()
    optimize: OptimizeConfig = OptimizeConfig()
    render: RenderConfig = RenderConfig()
    output: OutputConfig = OutputConfig()
    color: ColorConfig = ColorConfig()
    path: Path = field(default=Path("shot.toml"), metadata={"key": False})
    """The shot file itself (not a key)."""

    def validate(self, where: str) -> None:
        if self.schema != SCHEMA_VERSION:
            raise ConfigError(f"schema {self.schema} is not supported (this vfxinsert reads schema {SCHEMA_VERSION})",
                              where=f"{where} schema", fix=f"set schema = {SCHEMA_VERSION} or use a matching vfxinsert")
        if not self.name or not all(ch.isascii() and (ch.isalnum() or ch in "_-.") for ch in self.name) \
                or not self.name[0].isalnum() or len(self.name) > 100:
            raise ConfigError(f"name {self.name!r} must start with a letter or digit and use only letters, digits, "
                              "'_', '-', '.' (at most 100 characters): it starts every output file name",
                              where=f"{where} name", fix='e.g. name = "sh010"')
        if not self.asset:
            raise ConfigError("no [[asset]] table", where=where, fix="add an [[asset]] with mesh = ...")

    def color_pipeline(self):
        """The OCIO pipeline this shot resolves to (shot setting, then $OCIO, then the pinned config)."""
        from .color import ColorPipeline, resolve_config_source, resolve_working_space

        setting = self.color.config
        if setting and not setting.startswith("ocio://") and not Path(setting).expanduser().is_absolute():
            setting = str(self.path.parent / setting)   # a config file, like every path, is relative to the shot
        source, _ = resolve_config_source(setting)
        return ColorPipeline(source=source, working_space=resolve_working_space(source, self.color.working_space),
                             display=self.color.display, view=self.color.view, context=self.color.context)


# --------------------------------------------------------------------------------------------------
# Loading


def load_shot(path: str | Path, *, check_colors: bool = True) -> ShotConfig:
    """Read, type-check and validate a shot file; ConfigError / ColorError on any problem.

    Checks here are the cheap ones every command needs: keys, types, values, that named files and
    folders exist, and (``check_colors``) that the colorspaces exist in the resolved OCIO config.
    """
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("shot file not found", where=where, fix="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the shot file: {exc}", where=where) from exc
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=where, fix="fix the syntax at that line") from exc
    base = path.resolve().parent
    shot = build(ShotConfig, table, where, base, top=True)
    shot = dataclasses.replace(shot, path=path.resolve())
    check_files(shot, where)
    check_output_dir(shot, where)
    if check_colors:
        pipeline = shot.color_pipeline()
        pipeline.canonical(shot.plate.colorspace, f"{where} [plate] colorspace")
        pipeline.canonical(pipeline.working_space, f"{where} [color] working_space")
        pipeline.check_display_view(f"{where} [color] display/view")
    return shot
