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
from dataclasses import dataclass, replace
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
REFERENCE_SEED = 1
"""The reference composite's render seed; the methods' renders use 2 (independent noise) and, for
``shadow_error_same_seed``, this one."""


@dataclass(frozen=True)
class BenchRow:
    case: str
    method: str
    light_error_deg: float
    rmse: float
    ssim: float
    si_rmse: float
    seconds: float
    azimuth_error_deg: float = float("nan")
    object_error: float = float("nan")
    shadow_error: float = float("nan")
    shadow_error_same_seed: float = float("nan")
    """The shadow error of a render with the reference's own random numbers (common random numbers): the
    lighting's part of the error without most of the renders' Monte Carlo noise, which at the bench's spp
    is 0.2-0.4 on this measure for the true panorama itself (docs/benchmarks.md, the loop's ceiling)."""
    shadow_error_in_crop: float = float("nan")
    """``shadow_error_same_seed`` over the optimisation's crop only (the object and the ground within twice
    its height: what the loop sees), not the whole frame's ground."""
    light_error_64_deg: float = float("nan")
    """The key-light error with the true panorama's dominant light taken on the raster the recovered
    lighting's is (64 x 128, box-filtered) instead of the 1k map: for a room the 1k map's brightest few
    texels can be a small lamp or glint far (95-102 degrees in two validation rooms) from where the most
    light comes from at that scale."""


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


@dataclass
class Case:
    """One Poly Haven plate: the panorama seen by a camera at its centre, the teapot on the ground ahead,
    the reference composite rendered with the panorama itself."""

    name: str
    pano: np.ndarray
    true_dir: np.ndarray
    true_dir_64: np.ndarray   # the same on the 64 x 128 raster the recovered lightings are scored on
    c2w: np.ndarray
    intr: object
    plate: np.ndarray
    parts: list
    bounds: tuple
    window: tuple
    scene: object
    reference: tuple          # (object rgb, alpha, shadow, comp) of the reference render
    spp: int

    def crop_display(self, comp: np.ndarray) -> np.ndarray:
        from .color import ColorPipeline
        from .lighting.stage import crop_resample

        side = self.window[2]
        return ColorPipeline().to_display(np.ascontiguousarray(crop_resample(comp, self.window, side)))

    def render(self, env_data: np.ndarray, seed: int = 2) -> tuple:
        from .composite import composite

        self.scene.set_env(env_data)
        return composite(self.scene.render(seed=seed, spp=self.spp), self.plate)


def key_azimuth_deg(d) -> float:
    """Azimuth in the ground plane: 0 = -Z, 90 = +X."""
    return math.degrees(math.atan2(d[0], -d[2]))


@dataclass(frozen=True)
class BenchCamera:
    """Where the bench camera looks: pitch, lens on a 36 x 20.25 mm filmback, and the asset's distance
    (None: where the view centre meets the ground)."""

    pitch_deg: float = -20.0
    focal_length_mm: float = 30.0
    asset_distance_m: float | None = None


FIXED_CAMERA = BenchCamera()                                   # the four fixed cases: ground only, no sky
PLATE_CAMERA = BenchCamera(pitch_deg=-12.0, focal_length_mm=24.0, asset_distance_m=4.0)   # a strip of sky


def make_case(name: str, pano: np.ndarray, offset_deg: float = 120.0, *, camera: BenchCamera = FIXED_CAMERA,
              width: int = 256, height: int = 144, spp: int = 256) -> Case:
    """The camera (1.5 m above the ground) looks ``offset_deg`` away (in azimuth) from the dominant light."""
    from .camera import Intrinsics, euler_zxy_to_matrix
    from .config import AssetConfig, MaterialConfig
    from .assets import load_asset_parts
    from .lighting.environment import EXPORT_HEIGHT
    from .lighting.panorama import box_downsample, hdri_to_mitsuba_env, perspective_view
    from .lighting.sg import dominant_direction_latlong
    from .lighting.stage import object_window
    from .scene import InsertScene, View

    true_dir = dominant_direction_latlong(pano[: pano.shape[0] // 2 * 2])
    true_dir_64 = dominant_direction_latlong(box_downsample(pano, 32))   # box-filtered to 2 x 32 = 64 rows
    yaw = -(key_azimuth_deg(true_dir) + offset_deg)
    c2w = np.eye(4)
    c2w[:3, :3] = euler_zxy_to_matrix(camera.pitch_deg, yaw, 0.0)
    c2w[1, 3] = 1.5
    intr = Intrinsics(camera.focal_length_mm, (36.0, 20.25), width, height)
    forward = c2w[:3, :3] @ [0.0, 0.0, -1.0]
    if camera.asset_distance_m is None:
        ahead = c2w[:3, 3] + forward * (1.5 / -forward[1])   # where the view centre meets the ground
    else:
        flat = np.array([forward[0], 0.0, forward[2]]) / np.hypot(forward[0], forward[2])
        ahead = c2w[:3, 3] + flat * camera.asset_distance_m
    asset = AssetConfig(mesh=ASSET, position_m=(float(ahead[0]), 0.0, float(ahead[2])), rotation_deg=(0.0, 30.0, 0.0),
                        scale=0.12, material=MaterialConfig(base_color=(0.7, 0.45, 0.3), roughness=0.35))
    parts = load_asset_parts(asset, 0)
    plate = perspective_view(pano, c2w, intr.fov_x_deg, width, height, supersample=3)
    bounds = (np.min(parts[0].vertices, 0), np.max(parts[0].vertices, 0))
    scene = InsertScene(parts, ground_height_m=0.0, ground_albedo=(0.3, 0.3, 0.3),
                        view=View(c2w, intr.fov_x_deg, width, height), env_height=EXPORT_HEIGHT, max_depth=4)
    case = Case(name, pano, true_dir, true_dir_64, c2w, intr, plate, parts, bounds, object_window(bounds, 0.0, c2w, intr),
                scene, (), spp)
    case.reference = case.render(hdri_to_mitsuba_env(pano, EXPORT_HEIGHT), seed=REFERENCE_SEED)
    return case


def composite_errors(pred: tuple, ref: tuple, window=None) -> tuple[float, float]:
    """(object, shadow) relative errors, in the scene-linear working space over the whole frame (or the
    square ``window`` (x0, y0, side)): object: sum |rgb - rgb_ref| / sum rgb_ref over the premultiplied
    object layer; shadow: sum |shadow - shadow_ref| / sum |1 - shadow_ref| where the reference shows the
    ground (alpha < 0.5)."""
    rgb, _, shadow, _ = pred
    rgb_ref, alpha_ref, shadow_ref, _ = ref
    obj = float(np.abs(rgb - rgb_ref).sum() / max(np.abs(rgb_ref).sum(), 1e-12))
    ground = (alpha_ref < 0.5).astype(np.float64)
    if window is not None:
        x0, y0, side = window
        inside = np.zeros_like(ground)
        inside[max(y0, 0):y0 + side, max(x0, 0):x0 + side] = 1.0
        ground = ground * inside
    sh = float((np.abs(shadow - shadow_ref) * ground).sum() / max((np.abs(1.0 - shadow_ref) * ground).sum(), 1e-12))
    return obj, sh


def run_case(name: str, pano: np.ndarray, *, offset_deg: float = 120.0, camera: BenchCamera = FIXED_CAMERA,
             iterations: int = 300, crop_px: int = 96, prior=None,
             starts: int | None = None, env_height: int | None = None, on_progress=None) -> list[BenchRow]:
    """Rows of one case: ``hdri`` (the noise floor), ``plate``, ``prior`` (when given), and unless
    ``iterations`` is 0 the loop against the reference composite from each: ``reference`` (from the
    plate init) and ``prior+loop``."""
    from .config import OptimizeConfig
    from .lighting.environment import EXPORT_HEIGHT
    from .lighting.init import plate_latlong
    from .lighting.sg import angular_error_deg, dominant_direction_latlong, fit_sg
    from .lighting.loop import FrameTarget, ReferenceObjective, solve_sg
    from .lighting.panorama import hdri_to_mitsuba_env, mitsuba_env_directions, texel_directions
    from .lighting.stage import crop_resample
    from .lighting.tone import ToneExport, apply_tone
    from .scene import InsertScene, View

    case = make_case(name, pano, offset_deg, camera=camera)
    ref_crop = case.crop_display(case.reference[3])
    rows = []

    def score(method, env_data, recovered_dir, seconds, tone=None):
        rgb, alpha, shadow, _ = case.render(env_data)
        rgb, shadow = apply_tone(tone, 0, rgb, alpha, shadow)
        comp = rgb + (1 - alpha) * case.plate * shadow
        rmse, s, si = metrics(case.crop_display(comp), ref_crop)
        obj, sh = composite_errors((rgb, alpha, shadow, comp), case.reference)
        rgb1, alpha1, shadow1, _ = case.render(env_data, seed=REFERENCE_SEED)
        rgb1, shadow1 = apply_tone(tone, 0, rgb1, alpha1, shadow1)
        _, sh1 = composite_errors((rgb1, alpha1, shadow1, None), case.reference)
        _, sh1_crop = composite_errors((rgb1, alpha1, shadow1, None), case.reference, case.window)
        rows.append(BenchRow(name, method, angular_error_deg(recovered_dir, case.true_dir), rmse, s, si, seconds,
                             azimuth_error_deg(recovered_dir, case.true_dir), obj, sh, sh1, sh1_crop,
                             0.0 if method == "hdri" else angular_error_deg(recovered_dir, case.true_dir_64)))
        if on_progress:
            on_progress(f"bench: {name} {method}: RMSE {rmse:.4f}")

    def lobes_env(lobes):
        return lobes.radiance(mitsuba_env_directions(EXPORT_HEIGHT, 2 * EXPORT_HEIGHT)).astype(np.float32)

    def lobes_dir(lobes):
        return dominant_direction_latlong(lobes.radiance(texel_directions(64, 128)))

    score("hdri", hdri_to_mitsuba_env(case.pano, EXPORT_HEIGHT), case.true_dir, 0.0)
    t0 = time.perf_counter()
    latlong, _ = plate_latlong(case.plate, case.c2w, case.intr, height=64)
    inits = {"plate": fit_sg(latlong, lobes=32)}
    init_seconds = {"plate": time.perf_counter() - t0}
    if prior is not None:
        t0 = time.perf_counter()
        inits["prior"] = prior_lobes(prior, case)
        init_seconds["prior"] = time.perf_counter() - t0
    for method, init in inits.items():
        score(method, lobes_env(init), lobes_dir(init), init_seconds[method])
    if iterations <= 0:
        return rows
    x0, y0, side = case.window
    width, height = case.intr.width_px, case.intr.height_px
    window_view = View(case.c2w, case.intr.fov_x_deg, width, height, window=(x0, y0, side, side), scale=crop_px / side)
    target = FrameTarget(0, window_view, crop_resample(case.plate, case.window, crop_px),
                         crop_resample(case.reference[3], case.window, crop_px))
    settings = OptimizeConfig(iterations=iterations, crop_px=crop_px, spp=16)   # every other [optimize] key: its default
    if starts is not None:   # [optimize] starts: the loop's multi-start (1: the initial lighting alone)
        settings = replace(settings, starts=starts)
    if env_height is not None:   # [optimize] env_height: the raster the lobes are drawn to while optimising
        settings = replace(settings, env_height=env_height)
    opt_scene = InsertScene(case.parts, ground_height_m=0.0, ground_albedo=(0.3, 0.3, 0.3), view=window_view,
                            env_height=settings.env_height, max_depth=settings.max_depth)
    # the loop against the reference from each init: "reference" (from the plate, as before) and
    # "prior+loop" (from the prior: what the guidance starts from when a model is set)
    for method, init in inits.items():
        t0 = time.perf_counter()
        lighting, tone, _, record = solve_sg(opt_scene, [target], init, settings, ReferenceObjective(),
                                             shot_name=f"bench-{name}", say=on_progress or (lambda m: None))
        if on_progress:
            on_progress(f"bench: {name} {method}: start scores {[round(v, 4) for v in record['scores']]}, chosen "
                        f"{record['chosen']}, sun test {record.get('sun_test')}")
        seconds = time.perf_counter() - t0 + init_seconds[method]
        score("reference" if method == "plate" else f"{method}+loop",
              lighting.radiance(mitsuba_env_directions(EXPORT_HEIGHT, 2 * EXPORT_HEIGHT)).astype(np.float32),
              dominant_direction_latlong(lighting.radiance(texel_directions(64, 128))), seconds,
              ToneExport.from_curves(tone, [0]))
    return rows


def prior_lobes(prior, case: Case):
    from .lighting.prior.estimate import estimate_world

    return estimate_world(prior, [case.plate], [case.c2w], [case.intr.fov_x_deg]).lobes(32)


def azimuth_error_deg(a, b) -> float:
    d = key_azimuth_deg(a) - key_azimuth_deg(b)
    return abs((d + 180.0) % 360.0 - 180.0)


OVERHEAD = np.array([0.0, 1.0, 0.0])
VALIDATION_OFFSETS_DEG = (30.0, 120.0, 210.0, 300.0)


def run_validation(prior, paths: list[Path], offsets=VALIDATION_OFFSETS_DEG,
                   on_progress=None) -> tuple[list[BenchRow], dict[str, tuple[float, float]]]:
    """The prior on held-out panoramas, several camera headings each: ``plate``, ``prior`` and the constant
    guess ``overhead`` (direction only), beside ``hdri`` (the noise floor). Also each case's
    (key energy share, key elevation), for ``summarise``."""
    from .lighting.prior.data import analyse_panorama
    from .lighting.sg import angular_error_deg
    from .plates import read_image

    rows, shares = [], {}
    for path in paths:
        pano = read_image(path).rgb
        light = analyse_panorama(pano)    # its key direction is the dominant light the cases score
        for offset in offsets:
            name = f"{path.stem.removesuffix('_1k')}@{offset:.0f}"
            rows += run_case(name, pano, offset_deg=offset, camera=PLATE_CAMERA, iterations=0, prior=prior,
                             on_progress=on_progress)
            rows.append(BenchRow(name, "overhead", angular_error_deg(OVERHEAD, light.key_direction),
                                 *(float("nan"),) * 3, 0.0))
            shares[name] = key_share(pano, light)
    return rows, shares


def run(cases: list[str] | None = None, iterations: int = 300, on_progress=None, prior=None) -> tuple[list[BenchRow], str]:
    """The fixed cases (one heading each, with the loop); a ``prior`` row on each when a prior is given."""
    from .plates import read_image

    rows = []
    for name in cases or list(CASES):
        rows += run_case(name, read_image(CASES[name]).rgb, iterations=iterations, prior=prior, on_progress=on_progress)
    return rows, format_table(rows, iterations)


def shared_data() -> Path:
    import os

    return Path(os.environ.get("VFXINSERT_SHARED_DATA") or REPO.parent / "shared" / "data")


def validation_panoramas(prior_sidecar: dict, folders: list[Path]) -> list[Path]:
    """The prior's own validation panoramas (its sidecar names them and their hashes), found in ``folders``
    (and the repository's bench data); ConfigError when one is missing or its file differs."""
    from .errors import ConfigError
    from .lighting.prior.data import file_sha256

    known = {p.name: p for p in CASES.values()}
    for folder in folders:
        if folder.is_dir():
            known.update({p.name: p for p in folder.iterdir()})
    out = []
    for entry in prior_sidecar["validation"]:
        path = known.get(entry["file"])
        if path is None or file_sha256(path) != entry["sha256"]:
            raise ConfigError(f"validation panorama {entry['file']} of the prior is {'missing' if path is None else 'a different file'}",
                              where="bench --hdris", fix="point --hdris at the folder(s) the prior was trained from")
        out.append(path)
    return out


def key_share(pano: np.ndarray, light) -> tuple[float, float]:
    """(share of the map's energy in its key light, the key's elevation in degrees); ``light`` is the
    panorama's ``analyse_panorama``."""
    from .color import RGB_LUMINANCE
    from .lighting.panorama import texel_solid_angles

    h, w = pano.shape[0] // 2 * 2, pano.shape[0] // 2 * 4
    total = float((np.maximum(pano[:h, :w], 0) @ np.array(RGB_LUMINANCE) * texel_solid_angles(h, w)).sum())
    return float(light.key_energy @ np.array(RGB_LUMINANCE)) / max(total, 1e-12), \
        math.degrees(math.asin(float(np.clip(light.key_direction[1], -1, 1))))


DOMINANT_SHARE = 0.2   # a key light carrying at least this share of the energy "dominates"


def summarise(rows: list[BenchRow], shares: dict[str, tuple[float, float]]) -> str:
    """Medians per method: direction error over all cases and over dominant-light cases, azimuth error of keys
    below 60 degrees elevation, object and shadow errors; and the prior's worst case relative to ``plate``."""
    def med(values):
        values = [v for v in values if not math.isnan(v)]
        return f"{np.median(values):.2f}" if values else "-"

    lines = ["| method | direction error, all (deg) | dominant-light cases (deg) | azimuth, key < 60 deg elev. (deg) | "
             "object error | shadow error |", "|---|---|---|---|---|---|"]
    methods = list(dict.fromkeys(r.method for r in rows))
    for m in methods:
        sel = [r for r in rows if r.method == m]
        dom = [r for r in sel if shares[r.case][0] >= DOMINANT_SHARE]
        low = [r for r in sel if shares[r.case][1] < 60.0]
        lines.append(f"| {m} | {med([r.light_error_deg for r in sel])} ({len(sel)}) | {med([r.light_error_deg for r in dom])} "
                     f"({len(dom)}) | {med([r.azimuth_error_deg for r in low])} ({len(low)}) | {med([r.object_error for r in sel])} | "
                     f"{med([r.shadow_error for r in sel])} |")
    by = {(r.case, r.method): r for r in rows}
    ratios = [(by[c, "prior"].object_error / max(by[c, "plate"].object_error, 1e-12), c) for c, m in by if m == "prior"]
    sh_ratios = [(by[c, "prior"].shadow_error / max(by[c, "plate"].shadow_error, 1e-12), c) for c, m in by if m == "prior"]
    if ratios:
        lines += ["", f"Worst case of prior vs plate: object error {max(ratios)[0]:.2f}x ({max(ratios)[1]}), "
                      f"shadow error {max(sh_ratios)[0]:.2f}x ({max(sh_ratios)[1]})."]
    return "\n".join(lines)


def run_prior_validation(prior_path: Path | None, folders: list[Path], on_progress=None) -> tuple[list[BenchRow], str]:
    """The prior's validation bench: per-case table and medians (Markdown)."""
    from .errors import ConfigError
    from .lighting.prior import SHIPPED
    from .lighting.prior.estimate import load_prior

    prior = load_prior(prior_path)
    sidecar = prior.sidecar()
    if sidecar is None:
        raise ConfigError(f"the prior {prior.path} has no sidecar {prior.path.with_suffix('.json').name}",
                          where="bench --prior", fix="keep the .json that `vfxinsert train-prior` wrote beside it")
    paths = validation_panoramas(sidecar, folders)
    rows, shares = run_validation(prior, paths, on_progress=on_progress)
    head = (f"Prior {prior.path.name if prior.path != SHIPPED else '(shipped)'} on its {len(paths)} validation panoramas "
            f"(never trained on), camera headings {', '.join(f'{o:.0f}' for o in VALIDATION_OFFSETS_DEG)} degrees "
            f"from the key light's azimuth, pitch {PLATE_CAMERA.pitch_deg:.0f} degrees, {PLATE_CAMERA.focal_length_mm:.0f} mm "
            f"on 36 mm, the teapot {PLATE_CAMERA.asset_distance_m:.0f} m ahead; object / shadow errors as `composite_errors`.")
    return rows, "\n".join([head, "", format_table(rows, 0), "", summarise(rows, shares)])


def format_table(rows: list[BenchRow], iterations: int) -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    import os

    from .config import OptimizeConfig

    d = OptimizeConfig()
    loop = (f"; `reference`: {iterations} iterations, 96 px crops, 16 spp, Adam {d.lr_lighting} (lighting) / "
            f"{d.lr_tone} (tone), starts {d.starts}, sun test {'on' if d.sun_test else 'off'}, tone prior {d.tone_prior}"
            if iterations else "")
    lines = [f"Machine: {cpu}, {os.cpu_count()} CPUs. Plates 256x144, teapot; RMSE / SSIM / si-RMSE over the "
             f"object + shadow crop in display sRGB{loop}.", "",
             "| case | method | dominant light error (deg) | azimuth error (deg) | object error | shadow error | "
             "RMSE | SSIM | si-RMSE | time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.case} | {r.method} | {r.light_error_deg:.1f} | {r.azimuth_error_deg:.1f} | "
                     f"{r.object_error:.3f} | {r.shadow_error:.3f} | {r.rmse:.4f} | {r.ssim:.4f} | "
                     f"{r.si_rmse:.4f} | {r.seconds:.1f} |")
    return "\n".join(lines)
