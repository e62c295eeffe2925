"""Kafka: topics, the contract's headers, the outbox relay and the idempotent inbox."""

from shared.messaging.inbox import (
    CONSUMED,
    Handler,
    Inbox,
    NotApplied,
    is_retryable,
)
from shared.messaging.kafka import (
    DEFAULT_PARTITIONS,
    METADATA_MAX_AGE_MS,
    Delivered,
    Headers,
    KafkaPublisher,
    OutboundMessage,
    Publisher,
    RememberingPartitioner,
    TopicState,
    create_topics,
    dlq_topic,
    envelope_headers,
    envelope_message,
    stored_headers,
    with_dead_letters,
)
from shared.messaging.outbox import (
    CHECKPOINT,
    BrokerLostHistory,
    OutboxRelay,
    lost_history,
)

__all__ = [
    "CHECKPOINT",
    "CONSUMED",
    "DEFAULT_PARTITIONS",
    "METADATA_MAX_AGE_MS",
    "BrokerLostHistory",
    "Delivered",
    "Handler",
    "Headers",
    "Inbox",
    "KafkaPublisher",
    "NotApplied",
    "OutboundMessage",
    "OutboxRelay",
    "Publisher",
    "RememberingPartitioner",
    "TopicState",
    "create_topics",
    "dlq_topic",
    "envelope_headers",
    "envelope_message",
    "is_retryable",
    "lost_history",
    "stored_headers",
    "with_dead_letters",
]
