"""The one way hashmatch starts hashing worker processes, and their engines.

`process_pool(n)` forks workers from a fork server that has already loaded the engine's
compiled kernels (hashmatch.hashing.preload; spawn where there is no fork server), so a
worker starts warm; every worker watches its parent and leaves with it. In a worker,
`worker_engine(config)` is the one engine per configuration (made on first use), which
the server's batcher, the engine's own process pool and the scan's shards all use.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashmatch.config import EngineConfig
    from hashmatch.hashing.engine import Engine

# One engine per configuration in each worker process, made on its first task.
_ENGINES: dict[EngineConfig, Engine] = {}


def process_pool(workers: int) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    # forkserver: workers forked from a clean, single-threaded server that has already
    # imported the engine (a fork of a threaded parent could inherit its threads' locks).
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        ctx.set_forkserver_preload(["hashmatch.hashing.preload"])  # not imported here
    return ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=watch_parent, initargs=(os.getpid(),)
    )


def worker_engine(config: EngineConfig) -> Engine:
    """This process's engine for `config` (a worker's, or the one the preload warmed)."""
    engine = _ENGINES.get(config)
    if engine is None:
        from hashmatch.hashing.engine import Engine  # the engine imports this module

        engine = _ENGINES[config] = Engine(config)
    return engine


def watch_parent(pid: int) -> None:
    """Start a daemon thread that ends this process as soon as process `pid` is gone
    (a pidfd where Linux has one, else a poll a second). A pool worker waits on its task
    queue, and when its parent is killed (SIGKILL, OOM) nothing closes that queue: the
    worker, with a fork server behind it, would live on."""

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
