"""The shot file: TOML, ``schema = 1``, loaded into typed, frozen, validated dataclasses.

Every key is a dataclass field (its comment says what it means). The loader is driven by the type
hints, so a new key is one new field: unknown keys, wrong types, bad values and missing files all
fail at load with what / where / how to fix. Paths are relative to the shot file.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import ConfigError
from .guidance.objectives import OBJECTIVES
from .inputs import check_files, check_output_dir
from .tomltypes import build

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_VERSION = 1
MAX_FRAMES = 100_000
"""The most frames one shot may have (over an hour at 24 fps): a longer range is a typo, not a shot."""
Vec3 = tuple[float, float, float]
GuidanceMethod = Literal[tuple(OBJECTIVES)]  # type: ignore[valid-type]
"""``[guidance] method``: a key of the one mapping from method to objective class (guidance/objectives.py),
so a new guidance loss is its class plus its line there."""


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

    def validate(self, where: str) -> None:
        if self.frames is not None and self.frames[0] > self.frames[1]:
            raise ConfigError(f"first frame {self.frames[0]} is after last frame {self.frames[1]}",
                              where=f"{where} frames", fix="write frames = [first, last] with first <= last")
        if self.frames is not None and self.frames[1] - self.frames[0] + 1 > MAX_FRAMES:
            raise ConfigError(f"frames {list(self.frames)} is {self.frames[1] - self.frames[0] + 1} frames; a shot has at "
                              f"most {MAX_FRAMES}", where=f"{where} frames",
                              fix="check the range (split a longer sequence into shots)")


@dataclass(frozen=True)
class CameraConfig:
    focal_length_mm: float
    """Focal length in mm (Nuke's focal)."""
    filmback_mm: tuple[float, float]
    """Filmback [horizontal, vertical] in mm (Nuke's haperture, vaperture); the horizontal one fixes the FOV."""
    cam_to_world: tuple[tuple[float, float, float, float], ...] | None = None
    """Static camera: 4x4 row-major camera-to-world, OpenGL convention (looks down -Z, +Y up, +X right)."""
    track: Path | None = None
    """Moving camera: a Nuke .chan file (frame tx ty tz rx ry rz [vfov]; degrees; ZXY order)."""

    def validate(self, where: str) -> None:
        if self.focal_length_mm <= 0 or min(self.filmback_mm) <= 0:
            raise ConfigError("focal length and filmback must be positive millimetres", where=where,
                              fix="e.g. focal_length_mm = 35.0, filmback_mm = [36.0, 24.0]")
        if (self.cam_to_world is None) == (self.track is None):
            raise ConfigError("give exactly one of cam_to_world (static camera) or track (a .chan file)",
                              where=where, fix="keep one of the two keys")
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
    """OBJ, PLY or glTF-binary (.glb) mesh, modelled with its base at y = 0."""
    position_m: Vec3 = (0.0, 0.0, 0.0)
    """World position of the mesh origin, metres."""
    rotation_deg: Vec3 = (0.0, 0.0, 0.0)
    """XYZ Euler angles, X first: R = Rz * Ry * Rx; world = T * R * S."""
    scale: float = 1.0
    """Uniform scale."""
    material: MaterialConfig = MaterialConfig()
    """Principled material."""
    label: str = ""
    """What the object is ("teapot"), used as {class} in prompts; default: the mesh file name."""

    def validate(self, where: str) -> None:
        if not 1e-6 <= self.scale <= 1e6:
            raise ConfigError(f"scale {self.scale} is outside 1e-6..1e6", where=f"{where} scale",
                              fix="e.g. scale = 1.0 for a mesh modelled in metres, 0.01 for centimetres")
        if self.mesh.suffix.lower() not in (".obj", ".ply", ".glb"):
            raise ConfigError(f"mesh format {self.mesh.suffix!r} is not supported", where=f"{where} mesh",
                              fix="convert it to .obj, .ply or .glb")


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
class GuidanceConfig:
    model: str = ""
    """Empty: no diffusion guidance. Else a local diffusers folder (relative to the shot) or a pinned model id."""
    prompt: str = "a photo of a {class}"
    """Prompt for the asset's class ({class} is replaced by the asset label)."""
    method: GuidanceMethod = "lds"
    """"lds": DiPIR's guidance with a LoRA personalised to the plate; "sds": plain score distillation with
    classifier-free guidance on the base model (the baseline; no personalisation). The allowed values are
    ``guidance.objectives.OBJECTIVES``' keys."""
    allow_pickle: bool = False
    """Allow pickle (.bin) weights. Loading a pickle can run code: only for checkpoints you trust."""
    steps: int = 500
    """LoRA personalisation steps (method.md: 500-1000)."""
    rank: int = 4
    """LoRA rank."""
    lr: float = 1e-4
    """LoRA learning rate (AdamW)."""
    preservation_images: int = 50
    """Concept-preservation images of the asset's class generated by the base model (method.md: 30-200;
    0 trains on the plate alone)."""

    # The personalisation's fixed settings: not shot-file keys, settable from code (tests, benchmarks).
    scene_prompt: str = field(default="a photo of sks scene", metadata={"key": False})
    """Prompt of the plate crops; "sks" is the rare token the LoRA binds to the plate."""
    guidance_prompt: str = field(default="a photo of a {class} in sks scene", metadata={"key": False})
    """Conditional prompt of LDS with the personalised model: the object in the plate's scene (its token
    is the scene prompt's)."""
    sampling_steps: int = field(default=25, metadata={"key": False})
    """DDIM steps per concept-preservation image."""
    sampling_guidance: float = field(default=7.5, metadata={"key": False})
    """Classifier-free guidance scale when generating the concept-preservation images."""
    crop_scale: tuple[float, float] = field(default=(0.3, 1.0), metadata={"key": False})
    """Side of a random plate crop as a fraction of the plate's short side (min, max)."""
    checkpoint_every: int = field(default=50, metadata={"key": False})
    """LoRA steps between resumable checkpoints."""
    seed: int = field(default=0, metadata={"key": False})
    """Seed of every random draw of the personalisation (crops, flips, noise, timesteps, preservation images)."""

    def validate(self, where: str) -> None:
        if self.steps < 1 or self.rank < 1 or self.preservation_images < 0 or not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError("need steps >= 1, rank >= 1, lr > 0, preservation_images >= 0", where=where,
                              fix="e.g. steps = 500, rank = 4, lr = 1e-4, preservation_images = 50")
        if "{class}" not in self.prompt:
            raise ConfigError(f"prompt {self.prompt!r} has no {{class}} placeholder", where=f"{where} prompt",
                              fix='e.g. prompt = "a photo of a {class}"')
        if self.sampling_steps < 1 or self.checkpoint_every < 1:
            raise ConfigError(f"need sampling_steps >= 1 and checkpoint_every >= 1 (got {self.sampling_steps}, "
                              f"{self.checkpoint_every})", where=where, fix="e.g. sampling_steps = 25, checkpoint_every = 50")
        lo, hi = self.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ConfigError(f"crop_scale {list(self.crop_scale)} must satisfy 0 < min <= max <= 1", where=where,
                              fix="e.g. crop_scale = (0.3, 1.0)")
        if "{class}" not in self.guidance_prompt:
            raise ConfigError(f"guidance_prompt {self.guidance_prompt!r} has no {{class}} placeholder", where=where,
                              fix='e.g. "a photo of a {class} in sks scene"')


@dataclass(frozen=True)
class OptimizeConfig:
    objective: Literal["auto", "reference", "guidance"] = "auto"
    """What judges the composite: "guidance" (the diffusion model of [guidance]), "reference" (a known
    composite, for validation shots), or "auto": guidance when a model is set, else reference when one is
    given, else no optimisation (the initial lighting is used, and run says so)."""
    reference: Path | None = None
    """A known composite (image or sequence, in the plate's colorspace) for objective = "reference"."""
    iterations: int = 600
    """Adam steps (DiPIR: 600)."""
    crop_px: int = 128
    """Side of the square render around object + shadow while optimising (256 on a GPU)."""
    spp: int = 16
    """Samples per pixel while optimising."""
    max_depth: int = 3
    """Path depth while optimising."""
    lr_lighting: float = 0.02
    """Adam learning rate of the SG parameters (decays to 10 %)."""
    lr_tone: float = 0.01
    """Adam learning rate of the tone curves."""
    checkpoint_every: int = 50
    """Iterations between checkpoints (an interrupted solve resumes from the last one)."""
    keyframes: int = 24
    """At most this many plate frames take part in the solve (evenly spaced); the others share the lighting
    and take tone curves interpolated between their neighbouring keyframes."""
    tone_smoothness: float = 1.0
    """Weight of the temporal smoothness penalty on the per-frame tone curves (second differences)."""

    # The loop's fixed constants (DiPIR's values): not shot-file keys, settable from code (tests, benchmarks).
    env_height: int = field(default=64, metadata={"key": False})
    """Rows of the lat-long the lobes are rasterised to while optimising (method.md: 64 x 128)."""
    lr_final_fraction: float = field(default=0.1, metadata={"key": False})
    """Exponential learning-rate decay down to this fraction at the last iteration."""
    w_consistency: float = field(default=0.03, metadata={"key": False})
    """Weight of the consistency loss between the two SG maps (DiPIR: 0.03)."""
    w_shadow_reg: float = field(default=0.01, metadata={"key": False})
    """Weight of the shadow-map regulariser (DiPIR: 0.01)."""
    fusion_start: float = field(default=0.5, metadata={"key": False})
    """Fraction of the run where the two maps start to fuse ..."""
    fusion_end: float = field(default=0.8, metadata={"key": False})
    """... and where they are fully fused (one render per iteration from then on)."""
    optimise_tone: bool = field(default=True, metadata={"key": False})
    """false: keep the tone curves at the identity (lighting only)."""
    max_retries: int = field(default=6, metadata={"key": False})
    """Divergence recoveries (each halves the learning rate) before giving up."""

    def validate(self, where: str) -> None:
        if self.iterations < 1 or self.crop_px < 16 or self.spp < 1 or self.max_depth < 2 or self.keyframes < 1 \
                or self.tone_smoothness < 0:
            raise ConfigError("need iterations >= 1, crop_px >= 16, spp >= 1, max_depth >= 2, keyframes >= 1, "
                              "tone_smoothness >= 0", where=where,
                              fix="see the [optimize] reference in README")
        if self.objective == "reference" and self.reference is None:
            raise ConfigError('objective = "reference" needs a reference composite', where=f"{where} reference",
                              fix='add reference = "ref/comp.####.exr" (same frames as the plate)')


@dataclass(frozen=True)
class RenderConfig:
    spp: int = 128
    """Samples per pixel for final renders (with noise_target: the most a frame may take)."""
    max_depth: int = 8
    """Path depth for final renders (optimisation may use less)."""
    denoise: Literal["off", "oidn"] = "off"
    """Denoiser of final renders: "off" or "oidn" (Intel Open Image Denoise on the CPU; vfxinsert/denoise.py)."""
    noise_target: float = 0.0
    """0: spp samples; > 0: stop once the object's relative noise and the shadow's are at most this (0.02 = 2 %)."""

    def validate(self, where: str) -> None:
        if self.spp < 1 or self.max_depth < 1 or not 0.0 <= self.noise_target < 1.0:
            raise ConfigError("need spp >= 1, max_depth >= 1, 0 <= noise_target < 1", where=where,
                              fix="e.g. spp = 128, max_depth = 8, noise_target = 0.02 (or 0: a fixed spp)")


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
    """OCIO config path or ocio:// URI; empty: $OCIO, then the pinned built-in config."""
    working_space: str = "Linear Rec.709 (sRGB)"
    """Scene-linear working space of renders and outputs (Rec.709 primaries: what Mitsuba's RGB variants render)."""
    display: str = "sRGB - Display"
    """Display for previews and for the diffusion model."""
    view: str = "Un-tone-mapped"
    """View of that display."""


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
        from .color import ColorPipeline, resolve_config_source

        source, _ = resolve_config_source(self.color.config)
        return ColorPipeline(source=source, working_space=self.color.working_space,
                             display=self.color.display, view=self.color.view)


def shot_keys(section) -> dict:
    """The shot-file keys of a config section and their values (code-only fields left out): what the
    stages' inputs hashes record of it."""
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section) if f.metadata.get("key", True)}


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
        pipeline.canonical(shot.color.working_space, f"{where} [color] working_space")
        pipeline.check_display_view(f"{where} [color] display/view")
    return shot
