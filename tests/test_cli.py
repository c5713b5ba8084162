"""The command line and the stages it runs, on real files: check messages, exit codes, bad frames,
re-runs that skip finished frames, and the layer identity on the written EXRs."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from vfxinsert.cli import main
from vfxinsert.exr import read_layers, write_exr

REPO = Path(__file__).resolve().parents[1]


def make_shot(folder: Path, shared: Path, frames=(1, 3), extra_plate: str = "", lighting: str | None = None) -> Path:
    """A tiny real shot: a 3-frame EXR sequence (a perspective view of a real HDRI), the teapot, that HDRI."""
    from vfxinsert.lighting.panorama import perspective_view
    from vfxinsert.plates import read_image

    (folder / "plate").mkdir(parents=True, exist_ok=True)
    pano = read_image(shared / "hdri" / "potsdamer_platz_1k.hdr").rgb
    c2w = np.eye(4)
    c2w[1, 3] = 1.5
    c2w[:3, :3] = np.array([[1, 0, 0], [0, np.cos(-0.3), -np.sin(-0.3)], [0, np.sin(-0.3), np.cos(-0.3)]])
    img = perspective_view(pano, c2w, 60.0, 64, 36)
    for f in range(frames[0], frames[1] + 1):
        write_exr(folder / "plate" / f"sh.{f:04d}.exr", {"R": img[..., 0], "G": img[..., 1], "B": img[..., 2]})
    shutil.copy(shared / "assets" / "teapot.obj", folder / "teapot.obj")
    shutil.copy(shared / "hdri" / "potsdamer_platz_1k.hdr", folder / "env.hdr")
    lighting = lighting or 'init = "hdri"\nhdri = "env.hdr"\noptimize = false'
    cam = "[[1,0,0,0],[0,%f,%f,1.5],[0,%f,%f,0],[0,0,0,1]]" % (np.cos(-0.3), np.sin(0.3), np.sin(-0.3), np.cos(-0.3))
    text = textwrap.dedent(f"""\
        schema = 1
        name = "sh"
        [plate]
        path = "plate/sh.####.exr"
        frames = [{frames[0]}, {frames[1]}]
        colorspace = "Linear Rec.709 (sRGB)"
        {extra_plate}
        [camera]
        focal_length_mm = 31.18
        filmback_mm = [36.0, 20.25]
        cam_to_world = {cam}
        [[asset]]
        mesh = "teapot.obj"
        position_m = [0.0, 0.0, -4.0]
        scale = 0.1
        [lighting]
        {lighting}
        [render]
        spp = 8
        max_depth = 3
        """)
    shot = folder / "shot.toml"
    shot.write_text(text)
    return shot


def make_validation_shot(root: Path, shared: Path, optimize: str, lighting: str = 'init = "plate"\nlobes = 6') -> Path:
    """A validation shot: ``root/truth`` rendered with the true HDRI, its composite as the reference sequence
    ``root/ref``, and ``root/solve`` (``lighting``: its [lighting] keys, plate-initialised by default),
    solving against it with the ``[optimize]`` keys ``optimize`` (TOML lines)."""
    truth = root / "truth"
    assert main(["run", str(make_shot(truth, shared))]) == 0
    (root / "ref").mkdir()
    for f in (1, 2, 3):
        layers, _ = read_layers(truth / "out" / f"sh.{f:04d}.exr")
        write_exr(root / "ref" / f"ref.{f:04d}.exr", {c: layers[f"comp.{c}"] for c in "RGB"})
    shot = make_shot(root / "solve", shared, lighting=lighting)
    shot.write_text(shot.read_text() + '[optimize]\nreference = "../ref/ref.####.exr"\n' + optimize)
    return shot


def test_help_is_fast_and_lazy():
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", "import sys; from vfxinsert.cli import main; "
                          "import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n"
                          "    try: main(['--help'])\n    except SystemExit: pass\n"
                          "print(sorted(m for m in ('torch', 'mitsuba', 'PyOpenColorIO', 'OpenEXR', 'av', 'ray', "
                          "'diffusers') if m in sys.modules))"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # no heavy module imported for --help
    assert time.perf_counter() - start < 5.0  # generous: a cold interpreter on a loaded CI machine


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_check_passes_on_demo_shot(capsys):
    assert main(["check", str(REPO / "shots" / "demo" / "shot.toml")]) == 0
    out = capsys.readouterr().out
    assert "check passed" in out and "12 frame(s) 1001-1012" in out and "runs with" in out


@pytest.mark.parametrize("mistake,needle", [
    ("missing_frame", "1 missing frame(s): 2"),
    ("bad_colorspace", "colorspace 'Log-C' is not in OCIO config"),
    ("unknown_key", "unknown key 'sps'"),
    ("missing_mesh", "file not found"),
    ("bad_range", "first frame 3 is after last frame 1"),
    ("corrupt_mesh", "teapot.obj"),
    ("missing_model", "[guidance] model: folder"),
])
def test_check_names_each_mistake_in_one_line(tmp_path, shared_data, capsys, mistake, needle):
    shot = make_shot(tmp_path, shared_data)
    text = shot.read_text()
    if mistake == "missing_frame":
        (tmp_path / "plate" / "sh.0002.exr").unlink()
    elif mistake == "bad_colorspace":
        text = text.replace('colorspace = "Linear Rec.709 (sRGB)"', 'colorspace = "Log-C"')
    elif mistake == "unknown_key":
        text = text.replace("spp = 8", "sps = 8")
    elif mistake == "missing_mesh":
        (tmp_path / "teapot.obj").unlink()
    elif mistake == "bad_range":
        text = text.replace("frames = [1, 3]", "frames = [3, 1]")
    elif mistake == "corrupt_mesh":
        (tmp_path / "teapot.obj").write_text("v 0 0 0\nthis is not an obj\n")
    elif mistake == "missing_model":
        text += '[guidance]\nmodel = "./models/sd21"\n'
    shot.write_text(text)
    assert main(["check", "--no-llvm", str(shot)]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vfxinsert: error:")]
    assert len(err) == 1, err
    assert needle in err[0]


def test_run_writes_layers_with_the_identity_and_skips_on_rerun(tmp_path, shared_data, capsys):
    shot = make_shot(tmp_path, shared_data)
    assert main(["run", str(shot)]) == 0
    out_dir = tmp_path / "out"
    frames = sorted(out_dir.glob("sh.*.exr"))
    assert [f.name for f in frames] == ["sh.0001.exr", "sh.0002.exr", "sh.0003.exr"]
    layers, header = read_layers(frames[1])
    assert set(layers) == {"R", "G", "B", "A", "shadow.R", "shadow.G", "shadow.B", "comp.R", "comp.G", "comp.B"}
    assert header["compression"] == "zip" and header["channels"]["comp.R"] == "half"
    plate, _ = read_layers(out_dir / "plate" / "sh.0002.exr")
    rgb = np.stack([layers[c] for c in "RGB"], -1)
    a = layers["A"][..., None]
    shadow = np.stack([layers[f"shadow.{c}"] for c in "RGB"], -1)
    comp = np.stack([layers[f"comp.{c}"] for c in "RGB"], -1)
    p = np.stack([plate[c] for c in "RGB"], -1)
    rebuilt = rgb + (1 - a) * p * shadow
    assert np.all(np.abs(rebuilt - comp) <= np.abs(comp) * 2.0**-11 + 1e-7)  # half precision of comp itself
    assert a.max() > 0.99 and shadow.min() < 0.9                              # an object and its shadow
    assert (tmp_path / "out" / "lighting.exr").is_file() and (tmp_path / "out" / "lighting.json").is_file()
    before = {f: f.stat().st_mtime_ns for f in frames}
    capsys.readouterr()
    assert main(["run", str(shot)]) == 0
    assert "0 frame(s) written, 3 up to date" in capsys.readouterr().out
    assert before == {f: f.stat().st_mtime_ns for f in frames}


def test_rendered_frame_is_reproducible(tmp_path, shared_data):
    shot = make_shot(tmp_path, shared_data, frames=(1, 1))
    assert main(["run", str(shot)]) == 0
    out = tmp_path / "out" / "sh.0001.exr"
    first = read_layers(out)[0]
    out.unlink()
    assert main(["run", str(shot)]) == 0
    second = read_layers(out)[0]
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_bad_frame_is_reported_and_the_rest_goes_on(tmp_path, shared_data, capsys):
    shot = make_shot(tmp_path, shared_data)
    (tmp_path / "plate" / "sh.0002.exr").write_bytes(b"not an exr at all")
    assert main(["run", str(shot)]) == 1
    captured = capsys.readouterr()
    assert "frame 2" in captured.err and "FAILED" in captured.err
    assert (tmp_path / "out" / "sh.0001.exr").is_file() and (tmp_path / "out" / "sh.0003.exr").is_file()
    assert not (tmp_path / "out" / "sh.0002.exr").exists()
    assert "2 frame(s) written" in captured.out


def test_hold_policy_fills_a_missing_frame(tmp_path, shared_data, capsys):
    shot = make_shot(tmp_path, shared_data, extra_plate='missing_frames = "hold"')
    (tmp_path / "plate" / "sh.0002.exr").unlink()
    assert main(["run", str(shot)]) == 0
    assert "held from frame 1" in capsys.readouterr().err
    assert (tmp_path / "out" / "sh.0002.exr").is_file()


def test_plate_init_without_weights_says_so_and_renders(tmp_path, shared_data, capsys):
    shot = make_shot(tmp_path, shared_data, lighting='init = "plate"\nlobes = 8')
    assert main(["run", str(shot)]) == 0
    captured = capsys.readouterr()
    assert "no diffusion model and no reference" in captured.out
    doc = __import__("json").loads((tmp_path / "out" / "lighting.json").read_text())
    assert doc["source"] == "plate" and len(doc["sg"]["lobes"]) == 8 and doc["optimised"] is False


def test_prior_init_runs_offline_on_the_cpu_and_the_report_compares_with_the_truth(tmp_path, shared_data, capsys):
    """No HDRI and no model: the shipped lighting prior lights the shot; compare_hdri only feeds the report."""
    shot = make_shot(tmp_path, shared_data, lighting='init = "prior"\nlobes = 6\noptimize = false\n'
                                                     'compare_hdri = "env.hdr"')
    assert main(["check", "--no-llvm", str(shot)]) == 0
    assert "init 'prior': prior.safetensors (version 1)" in capsys.readouterr().out
    assert main(["run", str(shot)]) == 0
    doc = __import__("json").loads((tmp_path / "out" / "lighting.json").read_text())
    assert doc["source"] == "prior" and len(doc["sg"]["lobes"]) == 6
    report = (tmp_path / "out" / "report" / "index.html").read_text()
    assert "direction error" in report and (tmp_path / "out" / "report" / "lighting_true.png").is_file()


def test_a_bad_prior_file_fails_check_with_what_where_and_fix(tmp_path, shared_data, capsys):
    (tmp_path / "studio.safetensors").write_bytes(b"not a safetensors file")
    shot = make_shot(tmp_path, shared_data, lighting='init = "prior"\nprior = "studio.safetensors"\noptimize = false')
    assert main(["check", "--no-llvm", str(shot)]) == 1
    err = capsys.readouterr().err
    assert "studio.safetensors is not a readable safetensors file" in err and "[lighting] prior" in err
    assert "vfxinsert train-prior" in err


def test_reference_objective_end_to_end(tmp_path, shared_data, capsys):
    """A validation shot: the composite rendered with the true HDRI is the reference; a plate-initialised
    solve against it writes the optimised lighting, tone.json, and renders every frame."""
    shot = make_validation_shot(tmp_path, shared_data, "iterations = 12\ncrop_px = 32\nspp = 4\n"
                                "checkpoint_every = 5\ntone_updates = 4\nstarts = 1\nsun_test = false\n")
    assert main(["run", str(shot)]) == 0
    out = tmp_path / "solve" / "out"
    doc = __import__("json").loads((out / "lighting.json").read_text())
    assert doc["optimised"] is True and doc["objective"] == "reference" and len(doc["losses"]) == 12
    tone = __import__("json").loads((out / "tone.json").read_text())
    assert [f["frame"] for f in tone["frames"]] == [1, 2, 3]
    assert len(sorted(out.glob("sh.*.exr"))) == 3
    capsys.readouterr()
    assert main(["run", str(shot)]) == 0            # everything up to date: no new solve
    assert "lighting: up to date" in capsys.readouterr().out


def test_inputs_are_never_written(tmp_path, shared_data):
    shot = make_shot(tmp_path, shared_data)
    inputs = [p for p in tmp_path.rglob("*") if p.is_file()]
    stamp = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in inputs}
    assert main(["run", str(shot)]) == 0
    assert stamp == {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in inputs}
