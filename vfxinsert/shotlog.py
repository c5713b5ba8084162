"""The per-shot log, ``<output.dir>/logs/<name>.log``: what every process that worked on the shot did.

``vfxinsert run`` and every farm task (prepare, render chunk, handoff) and the farm driver append to it,
one line per event: UTC time, host, process id, task, message (a frame written, up to date or failed
with its error; a stage's result; a task that died). A farm task's story survives its worker: Ray
workers run with ``log_to_driver=False`` and their own logs stay on their node.

Each line is one ``write`` on a file opened with ``O_APPEND``, so lines of processes writing at the same
time never interleave (on a local file system; over NFS, appends from several hosts can). The file is
only appended to, never rewritten, so it needs no atomic replacement.
"""
from __future__ import annotations

import datetime
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .errors import OutputError

if TYPE_CHECKING:
    from .config import ShotConfig
    from .outputs import FrameResult


def log_path(shot: ShotConfig) -> Path:
    """``<output.dir>/logs/<name>.log``."""
    return shot.output.dir / "logs" / f"{shot.name}.log"


class ShotLog:
    """Appends ``task``'s lines to the shot's log (see the module docstring)."""

    def __init__(self, shot: ShotConfig, task: str):
        self.path = log_path(shot)
        self.task = task
        self._host = socket.gethostname()

    def __call__(self, message: str) -> None:
        """Append one line (a message with newlines is kept on one line)."""
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = f"{now} {self._host} {os.getpid()} {self.task}: {' | '.join(message.splitlines())}\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            raise OutputError(f"cannot append to the shot log: {exc.strerror}", where=str(self.path),
                              fix="make output.dir writable", shot_level=True) from exc

    def frames(self, stage: str, then: Callable[[FrameResult, int], None] | None = None):
        """A stage's ``on_frame`` callback that logs each frame, then calls ``then`` (the CLI's progress)."""
        def on_frame(result: FrameResult, total: int) -> None:
            self(frame_line(stage, result))
            if then is not None:
                then(result, total)

        return on_frame


def frame_line(stage: str, result: FrameResult) -> str:
    """``render: frame 1001 -> out/sh.1001.exr``, ``... skipped (up to date)``, ``... FAILED: why``."""
    if result.error:
        return f"{stage}: frame {result.frame} FAILED: {result.error}"
    what = "skipped (up to date)" if result.skipped else f"-> {result.path}"
    if result.held_from is not None:
        what += f" (held from frame {result.held_from})"
    if result.nonfinite:
        what += f" ({result.nonfinite} NaN/Inf values sanitised)"
    return f"{stage}: frame {result.frame} {what}"
