"""Named fault points, so tests can kill a process exactly where a crash would hurt most.

A process whose ``MSP_FAULT_POINT`` names a point kills itself with SIGKILL when it reaches it, except
``relay_held``, which holds its outbox relay instead (`armed`). Unset in production; the check is one string
comparison.
"""

from __future__ import annotations

import os
import signal

AFTER_COMMIT_BEFORE_ACK = "after_commit_before_ack"
RELAY_AFTER_PUBLISH_BEFORE_MARK = "relay_after_publish_before_mark"
INGEST_BEFORE_COMMIT = "ingest_before_commit"  # metering: a batch's records are written, not yet committed
INGEST_AFTER_COMMIT_BEFORE_ANSWER = "ingest_after_commit_before_answer"  # metering HTTP: stored, not answered
RELAY_HELD = "relay_held"  # not a kill: the outbox relay publishes nothing, so committed rows stay unrelayed

_armed: str | None = os.environ.get("MSP_FAULT_POINT") or None


def armed(name: str) -> bool:
    """True when this process's fault point is ``name`` (for points that hold rather than kill)."""
    return _armed is not None and _armed == name


def fault_point(name: str) -> None:
    if _armed is not None and _armed == name:
        os.kill(os.getpid(), signal.SIGKILL)
