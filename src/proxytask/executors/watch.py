"""Wake a waiting controller when a trial writes a file: Linux ``inotify``, through ctypes.

Between two polls a controller sleeps in :meth:`LocalExecutor.wait
<proxytask.executors.local.LocalExecutor.wait>`, which returns early when a trial process
exits. A report is not an exit: without a watch, one written just after a poll waits for the
next, up to the backed-off poll interval (1 s), before the controller reads it and, say,
posts the stop it decides. :class:`DirWatch` gives that wait a file descriptor that becomes
readable when a file is written and closed, or renamed, in a watched trial dir (every write
of the trainer contract ends with a rename), so the controller reads a report as soon as it
lands. Where inotify is missing (not Linux, no libc, the user's watch limit reached, a trial
dir on an object store) the watch is inert and the polls pace the controller as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import sys
from typing import Any

__all__ = ["DirWatch"]

logger = logging.getLogger(__name__)

_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_MASK = _IN_CLOSE_WRITE | _IN_MOVED_TO


def _libc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


class DirWatch:
    """Folders to watch for finished writes; :attr:`fd` is readable once one happened.

    Example::

        watch = DirWatch()
        watch.add("/runs/c/jobs/j/1")
        select.select([watch.fd], [], [], 1.0)  # returns when a file there is written
        watch.drain()
    """

    def __init__(self) -> None:
        self.fd: int | None = None
        self._wds: dict[str, int] = {}
        self._libc = _libc()
        if self._libc is None:
            return
        fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd >= 0:
            self.fd = fd
        else:
            logger.debug(
                "no inotify (%s): polls pace the controller", os.strerror(ctypes.get_errno())
            )

    def add(self, path: str) -> None:
        """Watch the local folder ``path`` (no-op when inert or already watched)."""
        if self.fd is None or self._libc is None or path in self._wds:
            return
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), _MASK)
        if wd >= 0:
            self._wds[path] = wd
        else:  # e.g. ENOSPC: the user's inotify watch limit; polling still works
            logger.debug("cannot watch %s: %s", path, os.strerror(ctypes.get_errno()))

    def remove(self, path: str) -> None:
        """Stop watching ``path`` (gone folders are fine)."""
        wd = self._wds.pop(path, None)
        if wd is not None and self.fd is not None and self._libc is not None:
            self._libc.inotify_rm_watch(self.fd, wd)  # EINVAL once the folder is gone: fine

    def drain(self) -> bool:
        """Read every pending event; True when there was one."""
        if self.fd is None:
            return False
        seen = False
        while True:
            try:
                if not os.read(self.fd, 65536):
                    return seen
                seen = True
            except BlockingIOError:
                return seen
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                return seen

    @property
    def watched(self) -> int:
        """How many folders are watched now."""
        return len(self._wds)

    def close(self) -> None:
        """Release the inotify descriptor (the watch becomes inert)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            self._wds.clear()
