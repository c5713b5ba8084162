"""Assets: OBJ / PLY / GLB loading, the shot's transform convention, GLB materials and textures."""
from __future__ import annotations


import numpy as np
import pytest

from vfxinsert.assets import load_asset_parts, load_trimesh, object_to_world
from vfxinsert.config import AssetConfig, MaterialConfig
from vfxinsert.errors import MeshError


def test_transform_convention_hand_computed():
    # rotation_deg = (0, 90, 0): +X turns to -Z (right-hand rule about +Y); then scale 2, then translate
    m = object_to_world((1.0, 2.0, 3.0), (0.0, 90.0, 0.0), 2.0)
    np.testing.assert_allclose(m @ [1, 0, 0, 1], [1.0, 2.0, 1.0, 1.0], atol=1e-12)
    # X first, then Y: (90, 90, 0) takes +Y -> +Z (about X) -> +X (about Y)
    np.testing.assert_allclose(object_to_world((0, 0, 0), (90.0, 90.0, 0.0), 1.0)[:3, :3] @ [0, 1, 0], [1, 0, 0],
                               atol=1e-12)


def test_obj_ply_glb_load(shared_data, tmp_path):
    import trimesh

    teapot = load_trimesh(shared_data / "assets" / "teapot.obj")
    assert len(teapot.faces) == 6320 and teapot.bounds[0][1] == pytest.approx(0.0)
    mesh = trimesh.load(shared_data / "assets" / "spot.obj", force="mesh", process=False)
    mesh.export(tmp_path / "spot.ply")
    assert len(load_trimesh(tmp_path / "spot.ply").faces) == 5856
    truck = load_asset_parts(AssetConfig(mesh=shared_data / "assets" / "CesiumMilkTruck.glb"), 0)
    # 2,856 unique triangles; the wheel mesh is instanced twice in the glTF node graph
    assert sum(len(p.faces) for p in truck) > 2856 and len(truck) == 5
    textured = [p for p in truck if p.base_color_texture is not None]
    assert textured and all(p.uvs is not None and p.normals is not None for p in textured)


def test_parts_are_in_world_space(shared_data):
    parts = load_asset_parts(AssetConfig(mesh=shared_data / "assets" / "teapot.obj", position_m=(1.0, 0.0, -4.0),
                                         scale=0.1, material=MaterialConfig(base_color=(0.5, 0.2, 0.1))), 0)
    v = parts[0].vertices
    assert v[:, 1].min() == pytest.approx(0.0, abs=1e-9)                   # base stays on the ground
    assert (v.max(0) - v.min(0))[0] == pytest.approx(0.643, abs=1e-3)      # 6.43 units * 0.1
    assert parts[0].base_color == (0.5, 0.2, 0.1)


def test_glb_texture_reaches_the_render(shared_data):
    """BoxTextured.glb renders with its texture's colours, not the shot's grey default."""
    from vfxinsert.scene import InsertScene, View

    parts = load_asset_parts(AssetConfig(mesh=shared_data / "assets" / "BoxTextured.glb", position_m=(0, 0.5, 0)), 0)
    tex = parts[0].base_color_texture
    assert tex is not None
    c2w = np.eye(4)
    c2w[:3, 3] = (0.0, 0.5, 2.5)
    scene = InsertScene(parts, ground_height_m=-1.0, ground_albedo=(0.2,) * 3, view=View(c2w, 40.0, 48, 48),
                        env_height=16, max_depth=2)
    scene.set_env(np.ones((16, 34, 3), np.float32))
    layers = scene.render(0, 32)
    inside = layers[..., 3] > 0.99
    seen = layers[..., :3][inside].mean(0)
    # a white furnace-like env: the face shows (about) albedo = the texture's mean colour
    expect = tex.reshape(-1, 3).mean(0)
    assert np.argmax(seen) == np.argmax(expect) and np.abs(seen / seen.sum() - expect / expect.sum()).max() < 0.08


def test_broken_meshes_raise(tmp_path, shared_data):
    bad = tmp_path / "bad.obj"
    bad.write_text("o nothing here\n")
    with pytest.raises(MeshError, match="no triangles"):
        load_trimesh(bad)
    with pytest.raises(MeshError, match="not found"):
        load_trimesh(tmp_path / "missing.ply")
    glb = tmp_path / "broken.glb"
    glb.write_bytes(b"glTF\x02\x00\x00\x00garbage")
    with pytest.raises(MeshError):
        load_asset_parts(AssetConfig(mesh=glb), 0)
