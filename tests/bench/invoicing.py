"""`make bench` (second part): invoices per second for many clients, beside a raw baseline on the same stack.

Charges and each client's ``period.completed`` are published straight onto rating.charges.v1 (what rating
would send at a period close), then timed until every client's ``invoice.finalized`` is on
billing.invoices.v1: invoicing stores the charges, builds each draft, asks tax-currency for its taxes over
tax.requests.v1 / tax.results.v1, numbers it gap-free, renders its PDF for the lifecycle notice and
publishes it, all through inboxes and outboxes. The baseline is a raw aiokafka produce + consume of the same
number of messages on the same broker. Figures are printed, never asserted.

    python -m tests.bench.invoicing    # default: 10,000 clients x 20 charges (target: 100 invoices/s)
    BENCH_INVOICE_CLIENTS=500 BENCH_CHARGES_PER_CLIENT=5 python -m tests.bench.invoicing   # a quick look
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.services import service
from shared.stack.stack import Stack, StackConfig
from shared.topics import by_name
from tests.support.stack import _pick_ports

CLIENTS = int(os.environ.get("BENCH_INVOICE_CLIENTS", "10000"))
PER_CLIENT = int(os.environ.get("BENCH_CHARGES_PER_CLIENT", "20"))


async def seed(stack: Stack) -> tuple[uuid.UUID, uuid.UUID, list[tuple[uuid.UUID, str]]]:
    """A tenant with one USD service, CLIENTS clients in region US, and a 5 % US sales tax."""
    tenant, service_id = uuid.uuid4(), uuid.uuid4()
    async with httpx.AsyncClient(
        base_url=stack.url(service("catalog")), timeout=60, headers={"Authorization": f"Bearer {stack.admin_token}"}
    ) as api:

        async def put(path: str, body: dict[str, Any]) -> None:
            (await api.put(path, json=body)).raise_for_status()

        await put(
            f"/v1/tenants/{tenant}",
            {
                "tenant_id": str(tenant),
                "name": "Bench MSP",
                "mode": "sandbox",
                "timezone": "UTC",
                "base_currency": "USD",
            },
        )
        issued = await api.post(f"/v1/tenants/{tenant}/admin-keys", json={"email": "b@bench.example", "name": "B"})
        issued.raise_for_status()
        token = (await api.post("/v1/auth/token", json={"api_key": issued.json()["api_key"]})).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        await put(
            f"/v1/services/{service_id}",
            {
                "service_id": str(service_id),
                "code": "managed-device",
                "name": "Managed device",
                "service_type": "Usage",
                "default_rate": "2.50",
                "currency": "USD",
                "unit": "device",
            },
        )
        clients = []
        for i in range(CLIENTS):
            company_id, ref = uuid.uuid4(), f"client-{i}"
            clients.append((company_id, ref))
            await put(
                f"/v1/companies/{company_id}",
                {
                    "company_id": str(company_id),
                    "company_ref": ref,
                    "name": ref,
                    "billing_email": f"{ref}@example.com",
                    "region": "US",
                    "currency": "USD",
                    "billing_anchor": "2026-01-01",
                },
            )
    async with httpx.AsyncClient(base_url=stack.url(service("tax_currency")), timeout=60) as tax:
        rate_id = uuid.uuid4()
        body = {
            "tax_rate_id": str(rate_id),
            "region": "US",
            "name": "Sales tax",
            "rate": "5",
            "valid_from": "2020-01-01",
        }
        (
            await tax.put(f"/v1/tax-rates/{rate_id}", json=body, headers={"Authorization": f"Bearer {token}"})
        ).raise_for_status()
    await asyncio.sleep(5)  # let invoicing's and tax-currency's read models take the catalog in
    return tenant, service_id, clients


def messages(tenant: uuid.UUID, service_id: uuid.UUID, clients: list[tuple[uuid.UUID, str]]) -> list[tuple[str, bytes]]:
    out = []
    for company_id, ref in clients:
        key = f"{tenant}:{ref}"
        for i in range(PER_CLIENT):
            charge = {
                "type": "charge.created",
                "charge_id": str(uuid.uuid4()),
                "tenant_id": str(tenant),
                "company_id": str(company_id),
                "company_ref": ref,
                "period_start": "2026-01-01",
                "period_end": "2026-02-01",
                "kind": "usage",
                "service_id": str(service_id),
                "service_ref": "managed-device",
                "description": f"Managed device {i}",
                "quantity": "3",
                "unit": "device",
                "unit_price": "2.50",
                "amount": "7.50",
                "currency": "USD",
                "source_records": [str(uuid.uuid4())],
                "price_rule": {"plan_id": None, "model": "flat", "rate": "2.50", "rate_source": "service_default_rate"},
            }
            out.append((key, json.dumps(charge).encode()))
        done = {
            "type": "period.completed",
            "tenant_id": str(tenant),
            "company_id": str(company_id),
            "company_ref": ref,
            "period_start": "2026-01-01",
            "period_end": "2026-02-01",
            "charge_count": PER_CLIENT,
            "closed_at": "2026-02-01T00:00:00+00:00",
            "livemode": False,
        }
        out.append((key, json.dumps(done).encode()))
    return out


async def invoicing(stack: Stack, tenant: uuid.UUID, batch: list[tuple[str, bytes]]) -> float:
    topic = by_name("billing.invoices.v1")
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    started = time.perf_counter()
    for key, value in batch:
        await producer.send("rating.charges.v1", value, key=key.encode())
    await producer.flush()
    await producer.stop()
    seen = 0
    try:
        while seen < CLIENTS:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen += sum(1 for r in records if json.loads(r.value)["tenant_id"] == str(tenant))
    finally:
        await consumer.stop()
    return time.perf_counter() - started


async def baseline(stack: Stack, batch: list[tuple[str, bytes]]) -> float:
    """Raw aiokafka: produce the same messages to a fresh topic and consume them back."""
    name = f"bench-invoicing-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(name, num_partitions=12, replication_factor=1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=5)
    consumer = AIOKafkaConsumer(
        name, bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest", group_id=name, enable_auto_commit=False
    )
    await producer.start()
    await consumer.start()
    started = time.perf_counter()
    for key, value in batch:
        await producer.send(name, value, key=key.encode())
    await producer.flush()
    got = 0
    while got < len(batch):
        got += sum(len(r) for r in (await consumer.getmany(timeout_ms=500)).values())
    elapsed = time.perf_counter() - started
    await producer.stop()
    await consumer.stop()
    return elapsed


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="msp-bench-inv-"))
    pg, kafka, offset = _pick_ports()
    stack = Stack(StackConfig(home=home, pg_port=pg, kafka_port=kafka, port_offset=offset))
    try:
        print(f"starting the stack in {home} …", flush=True)
        stack.up()
        tenant, service_id, clients = asyncio.run(seed(stack))
        batch = messages(tenant, service_id, clients)
        print(f"invoicing {CLIENTS} clients x {PER_CLIENT} charges (taxed by tax-currency, PDF rendered) …", flush=True)
        elapsed = asyncio.run(invoicing(stack, tenant, batch))
        base = asyncio.run(baseline(stack, batch))
    finally:
        stack.down()
        shutil.rmtree(home, ignore_errors=True)
    print()
    print(f"invoices                          {CLIENTS} ({len(batch)} messages in)")
    print(f"invoicing charges → finalized    {CLIENTS / elapsed:10.1f} invoices/s   ({elapsed:.2f} s)")
    print(f"baseline  aiokafka produce+consume {len(batch) / base:8.0f} messages/s  ({base:.2f} s)")
    print(f"ratio     invoicing / baseline    {base / elapsed:10.3f}  (same messages in; the baseline does no work)")


if __name__ == "__main__":
    main()
