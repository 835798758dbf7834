"""Helpers for end-to-end tests: run the real ``target-gorgias`` CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The console script installed next to this interpreter (the real CLI).
CLI = str(Path(sys.executable).with_name("target-gorgias"))
EMAIL = "agent@example.com"
API_KEY = "fake-api-key"


def schema(stream: str, properties: dict[str, Any], key_properties: list[str] | None = None
           ) -> dict[str, Any]:
    """A SCHEMA message."""
    return {"type": "SCHEMA", "stream": stream, "schema": {"type": "object",
            "properties": properties}, "key_properties": key_properties or []}


def record(stream: str, rec: dict[str, Any]) -> dict[str, Any]:
    """A RECORD message."""
    return {"type": "RECORD", "stream": stream, "record": rec}


def state(value: dict[str, Any]) -> dict[str, Any]:
    """A STATE message."""
    return {"type": "STATE", "value": value}


def infer_schema(stream: str, records: list[dict[str, Any]],
                 key_properties: list[str] | None = None) -> dict[str, Any]:
    """A SCHEMA message whose properties accept whatever the records hold."""
    props: dict[str, Any] = {}
    for rec in records:
        for key in rec:
            props.setdefault(key, {})
    return schema(stream, props, key_properties)


def config(base_url: str, streams: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A target config pointing at the fake server with its default credentials."""
    return {"api_url": base_url, "email": EMAIL, "api_key": API_KEY, "streams": streams,
            **extra}


@dataclass
class Result:
    """What one CLI run left behind."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def stdout_lines(self) -> list[Any]:
        """Every stdout line parsed as JSON (fails the test if one is not JSON)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def states(self) -> list[Any]:
        """State values on stdout, bare or as STATE messages."""
        out = []
        for msg in self.stdout_lines:
            if isinstance(msg, dict) and msg.get("type") == "STATE":
                out.append(msg["value"])
            elif isinstance(msg, dict) and msg.get("type") not in ("RECORD", "SCHEMA"):
                out.append(msg)
        return out

    @property
    def responses(self) -> list[dict[str, Any]]:
        """Response-stream records on stdout."""
        return [m["record"] for m in self.stdout_lines
                if isinstance(m, dict) and m.get("type") == "RECORD"]


def run_target(cfg: dict[str, Any], messages: list[Any], tmp_path: Path, *,
               timeout: float = 120, env: dict[str, str] | None = None,
               args: tuple[str, ...] = ()) -> Result:
    """Run ``target-gorgias --config <cfg>`` with ``messages`` on stdin."""
    cfg_path = tmp_path / f"config-{os.getpid()}-{id(messages)}.json"
    cfg_path.write_text(json.dumps(cfg))
    text = singer_text(messages)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_GORGIAS_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [CLI, "--config", str(cfg_path), *args], input=text, capture_output=True, text=True,
        timeout=timeout, env=full_env, check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def singer_text(messages: list[Any]) -> str:
    """Singer input: one JSON message a line (strings are taken as lines already)."""
    return "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)


def start_target(cfg_path: Path, messages: list[Any], *, env: dict[str, str] | None = None
                 ) -> subprocess.Popen[str]:
    """Start ``target-gorgias --config <cfg_path>`` in the background; its input is a file
    beside the config (so the input ends, as a finished tap's does)."""
    input_path = cfg_path.with_suffix(".singer")
    input_path.write_text(singer_text(messages))
    with input_path.open() as stdin:
        return subprocess.Popen([CLI, "--config", str(cfg_path)], stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
