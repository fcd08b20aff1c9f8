"""google.protobuf.Timestamp <-> timezone-aware UTC datetime."""

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def from_timestamp(timestamp: Timestamp) -> datetime:
    return timestamp.ToDatetime(tzinfo=UTC)


def to_timestamp(moment: datetime) -> Timestamp:
    timestamp = Timestamp()
    timestamp.FromDatetime(moment)
    return timestamp
