"""`msp run` restarts a process that exits, with a backoff (shared/stack/supervisor.py; issue 18, item 4)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from shared.stack.stack import parse_replicas
from shared.stack.supervisor import Supervisor


@dataclass
class FakeProcess:
    code: int | None = None

    def poll(self) -> int | None:
        return self.code


@dataclass
class FakeStack:
    running: dict[str, FakeProcess] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)

    @property
    def processes(self) -> Mapping[str, FakeProcess]:
        return self.running

    def restart(self, key: str) -> None:
        self.started.append(key)
        self.running[key] = FakeProcess()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_exited_service_is_restarted_after_a_second_and_said_so() -> None:
    stack, clock = FakeStack({"rating": FakeProcess(), "rating#2": FakeProcess()}), Clock()
    supervisor = Supervisor(stack, clock=clock)
    assert supervisor.check() == []
    stack.running["rating#2"].code = -9  # SIGKILLed
    clock.now = 5.0
    assert supervisor.check() == ["rating#2 exited unexpectedly (exit code -9); restarting it in 1 s"]
    clock.now = 5.5
    assert supervisor.check() == []  # not yet
    clock.now = 6.0
    assert supervisor.check() == ["rating#2 restarted (restart 1 of rating#2)"]
    assert stack.started == ["rating#2"]
    assert supervisor.restarts == {"rating#2": 1}


def test_a_service_that_keeps_failing_waits_longer_each_time_up_to_30_s_and_a_good_minute_resets_it() -> None:
    stack, clock = FakeStack({"invoicing": FakeProcess()}), Clock()
    supervisor = Supervisor(stack, clock=clock)
    delays = []
    for _ in range(7):  # exits after 10 s each time
        stack.running["invoicing"].code = 1
        [said] = supervisor.check()
        delay = said.removeprefix("invoicing exited unexpectedly (exit code 1); restarting it in ")
        delays.append(delay)
        clock.now += float(delay.removesuffix(" s"))
        supervisor.check()  # restarted
        clock.now += 10.0
    assert delays == ["1 s", "2 s", "4 s", "8 s", "16 s", "30 s", "30 s"]
    clock.now += 61.0  # then a good minute
    supervisor.check()
    stack.running["invoicing"].code = 1
    assert supervisor.check() == ["invoicing exited unexpectedly (exit code 1); restarting it in 1 s"]


class TestReplicasSetting:
    def test_names_services_and_counts(self) -> None:
        assert parse_replicas("rating=2, metering=3") == {"rating": 2, "metering": 3}
        assert parse_replicas("") == {}

    @pytest.mark.parametrize("bad", ["ratng=2", "rating=0", "rating=10", "rating=two", "rating"])
    def test_refuses_an_unknown_service_or_a_bad_count(self, bad: str) -> None:
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse_replicas(bad)
