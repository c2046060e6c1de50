"""Output files of the command-line tools: checked before the work, written whole or not at all.

A path that cannot be written (its parent is a regular file, a read-only directory, a name that
is a directory) raises :class:`OutputError`, a :class:`~hw.flow.errors.BuildError` whose message
names the path and the option to change; the tools turn it into ``error: ...`` and exit status 2.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hw.flow.errors import BuildError

__all__ = ["OutputError", "make_output_dir", "prepare_file", "write_files"]


class OutputError(BuildError):
    """An output path that cannot be written."""


def _error(path, error, option):
    path = Path(path)
    reason = error.strerror or str(error)
    # A parent that is a regular file makes mkdir/open say "File exists" or "Not a directory"
    # about some ancestor: name that file instead.
    blocker = next((p for p in path.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        reason = f"{blocker} is a file, not a directory"
    return OutputError(f"cannot write {path}: {reason}; pass {option} a path in a directory "
                       f"you can write")


def make_output_dir(path, option):
    """Create directory ``path`` and its parents (if missing) and return it as a Path.

    Raises
    ------
    OutputError
        If it cannot be created or is not a directory.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _error(path, e, option) from None
    return path


def prepare_file(path, option):
    """Create the parent directories of file ``path`` (if missing) and return it as a Path.

    Raises
    ------
    OutputError
        If they cannot be created or ``path`` is a directory.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(path))
    except OSError as e:
        raise _error(path, e, option) from None
    return path


def write_files(files, option):
    """Write ``{path: text or bytes}`` whole: each to a temporary file beside it, then renamed
    into place.

    Nothing is left behind when a write fails (the temporary files are removed), so a reader
    never sees a half-written file.

    Raises
    ------
    OutputError
        If a file cannot be written.
    """
    temps = []
    current = None
    try:
        for current, text in files.items():
            current = Path(current)
            if current.is_dir():
                raise IsADirectoryError(21, "Is a directory", str(current))
            fd, temp = tempfile.mkstemp(dir=current.parent, prefix=f".{current.name}.",
                                        suffix=".tmp")
            temps.append((temp, current))
            # mkstemp makes the file private; give it the mode open() would have.
            os.fchmod(fd, 0o666 & ~_umask())
            if isinstance(text, bytes):
                with os.fdopen(fd, "wb") as f:
                    f.write(text)
            else:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
        for temp, current in temps:
            os.replace(temp, current)
    except OSError as e:
        for temp, _ in temps:
            Path(temp).unlink(missing_ok=True)
        raise _error(current, e, option) from None


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
