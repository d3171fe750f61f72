"""The test clock's lag probe against the real broker: it must never read "caught up" while records remain.

Tansu reports a partition's end as the base offset of its last record batch plus one. A group whose last
fetch stopped in the middle of that batch has committed past the reported end with records still to read.
"""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from shared.clock.lag import ConsumerLagProbe
from shared.stack.stack import Stack
from shared.topics import Topic, Visibility
from shared.topology import Subscription


async def a_topic(bootstrap: str) -> Topic:
    topic = Topic(f"lag-probe-{uuid.uuid4().hex[:8]}", 1, Visibility.INTERNAL, "lag probe spec")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic.name, 1, 1)])
    finally:
        await admin.close()
    return topic


async def fifty_records_in_one_batch(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        batch = producer.create_batch()
        for i in range(50):
            batch.append(key=None, value=f"record {i}".encode(), timestamp=None)
        await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


async def commit(bootstrap: str, group: str, tp: TopicPartition, offset: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


class TestTheLagProbe:
    async def test_a_group_stopped_in_the_middle_of_a_record_batch_is_still_behind(self, stack: Stack) -> None:
        topic = await a_topic(stack.bootstrap)
        await fifty_records_in_one_batch(stack.bootstrap, topic.name)
        group = f"lag-probe-{uuid.uuid4().hex[:8]}"
        probe = ConsumerLagProbe(stack.bootstrap, [Subscription("spec", group, topic)])
        tp = TopicPartition(topic.name, 0)

        await commit(stack.bootstrap, f"spec.{group}", tp, 10)  # read 10 of the batch's 50
        midway = await probe.measure()
        await commit(stack.bootstrap, f"spec.{group}", tp, 50)
        done = await probe.measure()

        assert midway.total == 40
        assert done.total == 0
