"""``msp``: the project's command line (``python -m shared.cli`` works too).

msp run                    start the local stack and every service; Ctrl-C stops all of it
msp topics create          create every declared topic on KAFKA_BOOTSTRAP_SERVERS
msp db migrate SERVICE     apply SERVICE's migrations as its owner (MIGRATION_DATABASE_URL)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading

from shared.services import SERVICES, service


def _run(_: argparse.Namespace) -> int:
    from shared.stack.stack import Stack, StackConfig

    stack = Stack(StackConfig.from_env())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    try:
        print("starting PostgreSQL, the broker, topics, roles and migrations …", flush=True)
        stack.start_infrastructure()
        print("starting the seven services …", flush=True)
        stack.start_services()
        _print_summary(stack)
        while not stop.is_set():
            for name, proc in stack.processes.items():
                if proc.poll() is not None:
                    print(f"{name} exited unexpectedly; see {stack.logs / (name + '.log')}", flush=True)
                    stop.set()
            stop.wait(1.0)
    finally:
        print("stopping everything …", flush=True)
        stack.down()
        print("stopped.", flush=True)
    return 0


def _print_summary(stack: object) -> None:
    from shared.stack.stack import Stack

    assert isinstance(stack, Stack)
    print("\nThe platform is up.\n")
    print(f"  {'service':<14} {'HTTP API':<26} {'OpenAPI':<40} AsyncAPI")
    for spec in SERVICES:
        url = stack.url(spec)
        print(f"  {spec.name:<14} {url:<26} {url + '/docs':<40} {url}/asyncapi")
    print(f"\n  Kafka bootstrap   {stack.bootstrap}")
    print(
        f"  Postgres          {stack.admin_dsn.split('@')[-1]} (superuser password in "
        f"{stack.config.home}/pg-superuser-password)"
    )
    print(f"  Operator token    {stack.admin_token}  (Authorization: Bearer …)")
    print(f"  Logs              {stack.logs}/")
    print("\nPress Ctrl-C to stop everything.\n", flush=True)


def _topics(args: argparse.Namespace) -> int:
    from shared.stack.broker import create_topics

    bootstrap = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    created = asyncio.run(create_topics(bootstrap, timeout_s=args.timeout))
    print(f"created {created} topic(s) on {bootstrap}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from shared.db.migrate import migrate_service

    dsn = args.url or os.environ["MIGRATION_DATABASE_URL"]
    applied = asyncio.run(migrate_service(dsn, service(args.service)))
    print(f"{args.service}: applied {applied} migration(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="msp", description="MSP billing platform")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the local stack and all services").set_defaults(func=_run)
    topics = sub.add_parser("topics", help="topic administration")
    topics_sub = topics.add_subparsers(dest="action", required=True)
    create = topics_sub.add_parser("create", help="create every declared topic")
    create.add_argument("--bootstrap")
    create.add_argument("--timeout", type=float, default=60.0)
    create.set_defaults(func=_topics)
    db = sub.add_parser("db", help="database administration")
    db_sub = db.add_subparsers(dest="action", required=True)
    mig = db_sub.add_parser("migrate", help="apply a service's migrations as its owner role")
    mig.add_argument("service", choices=[s.name for s in SERVICES])
    mig.add_argument("--url", help="owner-role URL (default: MIGRATION_DATABASE_URL)")
    mig.set_defaults(func=_migrate)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
