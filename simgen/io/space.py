"""Output that cannot be written: a full disk, a quota, a read-only or unwritable folder.

Such a failure is not the episode's fault: retrying it, or going on to the next episode, fails
the same way. Writers turn it into one :class:`~simgen.errors.OutputError` and a parallel run
stops on it (``simgen.run.scale``), keeping every committed episode for ``--resume``.

Two defenses:

* before each episode, the writer checks the free space of the output folder
  (:func:`check_free_space`) and stops cleanly when it is below a reserve (twice the largest
  episode written so far, at least :data:`MIN_FREE_BYTES`): HDF5 does not recover well from a
  write failing in the middle of a file, so stopping before is better than after;
* a write that fails anyway (another process filled the disk) is recognized by its errno, which
  h5py reports either as ``OSError.errno`` or only in the message (``errno = 28``), and turned
  into an :class:`OutputError`.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simgen.errors import StorageError

#: Stop before an episode when the output folder has less free space than this (bytes).
MIN_FREE_BYTES = 32 << 20

#: errno values meaning "this output cannot be written", whatever the episode.
OUTPUT_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this file system or limit",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "input/output error of the storage device",
}

_ERRNO_IN_MESSAGE = re.compile(r"errno = (\d+)")


def output_errno(e: BaseException) -> int | None:
    """The errno of ``e`` if it says the output cannot be written (else None). h5py raises
    ``OSError`` or ``RuntimeError`` for failed writes, with the errno often only in its text."""
    if isinstance(e, OSError) and e.errno in OUTPUT_ERRNOS:
        return e.errno
    if isinstance(e, (OSError, RuntimeError)):
        m = _ERRNO_IN_MESSAGE.search(str(e))
        if m and int(m.group(1)) in OUTPUT_ERRNOS:
            return int(m.group(1))
    return None


def output_error(e: BaseException, path: str | Path) -> StorageError:
    """The :class:`StorageError` for a write of ``path`` that failed for the output's reason."""
    code = output_errno(e)
    what = OUTPUT_ERRNOS.get(code or -1, str(e))
    return StorageError(f"cannot write {path}: {what} ({errno.errorcode.get(code or -1, e)})")


@contextmanager
def output_errors(path: str | Path) -> Iterator[None]:
    """Inside this block, a write failing for a reason of the output (see
    :data:`OUTPUT_ERRNOS`) becomes a :class:`StorageError` naming ``path``."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        if output_errno(e) is None:
            raise
        raise output_error(e, path) from None


def free_bytes(folder: str | Path) -> int:
    """Free space (bytes) available to this user in ``folder``'s file system."""
    return shutil.disk_usage(folder).free


def check_free_space(folder: str | Path, need: int = 0) -> None:
    """Raise :class:`StorageError` when ``folder`` has less than ``max(need, MIN_FREE_BYTES)``
    bytes free (``need``: typically twice the largest episode written so far)."""
    want = max(int(need), MIN_FREE_BYTES)
    try:
        free = free_bytes(folder)
    except OSError:  # no such folder yet, or a file system that cannot say: let writes decide
        return
    if free < want:
        raise StorageError(
            f"cannot write {folder}: only {free / 1e6:.1f} MB free, an episode needs about "
            f"{want / 1e6:.1f} MB (no space left on the device)"
        )


def writable_folder(folder: str | Path) -> None:
    """Raise :class:`StorageError` unless files can be created in ``folder`` (checked by
    creating one: permission bits do not bind every user, e.g. root)."""
    p = Path(folder)
    probe = p / f".simgen-write-test-{os.getpid()}"
    try:
        with open(probe, "w") as f:
            f.write("x")
        probe.unlink()
    except OSError as e:
        raise StorageError(f"cannot write {p}: {e}") from None
