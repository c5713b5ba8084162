"""Atomic file output: a temporary file beside the target, fsync, rename, fsync the folder.

A crash or a kill at any point leaves either the previous good file or none at the final path; the
temporary name starts with '.' and ends with '.tmp' so nothing half-written looks finished.
"""
from __future__ import annotations

import contextlib
import os
import re
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

    On any exception the temporary file is removed and ``final`` is untouched.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder: {exc.strerror}", where=str(final.parent),
                          fix="choose a writable output.dir") from exc
    tmp = temp_path_for(final)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(final: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``final`` atomically."""
    with atomic_output(final) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(final: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``final`` atomically."""
    atomic_write_bytes(final, text.encode("utf-8"))


def sweep_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files left in ``folder`` by writers that were killed (their process is gone).

    Temporaries are named ``.<stem>.<host>_<pid>.tmp<ext>`` (see temp_path_for). Only this host's are
    considered (another farm node's writer cannot be checked from here), and one whose pid still runs
    is being written and is left alone. Returns what was removed.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    pattern = re.compile(rf"^\..*\.{re.escape(_host())}_(\d+)\.tmp")
    for path in folder.glob(".*.tmp*"):
        match = pattern.match(path.name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
            continue                      # still running: someone is writing it
        except ProcessLookupError:
            pass
        except PermissionError:
            continue                      # another user's live process
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed
