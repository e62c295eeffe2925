"""The publisher packs records into batches per partition itself: every record must land where
it says it did, in its key's order, on the partition Kafka's default partitioner picks."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner

from shared.runtime.config import Settings
from shared.messaging.kafka import BATCH_BYTES, KafkaPublisher, OutboundMessage, create_topics
from tests.integration.test_outbox_and_inbox import read_topic


async def fresh_topic(settings: Settings) -> str:
    assert settings.kafka_bootstrap
    topic = f"tests.packed.{uuid.uuid4().hex[:8]}"
    await create_topics(settings.kafka_bootstrap, [topic], partitions=3)
    return topic


async def test_records_that_fill_several_batches_land_where_their_acknowledgements_say(
    settings: Settings, publisher: KafkaPublisher
) -> None:
    topic = await fresh_topic(settings)
    keys = [f"stream-{n}".encode() for n in range(17)]
    padding = b"x" * 1500
    messages = [
        OutboundMessage(
            topic=topic,
            key=keys[n % len(keys)],
            value=b"%d:" % n + padding,
            headers=[("n", str(n).encode())],
        )
        for n in range(4 * BATCH_BYTES // len(padding))  # a third more than a batch each
    ]

    delivered = await publisher.publish(messages)

    assert len(delivered) == len(messages)
    records = await read_topic(settings.kafka_bootstrap, topic, len(messages))
    found = {(r.partition, r.offset): r for r in records}
    assert len(found) == len(messages)
    for message, where in zip(messages, delivered, strict=True):
        record = found[(where.partition, where.offset)]
        assert (record.key, record.value) == (message.key, message.value)
        assert list(record.headers) == message.headers
        assert where.partition == DefaultPartitioner()(message.key, [0, 1, 2], [0, 1, 2])
    for key in keys:
        mine = [where for m, where in zip(messages, delivered, strict=True) if m.key == key]
        assert [w.offset for w in mine] == sorted(w.offset for w in mine)


async def test_a_second_publish_continues_each_partition_after_the_first(
    settings: Settings, publisher: KafkaPublisher
) -> None:
    topic = await fresh_topic(settings)
    first = await publisher.publish(
        [OutboundMessage(topic, b"k%d" % n, b"first") for n in range(30)]
    )
    second = await publisher.publish(
        [OutboundMessage(topic, b"k%d" % n, b"second") for n in range(30)]
    )
    for partition in {d.partition for d in first}:
        before = max(d.offset for d in first if d.partition == partition)
        assert min(d.offset for d in second if d.partition == partition) > before
