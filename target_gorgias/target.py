"""The target: config schema, stream -> sink routing, state, and the CLI's error handling."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import typing as t
from decimal import Decimal
from pathlib import Path

import click
from singer_sdk.exceptions import (
    ConfigValidationError,
    InvalidInputLine,
    RecordsWithoutSchemaException,
)
from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.sinks import RecordSink, Sink

from target_gorgias import about as about_doc
from target_gorgias.check import connection_config, run_check
from target_gorgias.client import STOP_GRACE
from target_gorgias.config_schema import CONFIG_SCHEMA
from target_gorgias.errors import ConfigError, RecordError, TargetFailure, Terminated
from target_gorgias.reader import LineReader
from target_gorgias.redact import SecretFilter, config_secrets
from target_gorgias.redact import install as install_redaction
from target_gorgias.run import Run
from target_gorgias.sdk_hooks import StreamingTarget
from target_gorgias.settings import (
    MELTANO_TEST_STREAM,
    SECRET_KEYS,
    load_settings,
)
from target_gorgias.sinks import GorgiasSink


class TargetGorgias(StreamingTarget):
    """Singer target for the Gorgias helpdesk REST API: every record becomes a write call."""

    name = "target-gorgias"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = GorgiasSink
    message_reader_class = LineReader

    def __init__(self, *, config: t.Any = None, parse_env_config: bool = False,
                 validate_config: bool = True, setup_mapper: bool = True,
                 message_reader: t.Any = None) -> None:
        self._signals = 0
        self._listening = False
        self._terminated: int | None = None
        super().__init__(config=config, parse_env_config=parse_env_config,
                         validate_config=validate_config, setup_mapper=setup_mapper,
                         message_reader=message_reader)
        install_redaction(config_secrets(self.config))
        try:
            settings = load_settings(self.config, known=self.config_jsonschema["properties"])
        except ConfigError as exc:
            raise ConfigValidationError("Config validation failed", errors=exc.errors) from None
        self.run = Run(settings, self.logger)
        for warning in settings.warnings:
            self.logger.warning("%s", warning)
        # Records are sent as they arrive (sdk_hooks -> scheduler): the SDK's drains send
        # nothing, so draining sinks one at a time costs nothing.
        self.max_parallelism = 1
        secrets = install_redaction([*config_secrets(self.config), *self.run.secrets()])
        self.run.output.redact = secrets.redact
        self.run.dead_letters.redact = secrets.redact
        for note in settings.notes:
            self.logger.warning("%s", note)
        self.run.output.start()

    def clean_config_error(self, exc: ConfigValidationError) -> ConfigValidationError:
        """The SDK's schema errors with no credential in any message.

        An error about ``api_key``/``access_token`` (e.g. a number instead of a string)
        names the setting but never its value; every other message is redacted too.
        """
        clean = SecretFilter(config_secrets(self._config)).redact
        errors = []
        for error in exc.errors:
            key = next((k for k in SECRET_KEYS if error.endswith(f"in config['{k}']")), None)
            errors.append(f"{key}: must be a string (the value is not shown)" if key
                          else clean(error))
        return ConfigValidationError("Config validation failed", errors=errors,
                                     schema=exc.schema)

    @classmethod
    def cb_config(cls, ctx: t.Any, param: t.Any, value: tuple[str, ...]) -> _ConfigInput:
        """Read the ``--config`` files: a missing file, a directory, text that is not JSON
        (NaN and Infinity included) or JSON that is not an object is one line naming the
        file, and exit 1 (no traceback)."""
        merged: dict[str, t.Any] = {}
        parse_env = False
        for name in value:
            if name == "ENV":
                parse_env = True
                continue
            merged |= _read_config_file(name, cls.logger)
        return _ConfigInput(config=merged, parse_env=parse_env)

    # -- routing ----------------------------------------------------------------------

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        """The probe sink for ``meltano config test``, else the Gorgias sink (if configured)."""
        if stream_name == MELTANO_TEST_STREAM:
            return ProbeSink
        maps = self.mapper.stream_maps.get(stream_name) or []
        if maps and all(isinstance(m, RemoveRecordTransform) for m in maps):
            return DroppedSink  # `__else__: __NULL__` or `<stream>: __NULL__`: nothing to send
        if self.run.settings.stream(stream_name) is None:
            keys = ", ".join(sorted(self.run.settings.streams)) or "none"
            raise TargetFailure(
                f"stream '{stream_name}' has no entry in the 'streams' setting (configured: "
                f"{keys}). Add one, e.g. \"streams\": {{\"{stream_name}\": "
                "{\"endpoint\": \"create_ticket\"}}, or a glob such as \"*\"."
            )
        return GorgiasSink

    def on_signal(self, signum: int) -> None:
        """SIGTERM/SIGINT: start no request, give those in flight a few seconds, emit what
        was delivered. A second signal exits at once (still writing the safe state)."""
        self._signals += 1
        run = getattr(self, "run", None)
        if run is None:  # still starting: nothing was sent
            os._exit(128 + signum)
        if self._signals > 1:
            self._exit_now(signum)
        self.logger.info("Received signal %d: sending no more requests; those in flight get "
                         "%gs to finish", signum, STOP_GRACE)
        run.client.stop.set()
        run.client.hurry.set()
        self._terminated = signum
        if self._listening:
            raise Terminated(signum)

    def _exit_now(self, signum: int) -> t.NoReturn:
        """Second signal: write the state of what was delivered, then exit without waiting
        for anything (requests in flight are uncertain: no state passes them)."""
        self.logger.warning("Received signal %d again: exiting now; requests in flight are "
                            "abandoned (their outcome is unknown and no state passes them)",
                            signum)
        # In a thread: the main thread may hold the stdout lock the signal interrupted.
        writer = threading.Thread(target=self.run.emit_state, daemon=True)
        writer.start()
        writer.join(1.0)
        _hard_exit(128 + signum)

    # -- CLI ----------------------------------------------------------------------------

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """The SDK's command plus ``--test``: the connection check."""
        command = super().get_singer_command()
        command.params.append(click.Option(
            ["--test"], is_flag=True, default=False,
            help="Check the base URL and credentials with one read-only call "
                 "(GET /api/account), send nothing, print one line, exit 0 or 1."))
        return command

    @classmethod
    def about_info(cls, sdk_info: t.Any) -> t.Any:
        """``--about`` with what is required marked and defaults rendered readably."""
        return about_doc.with_summary(sdk_info)

    @classmethod
    def print_about(cls, output_format: str | None = None) -> None:
        """Print ``--about`` (Markdown with a Required column that says what to set)."""
        print(about_doc.formatter(output_format).format_about(cls._get_about_info()))

    @classmethod
    def invoke(  # type: ignore[override]
        cls, *, about: bool = False, about_format: str | None = None,
        config: _ConfigInput | None = None, file_input: t.IO[str] | None = None,
        test: bool = False,
    ) -> None:
        """Run the target from the CLI: one clear error line and a non-zero exit on failure."""
        if about:
            cls.print_about(about_format)
            sys.exit(0)
        config = config or _ConfigInput()
        if test:
            sys.exit(cls.check_connection(config))
        cls.print_version(print_fn=cls.logger.info)
        target = cls(config=config.config, validate_config=True,
                     parse_env_config=config.parse_env)
        code = target.run_cli(file_input)
        if target.run.client.abandoned:
            _hard_exit(code)  # abandoned requests' threads must not be joined at exit
        sys.exit(code)

    @classmethod
    def check_connection(cls, config: _ConfigInput) -> int:
        """``--test``: print ``connection check passed: ...`` or the reason; the exit code."""
        schema = cls.config_jsonschema
        cfg = connection_config(config.config, parse_env=config.parse_env, schema=schema,
                                env_prefix=cls._env_var_prefix)
        passed, line = run_check(cfg, cls.logger)
        click.echo(line)
        return 0 if passed else 1

    def run_cli(self, file_input: t.IO[str] | None) -> int:
        """Read all input, deliver it, emit safe state; return the exit code.

        On failure the error is the last line logged (after the summary): Meltano shows a
        loader's last line as the reason it failed.
        """
        code, error = 0, ""
        self.run.progress.start()
        try:
            self._listening = True
            try:
                self.listen(file_input)
            finally:
                self._listening = False
        except Terminated as exc:
            code, error = 128 + exc.signum, f"Run {exc}"
        except (TargetFailure, RecordError, InvalidInputLine) as exc:
            code, error = 1, f"Run failed: {exc}"
        except RecordsWithoutSchemaException as exc:
            code, error = 1, (f"Run failed at {self._where()}: a RECORD came before its "
                              f"stream's SCHEMA ({_one_line(exc)})")
        except Exception as exc:
            self.logger.debug("Traceback of the failure", exc_info=True)
            code, error = 1, f"Run failed at {self._where()}: {_one_line(exc)}"
        finally:
            self.run.scheduler.close()
            abandoned = self.run.client.close()
            self.run.progress.stop()
        if self._terminated and not code:  # the signal came after the input was read
            code = 128 + self._terminated
            error = f"Run {Terminated(self._terminated)}"
        if abandoned:
            error = error.replace("requests in flight were finished",
                                  f"{abandoned} request(s) still in flight after "
                                  f"{STOP_GRACE:g}s were abandoned (outcome unknown: not "
                                  "counted, no state passes them)")
        if code:
            self._write_state_message({})
        self._log_summary(code)
        if error:
            self.logger.error("%s", error)
        return code

    def _where(self) -> str:
        reader = self.message_reader
        return reader.where() if isinstance(reader, LineReader) else "input"

    def _log_summary(self, code: int) -> None:
        run = self.run
        if run.settings.record_limit is not None:
            self.logger.info("record_limit %d: took the first %d records, ignored %d; "
                             "no state emitted", run.settings.record_limit,
                             run.records_seen - run.records_ignored, run.records_ignored)
        if run.dry_run is not None:
            self.logger.info("%s", run.dry_run.summary())
            self.logger.info("DRY RUN: no state emitted (nothing was delivered)")
            return
        st = run.client.stats
        self.logger.info(
            "Summary: %s. %d requests, %d retries, %d throttled (429), %d lookups, "
            "%d uncertain re-sends, %.1fs waiting for the rate limit; %s%s",
            run.summary.line(), st.requests, st.retries, st.throttled, st.lookups,
            st.uncertain_resends, run.pacer.waited, run.pacer.describe(),
            "" if not code else " (run did not complete)",
        )


class _NoSchemaDump(logging.Filter):
    """Drop the SDK's DEBUG dump of the whole config schema at start-up.

    It is noise, and it holds the word "error" (the ``on_error`` setting): ``meltano config
    test`` fails a loader if any output line contains that word, at any log level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the schema dump only."""
        return not str(record.msg).startswith("Validating config using jsonschema")


logging.getLogger(TargetGorgias.name).addFilter(_NoSchemaDump())


def _hard_exit(code: int) -> t.NoReturn:
    """Flush stdout, stderr and the log handlers, then end the process without joining
    threads (a request that hangs must not hold the exit)."""
    for flushable in [*logging.getLogger().handlers, sys.stdout, sys.stderr]:
        with contextlib.suppress(Exception):  # exiting anyway
            flushable.flush()
    os._exit(code)


def _no_constant(name: str) -> t.Any:
    raise ValueError(f"{name} is not valid JSON")


def _read_config_file(name: str, logger: logging.Logger) -> dict[str, t.Any]:
    """One ``--config`` file as a dict, or one error line naming the file and exit 1."""
    path = Path(name)
    problem = None
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
        if not isinstance(data, dict):
            problem = f"holds a JSON {type(data).__name__}, not an object of settings"
    except FileNotFoundError:
        problem = "was not found"
    except IsADirectoryError:
        problem = "is a directory, not a JSON file"
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or exc})"
    except UnicodeDecodeError:
        problem = "is not UTF-8 text"
    except json.JSONDecodeError as exc:
        problem = f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    except ValueError as exc:  # NaN / Infinity
        problem = f"is not valid JSON ({exc})"
    if problem:
        logger.error("Config file '%s' %s", name, problem)
        _hard_exit(1)
    return t.cast(dict, data)


def _one_line(exc: BaseException) -> str:
    """The exception as one line (SDK validation errors carry no stream: the caller adds it)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:500] + "..."


class ProbeSink(RecordSink):
    """``meltano_test_stream``: check the credentials with ``GET /api/account``; send nothing."""

    def setup(self) -> None:
        """Probe the account once, when the stream's SCHEMA arrives."""
        target = t.cast(TargetGorgias, self._target_ref)
        if target.run.dry_run is not None:
            return
        result = target.run.client.probe()
        if not result.ok:
            raise TargetFailure(f"connection check failed: {result.describe()}")
        self.logger.info("Connection check passed: GET /api/account answered %s",
                         result.status_code)

    def __init__(self, target: TargetGorgias, stream_name: str, schema: dict,
                 key_properties: t.Sequence[str] | None) -> None:
        self._target_ref = target
        super().__init__(target, stream_name, schema, key_properties)

    def process_record(self, record: dict, context: dict) -> None:
        """Test records are never sent to Gorgias."""


class DroppedSink(RecordSink):
    """A stream the stream maps remove: the SDK still asks for its sink; it sends nothing."""

    def process_record(self, record: dict, context: dict) -> None:
        """Never called with a record (the map removes them all)."""


__all__ = ["TargetGorgias"]

