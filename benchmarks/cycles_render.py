"""Blender Cycles' side of benchmarks/cycles_compare.py: runs in its own venv with ``bpy==4.2.0``.

    python cycles_render.py JOB_DIR

reads ``JOB_DIR/scene.json`` (written by cycles_compare.py: camera, mesh file, env, ground, material,
renders wanted), builds the same scene in Blender and renders each wanted (spp, seed) with Cycles on the
CPU into ``JOB_DIR/cycles_<spp>_<seed>.exr`` (multilayer: Combined RGBA and the Shadow Catcher
multiplier), writing the render times to ``JOB_DIR/cycles_times.json``. Never imported by vfxinsert.

Conventions: vfxinsert's world is +Y up, Blender's +Z up: (x, y, z) -> (x, -z, y). Both cameras look
down their local -Z with +Y up (OpenGL), so the camera matrix only changes basis. The project lat-long
has +Z at its centre column, +X at a quarter; Blender's equirectangular lookup has -X at its centre, so
the environment turns 90 degrees about Blender's Z (checked: the shadows coincide).
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

Y_UP_TO_Z_UP = np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], float)


def build(job: dict, folder: Path) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    c = scene.cycles
    c.device = "CPU"
    c.use_adaptive_sampling = False
    c.use_denoising = False
    c.max_bounces = c.diffuse_bounces = c.glossy_bounces = c.transmission_bounces = job["max_depth"] - 2
    c.transparent_max_bounces = 8
    c.caustics_reflective = c.caustics_refractive = True
    c.sample_clamp_direct = c.sample_clamp_indirect = 0.0
    c.pixel_filter_type = "BOX"
    c.filter_width = 1.0
    scene.render.threads_mode = "FIXED"
    scene.render.threads = job["threads"]
    scene.render.use_persistent_data = True
    scene.render.resolution_x, scene.render.resolution_y = job["width"], job["height"]
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = True
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "OPEN_EXR_MULTILAYER"
    scene.render.image_settings.color_depth = "32"
    scene.view_layers[0].cycles.use_pass_shadow_catcher = True

    world = bpy.data.worlds.new("env")
    scene.world = world
    world.use_nodes = True
    nt = world.node_tree
    env = nt.nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(str(folder / job["env"]))
    env.interpolation = "Linear"
    mapping = nt.nodes.new("ShaderNodeMapping")
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, math.radians(90.0))
    coord = nt.nodes.new("ShaderNodeTexCoord")
    nt.links.new(coord.outputs["Generated"], mapping.inputs["Vector"])
    nt.links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    nt.links.new(env.outputs["Color"], nt.nodes["Background"].inputs["Color"])

    data = np.load(folder / job["mesh"])
    v = data["vertices"] @ Y_UP_TO_Z_UP[:3, :3].T
    f = data["faces"].astype(np.int32)
    mesh = bpy.data.meshes.new("asset")
    mesh.vertices.add(len(v))
    mesh.vertices.foreach_set("co", v.astype(np.float32).ravel())
    mesh.loops.add(f.size)
    mesh.loops.foreach_set("vertex_index", f.ravel())
    mesh.polygons.add(len(f))
    mesh.polygons.foreach_set("loop_start", np.arange(0, f.size, 3, dtype=np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(f), bool))
    mesh.update()
    mesh.validate()
    obj = bpy.data.objects.new("asset", mesh)
    scene.collection.objects.link(obj)
    obj.data.materials.append(material(job["material"]))

    g = job["ground"]
    bpy.ops.mesh.primitive_plane_add(size=2.0 * g["half_size"], location=(g["centre"][0], -g["centre"][1], g["height"]))
    plane = bpy.context.active_object
    plane.is_shadow_catcher = True
    pm = bpy.data.materials.new("ground")
    pm.use_nodes = True
    pm.node_tree.nodes.remove(pm.node_tree.nodes["Principled BSDF"])
    diffuse = pm.node_tree.nodes.new("ShaderNodeBsdfDiffuse")
    diffuse.inputs["Color"].default_value = (*g["albedo"], 1.0)
    pm.node_tree.links.new(diffuse.outputs["BSDF"], pm.node_tree.nodes["Material Output"].inputs["Surface"])
    plane.data.materials.append(pm)

    cam_data = bpy.data.cameras.new("cam")
    cam_data.sensor_fit = "HORIZONTAL"
    cam_data.angle = math.radians(job["fov_x_deg"])
    cam = bpy.data.objects.new("cam", cam_data)
    cam.matrix_world = Matrix((Y_UP_TO_Z_UP @ np.asarray(job["cam_to_world"])).tolist())
    scene.collection.objects.link(cam)
    scene.camera = cam


def material(m: dict):
    mat = bpy.data.materials.new("asset")
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    if m["type"] == "diffuse":
        nodes.remove(nodes["Principled BSDF"])
        bsdf = nodes.new("ShaderNodeBsdfDiffuse")
        bsdf.inputs["Color"].default_value = (*m["base_color"], 1.0)
        mat.node_tree.links.new(bsdf.outputs["BSDF"], nodes["Material Output"].inputs["Surface"])
    else:
        p = nodes["Principled BSDF"]
        p.inputs["Base Color"].default_value = (*m["base_color"], 1.0)
        p.inputs["Roughness"].default_value = m["roughness"]
        p.inputs["Metallic"].default_value = m["metallic"]
        p.inputs["IOR"].default_value = 1.5
    return mat


def main() -> None:
    folder = Path(sys.argv[1])
    job = json.loads((folder / "scene.json").read_text())
    build(job, folder)
    times = {}
    for spp, seed in job["renders"]:
        bpy.context.scene.cycles.samples = spp
        bpy.context.scene.cycles.seed = seed
        bpy.context.scene.render.filepath = str(folder / f"cycles_{spp}_{seed}.exr")
        t0 = time.perf_counter()
        bpy.ops.render.render(write_still=True)
        times[f"{spp}_{seed}"] = time.perf_counter() - t0
        print(f"cycles: {spp} spp seed {seed}: {times[f'{spp}_{seed}']:.2f} s", flush=True)
    (folder / "cycles_times.json").write_text(json.dumps(times))


if __name__ == "__main__":
    main()
