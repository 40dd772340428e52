"""Silence what pybullet's C code prints ("pybullet build time" on stderr, "argv[0]=" on stdout)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


def _libc_fflush() -> None:
    """Flush C stdio buffers, so C prints land in /dev/null and not after the redirect."""
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def quiet_c_output() -> Iterator[None]:
    """Point file descriptors 1 and 2 at /dev/null for the duration (C-level prints included).

    Python exceptions are unaffected (they are raised, not printed)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    fds = []
    for fd in (1, 2):  # the C-level descriptors, whatever Python's streams are wrapped in
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            pass
    if not fds:
        yield
        return
    saved = [os.dup(fd) for fd in fds]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(devnull, fd)
        yield
    finally:
        _libc_fflush()
        for fd, s in zip(fds, saved, strict=True):
            os.dup2(s, fd)
            os.close(s)
        os.close(devnull)


quiet_stdout = quiet_c_output


def import_pybullet():  # type: ignore[no-untyped-def]
    with quiet_c_output():
        import pybullet

    return pybullet
