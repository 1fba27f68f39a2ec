"""The plot worker process of :mod:`proxytask.report.background` (``python -m`` this module).

Reads jobs from stdin (8 bytes of length, then a pickle of ``(number, job)``), draws each
with its renderer, and answers on stdout with a pickle of ``(number, error or None)``. It
ignores Ctrl-C (the caller decides whether plots still matter) and ends at end of input,
i.e. when the caller closes the pipe or dies.
"""

from __future__ import annotations

import pickle
import signal
import sys
from typing import IO


def _read_job(stdin: IO[bytes]) -> tuple[int, object] | None:
    head = stdin.read(8)
    if len(head) < 8:
        return None
    data = stdin.read(int.from_bytes(head, "big"))
    number, job = pickle.loads(data)
    return number, job


def _portable(exc: BaseException) -> BaseException:
    """The error itself when it survives a pickle round trip, else a RuntimeError naming it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def main() -> int:
    """Serve jobs until the input ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # the answers own stdout: anything printed goes to stderr
    import proxytask.report.plots  # noqa: F401  (matplotlib: imported before the first plot)

    while True:
        try:
            item = _read_job(stdin)
        except Exception:  # a job this interpreter cannot load: the caller draws it instead
            return 1
        if item is None:
            return 0
        number, job = item
        error: BaseException | None = None
        try:
            job.render(job.figure, job.path)  # type: ignore[attr-defined]
        except Exception as exc:
            error = _portable(exc)
        pickle.dump((number, error), answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()


if __name__ == "__main__":
    sys.exit(main())
