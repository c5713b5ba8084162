"""`vfxinsert bench`: lighting recovery against real ground truth (the Poly Haven protocol, method.md).

For each real panorama: the plate is a perspective view of it (a camera at its centre), the panorama
is the true lighting, and the reference is the asset rendered with it and composited over the plate.
Methods: ``hdri`` (the true panorama itself: the Monte Carlo noise floor), ``plate`` (the plate
projected onto the sphere and fitted with SGs: the floor without weights), ``reference`` (the
optimisation loop from the plate init against the reference image: the upper bound for any guidance).
Metrics over the object + shadow crop, display-referred sRGB: RMSE, SSIM, scale-invariant RMSE; plus the
angle between the dominant light directions of the recovered and the true lighting, and time.
"""
from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "rooitou_park": REPO / "shots" / "demo" / "light" / "rooitou_park_1k.hdr",
    "kerner_lot": REPO / "benchmarks" / "data" / "hdri" / "KernerEnvLatLong.exr",
    "studio_small_03": REPO / "benchmarks" / "data" / "hdri" / "studio_small_03_1k.hdr",
    "potsdamer_platz": REPO / "benchmarks" / "data" / "hdri" / "potsdamer_platz_1k.hdr",
}
ASSET = REPO / "shots" / "demo" / "assets" / "teapot.obj"


@dataclass(frozen=True)
class BenchRow:
    case: str
    method: str
    light_error_deg: float
    rmse: float
    ssim: float
    si_rmse: float
    seconds: float


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03, data range 1), per channel."""
    from scipy.ndimage import gaussian_filter

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    values = []
    for ch in range(a.shape[-1]):
        x, y = a[..., ch].astype(np.float64), b[..., ch].astype(np.float64)
        mx, my = gaussian_filter(x, 1.5), gaussian_filter(y, 1.5)
        sxx = gaussian_filter(x * x, 1.5) - mx * mx
        syy = gaussian_filter(y * y, 1.5) - my * my
        sxy = gaussian_filter(x * y, 1.5) - mx * my
        values.append(((2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2))).mean())
    return float(np.mean(values))


def metrics(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float, float]:
    """(RMSE, SSIM, scale-invariant RMSE) of two display-referred images."""
    rmse = float(np.sqrt(np.mean((pred - ref) ** 2)))
    alpha = float((pred * ref).sum() / max((pred * pred).sum(), 1e-12))
    si = float(np.sqrt(np.mean((alpha * pred - ref) ** 2)))
    return rmse, ssim(pred, ref), si


def angular_error_deg(a, b) -> float:
    """Angle between two directions in degrees."""
    a = np.asarray(a, float) / np.linalg.norm(a)
    b = np.asarray(b, float) / np.linalg.norm(b)
    return math.degrees(math.acos(float(np.clip(a @ b, -1.0, 1.0))))


def dominant_direction_latlong(latlong: np.ndarray) -> np.ndarray:
    """Direction of the brightest (solid-angle weighted, lightly blurred) part of a lat-long map."""
    h, w = latlong.shape[:2]
    from .color import RGB_LUMINANCE
    from .lighting.panorama import texel_directions, texel_solid_angles

    lum = latlong @ np.array(RGB_LUMINANCE) * texel_solid_angles(h, w)
    lum = sum(np.roll(np.roll(lum, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    y, x = np.unravel_index(int(np.argmax(lum)), lum.shape)
    return texel_directions(h, w)[y, x]


def run_case(name: str, pano_path: Path, *, iterations: int = 300, width: int = 256, height: int = 144,
             spp: int = 256, crop_px: int = 96, lr_lighting: float = 0.05, lr_tone: float = 0.05,
             on_progress=None) -> list[BenchRow]:
    from .camera import Intrinsics, euler_zxy_to_matrix
    from .color import ColorPipeline
    from .config import AssetConfig, MaterialConfig
    from .config import OptimizeConfig
    from .lighting.environment import EXPORT_HEIGHT
    from .lighting.init import fit_sg, max_sharpness, plate_latlong
    from .lighting.loop import FrameTarget, ReferenceObjective, optimise
    from .lighting.models import TwoMapSG
    from .lighting.panorama import hdri_to_mitsuba_env, mitsuba_env_directions, perspective_view, texel_directions
    from .lighting.stage import crop_resample, object_window
    from .lighting.tone import ToneCurves, ToneExport, apply_tone
    from .plates import read_image
    from .composite import composite
    from .assets import load_asset_parts
    from .scene import InsertScene, View

    pano = read_image(pano_path).rgb
    true_dir = dominant_direction_latlong(pano[: pano.shape[0] // 2 * 2])
    sun_azimuth = math.degrees(math.atan2(true_dir[0], -true_dir[2]))     # 0 = -Z, 90 = +X
    # the camera looks 120 degrees away from the light's azimuth: side-back light, shadow in view
    yaw = -(sun_azimuth + 120.0)
    c2w = np.eye(4)
    c2w[:3, :3] = euler_zxy_to_matrix(-20.0, yaw, 0.0)
    c2w[1, 3] = 1.5
    intr = Intrinsics(30.0, (36.0, 20.25), width, height)
    forward = c2w[:3, :3] @ [0.0, 0.0, -1.0]
    ahead = c2w[:3, 3] + forward * (1.5 / -forward[1])   # where the view centre meets the ground
    asset = AssetConfig(mesh=ASSET, position_m=(float(ahead[0]), 0.0, float(ahead[2])), rotation_deg=(0.0, 30.0, 0.0),
                        scale=0.12, material=MaterialConfig(base_color=(0.7, 0.45, 0.3), roughness=0.35))
    parts = load_asset_parts(asset, 0)
    plate = perspective_view(pano, c2w, intr.fov_x_deg, width, height, supersample=3)
    view = View(c2w, intr.fov_x_deg, width, height)
    bounds = (np.min(parts[0].vertices, 0), np.max(parts[0].vertices, 0))
    albedo = (0.3, 0.3, 0.3)
    scene = InsertScene(parts, ground_height_m=0.0, ground_albedo=albedo, view=view, env_height=EXPORT_HEIGHT, max_depth=4)
    true_env = hdri_to_mitsuba_env(pano, EXPORT_HEIGHT)
    display = ColorPipeline().to_display
    x0, y0, side = object_window(bounds, 0.0, c2w, intr)

    def crop_display(comp):
        return display(np.ascontiguousarray(crop_resample(comp, (x0, y0, side), side)))

    scene.set_env(true_env)
    reference = composite(scene.render(seed=1, spp=spp), plate)[3]
    ref_crop = crop_display(reference)
    rows = []

    def score(method, env_data, recovered_dir, seconds, tone=None):
        scene.set_env(env_data)
        rgb, alpha, shadow, _ = composite(scene.render(seed=2, spp=spp), plate)
        rgb, shadow = apply_tone(tone, 0, rgb, alpha, shadow)
        comp = rgb + (1 - alpha) * plate * shadow
        rmse, s, si = metrics(crop_display(comp), ref_crop)
        rows.append(BenchRow(name, method, angular_error_deg(recovered_dir, true_dir), rmse, s, si, seconds))
        if on_progress:
            on_progress(f"bench: {name} {method}: RMSE {rmse:.4f}")

    score("hdri", hdri_to_mitsuba_env(pano, EXPORT_HEIGHT), true_dir, 0.0)
    t0 = time.perf_counter()
    latlong, _ = plate_latlong(plate, c2w, intr, height=64)
    init = fit_sg(latlong, lobes=32)
    t_init = time.perf_counter() - t0
    score("plate", init.radiance(mitsuba_env_directions(EXPORT_HEIGHT, 2 * EXPORT_HEIGHT)).astype(np.float32),
          dominant_direction_latlong(init.radiance(texel_directions(64, 128))), t_init)
    t0 = time.perf_counter()
    window_view = View(c2w, intr.fov_x_deg, width, height, window=(x0, y0, side, side), scale=crop_px / side)
    target = FrameTarget(0, window_view, crop_resample(plate, (x0, y0, side), crop_px),
                         crop_resample(reference, (x0, y0, side), crop_px))
    settings = OptimizeConfig(iterations=iterations, crop_px=crop_px, spp=16, lr_lighting=lr_lighting, lr_tone=lr_tone)
    opt_scene = InsertScene(parts, ground_height_m=0.0, ground_albedo=albedo, view=window_view,
                            env_height=settings.env_height, max_depth=settings.max_depth)
    lighting = TwoMapSG(init, settings.env_height, max_sharpness(settings.env_height))
    tone = ToneCurves(1)
    optimise(opt_scene, [target], lighting, tone, settings, ReferenceObjective(), shot_name=f"bench-{name}")
    seconds = time.perf_counter() - t0 + t_init
    score("reference", lighting.radiance(mitsuba_env_directions(EXPORT_HEIGHT, 2 * EXPORT_HEIGHT)).astype(np.float32),
          dominant_direction_latlong(lighting.radiance(texel_directions(64, 128))), seconds, ToneExport.from_curves(tone, [0]))
    return rows


def run(cases: list[str] | None = None, iterations: int = 300, on_progress=None) -> tuple[list[BenchRow], str]:
    rows = []
    for name in cases or list(CASES):
        rows += run_case(name, CASES[name], iterations=iterations, on_progress=on_progress)
    return rows, format_table(rows, iterations)


def format_table(rows: list[BenchRow], iterations: int) -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    import os

    lines = [f"Machine: {cpu}, {os.cpu_count()} CPUs. Plates 256x144, teapot, metrics over the object + shadow "
             f"crop in display sRGB; `reference`: {iterations} iterations, 96 px crops, 16 spp, "
             f"Adam 0.05 (lighting) / 0.05 (tone).", "",
             "| case | method | dominant light error (deg) | RMSE | SSIM | si-RMSE | time (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.case} | {r.method} | {r.light_error_deg:.1f} | {r.rmse:.4f} | {r.ssim:.4f} | "
                     f"{r.si_rmse:.4f} | {r.seconds:.1f} |")
    return "\n".join(lines)
