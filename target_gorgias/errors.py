"""Every error the target raises, in one place, each built on a Singer SDK exception class.

- ``ConfigError`` (``ConfigurationError``): a setting is wrong; refused at start-up, every
  problem named by its setting.
- ``RecordError`` (``SkippableSyncError``): one record cannot become a request; names stream,
  record and field, and ``on_error`` decides whether the run goes on.
- ``TargetFailure`` (``FatalSyncError``): the run must stop; the last log line, exit 1.
- ``Terminated`` (a ``TargetFailure``): SIGTERM / SIGINT; exit 143 / 130.
- ``StoreError`` (``SingerSDKError``): the shared rate-limit store is unreachable; a warning,
  and the run paces itself alone.
"""

from __future__ import annotations

import signal

from singer_sdk.exceptions import (
    ConfigurationError,
    FatalSyncError,
    SingerSDKError,
    SkippableSyncError,
)


class ConfigError(ConfigurationError, ValueError):
    """The config is wrong; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class RecordError(SkippableSyncError, ValueError):
    """A record cannot become a request. The message names stream, record and field."""

    def __init__(self, stream: str, position: int, problem: str, fld: str | None = None) -> None:
        where = f"stream '{stream}', record {position}"
        if fld:
            where += f", field '{fld}'"
        super().__init__(f"{where}: {problem}")
        self.stream = stream
        self.position = position
        self.field = fld
        self.problem = problem


class TargetFailure(FatalSyncError):
    """The run must stop; the message says exactly what and where."""


class Terminated(TargetFailure):
    """SIGTERM/SIGINT arrived."""

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}: requests in flight were finished, no new ones sent")
        self.signum = signum


class StoreError(SingerSDKError):
    """The shared rate-limit store cannot be read or written."""
