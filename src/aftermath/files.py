"""Writing output files so that nothing saved is ever half-written or lost: the one atomic writer.

Every writer (results, graphs, the report, its figures) writes to a temporary file beside the target,
with a unique name (so two writers aiming at one file never share a temporary), flushes it to disk
(fsync), then renames it over the target: a reader sees the old file or the new one, never a part.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from aftermath.errors import ResourceError


def check_output_path(path: Path, suffixes: Sequence[str], what: str) -> None:
    """Refuse an output path before any work is done. Raises ValueError naming the path when its
    suffix is not one of `suffixes` (case-insensitive), it names a folder, or its folder does not exist or
    cannot take a new file (tried by creating and removing a temporary file there)."""
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{path}: unknown {what} format; expected a file ending in {' or '.join(suffixes)}")
    if path.is_dir():
        raise ValueError(f"{path}: this is a folder; expected the path of a file to write")
    if not path.parent.exists():
        raise ValueError(f"{path}: the folder {path.parent} does not exist")
    try:  # a folder that cannot take a new file (read-only, not a folder, no permission)
        with tempfile.TemporaryFile(dir=path.parent, prefix=f".{path.name}."):
            pass
    except OSError as exc:
        raise ValueError(f"{path}: cannot write in {path.parent} ({exc.strerror})") from None


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path in `path`'s folder; write the whole file there. On a normal exit it
    is synced to disk and renamed to `path` (replacing any file there); on an error it is removed and
    `path` is left as it was. The file gets the permissions a new file would (umask applied)."""
    path = Path(path)
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private (0600)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
        _sync_folder(path.parent)
    except (OSError, RuntimeError) as exc:  # netCDF reports a full disk as a RuntimeError or a PermissionError
        raise write_failure(exc, path) from None
    finally:
        temporary.unlink(missing_ok=True)


FULL_BELOW_BYTES = 1 << 20
"""A folder's disk with less free space than this after a failed write is taken as full."""


def write_failure(exc: BaseException, path: Path) -> ResourceError:
    """A failed write as one clear error: 'no space left' when the system said so (HDF5 and Arrow word it in
    their own ways) or the folder's disk is (nearly) full, else the reason."""
    try:
        free: int | None = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if getattr(exc, "errno", None) == errno.ENOSPC or "no space left" in str(exc).lower() or (
        free is not None and free < FULL_BELOW_BYTES
    ):
        return ResourceError(f"{path}: no space left on the device holding {path.parent}; nothing was written")
    reason = getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    return ResourceError(f"{path}: cannot write the file ({reason}); nothing was written")


def write_text(text: str, path: str | Path) -> Path:
    """Write UTF-8 text to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); Windows cannot open a folder and does not need it."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
