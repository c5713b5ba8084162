"""The Nuke handoff: the builder's quoting and stack order, and the shot script on a really rendered shot.

The script is checked three independent ways: the third-party `nkparser` parses and validates it; a
stack simulator written here (from Nuke's rules, not from the generator) recovers every node's inputs;
and an evaluator written here rebuilds the composite from the files the Read nodes name, as the
nodes are wired, which must equal the EXRs' `comp` layer to half-float precision.
"""
from __future__ import annotations

import dataclasses
import random
import re
import subprocess
import sys
from pathlib import Path

import nkparser  # the third-party .nk parser (the project's test extra)
import numpy as np
import pytest
from test_cli import make_shot

from vfxinsert.cli import main
from vfxinsert.config import load_shot
from vfxinsert.errors import OutputError
from vfxinsert.exr import read_layers
from vfxinsert.nuke import NukeNode, NukeScript, build_nuke_script, nuke_sequence_path, tcl_word, write_nuke_script

# --------------------------------------------------------------------------------------------------
# An independent reader of .nk text: Tcl words, statements, and Nuke's operator stack


def tcl_unquote(word: str) -> str:
    """One Tcl word as the value it stands for: "..." with backslash escapes, {...} verbatim, or bare."""
    if word.startswith("{") and word.endswith("}"):
        return word[1:-1]
    if not word.startswith('"'):
        return word
    assert word.endswith('"') and len(word) >= 2, word
    out, i, body = [], 0, word[1:-1]
    named = {"n": "\n", "t": "\t", "r": "\r"}
    while i < len(body):
        if body[i] == "\\":
            out.append(named.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            assert body[i] != '"', f"unescaped quote in {word}"
            out.append(body[i])
            i += 1
    return "".join(out)


@dataclasses.dataclass
class SimNode:
    cls: str
    knobs: dict[str, str]
    inputs: list[str | None]  # Nuke's input index order: inputs[0] = input 0 (B of a Merge2)


def simulate(text: str) -> tuple[dict[str, str], dict[str, SimNode], list[str]]:
    """Run a script's statements on Nuke's stack: (Root knobs, nodes by name, names left on the stack).

    A node pops `inputs` entries (1 when the knob is absent) and the entry on top becomes input 0;
    then it pushes itself. `set V [stack 0]` names the top; `push $V` pushes it again. Root takes no
    part in the stack.
    """
    lines = text.splitlines()
    assert lines[0].startswith("#!") and lines[1].startswith("version ")
    stack: list[str | None] = []
    variables: dict[str, str | None] = {}
    nodes: dict[str, SimNode] = {}
    root: dict[str, str] = {}
    i = 2
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if m := re.fullmatch(r"set (\S+) \[stack (\d+)\]", line):
            variables[m[1]] = stack[-1 - int(m[2])]
            continue
        if m := re.fullmatch(r"push \$(\S+)", line):
            stack.append(variables[m[1]])
            continue
        m = re.fullmatch(r"(\w+) \{", line)
        assert m, f"unexpected line {line!r}"
        knobs: dict[str, str] = {}
        while lines[i] != "}":
            km = re.fullmatch(r" (\w+) (.*)", lines[i])
            assert km, f"bad knob line {lines[i]!r}"
            assert km[1] not in knobs, f"knob {km[1]} twice"
            knobs[km[1]] = tcl_unquote(km[2])
            i += 1
        i += 1
        if m[1] == "Root":
            root = knobs
            continue
        count = int(knobs.get("inputs", "1"))
        inputs = [stack.pop() if stack else None for _ in range(count)]  # first pop = top = input 0
        name = knobs["name"]
        assert name not in nodes
        nodes[name] = SimNode(m[1], knobs, inputs)
        stack.append(name)
    return root, nodes, [s for s in stack if s is not None]


def expand_hashes(pattern: str, frame: int) -> Path:
    m = re.search(r"#+", Path(pattern).name)
    assert m, pattern
    return Path(pattern).with_name(Path(pattern).name.replace(m[0], f"{frame:0{len(m[0])}d}"))


# --------------------------------------------------------------------------------------------------
# A rendered shot, shared by this module's tests (rendering takes about a second)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, shared_data):
    folder = tmp_path_factory.mktemp("nuke_shot")
    shot_file = make_shot(folder, shared_data, frames=(1, 3))
    assert main(["run", str(shot_file)]) == 0
    shot = load_shot(shot_file)
    path = write_nuke_script(shot, [1, 2, 3])
    return shot, path


def test_script_is_written_atomically_beside_the_layers(rendered):
    shot, path = rendered
    assert path == shot.output.dir / "sh.nk" and path.is_file()
    assert not list(shot.output.dir.glob(".*.tmp*"))  # no temporary file left (fsutil names them .x.HOST_PID.tmp.ext)


def test_nkparser_parses_and_validates_it_without_any_diagnostic(rendered):
    _, path = rendered
    script = nkparser.Script.from_file(path)
    assert script.errors() == [] and script.diagnostics == []
    assert script.nuke_version == "15.0 v1" and script.root() is not None
    assert sorted(n.class_name for n in script.all_nodes()) == \
        ["Merge2", "Merge2", "Read", "Read", "Root", "Shuffle", "StickyNote", "Write"]
    cli = subprocess.run([sys.executable, "-m", "nkparser", "validate", str(path)], capture_output=True, text=True)
    assert cli.returncode == 0 and "No issues found" in cli.stdout


def test_root_reads_and_merges_carry_the_shot_settings(rendered):
    shot, path = rendered
    root, nodes, _ = simulate(path.read_text())
    assert (root["first_frame"], root["last_frame"], root["lock_range"]) == ("1", "3", "true")
    assert root["format"].split()[:7] == ["64", "36", "0", "0", "64", "36", "1"]
    assert root["colorManagement"] == "OCIO" and root["OCIO_config"] == "custom"
    assert root["customOCIOConfigPath"] == (shot.output.dir / "ocio" / "sh.ocio").as_posix()  # the portable export
    assert root["workingSpaceLUT"] == "Linear Rec.709 (sRGB)"  # = the EXRs' working space
    plate, layers = nodes["ReadPlate"].knobs, nodes["ReadLayers"].knobs
    assert plate["colorspace"] == shot.plate.colorspace and "raw" not in plate
    assert layers["raw"] == "true" and layers["file_type"] == "exr"
    for read in (plate, layers):
        assert (read["first"], read["last"], read["origfirst"], read["origlast"]) == ("1", "3", "1", "3")
        assert read["format"] == root["format"]
    assert nodes["ShuffleShadow"].knobs["in"] == "shadow"
    assert nodes["ShadowOnPlate"].knobs["operation"] == "multiply"
    assert nodes["ShadowOnPlate"].knobs["output"] == "rgb"  # the plate's alpha survives
    assert nodes["ObjectOver"].knobs["operation"] == "over"
    write = nodes["WriteSlapComp"].knobs   # renders the slap comp when enabled, nothing by default
    assert write["disable"] == "true" and write["file_type"] == "exr" and write["channels"] == "rgba"
    assert write["colorspace"] == root["workingSpaceLUT"] and write["datatype"] == "16 bit half"
    assert Path(write["file"]).parent == shot.output.dir and "####" in write["file"]
    assert (write["first"], write["last"], write["use_limit"]) == ("1", "3", "true")


def test_stack_simulation_wires_b_and_a_as_nuke_would(rendered):
    _, path = rendered
    _, nodes, left = simulate(path.read_text())
    assert nodes["ShuffleShadow"].inputs == ["ReadLayers"]
    assert nodes["ShadowOnPlate"].inputs == ["ReadPlate", "ShuffleShadow"]  # B = plate, A = shadow
    assert nodes["ObjectOver"].inputs == ["ShadowOnPlate", "ReadLayers"]    # B = lit plate, A = CG
    assert nodes["ReadPlate"].inputs == [] and nodes["ReadLayers"].inputs == []
    assert nodes["WriteSlapComp"].inputs == ["ObjectOver"]
    assert left == ["WriteSlapComp", "vfxinsert_note"]  # nothing stray under the outputs
    # nkparser lists inputs in push order: reversed relative to Nuke's input indices
    parsed = {n.name: [i.name for i in n.inputs] for n in nkparser.Script.from_file(path).all_nodes()}
    for name, node in nodes.items():
        assert parsed[name][::-1] == node.inputs, name


def test_reads_point_at_existing_files_for_every_frame(rendered):
    shot, path = rendered
    _, nodes, _ = simulate(path.read_text())
    for name in ("ReadPlate", "ReadLayers"):
        knobs = nodes[name].knobs
        assert "####" in knobs["file"] and Path(knobs["file"]).is_absolute()
        for frame in range(int(knobs["first"]), int(knobs["last"]) + 1):
            assert expand_hashes(knobs["file"], frame).is_file(), (name, frame)
    assert expand_hashes(nodes["ReadPlate"].knobs["file"], 1) == shot.plate.path.parent / "sh.0001.exr"
    assert expand_hashes(nodes["ReadLayers"].knobs["file"], 2) == shot.output.dir / "sh.0002.exr"


def _nuke_channels(layers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """EXR channel names as Nuke names them: R -> rgba.red, shadow.G -> shadow.green."""
    names = {"R": "red", "G": "green", "B": "blue", "A": "alpha"}
    out = {}
    for name, pixels in layers.items():
        layer, _, chan = name.rpartition(".")
        out[f"{layer or 'rgba'}.{names[chan]}"] = pixels
    return out


def _evaluate(nodes: dict[str, SimNode], name: str, frame: int, plate_dir: Path) -> dict[str, np.ndarray]:
    """What node ``name`` outputs at ``frame``, computed from the files its Reads name, as wired.

    The converting plate Read yields the plate stage's working-space EXR of the same file name (that
    equivalence is its own test below); a raw Read yields its file as stored.
    """
    node = nodes[name]
    k = node.knobs
    rgba = [f"rgba.{c}" for c in ("red", "green", "blue", "alpha")]
    if node.cls == "Read":
        source = expand_hashes(k["file"], frame)
        if k.get("raw") == "true":
            return _nuke_channels(read_layers(source)[0])
        chans = _nuke_channels(read_layers(plate_dir / source.name)[0])
        if k.get("auto_alpha") == "true":
            chans.setdefault("rgba.alpha", np.ones_like(chans["rgba.red"]))
        return chans
    inputs = [_evaluate(nodes, i, frame, plate_dir) for i in node.inputs]
    if node.cls == "Write":
        return inputs[0]
    if node.cls == "Shuffle":
        src = inputs[0]
        out = dict(src)
        for chan, target in zip(("red", "green", "blue", "alpha"), rgba):
            pick = k.get(chan, chan)
            out[target] = {"white": np.ones_like(src["rgba.red"]), "black": np.zeros_like(src["rgba.red"])}.get(
                pick, src.get(f"{k['in']}.{pick}"))
        return out
    if node.cls == "Merge2":
        b, a = inputs
        outputs = rgba[:3] if k.get("output") == "rgb" else rgba
        out = dict(b)
        for c in outputs:
            if k["operation"] == "multiply":
                out[c] = a[c] * b[c]
            elif k["operation"] == "over":
                out[c] = a[c] + b[c] * (1.0 - a["rgba.alpha"])
            else:
                raise AssertionError(f"no evaluator for {k['operation']}")
        return out
    raise AssertionError(f"no evaluator for class {node.cls}")


def test_the_script_rebuilds_the_comp_layer_to_half_precision(rendered):
    shot, path = rendered
    _, nodes, left = simulate(path.read_text())
    final = [n for n in left if nodes[n].cls != "StickyNote"]
    assert final == ["WriteSlapComp"]
    for frame in (1, 2, 3):
        result = _evaluate(nodes, final[0], frame, shot.output.dir / "plate")
        layers = read_layers(shot.output.dir / f"sh.{frame:04d}.exr")[0]
        rebuilt = np.stack([result[f"rgba.{c}"] for c in ("red", "green", "blue")], axis=-1)
        comp = np.stack([layers[f"comp.{c}"] for c in "RGB"], axis=-1)
        assert np.all(np.abs(rebuilt - comp) <= np.abs(comp) * 2.0**-11 + 1e-6), frame
        assert layers["A"].max() > 0.99 and layers["shadow.R"].min() < 0.9  # an object and a shadow in it


def test_plate_read_conversion_equals_the_plate_stage(rendered):
    """Nuke's Read converts `colorspace` -> Root working space with Root's config: the plate stage's EXR."""
    from vfxinsert.color import ColorPipeline
    from vfxinsert.plates import read_image

    shot, path = rendered
    root, nodes, _ = simulate(path.read_text())
    nuke = ColorPipeline(source=root["customOCIOConfigPath"], working_space=root["workingSpaceLUT"])
    for frame in (1, 3):
        original = read_image(expand_hashes(nodes["ReadPlate"].knobs["file"], frame)).rgb
        converted = nuke.to_working(original, nodes["ReadPlate"].knobs["colorspace"])
        stage = read_layers(shot.output.dir / "plate" / f"sh.{frame:04d}.exr")[0]
        stored = np.stack([stage[c] for c in "RGB"], axis=-1)
        assert np.all(np.abs(converted - stored) <= np.abs(stored) * 2.0**-11 + 1e-6)


def test_nodes_are_laid_out_without_overlap(rendered):
    _, path = rendered
    _, nodes, _ = simulate(path.read_text())
    boxes = [(int(n.knobs["xpos"]), int(n.knobs["ypos"])) for n in nodes.values()]
    for i, (x0, y0) in enumerate(boxes):
        for x1, y1 in boxes[i + 1:]:
            assert abs(x0 - x1) >= 120 or abs(y0 - y1) >= 100  # a Read with its thumbnail is ~80 x 80
    assert int(nodes["ObjectOver"].knobs["ypos"]) > int(nodes["ShadowOnPlate"].knobs["ypos"]) \
        > int(nodes["ReadPlate"].knobs["ypos"])  # the B pipe runs down the page


def test_gaps_hold_policy_and_plate_layers(rendered):
    shot, path = rendered
    held = dataclasses.replace(shot, plate=dataclasses.replace(shot.plate, missing_frames="hold", layer="beauty"))
    text = build_nuke_script(held, [1, 3], path).to_nk()
    root, nodes, _ = simulate(text)
    assert (root["first_frame"], root["last_frame"]) == ("1", "3")
    assert "no layers for frame(s) 2" in nodes["ReadLayers"].knobs["label"]
    assert nodes["ReadPlate"].knobs["on_error"] == "nearest frame"
    assert nodes["ShufflePlateLayer"].knobs["in"] == "beauty"
    assert nodes["ShufflePlateLayer"].inputs == ["ReadPlate"]
    assert nodes["ShadowOnPlate"].inputs == ["ShufflePlateLayer", "ShuffleShadow"]
    assert nkparser.Script.from_string(text).diagnostics == []


def test_format_pixel_aspect_and_fps_come_from_the_layers_header(rendered, tmp_path):
    from fractions import Fraction

    from vfxinsert.exr import write_exr

    shot, _ = rendered
    moved = dataclasses.replace(shot, output=dataclasses.replace(shot.output, dir=tmp_path))
    write_exr(tmp_path / "sh.1001.exr", {"R": np.zeros((4, 6))}, display_window=((0, 0), (9, 4)),
              attributes={"framesPerSecond": Fraction(24000, 1001), "pixelAspectRatio": 2.0})
    path = write_nuke_script(moved, [1001])
    root, nodes, _ = simulate(path.read_text())
    assert path == tmp_path / "sh.nk"
    assert root["format"] == "10 5 0 0 10 5 2 vfxinsert_sh" and float(root["fps"]) == 24000 / 1001
    assert (root["first_frame"], root["last_frame"], nodes["ReadLayers"].knobs["first"]) == ("1001", "1001", "1001")


def test_missing_layers_or_no_frames_is_an_output_error(rendered):
    shot, _ = rendered
    with pytest.raises(OutputError, match="frame 7 has no layers EXR") as info:
        write_nuke_script(shot, [1, 7], shot.output.dir / "other.nk")
    assert "sh.0007.exr" in info.value.where and "render stage" in info.value.fix
    with pytest.raises(OutputError, match="non-empty list"):
        write_nuke_script(shot, [], shot.output.dir / "other.nk")
    assert not (shot.output.dir / "other.nk").exists()


# --------------------------------------------------------------------------------------------------
# The builder on its own


@pytest.mark.parametrize("text", [
    "plain", "/a/b/plate.0001.exr", "Linear Rec.709 (sRGB)", 'say "hi"', "back\\slash", "[value name]",
    "$HOME/x", "{unbalanced", "two\nlines\ttab", "sh.####.exr", "", "true",
])
def test_tcl_word_round_trips_through_nkparser_and_tcl_rules(text):
    word = tcl_word(text)
    assert "\n" not in word and tcl_unquote(word) == text
    script = NukeScript({"name": "x.nk"}, (NukeNode("NoOp", "N1", {"label": text}),))
    parsed = nkparser.Script.from_string(script.to_nk())
    assert parsed.diagnostics == []
    assert tcl_unquote(parsed.find("N1").get("label")) == text  # nkparser keeps the raw word


def test_tcl_word_types():
    assert [tcl_word(v) for v in (True, False, 3, -2, 0.5, 24.0, 1e-9, (0.5, 1, 2.25))] == \
        ["true", "false", "3", "-2", "0.5", "24", "1e-09", "{0.5 1 2.25}"]
    for bad in (float("nan"), float("inf"), None, [1, 2]):
        with pytest.raises(OutputError):
            tcl_word(bad)


def test_builder_refuses_bad_graphs_and_knobs():
    read = NukeNode("Read", "R1", {"file": "a.exr"})
    with pytest.raises(OutputError, match="two nodes are named"):
        NukeScript({}, (read, read))
    with pytest.raises(OutputError, match="not a node of the script"):
        NukeScript({}, (NukeNode("Blur", "B1", inputs=("nope",)),))
    with pytest.raises(OutputError, match="cycle"):
        NukeScript({}, (NukeNode("Blur", "B1", inputs=("B2",)), NukeNode("Blur", "B2", inputs=("B1",)),
                        NukeNode("Blur", "Out", inputs=("B1",))))
    with pytest.raises(OutputError, match="cycle"):
        NukeScript({}, (NukeNode("Blur", "B1", inputs=("B1",)),))
    with pytest.raises(OutputError, match="written by the builder"):
        NukeNode("Blur", "B1", {"inputs": 2})
    with pytest.raises(OutputError, match="invalid node name"):
        NukeNode("Blur", "1st")
    with pytest.raises(OutputError, match="invalid knob name"):
        NukeNode("Blur", "B1", {"bad knob": 1})
    with pytest.raises(OutputError, match="not finite"):
        NukeNode("Blur", "B1", {"size": float("nan")})


@pytest.mark.parametrize("seed", range(25))
def test_random_graphs_serialise_to_the_wiring_they_describe(seed):
    """Fan-out, shared inputs, a node reading the same input twice, several outputs: the stack agrees."""
    rng = random.Random(seed)
    nodes = []
    for i in range(rng.randint(1, 12)):
        count = 0 if i == 0 else rng.choice([0, 1, 1, 2, 2, 3])
        inputs = tuple(f"n{rng.randrange(i)}" for _ in range(count))
        nodes.append(NukeNode("Read" if not inputs else "Merge2", f"n{i}", {"label": f"node {i}"},
                              inputs=inputs, xpos=i * 100))
    text = NukeScript({"name": "g.nk"}, tuple(nodes)).to_nk()
    _, simulated, _ = simulate(text)
    assert {n: s.inputs for n, s in simulated.items()} == {n.name: list(n.inputs) for n in nodes}
    parsed = nkparser.Script.from_string(text)
    assert parsed.errors() == [] and not [d for d in parsed.diagnostics if d.code == "orphaned-set"]
    for node in parsed.all_nodes():
        if node.class_name != "Root":
            assert [i.name for i in node.inputs][::-1] == simulated[node.name].inputs


def test_nuke_sequence_path():
    assert nuke_sequence_path("/p/plate.%04d.exr") == "/p/plate.####.exr"
    assert nuke_sequence_path("/p/plate.%d.exr") == "/p/plate.#.exr"
    assert nuke_sequence_path("/p/plate.#####.exr") == "/p/plate.#####.exr"
    assert nuke_sequence_path("/p/movie.mov") == "/p/movie.mov"


# --------------------------------------------------------------------------------------------------
# The colour config the script names: loadable by the OCIO of Nuke 13-15


def _script_colorspaces(path: Path) -> tuple[dict[str, str], list[str]]:
    root, nodes, _ = simulate(path.read_text())
    used = [root["workingSpaceLUT"], *(n.knobs["colorspace"] for n in nodes.values() if "colorspace" in n.knobs)]
    return root, used


def test_the_named_config_is_a_profile_2_0_file_with_the_script_colorspaces(rendered):
    import PyOpenColorIO as ocio

    from vfxinsert.color import PINNED_CONFIG, ColorPipeline, display_colorspace_name

    shot, path = rendered
    root, used = _script_colorspaces(path)
    config_file = Path(root["customOCIOConfigPath"])
    text = config_file.read_text()
    assert text.startswith("ocio_profile_version: 2\n")  # OCIO 2.0: Nuke 13's; 2.1 Nuke 14, 2.2 Nuke 15
    assert "!<BuiltinTransform>" not in text and "!<FileTransform>" not in text  # self-contained, OCIO 2.0 types
    config = ocio.Config.CreateFromFile(str(config_file))
    config.validate()
    names = set(config.getColorSpaceNames())
    assert set(used) <= names and config.getRoleColorSpace("scene_linear") == root["workingSpaceLUT"]
    view_cs = display_colorspace_name(shot.color.display, shot.color.view)
    assert list(config.getViews(shot.color.display)) == [shot.color.view, "Raw"]
    # the same numbers as the pinned built-in config, colorspace by colorspace and through the display view
    rng = np.random.default_rng(3)
    rgb = np.concatenate([rng.uniform(-0.1, 4.0, (50, 1, 3)), np.full((1, 1, 3), 0.18)]).astype(np.float32)
    exported = ColorPipeline(source=str(config_file), working_space=root["workingSpaceLUT"],
                             display=shot.color.display, view=shot.color.view)
    pinned = ColorPipeline(source=PINNED_CONFIG, working_space=root["workingSpaceLUT"],
                           display=shot.color.display, view=shot.color.view)
    for cs in used:
        assert np.allclose(exported.to_working(rgb, cs), pinned.to_working(rgb, cs), rtol=1e-6, atol=1e-7)
    assert np.allclose(exported.to_display(rgb), pinned.to_display(rgb), rtol=1e-6, atol=1e-7)
    assert np.allclose(exported.from_working(rgb, view_cs), pinned.to_display(rgb), rtol=1e-6, atol=1e-7)


def test_export_of_camera_log_and_aces_views_is_exact(tmp_path):
    """Plates in a camera log space and an ACES output view: the transforms the export must carry."""
    import PyOpenColorIO as ocio

    from vfxinsert.color import PINNED_CONFIG, ColorPipeline, portable_config

    pinned = ColorPipeline(display="Rec.1886 Rec.709 - Display", view="ACES 1.0 - SDR Video")
    text, luts = portable_config(pinned, ["ARRI LogC4", "S-Log3 S-Gamut3", "ACEScg"], "test")
    assert luts == {}   # all inline transforms
    (tmp_path / "c.ocio").write_text(text)
    exported = ColorPipeline(source=str(tmp_path / "c.ocio"), display=pinned.display, view=pinned.view)
    rgb = np.random.default_rng(0).uniform(0.0, 1.0, (64, 1, 3)).astype(np.float32)
    for cs in ("ARRI LogC4", "S-Log3 S-Gamut3", "ACEScg"):
        assert np.allclose(exported.to_working(rgb, cs), pinned.to_working(rgb, cs), rtol=1e-5, atol=1e-6), cs
    assert np.allclose(exported.to_display(rgb), pinned.to_display(rgb), rtol=1e-5, atol=1e-6)
    assert ocio.Config.CreateFromFile(str(tmp_path / "c.ocio")).getMajorVersion() == 2
    assert "!<BuiltinTransform>" not in text and f"from {PINNED_CONFIG!r}" not in text


_OLD_OCIO_CHECK = """
import json, sys
import PyOpenColorIO as ocio
config = ocio.Config.CreateFromFile(sys.argv[1])
config.validate()
out = {"version": ocio.__version__, "names": list(config.getColorSpaceNames()), "working": {}}
for cs in json.loads(sys.argv[2]):
    cpu = config.getProcessor(cs, "scene_linear").getDefaultCPUProcessor()
    out["working"][cs] = cpu.applyRGB([0.5, 0.25, 0.125])
view = ocio.DisplayViewTransform(src="scene_linear", display=sys.argv[3], view=sys.argv[4])
out["display"] = config.getProcessor(view).getDefaultCPUProcessor().applyRGB([0.5, 0.25, 0.125])
print(json.dumps(out))
"""


@pytest.mark.skipif(not __import__("os").environ.get("VFXINSERT_OLD_OCIO_PYTHON"),
                    reason="set VFXINSERT_OLD_OCIO_PYTHON to a python with opencolorio 2.2 or 2.3 (Nuke 15/16)")
def test_the_named_config_loads_in_an_older_ocio(rendered):
    """The config in a real older OCIO (a separate venv: ``pip install opencolorio==2.2.1``)."""
    import json
    import os

    from vfxinsert.color import ColorPipeline

    shot, path = rendered
    root, used = _script_colorspaces(path)
    run = subprocess.run([os.environ["VFXINSERT_OLD_OCIO_PYTHON"], "-c", _OLD_OCIO_CHECK, root["customOCIOConfigPath"],
                          json.dumps(used), shot.color.display, shot.color.view], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    old = json.loads(run.stdout)
    assert old["version"].split(".")[:2] in (["2", "2"], ["2", "3"]) and set(used) <= set(old["names"])
    mine = ColorPipeline(source=root["customOCIOConfigPath"], working_space=root["workingSpaceLUT"],
                         display=shot.color.display, view=shot.color.view)
    rgb = np.array([[[0.5, 0.25, 0.125]]], np.float32)
    for cs in used:
        assert np.allclose(old["working"][cs], mine.to_working(rgb, cs)[0, 0], rtol=1e-5)
    assert np.allclose(old["display"], mine.to_display(rgb)[0, 0], rtol=1e-5)


def test_plate_and_layers_exrs_describe_what_they_hold(rendered):
    shot, _ = rendered
    plate = read_layers(shot.output.dir / "plate" / "sh.0001.exr")[1]["comments"]
    layers = read_layers(shot.output.dir / "sh.0001.exr")[1]["comments"]
    assert "converted from Linear Rec.709 (sRGB)" in plate and "sh.0001.exr" in plate and "Layers:" not in plate
    assert "Layers: R,G,B,A = object premultiplied" in layers
