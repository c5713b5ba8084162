"""USD cameras and assets, on stages written here with usd-core: centimetre and metre stages, Y and Z up,
a time-sampled camera under a parent xform, a mesh with a bound UsdPreviewSurface. The expected
poses are written out by hand (world +Y up, metres), not derived from the reader."""
from __future__ import annotations

import math

import numpy as np
import pytest
from pxr import Gf, Sdf, Usd, UsdGeom, UsdShade
from test_plate_geometry import MARKER, RADIUS_M, alpha_centroid, expected_pixel, make_marker_shot

from vfxinsert.cli import main
from vfxinsert.config import load_shot
from vfxinsert.errors import ConfigError
from vfxinsert.shot import ShotContext
from vfxinsert.usd import Z_UP_TO_Y_UP, read_usd_camera, read_usd_meshes

FRAMES = (1001, 1002, 1003)


def expected_pose(frame: int) -> np.ndarray:
    """The camera of every stage below, in metres, +Y up: at (0.1 * (frame - 1001), 1.5, 5), turned
    10 degrees about +Y plus 2 degrees per frame."""
    a = math.radians(10.0 + 2.0 * (frame - 1001))
    m = np.eye(4)
    m[:3, :3] = [[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]]
    m[:3, 3] = [0.1 * (frame - 1001), 1.5, 5.0]
    return m


def write_cm_y_up_camera(path):
    """Centimetres, Y up: a parent /world translated 100 cm up, the camera animated with translate + rotateY ops."""
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageMetersPerUnit(stage, 0.01)
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    world = UsdGeom.Xform.Define(stage, "/world")
    world.AddTranslateOp().Set(Gf.Vec3d(0, 100, 0))
    cam = UsdGeom.Camera.Define(stage, "/world/cam")
    translate, rotate = cam.AddTranslateOp(), cam.AddRotateYOp()
    for f in FRAMES:
        translate.Set(Gf.Vec3d(10.0 * (f - 1001), 50.0, 500.0), Usd.TimeCode(f))
        rotate.Set(10.0 + 2.0 * (f - 1001), Usd.TimeCode(f))
        cam.GetFocalLengthAttr().Set(35.0 + (f - 1001), Usd.TimeCode(f))   # mm in a cm stage, a zoom
    cam.GetHorizontalApertureAttr().Set(36.0)
    cam.GetVerticalApertureAttr().Set(24.0)
    stage.SetDefaultPrim(world.GetPrim())
    stage.GetRootLayer().Save()


def write_m_z_up_camera(path):
    """Metres, Z up: the same physical camera as a matrix op under a scaled parent; lens in tenths of a metre."""
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.Camera.Define(stage, "/decoy")   # not the one: usd_prim names the right camera
    rig = UsdGeom.Xform.Define(stage, "/rig")
    rig.AddScaleOp().Set(Gf.Vec3f(2, 2, 2))   # a parent scale: positions double, the rotation stays rigid
    cam = UsdGeom.Camera.Define(stage, "/rig/shotcam")
    op = cam.AddTransformOp()
    for f in FRAMES:
        z_up = np.linalg.inv(Z_UP_TO_Y_UP) @ expected_pose(f)
        z_up[:3, 3] /= 2.0   # under the parent's scale of 2
        op.Set(Gf.Matrix4d(z_up.T.tolist()), Usd.TimeCode(f))   # USD matrices are row-vector
        cam.GetFocalLengthAttr().Set((35.0 + (f - 1001)) / 100.0, Usd.TimeCode(f))
    cam.GetHorizontalApertureAttr().Set(0.36)
    cam.GetVerticalApertureAttr().Set(0.24)
    stage.GetRootLayer().Save()


@pytest.mark.parametrize("writer, prim", [(write_cm_y_up_camera, ""), (write_m_z_up_camera, "/rig/shotcam")])
def test_usd_camera_poses_and_lens_in_metres_and_plus_y(tmp_path, writer, prim):
    writer(tmp_path / "cam.usda")
    cam = read_usd_camera(tmp_path / "cam.usda", prim, FRAMES)
    for i, f in enumerate(FRAMES):
        assert np.allclose(cam.cam_to_world[i], expected_pose(f), atol=1e-9), f
    assert np.allclose(cam.focal_length_mm, [35.0, 36.0, 37.0]) and np.allclose(cam.filmback_mm, (36.0, 24.0))


def test_wrong_prim_or_no_camera_is_a_config_error(tmp_path):
    write_cm_y_up_camera(tmp_path / "cam.usda")
    with pytest.raises(ConfigError, match="/world is not a UsdGeomCamera"):
        read_usd_camera(tmp_path / "cam.usda", "/world", FRAMES)
    stage = Usd.Stage.CreateNew(str(tmp_path / "empty.usda"))
    UsdGeom.Xform.Define(stage, "/a")
    stage.GetRootLayer().Save()
    with pytest.raises(ConfigError, match="no UsdGeomCamera"):
        read_usd_camera(tmp_path / "empty.usda", "", FRAMES)


def write_marker_asset(path, *, cm: bool, z_up: bool, colour=(0.8, 0.1, 0.1)):
    """The marker sphere as a UsdGeomMesh (quads and triangles) under a default prim, with a UsdPreviewSurface."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=RADIUS_M)
    scale = 100.0 if cm else 1.0
    points = sphere.vertices * scale
    if z_up:
        points = points @ np.linalg.inv(Z_UP_TO_Y_UP)[:3, :3].T
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageMetersPerUnit(stage, 0.01 if cm else 1.0)
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z if z_up else UsdGeom.Tokens.y)
    root = UsdGeom.Xform.Define(stage, "/asset")
    mesh = UsdGeom.Mesh.Define(stage, "/asset/geo/marker")
    mesh.GetPointsAttr().Set([Gf.Vec3f(*p) for p in points])
    mesh.GetFaceVertexCountsAttr().Set([3] * len(sphere.faces))
    mesh.GetFaceVertexIndicesAttr().Set(sphere.faces.ravel().tolist())
    guide = UsdGeom.Mesh.Define(stage, "/asset/geo/guide")   # purpose guide: never rendered
    guide.GetPointsAttr().Set([Gf.Vec3f(0, 0, 0), Gf.Vec3f(1, 0, 0), Gf.Vec3f(1, 1, 0), Gf.Vec3f(0, 1, 0)])
    guide.GetFaceVertexCountsAttr().Set([4])
    guide.GetFaceVertexIndicesAttr().Set([0, 1, 2, 3])
    guide.GetPurposeAttr().Set(UsdGeom.Tokens.guide)
    material = UsdShade.Material.Define(stage, "/asset/mtl")
    shader = UsdShade.Shader.Define(stage, "/asset/mtl/surface")
    shader.CreateIdAttr("UsdPreviewSurface")
    shader.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(*colour))
    shader.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(0.3)
    material.CreateSurfaceOutput().ConnectToSource(shader.ConnectableAPI(), "surface")
    UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(material)
    stage.SetDefaultPrim(root.GetPrim())
    stage.GetRootLayer().Save()


@pytest.mark.parametrize("cm, z_up", [(True, False), (False, True), (True, True)])
def test_usd_meshes_come_in_metres_and_plus_y_with_their_material(tmp_path, cm, z_up):
    write_marker_asset(tmp_path / "asset.usda", cm=cm, z_up=z_up)
    meshes = read_usd_meshes(tmp_path / "asset.usda")
    assert [m.name for m in meshes] == ["/asset/geo/marker"]   # the guide is left out
    (marker,) = meshes
    assert np.allclose(np.linalg.norm(marker.vertices, axis=1), RADIUS_M, rtol=1e-6)
    assert marker.faces.shape == (1280, 3)
    assert marker.material == (pytest.approx((0.8, 0.1, 0.1)), pytest.approx(0.3), 0.0)


def test_usd_quads_are_triangulated_and_z_up_points_turn_to_plus_y(tmp_path):
    stage = Usd.Stage.CreateNew(str(tmp_path / "q.usda"))
    UsdGeom.SetStageMetersPerUnit(stage, 0.01)
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    mesh = UsdGeom.Mesh.Define(stage, "/q")
    mesh.GetPointsAttr().Set([Gf.Vec3f(0, 0, 0), Gf.Vec3f(100, 0, 0), Gf.Vec3f(100, 0, 100), Gf.Vec3f(0, 0, 100)])
    mesh.GetFaceVertexCountsAttr().Set([4])
    mesh.GetFaceVertexIndicesAttr().Set([0, 1, 2, 3])
    stage.SetDefaultPrim(mesh.GetPrim())
    stage.GetRootLayer().Save()
    (q,) = read_usd_meshes(tmp_path / "q.usda")
    assert q.faces.tolist() == [[0, 1, 2], [0, 2, 3]]
    assert np.allclose(q.vertices, [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])   # Z up 1 m -> Y up 1 m
    assert q.material is None


def test_a_shot_with_a_usd_camera_and_asset_puts_the_marker_on_its_pixel(tmp_path, shared_data):
    """End to end: a Z-up centimetre camera stage and a centimetre asset stage; the marker's alpha centroid
    lands where the pinhole model puts it, to 0.5 px; the bound material reaches the render."""
    shot_file = make_marker_shot(tmp_path, shared_data, 1.0)
    stage = Usd.Stage.CreateNew(str(tmp_path / "cam.usda"))
    UsdGeom.SetStageMetersPerUnit(stage, 0.01)
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    cam = UsdGeom.Camera.Define(stage, "/cam")
    pose = np.eye(4)
    pose[1, 3] = 1.0
    z_up = np.linalg.inv(Z_UP_TO_Y_UP) @ pose
    z_up[:3, 3] *= 100.0
    cam.AddTransformOp().Set(Gf.Matrix4d(z_up.T.tolist()), Usd.TimeCode(1))
    cam.GetFocalLengthAttr().Set(30.0)          # the marker shot's lens, in mm (a cm stage)
    cam.GetHorizontalApertureAttr().Set(36.0)
    cam.GetVerticalApertureAttr().Set(20.25)
    stage.GetRootLayer().Save()
    write_marker_asset(tmp_path / "marker.usdc", cm=True, z_up=False)
    text = shot_file.read_text()
    text = text.replace("focal_length_mm = 30.0\n", "").replace("filmback_mm = [36.0, 20.25]\n", "")
    text = text.replace("cam_to_world = [[1,0,0,0],[0,1,0,1],[0,0,1,0],[0,0,0,1]]", 'usd = "cam.usda"')
    text = text.replace('mesh = "marker.obj"', 'mesh = "marker.usdc"')
    shot_file.write_text(text)
    shot = load_shot(shot_file)
    context = ShotContext(shot)
    c2w, intr = context.camera(1, 160, 90)
    assert np.allclose(c2w, pose) and intr.focal_length_mm == pytest.approx(30.0)
    assert context.parts[0].base_color == pytest.approx((0.8, 0.1, 0.1))   # the shot sets no material
    assert main(["check", str(shot_file)]) == 0
    assert main(["run", str(shot_file)]) == 0
    out = tmp_path / "out" / "m.0001.exr"
    found, want = alpha_centroid(out), expected_pixel(MARKER, 1.0)
    assert np.abs(found - want).max() < 0.5, (found, want)
