"""``target-gorgias --config config.json --test``: one read-only call, one line, exit 0 or 1.

``GET /api/account`` proves the base URL answers and the credentials are accepted; nothing is
written. The line names what to check when it fails (credentials, subdomain/api_url, network).
"""

from __future__ import annotations

import contextlib
import logging
import typing as t

from singer_sdk.configuration._dict_config import parse_environment_config

from target_gorgias.client import GorgiasClient, Result, auth_header
from target_gorgias.errors import ConfigError
from target_gorgias.pacer import Pacer
from target_gorgias.redact import install as install_redaction
from target_gorgias.redact import secret_forms
from target_gorgias.settings import load_settings

#: Retries of the check itself: a dead host should fail in seconds, not minutes.
CHECK_RETRIES = 1
#: The settings a connection check reads; the rest (streams, maps, ...) is not needed, so a
#: mistake there does not hide the answer to "do my URL and key work?".
CONNECTION_SETTINGS = ("subdomain", "api_url", "email", "api_key", "access_token",
                       "request_headers", "timeout", "ca_bundle")


def _hint(result: Result) -> str:
    """What to check, for failures ``Result.describe`` does not explain already."""
    if result.status_code is None:
        return " (check subdomain/api_url and that this machine can reach it)"
    if result.status_code in (404, 405) or (result.note or "").startswith("answer is not JSON"):
        return " (this is not a Gorgias API: check subdomain/api_url)"
    return ""


def connection_check(client: GorgiasClient) -> tuple[bool, str]:
    """Probe the account; return (passed, the one line to print)."""
    client.max_retries = min(client.max_retries, CHECK_RETRIES)
    result = client.probe()
    if result.ok:
        body = result.body if isinstance(result.body, dict) else {}
        who = ", ".join(f"{k} {body[k]}" for k in ("domain", "user_email") if body.get(k))
        return True, (f"connection check passed: GET {result.url} answered "
                      f"{result.status_code}" + (f" ({who})" if who else ""))
    text = result.describe()
    # describe() starts with the probe's stream name, which means nothing here.
    text = text.split(": ", 1)[1] if text.startswith("stream '") else text
    return False, f"connection check failed: {text}{_hint(result)}"


def connection_config(config: t.Mapping[str, t.Any], *, parse_env: bool, schema: dict,
                      env_prefix: str) -> dict[str, t.Any]:
    """The connection settings from the config files and, with ``--config ENV``, the
    environment (as Meltano passes them to a plugin command): numbers given as strings
    (``TARGET_GORGIAS_TIMEOUT=30``) are read as numbers."""
    merged = dict(config)
    if parse_env:
        merged.update(parse_environment_config(schema, env_prefix))
    out = {k: merged[k] for k in CONNECTION_SETTINGS if merged.get(k) not in (None, "")}
    if isinstance(out.get("timeout"), str):
        with contextlib.suppress(ValueError):  # if not a number, load_settings names it
            out["timeout"] = float(out["timeout"])
    return out


def run_check(config: t.Mapping[str, t.Any], logger: logging.Logger) -> tuple[bool, str]:
    """Check ``config``'s connection settings; (passed, the one line to print)."""
    try:
        s = load_settings(config)
    except ConfigError as exc:
        return False, f"connection check failed: bad config: {'; '.join(exc.errors)}"
    authorization = auth_header(s.auth_kind, s.email, s.secret)
    install_redaction(secret_forms(s.secret, s.email if s.auth_kind == "basic" else None))
    client = GorgiasClient(base_url=s.base_url, authorization=authorization, headers=s.headers,
                           timeout=s.timeout, pacer=Pacer(s.rate_limit, s.rate_limit_window),
                           max_retries=s.max_retries, max_concurrency=1,
                           ca_bundle=s.ca_bundle, logger=logger)
    try:
        return connection_check(client)
    finally:
        client.close()
