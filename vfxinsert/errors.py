"""One exception tree for vfxinsert.

Every error says *what* went wrong, *where* (a file, a shot-file key, a frame) and *how to fix it*.
Library code raises these; only the CLI prints them and turns them into exit codes.
"""
from __future__ import annotations

import warnings


def one_line(what: str, where: str | None = None, fix: str | None = None) -> str:
    """A problem as one line: ``where: what. Fix: fix`` (errors and warnings alike)."""
    text = f"{where}: {what}" if where else what
    if fix:
        text = f"{text.rstrip('.')}. Fix: {fix}"
    return text


class VfxInsertWarning(UserWarning):
    """Something worth a look that does not stop the shot (a damaged cache recomputed, a default used).
    The CLI prints each distinct one once, as ``warning: <line>``."""


def warn(what: str, *, where: str | None = None, fix: str | None = None) -> None:
    """Report a :class:`VfxInsertWarning` in the one-line form of errors."""
    warnings.warn(one_line(what, where, fix), VfxInsertWarning, stacklevel=2)


class VfxInsertError(Exception):
    """Base of every error vfxinsert raises on purpose.

    ``what``: the problem in one sentence; ``where``: file / key / frame it concerns (optional);
    ``fix``: what the user should do (optional).
    """

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None):
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        """The error as one line: ``where: what. Fix: fix``."""
        return one_line(self.what, self.where, self.fix)


class SetupError(VfxInsertError):
    """The machine is missing something (LLVM for Mitsuba, a Python package, a model folder)."""


class ConfigError(VfxInsertError):
    """The shot file is invalid: unknown key, wrong type, bad value, missing file."""


class ColorError(VfxInsertError):
    """OpenColorIO config or colorspace problem."""


class PlateError(VfxInsertError):
    """A plate (image, sequence or movie) cannot be read as asked."""


class FrameError(PlateError):
    """One frame of a plate is bad (missing, unreadable, non-finite pixels under the 'error' policy).

    Batch code records it per frame and goes on with the rest of the shot.
    """

    def __init__(self, what: str, *, frame: int, where: str | None = None, fix: str | None = None):
        self.frame = frame
        super().__init__(what, where=where, fix=fix)


class MeshError(VfxInsertError):
    """An asset mesh cannot be loaded."""


class OutputError(VfxInsertError):
    """An output cannot be written (permissions, disk full, bad layer data).

    ``shot_level``: the cause is the output folder itself (disk full, read-only, no permission), not the
    frame: a stage stops at the first such error instead of repeating it for every frame.
    """

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None, shot_level: bool = False):
        self.shot_level = shot_level
        super().__init__(what, where=where, fix=fix)


class RenderError(VfxInsertError):
    """A scene cannot be built or a frame cannot be rendered as asked (Mitsuba failed, the format changed)."""


class OptimizeError(VfxInsertError):
    """The lighting optimisation ([optimize]) diverged and could not be recovered."""


class GuidanceError(VfxInsertError):
    """The diffusion model cannot be loaded, personalised or used as asked ([guidance])."""
