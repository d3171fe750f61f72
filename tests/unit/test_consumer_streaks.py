"""A partition whose batch keeps failing shows in readiness (issue 17: a batch redelivered forever left
/health/ready green). The subscription counts each batch's partitions as failing or passing
(shared/messaging/broker.py); readiness reports a streak over its threshold with the reason."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from faststream.kafka import KafkaBroker, TestKafkaBroker

from services.metering.settings import MeteringSettings
from shared.messaging.broker import subscribe
from shared.messaging.consumer import BatchConsumer
from shared.messaging.streaks import FailureStreaks


def refusing_pool() -> Any:
    raise ConnectionRefusedError("the database refuses")


async def test_a_failing_batch_marks_its_partition_with_the_error() -> None:
    broker = KafkaBroker("127.0.0.1:1")
    failures = FailureStreaks("consumer usage")
    usage = BatchConsumer(service="metering", consumer="usage", parse=lambda _: (None, None), apply=None)  # type: ignore[arg-type,return-value]
    settings = MeteringSettings(database_url="postgresql://x@127.0.0.1:1/x", kafka_bootstrap_servers="127.0.0.1:1")
    subscribe(broker, pool=refusing_pool, settings=settings, purpose="usage", consumer=usage, payload=Any,
              description="usage", failures=failures)  # fmt: skip
    async with TestKafkaBroker(broker) as test_broker:
        with contextlib.suppress(ConnectionRefusedError):  # nacked: the batch will be redelivered
            await test_broker.publish(b'{"event_id": "e1"}', topic="billing.usage.v1")
    assert failures.stuck(after_s=60) is None  # not for long enough yet
    assert failures.stuck(after_s=0) == (
        "consumer usage (billing.usage.v1[0]) has failed for 0 s: ConnectionRefusedError: the database refuses"
    )


class TestStreaks:
    def test_nothing_failing_is_not_stuck(self) -> None:
        assert FailureStreaks("the outbox relay").stuck(after_s=0) is None

    def test_a_pass_ends_the_streak_of_its_own_key_only(self) -> None:
        streaks = FailureStreaks("consumer charges")
        streaks.failed(TimeoutError("slow"), "charges[0]")
        streaks.failed(KeyError("x"), "charges[1]")
        streaks.passed("charges[0]")
        reason = streaks.stuck(after_s=0)
        assert reason is not None
        assert reason.startswith("consumer charges (charges[1]) has failed for")

    def test_the_longest_streak_is_reported_with_its_latest_error(self, monkeypatch: Any) -> None:
        now = [1000.0]
        monkeypatch.setattr(time, "monotonic", lambda: now[0])
        streaks = FailureStreaks("consumer tax")
        streaks.failed(OSError("first"), "tax[2]")
        now[0] = 1010.0
        streaks.failed(OSError("newer"), "tax[1]")
        streaks.failed(OSError("second"), "tax[2]")  # still the same streak: it began at 1000
        now[0] = 1045.0
        assert streaks.stuck(after_s=40) == "consumer tax (tax[2]) has failed for 45 s: OSError: second"
        assert streaks.stuck(after_s=50) is None


class TestBackoff:
    """A batch that keeps failing is retried after 0.1 s, doubling to 5 s (issue 24: a database restarting got the
    same batch 31 times in 14 s)."""

    def test_the_wait_doubles_to_five_seconds_and_a_pass_resets_it(self) -> None:
        streaks = FailureStreaks("consumer usage")
        waits = [streaks.failed(OSError("the database system is starting up"), "usage[3]") for _ in range(8)]
        assert waits == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
        assert streaks.failed(OSError("x"), "usage[4]") == 0.1  # each partition its own
        streaks.passed("usage[3]")
        assert streaks.failed(OSError("again"), "usage[3]") == 0.1
