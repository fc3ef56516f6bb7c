"""Worker processes that leave with their parent.

A process-pool worker waits on its task queue; when its parent is killed (SIGKILL, OOM)
nothing closes that queue, and the worker (with a fork server or resource tracker behind
it) lives on. Every pool hashmatch starts runs watch_parent in its workers.
"""

from __future__ import annotations

import os
import select
import threading
import time


def watch_parent(pid: int) -> None:
    """Start a daemon thread that ends this process as soon as process `pid` is gone
    (a pidfd where Linux has one, else a poll a second). Meant as a pool initializer."""

    def watch() -> None:
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):  # not Linux >= 5.3: poll instead
            while _alive(pid):
                time.sleep(1.0)
        else:
            select.select([fd], [], [])  # readable once the process has exited
        os._exit(1)

    threading.Thread(target=watch, name="hashmatch-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
