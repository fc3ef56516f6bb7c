"""Following the store's change log in the background, and snapshotting as it goes.

When the store says a change committed (PostgreSQL's NOTIFY), and at least every
`poll_interval_s`, the follower applies what was committed (by this process, the CLI or
another server over the same database), so changes are matchable within a second.
After `snapshot_every` applied changes, and when it stops, it writes the matcher's
snapshot (atomically), so a restart loads the index instead of rebuilding it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hashmatch.matching.bank_matcher import BankMatcher

_log = logging.getLogger(__name__)


class ChangeFollower:
    def __init__(
        self,
        matcher: BankMatcher,
        poll_interval_s: float = 0.2,
        snapshot_every: int = 0,
        publish: Callable[[Path], None] | None = None,
    ) -> None:
        """snapshot_every: changes applied between snapshots (0: no snapshots); publish:
        called with each snapshot written (the replicas' shared copy)."""
        self.matcher = matcher
        self.publish = publish
        self.poll_interval_s = poll_interval_s
        self.snapshot_every = snapshot_every
        # The last error of a pass (None when the last pass worked), and since when passes
        # have failed (time.monotonic()): for health checks.
        self.error: str | None = None
        self.failing_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._since_snapshot = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hashmatch-follower", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Woken by a committed change where the database can say so (PostgreSQL's NOTIFY),
        # else every poll interval; either way the log itself says what changed.
        while not self._stop.is_set():
            self.matcher.store.wait_for_change(self.poll_interval_s)
            if not self._stop.is_set():
                self.step()

    def step(self) -> int:
        """One pass: apply what is new, snapshot when due. Never raises: a locked or
        briefly absent database heals on a later pass."""
        try:
            applied = self.matcher.refresh()
            self.error, self.failing_since = None, None
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            if self.failing_since is None:
                self.failing_since = time.monotonic()
            _log.exception("applying the change log failed; retrying")
            return 0
        self._since_snapshot += applied
        # The first pass also writes one where the matcher was built from the store.
        due = self._since_snapshot >= self.snapshot_every or self.matcher.snapshot_sequence < 0
        if self.snapshot_every and due:
            self._snapshot()
        return applied

    def _snapshot(self) -> None:
        if self.matcher.config.snapshot_path is None:
            return
        if self.matcher.snapshot_sequence == self.matcher.sequence:
            self._since_snapshot = 0
            return
        try:
            path = self.matcher.save_snapshot()
            self._since_snapshot = 0
        except OSError as exc:  # a full disk must not stop matching
            _log.warning("index snapshot not written: %s", exc)
            return
        if self.publish is not None:
            self.publish(path)

    def stop(self) -> None:
        """Stop following; write the snapshot when the matcher is ahead of it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.snapshot_every:
            self._snapshot()
