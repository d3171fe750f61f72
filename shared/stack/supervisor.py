"""`msp run` keeps the platform up as an orchestrator would (issue 18, item 4): a service process (or the
dashboard) that exits unexpectedly is started again after a backoff — 1 s, then doubling to 30 s while it
keeps failing, back to 1 s once it has stayed up a minute — and each exit and restart is said on the console
and counted.

The supervisor only decides; the stack starts processes. ``check`` is called about once a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0


class Process(Protocol):
    def poll(self) -> int | None: ...


class Supervised(Protocol):
    """What the supervisor needs of the stack."""

    @property
    def processes(self) -> Mapping[str, Process]: ...

    def restart(self, key: str) -> None:
        """Start the process ``key`` names again (same service, replica, port and log)."""
        ...


@dataclass
class _Record:
    started_at: float
    failures: int = 0  # exits in a row without a minute of good running between them
    due_at: float | None = None  # when the pending restart is due


@dataclass
class Supervisor:
    stack: Supervised
    clock: Callable[[], float] = time.monotonic
    restarts: dict[str, int] = field(default_factory=dict)
    """Restarts so far, per process key."""
    _records: dict[str, _Record] = field(default_factory=dict)

    def check(self) -> list[str]:
        """Restart what is due; returns what to tell the operator."""
        now, said = self.clock(), []
        for key, proc in list(self.stack.processes.items()):
            record = self._records.setdefault(key, _Record(started_at=now))
            code = proc.poll()
            if code is None:
                if now - record.started_at >= STABLE_AFTER_S:
                    record.failures = 0
                continue
            if record.due_at is None:
                delay = min(BACKOFF_FIRST_S * 2**record.failures, BACKOFF_MAX_S)
                record.failures += 1
                record.due_at = now + delay
                said.append(f"{key} exited unexpectedly (exit code {code}); restarting it in {delay:.0f} s")
            elif now >= record.due_at:
                self.stack.restart(key)
                self.restarts[key] = self.restarts.get(key, 0) + 1
                record.due_at, record.started_at = None, now
                said.append(f"{key} restarted (restart {self.restarts[key]} of {key})")
        return said
