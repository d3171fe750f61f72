"""`make run` (``msp run``): the whole platform comes up healthy (with extra replicas when asked), says where
everything is, brings back a service that dies, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from shared.services import DASHBOARD_LOCAL_PORT, SERVICES, service
from tests.support.stack import _pick_ports

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
class TestMspRun:
    def test_brings_every_service_up_healthy_restarts_a_killed_one_and_ctrl_c_stops_every_process_it_started(
        self,
    ) -> None:
        home, offset, proc, log = _start_msp_run("--replicas", "rating=2")
        try:
            output = _read_until(proc, log, "Press Ctrl-C", timeout_s=180)
            children = psutil.Process(proc.pid).children(recursive=True)
            ready = {
                s.name: httpx.get(f"http://127.0.0.1:{s.local_port + offset}/health/ready").status_code
                for s in SERVICES
            }
            rating = service("rating").local_port + offset
            second_replica = httpx.get(f"http://127.0.0.1:{rating + 100}/health/ready").status_code
            dashboard = f"http://127.0.0.1:{DASHBOARD_LOCAL_PORT + offset}"
            dashboard_ready = httpx.get(f"{dashboard}/health/ready").status_code

            killed = _service_process(children, "services.rating", rating)
            killed.kill()  # SIGKILL, as the OOM killer would
            died = time.monotonic()
            _read_until(proc, log, "rating restarted (restart 1 of rating)", timeout_s=60)
            _ready_within(f"http://127.0.0.1:{rating}/health/ready", timeout_s=120)
            back_after = time.monotonic() - died
            output = log.read_text(errors="replace")
            children = psutil.Process(proc.pid).children(recursive=True)

            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=120)
            survivors = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        finally:
            if proc.poll() is None:
                proc.kill()
            shutil.rmtree(home, ignore_errors=True)

        assert ready == {s.name: 200 for s in SERVICES}
        assert second_replica == 200
        assert f"rating#2       http://127.0.0.1:{rating + 100}" in output
        assert "rating exited unexpectedly (exit code -9); restarting it in 1 s" in output
        assert back_after < 60, f"rating was back and ready {back_after:.1f} s after it was killed"
        print(f"rating killed under msp run: back and ready after {back_after:.1f} s")
        assert dashboard_ready == 200
        assert f"Dashboard         {dashboard}" in output
        for spec in SERVICES:
            url = f"http://127.0.0.1:{spec.local_port + offset}"
            assert f"{url}/docs" in output
            assert f"{url}/asyncapi" in output
        assert len(children) >= len(SERVICES) + 3  # the services, the dashboard, Postgres and the broker
        assert code == 0
        assert survivors == []


@pytest.mark.slow
class TestMspRunKilled:
    def test_a_stack_killed_outright_takes_every_process_it_started_with_it(self) -> None:
        home, _offset, proc, log = _start_msp_run()
        try:
            _read_until(proc, log, "Press Ctrl-C", timeout_s=180)
            children = psutil.Process(proc.pid).children(recursive=True)

            proc.kill()  # SIGKILL: no chance to stop anything in order
            proc.wait(timeout=10)
            _, alive = psutil.wait_procs(children, timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            shutil.rmtree(home, ignore_errors=True)

        assert len(children) >= len(SERVICES) + 2
        assert [c.cmdline() for c in alive if c.is_running()] == []


def _service_process(children: list[psutil.Process], module: str, port: int) -> psutil.Process:
    """The child running ``module`` on ``port`` (replicas share the module, not the port)."""
    for child in children:
        if module in " ".join(child.cmdline()) and child.environ().get("HTTP_PORT") == str(port):
            return child
    raise AssertionError(f"no process of {module} on port {port}")


def _ready_within(url: str, *, timeout_s: float) -> None:
    """Wait until ``url`` answers 200."""
    start = time.monotonic()
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() - start < timeout_s, f"{url} not ready within {timeout_s} s"
        time.sleep(0.2)


def _start_msp_run(*args: str) -> tuple[Path, int, subprocess.Popen[bytes], Path]:
    """``msp run`` on free ports in a temporary home (never an outside Postgres or Kafka)."""
    home = Path(tempfile.mkdtemp(prefix="msp-run-"))
    pg, kafka, offset = _pick_ports()
    env = os.environ | {
        "MSP_STACK_HOME": str(home),
        "MSP_PG_PORT": str(pg),
        "MSP_KAFKA_PORT": str(kafka),
        "MSP_PORT_OFFSET": str(offset),
    }
    for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        env.pop(name, None)
    log = home / "msp-run.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "run", *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return home, offset, proc, log


def _read_until(proc: subprocess.Popen[bytes], log: Path, marker: str, *, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while marker not in (seen := log.read_text(errors="replace")):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"msp run did not come up:\n{seen}")
        time.sleep(0.2)
    return seen
