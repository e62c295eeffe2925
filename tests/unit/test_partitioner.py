"""The relay's partitioner sends every key where Kafka's default partitioner would."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner

from shared.messaging.kafka import RememberingPartitioner


def test_every_key_goes_to_the_partition_kafkas_default_gives_it_however_often_it_comes() -> None:
    remembering = RememberingPartitioner(capacity=50)
    keys = [str(uuid.uuid4()).encode() for _ in range(200)]
    for count in (1, 3, 12):
        partitions = list(range(count))
        for key in keys * 2:  # the second time from memory (or after the memory was cleared)
            expected = DefaultPartitioner()(key, partitions, partitions)
            assert remembering(key, partitions, partitions) == expected


def test_a_message_without_a_key_goes_to_an_available_partition() -> None:
    remembering = RememberingPartitioner()
    assert remembering(None, [0, 1, 2], [1]) == 1
