"""`make bench`: usage records through the real pipeline, beside a raw baseline on the same stack.

The pipeline figure is taken again with a second replica of metering and of rating in the same consumer
groups (each its own process), beside the one-replica figure of the same run.

Metering's own figures follow (rating stopped meanwhile): N records through billing.usage.v1 until each
is stored and relayed onto metering.accepted.v1, and N through POST /v1/usage:batch (1,000 per request),
with p50 / p99 latencies.

The pipeline figure runs the same processes and settings as `make run` (metering → rating, with inboxes,
outboxes and relays): N usage records are published on billing.usage.v1 and timed until each one's charge
appears on rating.charges.v1. The baseline, measured in the same run on the same broker and Postgres, is
what the hardware does with no platform at all: a raw aiokafka produce + consume of the same records and an
asyncpg COPY of the same rows. Figures are printed, never asserted.

    BENCH_RECORDS=20000 make bench
    BENCH_ONLY=metering BENCH_METERING_RUNS=3 make bench   # only the baseline and metering, three times
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.metering.domain.acceptance import record_id
from shared.services import service
from shared.stack.stack import Stack, StackConfig
from shared.topics import by_name
from tests.support.stack import _pick_ports

N = int(os.environ.get("BENCH_RECORDS", "20000"))
TENANTS_CLIENTS = 20  # records spread over this many clients, so partitions share the work


PACED_RATE = float(os.environ.get("BENCH_PACED_RATE", "200"))
PACED_N = int(os.environ.get("BENCH_PACED_RECORDS", "1000"))
ONLY = os.environ.get("BENCH_ONLY", "")  # "metering": only the baseline and metering's own figures
METERING_RUNS = int(os.environ.get("BENCH_METERING_RUNS", "1"))  # repeat metering's figures in one run


def records(
    tenant: uuid.UUID, refs: list[str], n: int = N, prefix: str = "bench"
) -> list[tuple[str, bytes, uuid.UUID]]:
    out = []
    for i in range(n):
        ref = refs[i % len(refs)]
        doc = {
            "event_id": f"{prefix}-{i}",
            "source": "bench",
            "tenant_id": str(tenant),
            "company_ref": ref,
            "service_ref": "managed-device",
            "quantity": "1",
            "unit": "device",
            "occurred_at": "2026-01-15T10:00:00+00:00",
        }
        out.append((f"{tenant}:{ref}", json.dumps(doc).encode(), record_id(tenant, "bench", f"{prefix}-{i}")))
    return out


async def seed(stack: Stack) -> tuple[uuid.UUID, list[str], str]:
    tenant = uuid.uuid4()
    service_id, plan_id = uuid.uuid4(), uuid.uuid4()
    async with httpx.AsyncClient(
        base_url=stack.url(service("catalog")), timeout=60, headers={"Authorization": f"Bearer {stack.admin_token}"}
    ) as api:

        async def put(path: str, body: dict[str, Any]) -> None:
            r = await api.put(path, json=body)
            r.raise_for_status()

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
        await put(
            f"/v1/plans/{plan_id}",
            {
                "plan_id": str(plan_id),
                "name": "Devices",
                "plan_type": "usage-based",
                "billing_frequency": "monthly",
                "currency": "USD",
                "lines": [{"service_id": str(service_id)}],
            },
        )
        refs = []
        for i in range(TENANTS_CLIENTS):
            company_id, assignment_id, ref = uuid.uuid4(), uuid.uuid4(), f"client-{i}"
            refs.append(ref)
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
            await put(
                f"/v1/assignments/{assignment_id}",
                {
                    "assignment_id": str(assignment_id),
                    "company_id": str(company_id),
                    "plan_id": str(plan_id),
                    "start_date": "2026-01-01",
                },
            )
    await asyncio.sleep(3)  # let every read model take the catalog in before timing starts
    return tenant, refs, token


async def pipeline(
    stack: Stack,
    batch: list[tuple[str, bytes, uuid.UUID]],
    *,
    rate: float | None = None,
    topic: str = "billing.usage.v1",
) -> tuple[float, list[float]]:
    """Publish ``batch`` (as fast as possible, or at ``rate`` records/s) and time each record to its charge."""
    wanted = {rid for _, _, rid in batch}
    seen: dict[uuid.UUID, float] = {}
    sent_at: dict[uuid.UUID, float] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition("rating.charges.v1", p) for p in range(by_name("rating.charges.v1").partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)  # positioned at the end before anything is sent

    async def watch() -> None:
        while len(seen) < len(wanted):
            for msgs in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                now = time.perf_counter()
                for m in msgs:
                    doc = json.loads(m.value)
                    for rid in doc.get("source_records", []):
                        rid = uuid.UUID(rid)
                        if rid in wanted and rid not in seen:
                            seen[rid] = now

    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    watcher = asyncio.create_task(watch())
    started = time.perf_counter()
    for i, (key, value, rid) in enumerate(batch):
        if rate is not None:
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        sent_at[rid] = time.perf_counter()
        await producer.send(topic, value, key=key.encode())
        if rate is not None:
            await producer.flush()
    await producer.flush()
    await asyncio.wait_for(watcher, timeout=600)
    elapsed = time.perf_counter() - started
    await producer.stop()
    await consumer.stop()
    return elapsed, [seen[r] - sent_at[r] for r in wanted]


async def baseline(stack: Stack, batch: list[tuple[str, bytes, uuid.UUID]]) -> tuple[float, float]:
    topic = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 12, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=5)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.bootstrap,
        auto_offset_reset="earliest",
        group_id=f"bench-{uuid.uuid4().hex}",
        enable_auto_commit=False,
    )
    await producer.start()
    await consumer.start()
    started = time.perf_counter()
    for key, value, _ in batch:
        await producer.send(topic, value, key=key.encode())
    await producer.flush()
    got = 0
    while got < len(batch):
        for msgs in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
            got += len(msgs)
        await consumer.commit()
    kafka_s = time.perf_counter() - started
    await producer.stop()
    await consumer.stop()

    conn = await asyncpg.connect(stack.admin_dsn)
    try:
        await conn.execute("CREATE SCHEMA IF NOT EXISTS bench; DROP TABLE IF EXISTS bench.baseline")
        await conn.execute(
            "CREATE TABLE bench.baseline (tenant_id uuid, event_id text, payload jsonb, "
            "PRIMARY KEY (tenant_id, event_id))"
        )
        rows = [(uuid.UUID(int=1), f"bench-{i}", value.decode()) for i, (_, value, _) in enumerate(batch)]
        started = time.perf_counter()
        await conn.copy_records_to_table("baseline", schema_name="bench", records=rows)
        copy_s = time.perf_counter() - started
        await conn.execute("DROP SCHEMA bench CASCADE")
    finally:
        await conn.close()
    return kafka_s, copy_s


# -- rating alone: accepted records straight onto metering.accepted.v1 ------------------------------------


class RatingSeed:
    def __init__(
        self, tenant: uuid.UUID, token: str, clients: list[tuple[uuid.UUID, str]], flat: uuid.UUID, tiered: uuid.UUID
    ):
        self.tenant, self.token, self.clients, self.flat, self.tiered = tenant, token, clients, flat, tiered


async def seed_rating(stack: Stack) -> RatingSeed:
    """A sandbox tenant whose clients have a per-record (flat) line and a graduated line priced at close."""
    tenant, flat, tiered, flat_plan, tiered_plan = (uuid.uuid4() for _ in range(5))
    async with httpx.AsyncClient(
        base_url=stack.url(service("catalog")), timeout=60, headers={"Authorization": f"Bearer {stack.admin_token}"}
    ) as api:

        async def put(path: str, body: dict[str, Any]) -> None:
            r = await api.put(path, json=body)
            r.raise_for_status()

        await put(
            f"/v1/tenants/{tenant}",
            {
                "tenant_id": str(tenant),
                "name": "Rating bench",
                "mode": "sandbox",
                "timezone": "UTC",
                "base_currency": "USD",
            },
        )
        issued = await api.post(f"/v1/tenants/{tenant}/admin-keys", json={"email": "r@bench.example", "name": "R"})
        issued.raise_for_status()
        token = (await api.post("/v1/auth/token", json={"api_key": issued.json()["api_key"]})).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        for sid, code in ((flat, "flat-device"), (tiered, "tiered-device")):
            await put(
                f"/v1/services/{sid}",
                {
                    "service_id": str(sid),
                    "code": code,
                    "name": code,
                    "service_type": "Usage",
                    "default_rate": "2.50",
                    "currency": "USD",
                    "unit": "device",
                },
            )
        tiers = [
            {"up_to": "100", "unit_price": "2.50"},
            {"up_to": "1000", "unit_price": "2.00"},
            {"up_to": None, "unit_price": "1.50"},
        ]
        for pid, line in (
            (flat_plan, {"service_id": str(flat)}),
            (tiered_plan, {"service_id": str(tiered), "pricing": {"model": "graduated", "tiers": tiers}}),
        ):
            await put(
                f"/v1/plans/{pid}",
                {
                    "plan_id": str(pid),
                    "name": str(pid)[:8],
                    "plan_type": "usage-based",
                    "billing_frequency": "monthly",
                    "currency": "USD",
                    "lines": [line],
                },
            )
        clients = []
        for i in range(TENANTS_CLIENTS):
            company_id, ref = uuid.uuid4(), f"rclient-{i}"
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
            for pid in (flat_plan, tiered_plan):
                aid = uuid.uuid4()
                await put(
                    f"/v1/assignments/{aid}",
                    {
                        "assignment_id": str(aid),
                        "company_id": str(company_id),
                        "plan_id": str(pid),
                        "start_date": "2026-01-01",
                    },
                )
    await asyncio.sleep(3)
    return RatingSeed(tenant, token, clients, flat, tiered)


def accepted(seed: RatingSeed, service_id: uuid.UUID, code: str, n: int) -> list[tuple[str, bytes, uuid.UUID]]:
    out = []
    for i in range(n):
        company_id, ref = seed.clients[i % len(seed.clients)]
        rid = uuid.uuid4()
        doc = {
            "record_type": "usage",
            "record_id": str(rid),
            "tenant_id": str(seed.tenant),
            "source": "bench",
            "event_id": f"{code}-{i}",
            "company_id": str(company_id),
            "company_ref": ref,
            "service_id": str(service_id),
            "service_ref": code,
            "kind": "delta",
            "quantity": "1",
            "unit": "device",
            "occurred_at": "2026-01-15T10:00:00+00:00",
        }
        out.append((f"{seed.tenant}:{ref}", json.dumps(doc).encode(), rid))
    return out


async def rating_close(
    stack: Stack, seed: RatingSeed, batch: list[tuple[str, bytes, uuid.UUID]]
) -> tuple[float, float]:
    """Period-close model: publish ``batch`` (deferred to the close), wait until rating has them all, then time
    the clock advance that closes the period and prices them (the advance returns once consumers caught up)."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    started = time.perf_counter()
    for key, value, _ in batch:
        await producer.send("metering.accepted.v1", value, key=key.encode())
    await producer.flush()
    await producer.stop()
    conn = await asyncpg.connect(stack.admin_dsn)
    try:
        while True:
            taken = await conn.fetchval(
                "SELECT count(*) FROM rating.rated_records WHERE tenant_id = $1 AND disposition = 'at_close'",
                seed.tenant,
            )
            if taken >= len(batch):
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    ingest_s = time.perf_counter() - started
    async with httpx.AsyncClient(base_url=stack.url(service("catalog")), timeout=600) as api:
        started = time.perf_counter()
        r = await api.post(
            "/v1/test-clock/advance",
            json={"to": "2026-02-01T00:00:00+00:00"},
            headers={"Authorization": f"Bearer {seed.token}"},
        )
        r.raise_for_status()
        close_s = time.perf_counter() - started
    return ingest_s, close_s


async def metering_kafka(stack: Stack, batch: list[tuple[str, bytes, uuid.UUID]]) -> tuple[float, list[float]]:
    """Metering alone over Kafka: publish on billing.usage.v1, time each record until metering has stored it
    and relayed its AcceptedUsage onto metering.accepted.v1 (committed in Postgres, then published)."""
    wanted = {rid for _, _, rid in batch}
    seen: dict[uuid.UUID, float] = {}
    sent_at: dict[uuid.UUID, float] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition("metering.accepted.v1", p) for p in range(by_name("metering.accepted.v1").partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)

    async def watch() -> None:
        while len(seen) < len(wanted):
            for msgs in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                now = time.perf_counter()
                for m in msgs:
                    rid = uuid.UUID(json.loads(m.value)["record_id"])
                    if rid in wanted and rid not in seen:
                        seen[rid] = now

    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    watcher = asyncio.create_task(watch())
    started = time.perf_counter()
    for key, value, rid in batch:
        sent_at[rid] = time.perf_counter()
        await producer.send("billing.usage.v1", value, key=key.encode())
    await producer.flush()
    await asyncio.wait_for(watcher, timeout=600)
    elapsed = time.perf_counter() - started
    await producer.stop()
    await consumer.stop()
    return elapsed, [seen[r] - sent_at[r] for r in wanted]


HTTP_BATCH = 1000
HTTP_CONCURRENCY = int(os.environ.get("BENCH_HTTP_CONCURRENCY", "4"))


async def metering_http(
    stack: Stack, token: str, batch: list[tuple[str, bytes, uuid.UUID]]
) -> tuple[float, list[float], dict[str, int]]:
    """Metering alone over HTTP: POST /v1/usage:batch with 1,000 records per request, a few requests in
    flight; a record's latency is its request's (the answer comes after the commit). Returns the answers'
    counts, which must all be `accepted`."""
    docs = [json.loads(value) for _, value, _ in batch]
    chunks = [docs[i : i + HTTP_BATCH] for i in range(0, len(docs), HTTP_BATCH)]
    latencies: list[float] = []
    counts: dict[str, int] = {}
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for chunk in chunks:
        queue.put_nowait(chunk)
    async with httpx.AsyncClient(
        base_url=stack.url(service("metering")), headers={"Authorization": f"Bearer {token}"}, timeout=300
    ) as api:

        async def worker() -> None:
            while not queue.empty():
                chunk = queue.get_nowait()
                t0 = time.perf_counter()
                response = await api.post("/v1/usage:batch", json={"records": chunk})
                response.raise_for_status()
                took = time.perf_counter() - t0
                latencies.extend([took] * len(chunk))
                for answer, n in response.json()["counts"].items():
                    counts[answer] = counts.get(answer, 0) + n

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(HTTP_CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, counts


SCALED = ("metering", "rating")


async def with_second_replicas(stack: Stack, batch: list[tuple[str, bytes, uuid.UUID]]) -> float:
    """The pipeline figure again with two processes of metering and of rating sharing their groups' partitions
    (issue 18: honest even when 2 cores cap it). The second replicas then leave (gracefully, one per group)."""
    for name in SCALED:
        stack.start_service(service(name), replica=2)
    await asyncio.to_thread(stack.wait_ready, list(SCALED))
    groups = ["metering.usage", "rating.accepted"]
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # both members in each group before timing
            described = [(await admin.describe_consumer_groups([g]))[0].to_object()["groups"][0] for g in groups]
            if all(len(d["members"]) == 2 and d["state"] == "Stable" for d in described):
                break
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    try:
        elapsed, _ = await pipeline(stack, batch)
    finally:
        for name in SCALED:
            stack.stop_service(f"{name}#2")
    return elapsed


def rss_mb(stack: Stack) -> dict[str, float]:
    return {name: psutil.Process(p.pid).memory_info().rss / 2**20 for name, p in stack.processes.items()}


def main() -> None:
    only_metering = ONLY == "metering"
    home = Path(tempfile.mkdtemp(prefix="msp-bench-"))
    pg, kafka, offset = _pick_ports()
    stack = Stack(StackConfig(home=home, pg_port=pg, kafka_port=kafka, port_offset=offset))
    try:
        print(f"starting the stack (same processes and settings as `make run`) in {home} …", flush=True)
        stack.up()
        tenant, refs, token = asyncio.run(seed(stack))
        batch = records(tenant, refs)
        if not only_metering:
            print(f"driving {N} usage records through metering → rating …", flush=True)
            elapsed, latencies = asyncio.run(pipeline(stack, batch))
            print(f"then {PACED_N} more at {PACED_RATE:.0f} records/s for latency below saturation …", flush=True)
            _, paced = asyncio.run(pipeline(stack, records(tenant, refs, PACED_N, "paced"), rate=PACED_RATE))
            print(f"and {N} more with a second replica of metering and of rating (same groups) …", flush=True)
            two_elapsed = asyncio.run(with_second_replicas(stack, records(tenant, refs, N, "two")))
            rseed = asyncio.run(seed_rating(stack))
            print(f"rating alone: {N} accepted records on a per-record line, then {N} on a graduated one …", flush=True)
            r_elapsed, r_latencies = asyncio.run(
                pipeline(stack, accepted(rseed, rseed.flat, "flat-device", N), topic="metering.accepted.v1")
            )
            ingest_s, close_s = asyncio.run(
                rating_close(stack, rseed, accepted(rseed, rseed.tiered, "tiered-device", N))
            )
        kafka_s, copy_s = asyncio.run(baseline(stack, batch))
        memory = rss_mb(stack)
        # metering on its own: rating is stopped so it does not share the CPU while metering is timed
        stack.stop_service("rating")
        mk_runs: list[tuple[float, list[float]]] = []
        mh_runs: list[tuple[float, list[float], dict[str, int]]] = []
        for run in range(METERING_RUNS):
            print(f"driving {N} usage records through metering alone over Kafka …", flush=True)
            mk_runs.append(asyncio.run(metering_kafka(stack, records(tenant, refs, N, f"mk{run}"))))
            print(f"and {N} over HTTP ({HTTP_BATCH} per request, {HTTP_CONCURRENCY} in flight) …", flush=True)
            mh_runs.append(asyncio.run(metering_http(stack, token, records(tenant, refs, N, f"mh{run}"))))
    finally:
        stack.down()
        shutil.rmtree(home, ignore_errors=True)
    base_s = kafka_s + copy_s
    print()
    print(f"records                          {N}")
    if not only_metering:
        q = statistics.quantiles(latencies, n=100)
        pq = statistics.quantiles(paced, n=100)
        print(f"pipeline  publish → charge       {N / elapsed:10.0f} records/s   ({elapsed:.2f} s)")
        print(
            f"          with 2 replicas        {N / two_elapsed:10.0f} records/s   ({two_elapsed:.2f} s; metering and "
            f"rating x2, {elapsed / two_elapsed:.2f}x one replica on {os.cpu_count()} cores)"
        )
        print(f"          latency p50 / p99      {q[49] * 1000:10.0f} ms / {q[98] * 1000:.0f} ms  (at saturation)")
        print(
            f"          latency p50 / p99      {pq[49] * 1000:10.0f} ms / {pq[98] * 1000:.0f} ms  "
            f"(paced at {PACED_RATE:.0f} records/s)"
        )
        rq = statistics.quantiles(r_latencies, n=100)
        print(
            f"rating    accepted → charge      {N / r_elapsed:10.0f} records/s   ({r_elapsed:.2f} s, per-record model)"
        )
        print(f"          latency p50 / p99      {rq[49] * 1000:10.0f} ms / {rq[98] * 1000:.0f} ms  (at saturation)")
        print(
            f"          at-close ingest        {N / ingest_s:10.0f} records/s   ({ingest_s:.2f} s, graduated, deferred)"
        )
        print(
            f"          period close           {close_s:10.2f} s for {N} records / {TENANTS_CLIENTS} clients "
            "(advance → every period priced and completed)"
        )
    print(f"baseline  aiokafka produce+consume {N / kafka_s:8.0f} records/s   ({kafka_s:.2f} s)")
    print(f"          asyncpg COPY           {N / copy_s:10.0f} rows/s      ({copy_s:.2f} s)")
    print(f"          both, in sequence      {N / base_s:10.0f} records/s   ({base_s:.2f} s)")
    if not only_metering:
        print(f"ratio     pipeline / baseline    {base_s / elapsed:10.2f}")
    for run, ((mk_s, mk_lat), (mh_s, mh_lat, mh_counts)) in enumerate(zip(mk_runs, mh_runs, strict=True)):
        label = f" (run {run + 1} of {METERING_RUNS})" if METERING_RUNS > 1 else ""
        mkq, mhq = statistics.quantiles(mk_lat, n=100), statistics.quantiles(mh_lat, n=100)
        print(
            f"metering  Kafka: accepted+stored {N / mk_s:10.0f} records/s   "
            f"({mk_s:.2f} s; publish → metering.accepted.v1){label}"
        )
        print(f"          latency p50 / p99      {mkq[49] * 1000:10.0f} ms / {mkq[98] * 1000:.0f} ms")
        print(f"          HTTP: accepted+stored  {N / mh_s:10.0f} records/s   ({mh_s:.2f} s; answers {mh_counts})")
        print(f"          latency p50 / p99      {mhq[49] * 1000:10.0f} ms / {mhq[98] * 1000:.0f} ms  (per request)")
        print(f"ratio     metering Kafka / baseline {base_s / mk_s:7.2f}")
        print(f"          metering HTTP / baseline  {base_s / mh_s:7.2f}")
        print(f"target    20000 records/s: Kafka {N / mk_s / 20000:.0%}, HTTP {N / mh_s / 20000:.0%} of it")
    print("memory    RSS after the run      " + ", ".join(f"{k} {v:.0f} MB" for k, v in sorted(memory.items())))


if __name__ == "__main__":
    main()
