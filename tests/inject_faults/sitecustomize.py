"""Fault injection for tests that run simgen in subprocesses (spawned workers included): put
this folder on PYTHONPATH and set

* ``SIMGEN_TEST_ENOSPC_BUDGET``: a file holding a number of frames. Every process of the run
  (driver and workers) shares the budget; once it is spent every frame write fails with
  ``OSError(ENOSPC)``, as a full disk does, in the middle of an episode.
* ``SIMGEN_TEST_BAD_LABEL_EPISODE``: an episode index whose first camera frame gets an instance
  id that is in no object table (an inconsistent label, as a labeling bug would produce),
  before the writer's self-checks see it.
"""

from __future__ import annotations

import os

_BUDGET = os.environ.get("SIMGEN_TEST_ENOSPC_BUDGET")
_BAD_LABEL = os.environ.get("SIMGEN_TEST_BAD_LABEL_EPISODE")

if _BUDGET or _BAD_LABEL:
    import errno
    import fcntl

    import simgen.io.writer as _writer

    _original = _writer._EpisodeWriter._frame

    def _space_left(budget: str) -> bool:
        with open(budget, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            n = int(f.read() or 0)
            f.seek(0)
            f.truncate()
            f.write(str(n - 1))
            return n > 0

    def _frame(self, frame):  # type: ignore[no-untyped-def]
        if _BUDGET and not _space_left(_BUDGET):
            raise OSError(errno.ENOSPC, "No space left on device")
        if _BAD_LABEL and self.g.name.endswith(f"/{int(_BAD_LABEL):06d}") and frame.index == 0:
            if "instance" in frame.arrays:
                frame.arrays["instance"][0, 0] = 999
        return _original(self, frame)

    _writer._EpisodeWriter._frame = _frame  # type: ignore[method-assign]
