"""Atomic file output: a temporary file beside the target, fsync, rename, fsync the folder.

A crash or a kill at any point leaves either the previous good file or none at the final path; the
temporary name starts with '.' and ends with '.tmp' so nothing half-written looks finished.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
from pathlib import Path
from typing import Iterator

from .errors import OutputError


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def temp_path_for(final: Path) -> Path:
    """The temporary path used while ``final`` is written (same folder, so rename is atomic):
    ``.<stem>.<host>_<pid>.tmp<ext>``. Host and pid say whose it is (farm nodes share output folders);
    the real extension is kept because some writers (OpenEXR, OIIO, PyAV) pick the format from it.
    """
    return final.with_name(f".{final.stem}.{_host()}_{os.getpid()}.tmp{final.suffix}")


def file_identity(path: str | os.PathLike | None) -> list:
    """``[path, size, mtime_ns]`` of a file (``[path]`` when it is absent): what input hashes record
    so that a changed or replaced input file invalidates the outputs made from it."""
    try:
        st = os.stat(path)
    except (OSError, TypeError):
        return [str(path)]
    return [str(path), st.st_size, st.st_mtime_ns]


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened for fsync
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_output(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``final`` atomically.

    On any exception the temporary file is removed and ``final`` is untouched; an ``OSError`` (disk full,
    permissions, a read-only or vanished folder) becomes one :class:`OutputError` line naming the file.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder: {exc.strerror}", where=str(final.parent),
                          fix="choose a writable output.dir", shot_level=True) from exc
    tmp = temp_path_for(final)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise write_error(final, exc) from exc
        raise


def write_error(final: Path, exc: OSError) -> OutputError:
    """One clear line for a failed write of ``final``."""
    reason = exc.strerror or str(exc)
    fix = {errno.ENOSPC: "free disk space in the output folder", errno.EDQUOT: "free space within your disk quota",
           errno.EFBIG: "the file is larger than this filesystem or process allows: write to another disk",
           errno.EROFS: "the filesystem is read-only: choose a writable output.dir",
           errno.EACCES: "check the output folder's permissions"}.get(exc.errno, "check the output folder")
    return OutputError(f"cannot write {final.name}: {reason}", where=str(final.parent), fix=fix,
                       shot_level=exc.errno in _FOLDER_ERRORS)


_FOLDER_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.ENOENT}
"""Write errors caused by the output folder, not by the file being written."""


def names_folder_error(message: str) -> bool:
    """Whether a C library's error text (OpenEXR, FFmpeg: no errno) names one of the folder errors."""
    return any(os.strerror(code) in message for code in _FOLDER_ERRORS)


def ensure_writable_folder(folder: Path) -> None:
    """Create ``folder`` and prove a file can be written there (OutputError, one line, when not)."""
    probe = folder / ".vfxinsert-write-probe"
    with atomic_output(probe) as tmp:
        tmp.write_bytes(b"ok")
    with contextlib.suppress(OSError):
        probe.unlink()


@contextlib.contextmanager
def atomic_folder(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it replaces the folder ``final`` as a whole (the QC
    report: its page and images always belong together). On any exception the temporary folder is
    removed and ``final`` is untouched; a kill leaves the old folder, or none in the instant between the
    two renames, and a temporary folder the next stage's sweep removes."""
    final = Path(final)
    tmp, old = temp_path_for(final), final.with_name(f".{final.name}.{_host()}_{os.getpid()}.tmp-old")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        yield tmp
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():   # failed between the renames: the previous folder goes back
            with contextlib.suppress(OSError):
                os.replace(old, final)
        if isinstance(exc, OSError):
            raise write_error(final, exc) from exc
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(final: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``final`` atomically."""
    with atomic_output(final) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(final: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``final`` atomically."""
    atomic_write_bytes(final, text.encode("utf-8"))


def sweep_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files left anywhere under ``folder`` by writers that were killed (their process
    is gone). Symbolic links to folders are not followed.

    Temporaries are named ``.<stem>.<host>_<pid>.tmp<ext>`` (see temp_path_for). Only this host's are
    considered (another farm node's writer cannot be checked from here), and one whose pid still runs
    is being written and is left alone. Returns what was removed.
    """
    removed = []
    pattern = re.compile(rf"^\..*\.{re.escape(_host())}_(\d+)\.tmp")
    for where, dirs, names in os.walk(folder, followlinks=False):
        for name in [*names, *dirs]:
            match = pattern.match(name)
            if match is None or int(match.group(1)) == os.getpid() or _running(int(match.group(1))):
                continue
            path = Path(where) / name
            if name in dirs:
                dirs.remove(name)                 # a half-filled temporary folder (atomic_folder): not walked
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                       # another user's live process
    return True
