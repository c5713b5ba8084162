"""The Mitsuba scene of a shot, built once: camera, assets, proxy ground plane, environment emitter.

Per-frame camera poses and the environment are updated in place through ``mi.traverse`` (no reload,
no recompile: a change of pose, FOV, principal point, seed, spp or env values does not recompile;
mitsuba-notes section 2). Geometry is never optimised, so object transforms are baked into vertices.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import RenderError

if TYPE_CHECKING:
    from .assets import MeshPart

SAMPLERS = ("independent", "stratified", "multijitter", "ldsampler", "orthogonal")
"""Mitsuba's samplers. :data:`SAMPLER`, the one final renders use, was chosen by benchmarks/sampler_noise.py
(docs/benchmarks.md): at equal samples ``multijitter`` had 2.3-5x less object variance and about 2x less
shadow variance than ``independent`` for about 5-10 % more time, and takes any spp (it rounds up to a grid,
128 -> 132). ``ldsampler`` cut the object's variance more but not the shadow's, and rounds spp up to a
square power of two (128 -> 256: twice the time). Final renders only: the optimisation's differentiable
renders keep :data:`OPTIMISATION_SAMPLER` (with ``multijitter`` the known-answer solve of
tests/lighting/test_loop.py missed the sun's colour by 21 %: its primal and adjoint samples correlate)."""
SAMPLER = "multijitter"
OPTIMISATION_SAMPLER = "independent"


def sample_count(sampler: str, spp: int) -> int:
    """The samples per pixel ``sampler`` takes for ``spp``: ``multijitter`` rounds up to an a x b grid
    (a = floor(sqrt(spp)): 128 -> 132), as Mitsuba does; asking for that count spares its warning."""
    if sampler != "multijitter":
        return spp
    a = max(1, math.isqrt(spp))
    return a * -(-spp // a)
FINAL_SENSOR = "sensor_final"
"""Id of the second camera (same pose, the final-render sampler) that :meth:`InsertScene.render` uses."""

# Mitsuba's camera space is +X left, +Y up, +Z forward; OpenGL's is +X right, +Y up, looking down -Z.
_GL_TO_MITSUBA = np.diag([-1.0, 1.0, -1.0, 1.0])


@dataclass(frozen=True)
class View:
    """What one render sees: a pinhole camera (OpenGL pose) and a window of its image.

    The full image is ``width x height`` pixels with horizontal FOV ``fov_x_deg``; the render covers the
    window ``[x0, x0 + w) x [y0, y0 + h)`` of it at ``scale`` output pixels per image pixel (an off-axis
    frustum, so a crop around the object renders only that crop, at any resolution).
    """

    cam_to_world: np.ndarray
    fov_x_deg: float
    width: int
    height: int
    window: tuple[int, int, int, int] | None = None  # (x0, y0, w, h)
    scale: float = 1.0
    pixel_aspect: float = 1.0
    """Pixel width / height of the image (2.0: a 2:1 anamorphic plate). Mitsuba's film has square pixels,
    so such a view renders a film ``pixel_aspect`` times wider (same fields of view) and the layers are
    resampled back to the image's pixels by exact area weights (:func:`squeeze_columns`)."""

    @property
    def film_size(self) -> tuple[int, int]:
        """(width, height) of the layers a render returns: the window's pixels times ``scale``."""
        w, h = (self.width, self.height) if self.window is None else self.window[2:]
        return max(1, round(w * self.scale)), max(1, round(h * self.scale))

    @property
    def render_size(self) -> tuple[int, int]:
        """(width, height) of Mitsuba's square-pixel film: the film widened by the pixel aspect."""
        w, h = self.film_size
        return max(1, round(w * self.pixel_aspect)), h


def squeeze_columns(layers, width: int):
    """(H, W', C) layers of square-pixel columns -> (H, width, C), each output column the area-weighted
    mean of the render columns it covers (exact for an integer ratio: 2:1 averages pairs). Every layer
    is linear in light or coverage, so averaging is what a wider pixel integrates; a plate pixel the
    object does not touch keeps pw == pu exactly, so its shadow ratio stays exactly 1. numpy or torch
    (differentiable) alike."""
    src = layers.shape[1]
    if src == width:
        return layers
    ratio = src / width
    edges = np.arange(width + 1) * ratio
    lo, hi = edges[:-1, None], edges[1:, None]
    cols = np.arange(src)[None, :]
    weights = np.clip(np.minimum(hi, cols + 1) - np.maximum(lo, cols), 0.0, None) / ratio   # (width, W')
    if isinstance(layers, np.ndarray):
        return np.einsum("vw,hwc->hvc", weights.astype(layers.dtype), layers)
    import torch

    return torch.einsum("vw,hwc->hvc", torch.as_tensor(weights, dtype=layers.dtype, device=layers.device), layers)


def _sensor_fields(view: View) -> dict:
    """Mitsuba perspective-sensor fields of a view's window: fov (x axis) and principal-point offsets.

    Offsets are fractions of the film, signs as Mitsuba defines them (mitsuba-notes section 7): the
    principal point, at the centre of the full image, sits at (W/2 - x0, H/2 - y0) in the window.
    """
    x0, y0, w, h = view.window or (0, 0, view.width, view.height)
    fx = (view.width / 2.0) / math.tan(math.radians(view.fov_x_deg) / 2.0)
    return {"fov": math.degrees(2.0 * math.atan(w / (2.0 * fx))),
            "principal_point_offset_x": -(view.width / 2.0 - x0 - w / 2.0) / w,
            "principal_point_offset_y": -(view.height / 2.0 - y0 - h / 2.0) / h}


class InsertScene:
    """The Mitsuba scene: assets + finite proxy ground + env emitter + the shadow-catcher integrator."""

    def __init__(self, parts: list[MeshPart], *, ground_height_m: float, ground_albedo, view: View,
                 env_height: int = 64, max_depth: int = 3, ground_half_size_m: float | None = None,
                 sampler: str = SAMPLER):
        from .env import import_mitsuba

        mi = import_mitsuba()
        from . import integrator  # noqa: F401  registers "vfx_shadow_catcher" (needs the variant set)
        self._mi = mi
        self.view = view
        self.env_height = env_height
        self.parts = parts
        lo = np.min([p.vertices.min(0) for p in parts], axis=0)
        hi = np.max([p.vertices.max(0) for p in parts], axis=0)
        self.bounds = (lo, hi)
        centre = (lo + hi) / 2.0
        if ground_half_size_m is None:
            # Large enough for the shadow of a light 5 deg above the horizon (length = height / tan 5 deg),
            # small enough that the plate is untouched (ratio exactly 1) beyond it.
            footprint = 0.5 * float(np.hypot(hi[0] - lo[0], hi[2] - lo[2]))
            ground_half_size_m = footprint + max(hi[1] - ground_height_m, 1e-3) / math.tan(math.radians(5.0))
        self.ground_half_size_m = float(ground_half_size_m)
        self.ground_height_m = float(ground_height_m)
        self.ground_albedo = tuple(float(c) for c in ground_albedo)
        self.ground_centre = (float(centre[0]), float(centre[2]))
        self.max_depth = int(max_depth)
        if sampler not in SAMPLERS:
            raise RenderError(f"unknown sampler {sampler!r}", where="scene", fix=f"use one of {', '.join(SAMPLERS)}")
        self.sampler = sampler
        self._slots: dict[str, tuple] = {}
        self.scene, self.params, _ = self._slot("main")
        self.set_view(view)

    def _slot(self, name: str, material: bool = False) -> tuple:
        """(scene, params, differentiable render) of a named copy of the scene.

        Mitsuba's render op reads the scene's *current* env in its backward pass, so two differentiable
        renders with different envs before one ``backward()`` (L_fg and L_sh) need two scene copies.
        ``material``: a copy whose integrator differentiates the parts' principled materials too, and whose
        render takes them (:meth:`render_torch`).
        """
        key = f"{name}+material" if material else name
        if key not in self._slots:
            import drjit as dr

            mi = self._mi
            integrator = {"type": "vfx_shadow_catcher", "max_depth": self.max_depth, "material": material}
            try:
                scene = mi.load_dict(self.scene_dict(integrator, mi.Bitmap(np.ones((self.env_height, 2 * self.env_height, 3),
                                                                                 np.float32))))
            except Exception as exc:  # Mitsuba raises RuntimeError with its own text
                raise RenderError(f"Mitsuba could not build the scene: {exc}", where="scene") from exc
            params = mi.traverse(scene)
            textures = {p.name: mi.TensorXf(params[f"{p.name}.bsdf.base_color.data"])
                        for p in self.material_parts if p.base_color_texture is not None} if material else {}

            @dr.wrap(source="torch", target="drjit")
            def render_layers(env_data, seed, spp):
                params["env.data"] = env_data
                params.update()
                return mi.render(scene, params, seed=seed, spp=spp)

            @dr.wrap(source="torch", target="drjit")
            def render_layers_material(env_data, materials, seed, spp):
                params["env.data"] = env_data
                self._set_materials(params, materials, textures)
                params.update()
                return mi.render(scene, params, seed=seed, spp=spp)

            self._slots[key] = (scene, params, render_layers_material if material else render_layers)
            if key != "main":
                self._apply_view(params, self.view)
        return self._slots[key]

    @property
    def material_parts(self) -> list[MeshPart]:
        """The parts with a principled material, the ones ``[optimize] material`` refines (in this order)."""
        return [p for p in self.parts if p.bsdf is None]

    def _set_materials(self, params, materials, textures: dict) -> None:
        """Scene parameters from a (P, 5) drjit tensor, a row per :attr:`material_parts` entry: the base
        colour (the gain on the texture for a textured part), roughness, metallic."""
        import drjit as dr

        mi = self._mi
        flat = materials.array
        for k, part in enumerate(self.material_parts):
            def at(i, k=k):
                return dr.gather(mi.Float, flat, mi.UInt32(5 * k + i))

            if part.name in textures:
                data = textures[part.name]
                channel = dr.arange(mi.UInt32, dr.width(data.array)) % 3
                params[f"{part.name}.bsdf.base_color.data"] = mi.TensorXf(
                    data.array * dr.gather(mi.Float, flat, 5 * k + channel), data.shape)
            else:
                params[f"{part.name}.bsdf.base_color.value"] = mi.Color3f(at(0), at(1), at(2))
            params[f"{part.name}.bsdf.roughness.value"] = at(3)
            params[f"{part.name}.bsdf.metallic.value"] = at(4)

    def scene_dict(self, integrator: dict, env_bitmap, *, with_object: bool = True, with_ground: bool = True) -> dict:
        """The Mitsuba scene description; tests and benchmarks build stock reference scenes from it."""
        from .integrator import PLANE_ID

        mi = self._mi
        w, h = self.view.render_size
        sensor = {"type": "perspective", "fov_axis": "x", **_sensor_fields(self.view),
                  "to_world": mi.ScalarTransform4f((np.asarray(self.view.cam_to_world) @ _GL_TO_MITSUBA).tolist()),
                  "sampler": {"type": OPTIMISATION_SAMPLER, "sample_count": 16},
                  "film": {"type": "hdrfilm", "width": w, "height": h, "pixel_format": "rgba",
                           "rfilter": {"type": "box"}}}
        scene = {"type": "scene", "integrator": integrator, "sensor": sensor,
                 "env": {"type": "envmap", "bitmap": env_bitmap}}
        if self.sampler != OPTIMISATION_SAMPLER:
            scene[FINAL_SENSOR] = {**sensor, "sampler": {"type": self.sampler, "sample_count": 16},
                                   "film": dict(sensor["film"])}
        if with_ground:
            cx, cz = self.ground_centre
            scene[PLANE_ID] = {
                "type": "rectangle",
                "to_world": mi.ScalarTransform4f().translate([cx, self.ground_height_m, cz])
                @ mi.ScalarTransform4f().rotate([1, 0, 0], -90.0) @ mi.ScalarTransform4f().scale(self.ground_half_size_m),
                "bsdf": {"type": "diffuse", "reflectance": {"type": "rgb", "value": list(self.ground_albedo)}},
            }
        if with_object:
            for part in self.parts:
                scene[part.name] = self._mesh(part)
        return scene

    def _mesh(self, part: MeshPart):
        mi = self._mi
        bsdf: dict = part.bsdf or {"type": "principled", "roughness": part.roughness, "metallic": part.metallic,
                                   "base_color": {"type": "rgb", "value": list(part.base_color)}}
        if part.base_color_texture is not None and part.bsdf is None:
            bsdf["base_color"] = {"type": "bitmap", "raw": True, "bitmap": mi.Bitmap(part.base_color_texture)}
        props = mi.Properties()
        props["bsdf"] = mi.load_dict(bsdf)
        mesh = mi.Mesh(part.name, len(part.vertices), len(part.faces), props=props,
                       has_vertex_normals=True, has_vertex_texcoords=part.uvs is not None)
        p = mi.traverse(mesh)
        p["vertex_positions"] = mi.Float(part.vertices.astype(np.float32).ravel())
        p["faces"] = mi.UInt32(part.faces.astype(np.uint32).ravel())
        if part.normals is not None:
            p["vertex_normals"] = mi.Float(part.normals.astype(np.float32).ravel())
        if part.uvs is not None:
            # glTF's v runs down the image, Mitsuba's up.
            uv = part.uvs.copy()
            uv[:, 1] = 1.0 - uv[:, 1]
            p["vertex_texcoords"] = mi.Float(uv.astype(np.float32).ravel())
        p.update()
        if part.normals is None:
            mesh.recompute_vertex_normals()
        return mesh

    # ------------------------------------------------------------------ updates in place

    def set_view(self, view: View) -> None:
        """Move the camera / change the window without reloading (film size must stay the same)."""
        if view.render_size != self.view.render_size:
            raise RenderError(f"film size {view.render_size} differs from the scene's {self.view.render_size}",
                              where="scene view", fix="give every view of one scene the same film size")
        self.view = view
        for _, params, _ in self._slots.values():
            self._apply_view(params, view)

    def _apply_view(self, params, view: View) -> None:
        to_world = (np.asarray(view.cam_to_world) @ _GL_TO_MITSUBA).tolist()
        for sensor in ("sensor", FINAL_SENSOR) if self.sampler != OPTIMISATION_SAMPLER else ("sensor",):
            params[f"{sensor}.to_world"] = self._mi.Transform4f(to_world)
            for key, value in _sensor_fields(view).items():
                params[f"{sensor}.{'x_fov' if key == 'fov' else key}"] = value
        params.update()

    def set_env(self, data: np.ndarray) -> None:
        """Set the environment from (H, 2H + 2, 3) values in Mitsuba's texel layout (lighting.py)."""
        self.params["env.data"] = self._mi.TensorXf(np.ascontiguousarray(data, np.float32))
        self.params.update()

    # ------------------------------------------------------------------ renders

    @property
    def torch_device(self) -> str:
        """Where differentiable renders put their tensors: "cuda" for Mitsuba's CUDA variants."""
        return "cuda" if self._mi.variant().startswith("cuda") else "cpu"

    def sample_count(self, spp: int) -> int:
        """The samples per pixel this scene's final sampler takes for ``spp`` (:func:`sample_count`)."""
        return sample_count(self.sampler, spp)

    def render(self, seed: int, spp: int) -> np.ndarray:
        """(H, W, 11) layers (integrator.py: R, G, B, A, then its AOVs) with the current environment, as numpy."""
        import drjit as dr

        sensor = next((x for x in self.scene.sensors() if x.id() == FINAL_SENSOR), self.scene.sensors()[0])
        with dr.suspend_grad():
            return squeeze_columns(np.array(self._mi.render(self.scene, sensor=sensor, seed=seed,
                                                            spp=self.sample_count(spp))), self.view.film_size[0])

    def render_torch(self, env, seed: int, spp: int, slot: str = "main", materials=None):
        """(H, W, 11) torch layers, differentiable w.r.t. ``env`` ((H, 2H + 2, 3) torch, Mitsuba layout),
        and w.r.t. ``materials`` when given: a (P, 5) torch tensor, a row per :attr:`material_parts` entry
        (base colour, or the texture's gain; roughness; metallic).

        Renders whose gradients meet in one ``backward()`` with different envs need different slots.
        """
        if materials is None:
            layers = self._slot(slot)[2](env, seed, spp)
        else:
            layers = self._slot(slot, material=True)[2](env, materials, seed, spp)
        return squeeze_columns(layers, self.view.film_size[0])
