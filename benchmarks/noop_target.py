"""The baseline for overhead: an SDK target whose sink does nothing with its batches."""

from __future__ import annotations

from singer_sdk import typing as th
from singer_sdk.sinks import BatchSink
from singer_sdk.target_base import Target


class NoopSink(BatchSink):
    """Reads, validates and batches records like any SDK sink, then drops them."""

    def process_batch(self, context: dict) -> None:
        """Do nothing."""


class NoopTarget(Target):
    """A no-op Singer target (same SDK, same reader, same validation)."""

    name = "target-noop"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = NoopSink


if __name__ == "__main__":
    NoopTarget.cli()
