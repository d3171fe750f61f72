"""A consumer group with records to consume that commits nothing turns readiness red, named with its topic
(shared/messaging/progress.py; issue 18 item 4, issue 24 part 2: a group left with no partition consumed nothing
while /health/ready said ready)."""

from __future__ import annotations

from shared import topics
from shared.messaging.progress import GroupPosition, ProgressWatch
from shared.topology import Subscription

USAGE = Subscription("metering", "usage", topics.USAGE)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def watch() -> tuple[ProgressWatch, Clock]:
    clock = Clock()
    return ProgressWatch([USAGE], stuck_after_s=120, clock=clock), clock


def test_a_group_with_lag_that_commits_nothing_for_the_threshold_is_stuck_with_its_topic() -> None:
    progress, clock = watch()
    progress.observe({"metering.usage": GroupPosition(committed=40, lag=7)})
    clock.now = 119.0
    progress.observe({"metering.usage": GroupPosition(committed=40, lag=9)})
    assert progress.stuck() is None  # not for long enough
    clock.now = 120.0
    progress.observe({"metering.usage": GroupPosition(committed=40, lag=12)})
    assert progress.stuck() == (
        "consumer group metering.usage (billing.usage.v1) has committed nothing for 120 s with 12 record(s) to consume"
    )


def test_a_group_that_commits_again_is_no_longer_stuck() -> None:
    progress, clock = watch()
    progress.observe({"metering.usage": GroupPosition(committed=40, lag=7)})
    clock.now = 500.0
    progress.observe({"metering.usage": GroupPosition(committed=40, lag=7)})
    assert progress.stuck() is not None
    clock.now = 510.0
    progress.observe({"metering.usage": GroupPosition(committed=41, lag=6)})
    assert progress.stuck() is None


def test_an_idle_group_with_nothing_to_consume_is_never_stuck() -> None:
    progress, clock = watch()
    for minute in range(10):
        clock.now = minute * 60.0
        progress.observe({"metering.usage": GroupPosition(committed=40, lag=0)})
    assert progress.stuck() is None


def test_the_wait_starts_when_records_arrive_not_when_the_group_last_committed() -> None:
    progress, clock = watch()
    progress.observe({"metering.usage": GroupPosition(committed=40, lag=0)})  # idle for an hour
    clock.now = 3600.0
    progress.observe({"metering.usage": GroupPosition(committed=40, lag=3)})  # records arrive
    clock.now = 3660.0
    progress.observe({"metering.usage": GroupPosition(committed=40, lag=3)})
    assert progress.stuck() is None  # a minute with lag, not an hour
