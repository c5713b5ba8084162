"""Hostile inputs, tried as a release engineer would before putting the tool on a farm.

Every case goes through the real CLI (`check`, then `run`) on a tiny real shot and asserts what the
reliability contract promises: no traceback, exit 1 with one clear line (what, where, fix), the sha256
of every input unchanged, nothing written outside ``output.dir``, and no code run from a planted pickle.
"""
from __future__ import annotations

import contextlib
import hashlib
import pickle
import resource
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from test_cli import make_shot
from vfxinsert.cli import main
from vfxinsert.exr import read_layers, write_exr


def _inputs(root: Path) -> dict[str, str]:
    """sha256 of every file under the shot folder outside ``out/``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "out" not in p.relative_to(root).parts}


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("vfxinsert: error:")]


@pytest.fixture
def shot(tmp_path, shared_data) -> Path:
    return make_shot(tmp_path, shared_data, frames=(1, 2))


def _edit(shot: Path, old: str, new: str) -> None:
    text = shot.read_text()
    assert old in text, old
    shot.write_text(text.replace(old, new, 1))


def _hdri(shot: Path, name: str, rgb: np.ndarray) -> None:
    write_exr(shot.parent / name, {c: np.ascontiguousarray(rgb[..., i], np.float32) for i, c in enumerate("RGB")})
    _edit(shot, 'hdri = "env.hdr"', f'hdri = "{name}"')


def _link(shot: Path, sub: str, target: str) -> None:
    (shot.parent / "out").mkdir(exist_ok=True)
    (shot.parent / "out" / sub).symlink_to(shot.parent / target, target_is_directory=True)


REFUSED = {
    "frames 1..2e9": (lambda s: _edit(s, "frames = [1, 2]", "frames = [1, 2000000000]"), "a shot has at most 100000"),
    "frames 1..1e7": (lambda s: _edit(s, "frames = [1, 2]", "frames = [1, 10000000]"), "a shot has at most 100000"),
    "1x2 HDRI": (lambda s: _hdri(s, "tiny.exr", np.ones((1, 2, 3))), "a lat-long map is 2:1"),
    "all-negative HDRI": (lambda s: _hdri(s, "neg.exr", -np.ones((32, 64, 3))), "holds no light"),
    "truncated HDRI": (lambda s: (s.parent / "env.hdr").write_bytes((s.parent / "env.hdr").read_bytes()[:4000]),
                       "env.hdr"),
    "scale 1e300": (lambda s: _edit(s, "scale = 0.1", "scale = 1e300"), "outside 1e-6..1e6"),
    "asset 1e9 m away": (lambda s: _edit(s, "position_m = [0.0, 0.0, -4.0]", "position_m = [1e9, 0.0, -4.0]"),
                         "reaching"),
    "degenerate mesh": (lambda s: (s.parent / "teapot.obj").write_text("v 0 0 0\nv 0 0 0\nv 1 1 1\nf 1 2 3\nf 1 1 2\n"),
                        "zero area"),
    "NaN vertex": (lambda s: (s.parent / "teapot.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 nan 0\nf 1 2 3\n"),
                   "NaN or infinite"),
    "garbage PLY": (lambda s: ((s.parent / "bad.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\n"
                                                                  b"property float x\nproperty float y\nend_header\n1\n"),
                               _edit(s, '"teapot.obj"', '"bad.ply"')), "bad.ply: not a readable PLY mesh"),
    'name ".."': (lambda s: _edit(s, 'name = "sh"', 'name = ".."'), "must start with a letter or digit"),
    "output dir = the plate folder": (lambda s: s.write_text(s.read_text() + '[output]\ndir = "plate"\n'),
                                      "where the [plate] path frames are"),
    'output dir "." with the plates there': (
        lambda s: ([shutil.move(p, s.parent / p.name) for p in sorted((s.parent / "plate").glob("*.exr"))],
                   _edit(s, 'path = "plate/sh.####.exr"', 'path = "sh.####.exr"'),
                   s.write_text(s.read_text() + '[output]\ndir = "."\n')), "where the [plate] path frames are"),
    "out/plate linked to the plates": (lambda s: _link(s, "plate", "plate"), "is a symbolic link"),
    "out/.cache linked into an input folder": (lambda s: _link(s, ".cache", "plate"), "is a symbolic link"),
    "out/report linked into an input folder": (lambda s: _link(s, "report", "plate"), "is a symbolic link"),
    "output dir is a file": (lambda s: (s.parent / "out").write_text("not a folder"), "is a file"),
    "a mesh where outputs go": (lambda s: ((s.parent / "out" / ".cache").mkdir(parents=True),
                                           shutil.copy(s.parent / "teapot.obj", s.parent / "out" / ".cache" / "t.obj"),
                                           _edit(s, '"teapot.obj"', '"out/.cache/t.obj"')),
                                "is where vfxinsert writes its outputs"),
    "missing plate frame": (lambda s: (s.parent / "plate" / "sh.0002.exr").unlink(), "1 missing frame(s): 2"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_hostile_shot_is_refused_in_one_line_and_nothing_is_touched(case, shot, capsys):
    edit, needle = REFUSED[case]
    edit(shot)
    root = shot.parent
    before = _inputs(root)
    out_before = sorted(p.name for p in (root / "out").rglob("*")) if (root / "out").is_dir() else None
    for command in ("check", "run"):
        assert main([command, "--no-llvm", str(shot)] if command == "check" else [command, str(shot)]) == 1
        errors = _errors(capsys.readouterr().err)
        assert len(errors) == 1 and needle in errors[0] and "Fix:" in errors[0], (command, errors)
    assert _inputs(root) == before
    after = sorted(p.name for p in (root / "out").rglob("*")) if (root / "out").is_dir() else None
    assert after == out_before                     # refused before anything was written


def test_nonfinite_hdri_texels_are_reported_once_and_the_shot_renders(shot, capsys):
    rgb = np.ones((32, 64, 3))
    rgb[::7, ::5] = np.nan
    rgb[3, 3] = np.inf
    _hdri(shot, "nan.exr", rgb)
    assert main(["check", "--no-llvm", str(shot)]) == 0
    assert "NaN/Inf value(s) set to 0" in capsys.readouterr().out
    assert main(["run", str(shot)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "NaN/Inf value(s) set to 0" in warnings[0]
    layers, _ = read_layers(shot.parent / "out" / "sh.0001.exr")
    assert all(np.isfinite(v).all() for v in layers.values())


@pytest.mark.parametrize("damage", ["truncated", "byte-flipped", "empty"])
def test_a_damaged_plate_frame_fails_alone(damage, shot, capsys):
    frame = shot.parent / "plate" / "sh.0002.exr"
    data = bytearray(frame.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "byte-flipped":
        rng = np.random.default_rng(7)
        for at in rng.integers(400, len(data), 64):   # past the header: the pixel data is hit
            data[at] ^= 0xFF
    else:
        data = bytearray()
    frame.write_bytes(bytes(data))
    before = _inputs(shot.parent)
    rc = main(["run", str(shot)])
    err = capsys.readouterr().err
    problems = [line for line in err.splitlines() if "FAILED" in line]
    assert _inputs(shot.parent) == before and not _errors(err)
    assert (shot.parent / "out" / "sh.0001.exr").is_file()
    if rc == 1:                     # a flip that only changes pixel values is not an error
        assert len(problems) == 1 and "plate: frame 2 FAILED" in problems[0], problems
        assert not (shot.parent / "out" / "sh.0002.exr").exists()
    else:
        assert rc == 0 and not problems


def test_the_shared_fuzz_exrs_never_end_in_a_traceback(tmp_path, shared_data, capsys):
    """Every shared OpenEXR test image as a one-frame plate: `check` accepts it or says why in one line."""
    outcomes = {}
    for image in sorted((shared_data / "exr").glob("*.exr")):
        root = tmp_path / image.stem
        shot = make_shot(root, shared_data, frames=(1, 1))
        shutil.copy(image, root / "plate" / "still.exr")
        _edit(shot, 'path = "plate/sh.####.exr"\n        frames = [1, 1]', 'path = "plate/still.exr"')
        rc = main(["check", "--no-llvm", str(shot)])
        errors = _errors(capsys.readouterr().err)
        assert rc in (0, 1) and len(errors) == (rc == 1), (image.name, errors)
        outcomes[image.name] = rc
    assert 0 in outcomes.values()          # most are usable plates


def test_a_plate_display_window_is_kept_in_the_layers_and_the_nk(tmp_path, shared_data):
    """DisplayWindow_t07: data (0,0)-(399,299) inside display (-40,-40)-(440,330); the layers and the .nk
    format sit exactly on the plate's display window, as Nuke places the plate."""
    shot = make_shot(tmp_path, shared_data, frames=(1, 1))
    shutil.copy(shared_data / "exr" / "DisplayWindow_t07.exr", tmp_path / "plate" / "still.exr")
    _edit(shot, 'path = "plate/sh.####.exr"\n        frames = [1, 1]', 'path = "plate/still.exr"')
    assert main(["run", str(shot)]) == 0
    display = ((-40, -40), (440, 330))
    header = read_layers(tmp_path / "out" / "sh.0001.exr")[1]
    assert header["displayWindow"] == display and header["dataWindow"] == display
    assert read_layers(tmp_path / "out" / "plate" / "sh.0001.exr")[1]["displayWindow"] == display
    nk = (tmp_path / "out" / "sh.nk").read_text()
    assert 'format "481 371 0 0 481 371 1 ' in nk


class _Planted:
    """A pickle that, when loaded, creates the marker file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_planted_pickle_in_every_cache_file_runs_no_code(shot, capsys):
    assert main(["run", str(shot)]) == 0
    caches = sorted(p for p in (shot.parent / "out" / ".cache").rglob("*") if p.is_file())
    assert caches, "the run left no cache to plant in"
    marker = shot.parent / f"pwned-{uuid.uuid4().hex}"
    for cache in caches:
        cache.write_bytes(pickle.dumps(_Planted(marker)))
    (shot.parent / "out" / "sh.0001.exr").unlink()     # make the next run read the lighting cache
    capsys.readouterr()
    assert main(["run", str(shot)]) == 0
    assert not marker.exists()
    assert "it is recomputed" in capsys.readouterr().err
    assert all(p.read_bytes() != pickle.dumps(_Planted(marker)) for p in caches)   # replaced by data


def _mount_tmpfs(folder: Path, kib: int) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(folder)],
                              capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.mark.parametrize("kib", [40, 700, 8380])
def test_a_full_disk_fails_in_one_line_and_leaves_no_partial_deliverable(tmp_path, shared_data, kib):
    """A tiny tmpfs as the output folder, full at the plates, at the lighting cache, in the renders /
    handoff. Where mounting is impossible, a file-size limit (RLIMIT_FSIZE: every write past it fails,
    as on a full disk) stands in for it."""
    shot = make_shot(tmp_path / "shot", shared_data, frames=(1, 3))
    out = tmp_path / "disk"
    mounted = _mount_tmpfs(out, kib)
    if not mounted and kib > 1000:
        pytest.skip("no tmpfs here: a per-file size limit cannot fill a disk part-way through the renders")
    shot.write_text(shot.read_text() + f'[output]\ndir = "{out / "out"}"\n')
    before = _inputs(shot.parent)

    def limit():
        if not mounted:
            resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, kib * 1024))

    try:
        done = subprocess.run([sys.executable, "-m", "vfxinsert", "run", str(shot)], capture_output=True,
                              text=True, timeout=600, preexec_fn=limit)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
        errors = _errors(done.stderr)
        assert len(errors) == 1 and ("No space left" in errors[0] or "too large" in errors[0]), errors
        assert _inputs(shot.parent) == before
        written = [p for p in (out / "out").rglob("*") if p.is_file()]
        assert not [p for p in written if ".tmp" in p.name]
        for exr in (p for p in written if p.suffix == ".exr"):
            read_layers(exr)                       # every EXR at a final path is complete
        frames = sorted((out / "out").glob("sh.*.exr"))
        if (out / "out" / "sh.nk").exists() or (out / "out" / "preview.mp4").exists():
            assert len(frames) == 3                # a handoff never covers part of the shot
    finally:
        if mounted:
            with contextlib.suppress(OSError):
                subprocess.run(["umount", str(out)], capture_output=True, timeout=20)
