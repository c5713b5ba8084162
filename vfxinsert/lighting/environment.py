"""The lighting stage's hand-off to the renders: the solved environment, and its export.

``Environment`` carries the environment in Mitsuba's layout at export resolution, the lat-long for
``lighting.exr``, the SG lobes, the per-keyframe tone curves and what the solve did, as typed fields;
``to_json`` is the part of ``lighting.json`` (and of every frame's ``vfxinsert/lighting`` header) it
says. ``save_environment`` writes the exports and the cache the render stage (maybe in another
process) reads back with ``load_environment``; ``lighting_inputs_hash`` says when the cache is current.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..assets import RefinedMaterial
from ..errors import ConfigError, VfxInsertError, warn
from .panorama import hdri_to_mitsuba_env, sample_bilinear, texel_directions, texel_solid_angles
from .sg import SGLobes
from .tone import ToneExport

if TYPE_CHECKING:
    from ..config import ShotConfig

EXPORT_HEIGHT = 256
"""lighting.exr is EXPORT_HEIGHT x 2 EXPORT_HEIGHT (method.md); the final renders use the same map."""
SG_NOTE = "'sg' is an SG fit of the final map, for renderers that take SG lights"


@dataclass(frozen=True)
class Solve:
    """What the optimisation of the lighting did."""

    objective: str
    """"reference" or "guidance" (``[optimize] objective`` resolved)."""
    losses: tuple[float, ...]
    """The loss per iteration."""
    retries: tuple[str, ...]
    """One line per divergence recovery."""
    seconds: float
    resumed_from: int | None
    """The checkpoint's iteration when the solve resumed, else None."""
    model: dict
    """The lighting model's own record (``LightingModel.describe()``), JSON-ready."""
    guidance: dict | None = None
    """What the guidance stage did (model, prompt, LoRA), JSON-ready; None for the reference objective."""


@dataclass(frozen=True)
class Environment:
    """The lighting every final render of a shot uses, and what the lighting exports say about it."""

    mitsuba_data: np.ndarray
    """(H, 2H + 2, 3) radiance in Mitsuba's envmap texel layout (panorama.py)."""
    latlong: np.ndarray
    """(h, 2h, 3) lat-long in the project's convention, for lighting.exr."""
    source: str
    """The initialisation it came from: ``[lighting] init``."""
    lobes: SGLobes | None = None
    """SG lobes of the lighting (lighting.json ``sg``), or None (an HDRI)."""
    tone: ToneExport | None = None
    """The per-keyframe tone curves after an optimisation, else None (identity)."""
    solve: Solve | None = None
    """What the optimisation did; None when the initial lighting is used as it is."""
    init_seconds: float | None = None
    """Time of the initialisation; None for an HDRI used as it is (then ``hdri`` ... are set)."""
    hdri: str | None = None
    rotate_y_deg: float | None = None
    working_space: str | None = None
    inputs_hash: str = ""
    """The lighting stage's inputs hash (``pipeline.lighting_inputs_hash``), "" before it is saved."""
    ground_albedo: tuple[float, float, float] | None = None
    """The proxy ground's albedo the solve used, measured once per shot and stored with it, so that every
    frame, chunk, resume and node renders with the same value; None before it is saved."""
    materials: tuple[RefinedMaterial, ...] | None = None
    """The parts' materials as the solve refined them (``[optimize] material``); None: the shot's."""

    @property
    def digest(self) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.mitsuba_data).tobytes()).hexdigest()[:32]

    def to_json(self) -> dict:
        """The solve's part of lighting.json (source, timings, objective, losses, the model's record)."""
        doc: dict = {"source": self.source}
        if self.init_seconds is None:
            doc.update(hdri=self.hdri, rotate_y_deg=self.rotate_y_deg, working_space=self.working_space)
        else:
            doc.update(init_seconds=self.init_seconds, optimised=self.solve is not None)
        if self.solve is not None:
            s = self.solve
            doc["objective"] = s.objective
            if s.guidance is not None:
                doc["guidance"] = s.guidance
            doc.update(s.model)
            doc.update(iterations=len(s.losses), losses=list(s.losses), retries=list(s.retries),
                       optimise_seconds=s.seconds, resumed_from=s.resumed_from, sg_note=SG_NOTE)
        if self.inputs_hash:
            doc["inputs_hash"] = self.inputs_hash
        if self.ground_albedo is not None:
            doc["ground_albedo"] = list(self.ground_albedo)
        if self.materials is not None:
            doc["materials"] = self.materials_json()
        return doc

    def materials_json(self) -> list | None:
        """The refined materials, JSON-ready (None: the shot's own)."""
        return None if self.materials is None else [asdict(m) for m in self.materials]

    def fields_json(self) -> dict:
        """Every field but the arrays, lobes and tone, JSON-ready (the environment cache); see from_fields."""
        return {"source": self.source, "solve": asdict(self.solve) if self.solve else None,
                "init_seconds": self.init_seconds, "hdri": self.hdri, "rotate_y_deg": self.rotate_y_deg,
                "working_space": self.working_space, "inputs_hash": self.inputs_hash,
                "ground_albedo": list(self.ground_albedo) if self.ground_albedo is not None else None,
                "materials": self.materials_json()}

    @classmethod
    def from_fields(cls, mitsuba_data, latlong, fields: dict, lobes: SGLobes | None,
                    tone: ToneExport | None) -> Environment:
        """The inverse of :meth:`fields_json` (with the arrays, lobes and tone stored beside it)."""
        solve = fields["solve"]
        solve = Solve(**{**solve, "losses": tuple(solve["losses"]), "retries": tuple(solve["retries"])}) if solve else None
        albedo, materials = fields["ground_albedo"], fields["materials"]
        return cls(mitsuba_data, latlong, fields["source"], lobes, tone, solve, fields["init_seconds"],
                   fields["hdri"], fields["rotate_y_deg"], fields["working_space"], fields["inputs_hash"],
                   tuple(float(c) for c in albedo) if albedo is not None else None,
                   None if materials is None else tuple(
                       RefinedMaterial(str(m["part"]), tuple(float(c) for c in m["gain"]), float(m["roughness"]),
                                       float(m["metallic"])) for m in materials))


def hdri_environment(shot: ShotConfig, env_height: int = 2 * EXPORT_HEIGHT) -> Environment:
    """The on-set HDRI of the shot (lighting.init = "hdri") as the environment, rotated about +Y."""
    from .hdri import hdri_texels

    light = shot.lighting
    if light.hdri is None:
        raise ConfigError('lighting.init = "hdri" needs [lighting] hdri', where=str(shot.path),
                          fix='add hdri = "path/to/onset.exr"')
    pipeline = shot.color_pipeline()
    # HDRIs are scene-linear Rec.709 unless they say otherwise; the shot's working space is that too.
    latlong = hdri_texels(light.hdri)
    h = min(env_height, latlong.shape[0])
    data = hdri_to_mitsuba_env(latlong, h, light.rotate_y_deg)
    export = sample_bilinear(latlong, texel_directions(EXPORT_HEIGHT, 2 * EXPORT_HEIGHT), light.rotate_y_deg)
    return Environment(data, export.astype(np.float32), "hdri", hdri=str(light.hdri),
                       rotate_y_deg=light.rotate_y_deg, working_space=pipeline.working_space)


def write_lighting(folder: Path, latlong: np.ndarray, lobes: SGLobes | None, meta: dict) -> tuple[Path, Path]:
    """Export ``lighting.exr`` (lat-long, float, panorama.py's convention) and ``lighting.json``."""
    from ..exr import write_exr
    from ..fsutil import atomic_write_text

    folder = Path(folder)
    exr = folder / "lighting.exr"
    write_exr(exr, {"R": latlong[..., 0], "G": latlong[..., 1], "B": latlong[..., 2]}, precision="float",
              compression="zip", attributes={"envmap": 1, "comments": "lat-long, +Y up, row 0 = zenith, centre "
                                             "column faces +Z, u = 0.25 faces +X (Mitsuba envmap convention)"})
    doc = dict(meta)
    doc["latlong"] = {"file": exr.name, "width": int(latlong.shape[1]), "height": int(latlong.shape[0]),
                      "convention": "+Y up, row 0 zenith, centre column +Z, u=0.25 +X, texel centres"}
    doc["sg"] = lobes.to_json() if lobes is not None else None
    solid = texel_solid_angles(*latlong.shape[:2])
    doc["mean_radiance_rgb"] = [float(x) for x in (latlong * solid[..., None]).sum((0, 1)) / (4 * math.pi)]
    js = folder / "lighting.json"
    atomic_write_text(js, json.dumps(doc, indent=2))
    return exr, js


# --------------------------------------------------------------------------------------------------
# The cache between the lighting stage and the renders (a render chunk on the farm reads it)


def environment_cache(shot: ShotConfig) -> Path:
    """Where the lighting stage keeps the solved environment for the render stage (save_environment)."""
    return shot.output.dir / ".cache" / "environment.npz"


def lighting_inputs_hash(shot: ShotConfig, frames: list[int]) -> str:
    """Hash of everything the lighting solve reads: settings, HDRI, and (unless the HDRI is used as it
    is) the working-space plates, reference, assets and camera."""
    from dataclasses import asdict

    from .. import __version__
    from ..tomltypes import shot_keys
    from ..exr import stored_inputs_hash
    from ..fsutil import file_identity
    from ..outputs import working_plate_path

    light = shot.lighting
    pipeline = shot.color_pipeline()   # the resolved working space, and the config + context it converts with
    ident: list = [__version__, asdict(light), pipeline.working_space, pipeline.cache_id, file_identity(light.hdri)]
    if light.init == "prior":   # a retrained prior (same path, new weights) re-solves the lighting
        from .prior import prior_path

        ident.append(file_identity(prior_path(light.prior)))
    if not (light.init == "hdri" and not light.optimize):
        ident += [shot_keys(shot.optimize), shot_keys(shot.guidance), asdict(shot.camera), asdict(shot.ground),
                  [asdict(a) for a in shot.asset], [file_identity(a.mesh) for a in shot.asset],
                  [stored_inputs_hash(working_plate_path(shot, f)) for f in frames]]
    return hashlib.sha256(json.dumps(ident, default=str).encode()).hexdigest()[:32]


def save_environment(shot: ShotConfig, env: Environment) -> None:
    """The exports (lighting.exr, lighting.json, tone.json) and the cache the render stage reads."""
    from ..fsutil import atomic_write_bytes, atomic_write_text

    write_lighting(shot.output.dir, env.latlong, env.lobes, env.to_json())
    tone = env.tone.to_json() if env.tone is not None else None
    if tone is not None:
        atomic_write_text(shot.output.dir / "tone.json", json.dumps(tone, indent=1))
    buf = io.BytesIO()
    np.savez(buf, mitsuba_data=env.mitsuba_data, latlong=env.latlong, fields=np.array(json.dumps(env.fields_json())),
             lobes=np.array(json.dumps(env.lobes.to_json() if env.lobes is not None else None)),
             tone=np.array(json.dumps(tone)))
    atomic_write_bytes(environment_cache(shot), buf.getvalue())


def read_environment(shot: ShotConfig) -> Environment | None:
    """The environment the lighting stage saved, or None (not solved yet, or a damaged or older cache)."""
    path = environment_cache(shot)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:   # a cache holds data, never code
            lobes, tone = json.loads(str(data["lobes"])), json.loads(str(data["tone"]))
            return Environment.from_fields(data["mitsuba_data"], data["latlong"], json.loads(str(data["fields"])),
                                           SGLobes.from_json(lobes) if lobes else None,
                                           ToneExport.from_json(tone) if tone else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # damaged, older or planted
        warn(f"the lighting cache cannot be read ({type(exc).__name__}): it is recomputed", where=str(path))
        return None


def load_environment(shot: ShotConfig) -> Environment:
    """The environment the lighting stage saved; VfxInsertError when it has not run."""
    env = read_environment(shot)
    if env is None:
        raise VfxInsertError("no solved lighting for this shot", where=str(environment_cache(shot)),
                             fix="run the lighting stage first (vfxinsert run does)")
    return env
