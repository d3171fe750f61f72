"""``msp``: the project's command line (``python -m shared.cli`` works too).

msp run [--replicas S=N,…]  start the local stack and every service (restarting any that exits); Ctrl-C stops all
msp demo                   bill a sandbox MSP's month end to end on the local stack (starting it if needed)
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
from pathlib import Path

from shared.services import SERVICES, service

_DEMO_FILE = Path(__file__).with_name("demo") / "northwind.yaml"


def _run(args: argparse.Namespace) -> int:
    from shared.stack.stack import Stack, StackConfig, parse_replicas

    config = StackConfig.from_env()
    if args.replicas:
        config.replicas |= parse_replicas(args.replicas)
    stack = Stack(config)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    try:
        print("starting PostgreSQL, the broker, topics, roles and migrations …", flush=True)
        stack.start_infrastructure()
        print("starting the seven services and the dashboard …", flush=True)
        stack.start_services()
        _print_summary(stack)
        _wait_until_stopped(stack, stop)
    finally:
        print("stopping everything …", flush=True)
        stack.down()
        print("stopped.", flush=True)
    return 0


def _wait_until_stopped(stack: object, stop: threading.Event) -> None:
    """Until ``stop`` is set (a signal), restarting any process that exits (shared/stack/supervisor.py)."""
    from shared.stack.stack import Stack
    from shared.stack.supervisor import Supervisor

    assert isinstance(stack, Stack)
    supervisor = Supervisor(stack)
    while not stop.is_set():
        for line in supervisor.check():
            print(f"{line}; see {stack.logs}/", flush=True)
        stop.wait(1.0)


def _demo(args: argparse.Namespace) -> int:
    """The demo on a running stack (`make run`), or on one it starts and (unless --stop) keeps running."""
    import httpx

    from shared.demo import scenario
    from shared.demo.runner import DemoError, Endpoints, run_demo
    from shared.demo.summary import render
    from shared.stack.stack import Stack, StackConfig

    stack = Stack(StackConfig.from_env())
    try:
        running = httpx.get(f"{stack.url(service('catalog'))}/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        running = False
    out = Path(args.out) if args.out else stack.config.home / "demo" / "invoices"
    try:
        if running:
            print(f"using the stack already running at {stack.url(service('catalog'))}", flush=True)
        else:
            print("no stack running: starting PostgreSQL, the broker and the seven services …", flush=True)
            stack.up()
        endpoints = Endpoints(
            urls={spec.name: stack.url(spec) for spec in SERVICES},
            bootstrap=stack.bootstrap or f"127.0.0.1:{stack.config.kafka_port}",
            operator_token=stack.admin_token,
        )
        try:
            summary = asyncio.run(
                run_demo(endpoints, scenario.load(Path(args.scenario)), out_dir=out, say=lambda t: print(t, flush=True))
            )
        except DemoError as exc:
            print(f"\nthe demo did not complete: {exc}\n(service logs: {stack.logs}/)", flush=True)
            return 1
        summary.urls["dashboard"] = stack.dashboard_url  # sign in there with the demo's admin API key
        print(render(summary), flush=True)
        if running or args.stop:
            return 0
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: stop.set())
        print("The stack keeps running so you can explore it (see README, 'The demo'). Ctrl-C stops it.", flush=True)
        _wait_until_stopped(stack, stop)
        return 0
    finally:
        if not running:
            print("stopping everything …", flush=True)
            stack.down()
            print("stopped.", flush=True)


def _print_summary(stack: object) -> None:
    from shared.stack.stack import Stack

    assert isinstance(stack, Stack)
    print("\nThe platform is up.\n")
    print(f"  {'service':<14} {'HTTP API':<26} {'OpenAPI':<40} AsyncAPI")
    for spec in SERVICES:
        url = stack.url(spec)
        print(f"  {spec.name:<14} {url:<26} {url + '/docs':<40} {url}/asyncapi")
        for replica in range(2, stack.replicas(spec) + 1):
            print(f"  {stack.key(spec, replica):<14} {stack.url(spec, replica):<26} (replica {replica}, same groups)")
    print(f"\n  Dashboard         {stack.dashboard_url}  (sign in with an API key)")
    print(f"  Kafka bootstrap   {stack.bootstrap}")
    print(
        f"  Postgres          {stack.admin_dsn.split('@')[-1]} (superuser password in "
        f"{stack.config.home}/pg-superuser-password)"
    )
    print(f"  Operator token    {stack.admin_token}  (platform operator: creates tenants)")
    print("  First tenant      msp bootstrap --name 'My MSP' --admin-email you@example.com")
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


def _bootstrap(args: argparse.Namespace) -> int:
    import uuid

    import httpx

    from shared.stack.stack import Stack, StackConfig

    stack = Stack(StackConfig.from_env())
    url = args.catalog_url or stack.url(service("catalog"))
    token = args.operator_token or os.environ.get("ADMIN_TOKEN") or stack.admin_token
    tenant_id = uuid.UUID(args.tenant_id) if args.tenant_id else uuid.uuid4()
    headers = {"Authorization": f"Bearer {token}"}
    tenant = {
        "tenant_id": str(tenant_id),
        "name": args.name,
        "mode": args.mode,
        "timezone": args.timezone,
        "base_currency": args.currency,
    }
    with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
        api.put(f"/v1/tenants/{tenant_id}", json=tenant).raise_for_status()
        issued = api.post(
            f"/v1/tenants/{tenant_id}/admin-keys", json={"email": args.admin_email, "name": args.admin_name}
        )
        issued.raise_for_status()
    print(f"tenant    {tenant_id} ({args.mode})")
    print(f"admin     {args.admin_email} ({issued.json()['user_id']})")
    print(f"API key   {issued.json()['api_key']}")
    print("           shown once: exchange it for a token at POST /v1/auth/token")
    return 0


def _catalog_client(args: argparse.Namespace) -> object:
    import httpx

    from shared.stack.stack import Stack, StackConfig

    url = args.catalog_url or Stack(StackConfig.from_env()).url(service("catalog"))
    api_key = args.api_key or os.environ.get("MSP_API_KEY")
    if not api_key:
        raise SystemExit("an API key is needed: --api-key or MSP_API_KEY")
    client = httpx.Client(base_url=url, timeout=120)
    issued = client.post("/v1/auth/token", json={"api_key": api_key})
    issued.raise_for_status()
    client.headers["Authorization"] = f"Bearer {issued.json()['access_token']}"
    return client


def _catalog_load(args: argparse.Namespace) -> int:
    from pathlib import Path

    import httpx

    path = Path(args.file)
    client = _catalog_client(args)
    assert isinstance(client, httpx.Client)
    kind = "application/yaml" if path.suffix in (".yaml", ".yml") else "application/json"
    response = client.post("/v1/catalog/import", content=path.read_bytes(), headers={"content-type": kind})
    if response.status_code != 200:
        print(f"refused ({response.status_code}):")
        for problem in response.json().get("detail", []):
            print(f"  {'.'.join(str(p) for p in problem.get('loc', []))}: {problem.get('msg')}")
        return 1
    result = response.json()
    print(f"{result['changed']} changed, {result['unchanged']} unchanged")
    for item in result.get("pending_approval", []):
        print(f"pending approval: {item['entity_type']} {item['entity_id']} ({item['name']}): {item['reason']}")
    return 0


def _catalog_republish(args: argparse.Namespace) -> int:
    import httpx

    client = _catalog_client(args)
    assert isinstance(client, httpx.Client)
    response = client.post("/v1/catalog/republish")
    response.raise_for_status()
    print(f"republished {response.json()['entities']} entities")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="msp", description="MSP billing platform")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the local stack and all services")
    run.add_argument(
        "--replicas",
        default="",
        help="processes per service, e.g. rating=2,metering=2 (each its own port: +100 per replica; also MSP_REPLICAS)",
    )
    run.set_defaults(func=_run)
    demo = sub.add_parser("demo", help="bill a sandbox MSP's month end to end (README: 'The demo')")
    demo.add_argument("--stop", action="store_true", help="stop the stack afterwards if the demo started it")
    demo.add_argument("--out", help="where to write the invoice PDFs (default: .local/demo/invoices)")
    demo.add_argument("--scenario", default=str(_DEMO_FILE), help="the MSP and catalog file")
    demo.set_defaults(func=_demo)
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
    boot = sub.add_parser("bootstrap", help="create a tenant and its first admin credential")
    boot.add_argument("--name", required=True, help="the MSP's name")
    boot.add_argument("--admin-email", required=True)
    boot.add_argument("--admin-name", default="Administrator")
    boot.add_argument("--mode", choices=["live", "sandbox"], default="sandbox")
    boot.add_argument("--timezone", default="UTC", help="IANA time zone billing periods are cut in")
    boot.add_argument("--currency", default="USD", help="base currency (ISO 4217)")
    boot.add_argument("--tenant-id", help="a chosen tenant UUID (default: a new one)")
    boot.add_argument("--catalog-url", help="default: the local stack's catalog")
    boot.add_argument("--operator-token", help="default: ADMIN_TOKEN, else the local stack's")
    boot.set_defaults(func=_bootstrap)
    catalog = sub.add_parser("catalog", help="catalog administration through the catalog API")
    catalog_sub = catalog.add_subparsers(dest="action", required=True)
    load = catalog_sub.add_parser("load", help="load a catalog document (JSON or YAML); idempotent")
    load.add_argument("file")
    load.set_defaults(func=_catalog_load)
    again = catalog_sub.add_parser("republish", help="publish every entity again")
    again.set_defaults(func=_catalog_republish)
    for p in (load, again):
        p.add_argument("--api-key", help="default: MSP_API_KEY")
        p.add_argument("--catalog-url", help="default: the local stack's catalog")
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
