"""The Nuke handoff: a small typed builder for ``.nk`` scripts and the per-shot slap-comp script.

``.nk`` files are Tcl. A node is its class followed by a braced body of ``knob value`` lines; nodes
take their inputs from an operator stack: every node pushes itself, a node with N inputs pops the top
N entries, and the entry on **top of the stack becomes input 0** (for ``Merge2``: input 0 = B,
input 1 = A). ``set V [stack 0]`` names the top entry and ``push $V`` pushes it again, which is how a
node feeds more than one consumer. :class:`NukeScript` holds nodes whose inputs are given *by name*
and serialises them the way Nuke saves scripts: a depth-first walk from each output that writes the
last input's branch first and input 0's branch last, so each node finds its inputs on top of the
stack in the right order, with ``set``/``push`` only where a node feeds a second consumer. Knob values
are typed (str, int, float, bool, tuple of numbers) and quoted by :func:`tcl_word`; no script is
assembled by concatenating arbitrary text.

:func:`write_nuke_script` writes ``<output.dir>/<name>.nk`` (design/architecture.md, "Outputs"): it
reads the original plate and the per-frame layer EXRs and rebuilds the ``comp`` layer,

    comp = rgb + (1 - A) * plate * shadow   (Merge2 multiply, then Merge2 over),

and ends in a Write node, disabled by default, that renders that comp as EXRs beside the outputs.
Colour: the Root's OCIO working space is set to the shot's working space, so the plate Read
(``colorspace`` = the plate's declared colorspace) converts exactly as the plate stage did, and the
layers Read is ``raw`` (its pixels already are in the working space). The config it names is a file
Nuke 13-15 can read (:func:`nuke_config_path`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Mapping, Sequence, Union

from . import __version__
from .config import ShotConfig
from .errors import OutputError
from .exr import LAYER_FORMULA
from .fsutil import atomic_write_text
from .outputs import insert_path

KnobValue = Union[str, bool, int, float, tuple[float, ...]]
"""A knob value: text (quoted when needed), a boolean (``true``/``false``), a number, or a tuple of
numbers (written as a Tcl list, e.g. ``{0.5 0.5 0.5}``)."""

#: The Nuke release the script header names. The knobs written exist since Nuke 12; the colour config
#: it names is a file every OCIO 2 reads (Nuke 13 and later; docs/handoff.md, "Nuke versions").
NUKE_VERSION = "15.0 v1"

# Node names and knob names: Nuke identifiers.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Characters a bare Tcl word may hold without any quoting in Nuke's reader and in common .nk parsers
# ('#' is left out: several parsers, nkparser among them, start a comment at any '#').
_BARE_WORD = re.compile(r"[A-Za-z0-9_.+\-/:,@=%]+")
# Inside "...": backslash, quote, command and variable substitution, braces (so that brace-counting
# readers stay balanced), and the control characters a value cannot hold raw on its one line.
_ESCAPES = {"\\": "\\\\", '"': '\\"', "[": "\\[", "]": "\\]", "$": "\\$", "{": "\\{", "}": "\\}",
            "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def tcl_word(value: KnobValue) -> str:
    """``value`` as one Tcl word of a ``.nk`` knob line.

    Strings made only of safe characters stay bare (``over``, ``/plates/a.exr``); anything else is
    double-quoted with backslash escapes (``"Linear Rec.709 (sRGB)"``, ``"\\[value name]"``), so a value
    is always exactly one word on one line. Booleans are ``true``/``false``; numbers are written in
    full precision; a tuple of numbers is a braced list. NaN and infinities are refused.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, tuple):
        return "{" + " ".join(_number(v) for v in value) + "}"
    if isinstance(value, str):
        if _BARE_WORD.fullmatch(value):
            return value
        return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'
    raise OutputError(f"unsupported knob value {value!r} ({type(value).__name__})", where="Nuke script",
                      fix="use str, bool, int, float or a tuple of numbers")


def _number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OutputError(f"expected a number, got {value!r}", where="Nuke script", fix="pass int or float")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise OutputError(f"knob value {value} is not finite", where="Nuke script",
                          fix="pass a finite number")
    return repr(float(value)).removesuffix(".0") if float(value).is_integer() else repr(float(value))


def _checked_knobs(knobs: Mapping[str, KnobValue] | Sequence[tuple[str, KnobValue]], where: str,
                   reserved: tuple[str, ...]) -> tuple[tuple[str, KnobValue], ...]:
    """``knobs`` as a tuple of (name, value) pairs after checking names, duplicates and values."""
    pairs = tuple(knobs.items()) if isinstance(knobs, Mapping) else tuple(knobs)
    seen: set[str] = set()
    for name, value in pairs:
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
            raise OutputError(f"invalid knob name {name!r}", where=where,
                              fix="use a Nuke knob name (letters, digits, '_')")
        if name in reserved:
            raise OutputError(f"knob {name!r} is written by the builder itself", where=where,
                              fix="set it through the node's fields (inputs, name, xpos, ypos)")
        if name in seen:
            raise OutputError(f"knob {name!r} is given twice", where=where, fix="give each knob once")
        seen.add(name)
        tcl_word(value)  # refuse an unsupported or non-finite value now, not at serialisation
    return pairs


@dataclass(frozen=True)
class NukeNode:
    """One node: its class, its unique name, its knobs in order, and its inputs by node name.

    ``inputs[0]`` is Nuke's input 0 (B for ``Merge2``), ``inputs[1]`` input 1 (A), and so on. The
    ``inputs`` knob, ``name``, ``xpos`` and ``ypos`` are written from the fields, never from ``knobs``.
    """

    node_class: str
    """Nuke class, e.g. ``Read``, ``Shuffle``, ``Merge2``."""
    name: str
    """Unique node name (letters, digits, '_'; not starting with a digit)."""
    knobs: Mapping[str, KnobValue] | tuple[tuple[str, KnobValue], ...] = ()
    """Knob name -> value, in the order written (stored as a tuple of pairs)."""
    inputs: tuple[str, ...] = ()
    """Names of the input nodes, input 0 first."""
    xpos: int = 0
    """DAG position, pixels to the right."""
    ypos: int = 0
    """DAG position, pixels down."""

    def __post_init__(self) -> None:
        where = f"Nuke node {self.name!r}"
        for what, value in (("class", self.node_class), ("name", self.name)):
            if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
                raise OutputError(f"invalid node {what} {value!r}", where=where,
                                  fix="use letters, digits and '_', not starting with a digit")
        pairs = _checked_knobs(self.knobs, where, reserved=("inputs", "name", "xpos", "ypos"))
        object.__setattr__(self, "knobs", pairs)
        object.__setattr__(self, "inputs", tuple(self.inputs))
        for name in self.inputs:
            if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
                raise OutputError(f"input {name!r} is not a node name", where=where,
                                  fix="give inputs as the names of other nodes of the script")
        for value in (self.xpos, self.ypos):
            if isinstance(value, bool) or not isinstance(value, int):
                raise OutputError(f"xpos/ypos must be integers, got {value!r}", where=where,
                                  fix="pass whole DAG pixel positions")

    def knob(self, name: str) -> KnobValue | None:
        """The value of knob ``name``, or None when the node does not set it."""
        return next((value for key, value in self.knobs if key == name), None)

    def lines(self) -> list[str]:
        """The node's ``.nk`` lines: ``Class {``, one knob per line, ``}``."""
        body = [] if len(self.inputs) == 1 else [("inputs", len(self.inputs))]
        body += [*self.knobs, ("name", self.name), ("xpos", self.xpos), ("ypos", self.ypos)]
        return [f"{self.node_class} {{", *(f" {key} {tcl_word(value)}" for key, value in body), "}"]


@dataclass(frozen=True)
class NukeScript:
    """A whole ``.nk`` script: Root knobs and a graph of nodes wired by name.

    Validated on construction: unique node names, every input names a node of the script, no cycles.
    :meth:`to_nk` serialises it with the stack order Nuke expects.
    """

    root: Mapping[str, KnobValue] | tuple[tuple[str, KnobValue], ...]
    """Root knobs (frame range, format, fps, colour management), in order."""
    nodes: tuple[NukeNode, ...]
    """The nodes; outputs (nodes nothing reads from) are written in this order."""
    nuke_version: str = NUKE_VERSION
    """The ``version`` line of the header."""
    _order: tuple[tuple[str, str], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", _checked_knobs(self.root, "Nuke script Root", reserved=("inputs",)))
        nodes = tuple(self.nodes)
        object.__setattr__(self, "nodes", nodes)
        by_name: dict[str, NukeNode] = {}
        for node in nodes:
            if node.name in by_name:
                raise OutputError(f"two nodes are named {node.name!r}", where="Nuke script",
                                  fix="give every node a unique name")
            by_name[node.name] = node
        for node in nodes:
            for name in node.inputs:
                if name not in by_name:
                    raise OutputError(f"input {name!r} of node {node.name!r} is not a node of the script",
                                      where="Nuke script", fix="add that node, or fix the input name")
        object.__setattr__(self, "_order", _stack_order(nodes, by_name))

    def to_nk(self) -> str:
        """The script text: header, Root, then nodes with ``set``/``push`` where a node is reused."""
        by_name = {node.name: node for node in self.nodes}
        reused = {name for op, name in self._order if op == "push"}
        lines = ["#! nuke -nx", f"version {self.nuke_version}", "Root {", " inputs 0",
                 *(f" {key} {tcl_word(value)}" for key, value in self.root), "}"]
        for op, name in self._order:
            if op == "push":
                lines.append(f"push ${_variable(name)}")
                continue
            lines += by_name[name].lines()
            if name in reused:
                lines.append(f"set {_variable(name)} [stack 0]")
        return "\n".join(lines) + "\n"


def _variable(node_name: str) -> str:
    """The Tcl variable that holds a reused node (Nuke uses N + an address; any name works)."""
    return f"N_{node_name}"


def _stack_order(nodes: tuple[NukeNode, ...], by_name: dict[str, NukeNode]) -> tuple[tuple[str, str], ...]:
    """The statements ``("node" | "push", name)`` that build the graph on Nuke's stack.

    Writing a node's inputs from the last to the first, then the node, leaves input 0 on top when the
    node pops them. Each call adds exactly one entry to the stack (a new node or a re-push), so the
    branches of one node never disturb each other and no stray entries remain between them.
    """
    consumed = {name for node in nodes for name in node.inputs}
    order: list[tuple[str, str]] = []
    done: set[str] = set()
    active: list[str] = []

    def emit(name: str) -> None:
        if name in done:
            order.append(("push", name))
            return
        if name in active:
            cycle = " -> ".join([*active[active.index(name):], name])
            raise OutputError(f"the node graph has a cycle: {cycle}", where="Nuke script",
                              fix="a node cannot (indirectly) read from itself")
        active.append(name)
        for upstream in reversed(by_name[name].inputs):
            emit(upstream)
        active.pop()
        order.append(("node", name))
        done.add(name)

    for node in nodes:
        if node.name not in consumed:
            emit(node.name)
    missing = [node.name for node in nodes if node.name not in done]
    if missing:  # every node on a cycle is consumed, so no output reaches it
        raise OutputError(f"the node graph has a cycle through {', '.join(missing)}", where="Nuke script",
                          fix="a node cannot (indirectly) read from itself")
    return tuple(order)


# --------------------------------------------------------------------------------------------------
# The shot's slap-comp script

#: Node names of the generated script (tests and docs/handoff.md refer to them).
READ_PLATE, READ_LAYERS = "ReadPlate", "ReadLayers"
SHUFFLE_PLATE, SHUFFLE_SHADOW = "ShufflePlateLayer", "ShuffleShadow"
MERGE_SHADOW, MERGE_OVER = "ShadowOnPlate", "ObjectOver"
WRITE = "WriteSlapComp"
READ_UNDISTORTED, READ_STMAP, REDISTORT = "ReadUndistorted", "ReadSTMap", "Redistort"
NOTE = "vfxinsert_note"

# DAG grid: columns and rows in Nuke's node-graph pixels (a Read with its thumbnail is about 80 x 80).
_COLUMN_PX, _ROW_PX = 180, 130


def nuke_sequence_path(path: str | os.PathLike) -> str:
    """``path`` with forward slashes and its frame number as Nuke hashes (``%04d`` -> ``####``).

    A path without a frame pattern (a still, a movie) is returned as it is (forward slashes).
    """
    from .sequences import parse_pattern

    text = Path(path).as_posix()
    pattern = parse_pattern(text)
    if pattern is None:
        return text
    return f"{pattern.head}{'#' * pattern.padding}{pattern.tail}"


@dataclass(frozen=True)
class _FrameFormat:
    width: int
    height: int
    pixel_aspect: float
    fps: Fraction | None


def _frame_format(path: Path) -> _FrameFormat:
    """Plate format (the display window), pixel aspect and frame rate from a layers EXR header."""
    import OpenEXR

    try:  # the module empties the header when the file closes: read the values inside
        with OpenEXR.File(str(path), header_only=True) as exr:
            header = exr.header()
            (x0, y0), (x1, y1) = header["displayWindow"]
            fps = header.get("framesPerSecond")
            pixel_aspect = float(header.get("pixelAspectRatio", 1.0))
    except (RuntimeError, ValueError, OSError, KeyError) as exc:
        raise OutputError(f"cannot read the EXR header: {exc}", where=str(path),
                          fix="re-run the render stage for this frame") from exc
    return _FrameFormat(int(x1) - int(x0) + 1, int(y1) - int(y0) + 1, pixel_aspect,
                        Fraction(fps) if fps else None)


def _frame_span(frames: Sequence[int], where: str) -> tuple[list[int], int, int]:
    values = list(frames)
    if not values or any(isinstance(f, bool) or not isinstance(f, int) for f in values):
        raise OutputError(f"frames must be a non-empty list of frame numbers, got {values!r}", where=where,
                          fix="pass the frames the render stage wrote, e.g. [r.frame for r in report.results "
                              "if not r.error]")
    values = sorted(set(values))
    return values, values[0], values[-1]


def nuke_config_path(shot: ShotConfig) -> Path:
    """The OCIO config file the shot's script names: the shot's own config file (``[color] config`` or
    ``$OCIO``) as it is, or the portable export :func:`write_nuke_script` writes as ``<output.dir>/ocio/<name>.ocio``
    for a built-in ``ocio://`` config (which needs OCIO 2.4, newer than any Nuke 13-15 ships) or a shot
    with ``[color] context`` (baked into the export, as the script cannot carry it)."""
    source = shot.color_pipeline().source
    baked = source.startswith("ocio://") or shot.color.context   # Nuke's Root cannot set OCIO context variables
    return shot.output.dir / "ocio" / f"{shot.name}.ocio" if baked else Path(source)


def build_nuke_script(shot: ShotConfig, frames: Sequence[int], script_path: Path) -> NukeScript:
    """The slap-comp script of ``shot`` for ``frames`` (their layers EXRs must exist); see the module doc."""
    where = str(script_path)
    present, first, last = _frame_span(frames, where)
    for frame in present:
        layers = insert_path(shot, frame)
        if not layers.is_file():
            raise OutputError(f"frame {frame} has no layers EXR", where=str(layers),
                              fix="run the render stage for that frame first, or leave it out of frames")
    gaps = sorted(set(range(first, last + 1)) - set(present))
    fmt = _frame_format(insert_path(shot, first))
    pipeline = shot.color_pipeline()
    working = pipeline.canonical(pipeline.working_space, f"{shot.path} [color] working_space")
    plate_cs = pipeline.canonical(shot.plate.colorspace, f"{shot.path} [plate] colorspace")
    config = nuke_config_path(shot).absolute().as_posix()
    format_name = "vfxinsert_" + re.sub(r"[^A-Za-z0-9_]", "_", shot.name)
    nuke_format = f"{fmt.width} {fmt.height} 0 0 {fmt.width} {fmt.height} {fmt.pixel_aspect:g} {format_name}"
    frame_range = {"first": first, "last": last, "origfirst": first, "origlast": last, "origset": True}

    root: dict[str, KnobValue] = {
        "name": script_path.absolute().as_posix(),
        "frame": first, "first_frame": first, "last_frame": last, "lock_range": True,
        "format": nuke_format,
    }
    if fmt.fps is not None:
        root["fps"] = float(fmt.fps)
    root.update({"colorManagement": "OCIO", "OCIO_config": "custom", "customOCIOConfigPath": config,
                 "workingSpaceLUT": working})

    layers_label = "object rgba (premultiplied), shadow, comp\nraw: already " + working
    if gaps:
        layers_label += "\nno layers for frame(s) " + ", ".join(map(str, gaps))
    read_layers = NukeNode("Read", READ_LAYERS, {
        "file_type": "exr",
        "file": nuke_sequence_path(shot.output.dir.absolute() / f"{shot.name}.####.exr"),
        "format": nuke_format, **frame_range, "raw": True, "label": layers_label,
    }, xpos=2 * _COLUMN_PX, ypos=0)
    plate_knobs: dict[str, KnobValue] = {
        "file": nuke_sequence_path(shot.plate.path.absolute()), "format": nuke_format, **frame_range,
        "colorspace": plate_cs, "auto_alpha": True,
    }
    if shot.plate.missing_frames == "hold":
        plate_knobs["on_error"] = "nearest frame"  # the plate stage's hold policy
    plate_knobs["label"] = f"original plate\n{plate_cs} -> {working}"
    read_plate = NukeNode("Read", READ_PLATE, plate_knobs, xpos=0, ypos=0)
    nodes = [read_layers, read_plate]
    plate_out = READ_PLATE
    if shot.plate.layer:  # the plate lives in an EXR layer: bring it to rgb as the plate stage reads it
        nodes.append(NukeNode("Shuffle", SHUFFLE_PLATE, {"in": shot.plate.layer, "alpha": "white",
                                                         "label": f"plate layer {shot.plate.layer}"},
                              inputs=(READ_PLATE,), xpos=0, ypos=_ROW_PX))
        plate_out = SHUFFLE_PLATE
    row = 2 if shot.plate.layer else 1
    cg = READ_LAYERS
    if shot.camera.distortion is not None:   # the CG comes undistorted and goes through the shot's own ST-map
        nodes += _redistort_nodes(shot, nuke_format, frame_range)
        read_layers = dataclasses.replace(read_layers, xpos=5 * _COLUMN_PX, knobs=(
            *((k, v) for k, v in read_layers.knobs if k != "label"),
            ("label", layers_label + "\nreference: the same layers already redistorted (not wired)")))
        nodes[0] = read_layers
        cg, row = REDISTORT, max(row, 2)
    nodes += [
        NukeNode("Shuffle", SHUFFLE_SHADOW, {"in": "shadow", "alpha": "white", "label": "shadow -> rgb"},
                 inputs=(cg,), xpos=_COLUMN_PX, ypos=row * _ROW_PX),
        NukeNode("Merge2", MERGE_SHADOW, {"operation": "multiply", "output": "rgb",
                                          "label": "plate x shadow"},
                 inputs=(plate_out, SHUFFLE_SHADOW), xpos=0, ypos=(row + 1) * _ROW_PX),
        NukeNode("Merge2", MERGE_OVER, {"operation": "over", "label": "object over lit plate"},
                 inputs=(MERGE_SHADOW, cg), xpos=0, ypos=(row + 2) * _ROW_PX),
        NukeNode("Write", WRITE, {
            "file": nuke_sequence_path(shot.output.dir.absolute() / f"{shot.name}_slapcomp.####.exr"),
            "file_type": "exr", "channels": "rgba", "datatype": "16 bit half", "compression": "Zip (1 scanline)",
            "colorspace": working, "first": first, "last": last, "use_limit": True, "disable": True,
            "label": f"disabled: enable to render the slap comp\n{working}, EXR half",
        }, inputs=(MERGE_OVER,), xpos=0, ypos=(row + 3) * _ROW_PX),
        NukeNode("StickyNote", NOTE, {
            "label": f"vfxinsert {__version__}, shot {shot.name}, frames {first}-{last}\n"
                     f"{LAYER_FORMULA} (working space {working})\n"
                     f"B: plate x shadow ({MERGE_SHADOW}); A: object rgba ({READ_LAYERS})\n"
                     f"the comp layer of the EXRs is the same image",
        }, xpos=3 * _COLUMN_PX, ypos=(row + 2) * _ROW_PX),
    ]
    return NukeScript(root, tuple(nodes))


def _redistort_nodes(shot: ShotConfig, nuke_format: str, frame_range: Mapping[str, KnobValue]) -> list[NukeNode]:
    """``[camera] distortion``: the undistorted renders (overscan in their data window) through an STMap
    with the shot's redistort ST-map as ``stmap`` (input 0) and the render as ``src`` (input 1)."""
    undistorted = nuke_sequence_path(shot.output.dir.absolute() / "undistorted" / f"{shot.name}.####.exr")
    return [
        NukeNode("Read", READ_UNDISTORTED, {"file_type": "exr", "file": undistorted, "format": nuke_format,
                                            **frame_range, "raw": True,
                                            "label": "undistorted render, overscan\nobject rgba, shadow"},
                 xpos=3 * _COLUMN_PX, ypos=0),
        NukeNode("Read", READ_STMAP, {"file_type": "exr", "file": nuke_sequence_path(shot.camera.distortion.absolute()),
                                      "format": nuke_format, **frame_range, "raw": True,
                                      "label": "redistort ST-map (u, v of the undistorted image)"},
                 xpos=2 * _COLUMN_PX, ypos=0),
        NukeNode("STMap", REDISTORT, {"channels": "all", "uv": "rgb",
                                      "label": "redistort onto the plate\n(the EXR layers: bilinear)"},
                 inputs=(READ_STMAP, READ_UNDISTORTED), xpos=2 * _COLUMN_PX, ypos=_ROW_PX),
    ]


def write_nuke_script(shot: ShotConfig, frames: Sequence[int], out_path: str | os.PathLike | None = None) -> Path:
    """Write the shot's Nuke script atomically; returns its path (default ``<output.dir>/<name>.nk``).

    ``frames``: the frames whose layers EXRs the render stage wrote (all must exist). The script's
    range is their first to last; a gap (a failed frame) is named in the layers Read's label and
    errors in Nuke on that frame, as a missing render should. Raises OutputError (a missing layers
    EXR, an unwritable folder) or ColorError (a colorspace the shot's OCIO config lacks).
    """
    from .color import portable_config

    path = Path(out_path) if out_path is not None else shot.output.dir / f"{shot.name}.nk"
    script = build_nuke_script(shot, frames, path)
    config = nuke_config_path(shot)
    if config != Path(shot.color_pipeline().source):   # built-in config or a context: the portable export
        text, luts = portable_config(shot.color_pipeline(), [shot.plate.colorspace], f"vfxinsert {shot.name}")
        for file_name, lut in luts.items():   # first: a config whose file exists is complete
            atomic_write_text(config.parent / file_name, lut)
        atomic_write_text(config, text)
    atomic_write_text(path, script.to_nk())
    return path
