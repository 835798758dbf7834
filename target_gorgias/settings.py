"""Turn the raw config into checked, typed settings.

Every check here runs at start-up, so a bad config fails before any record is read,
with a message that names the setting (``streams.orders.batch.size: ...``).
"""

from __future__ import annotations

import difflib
import fnmatch
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from target_gorgias.body_rules import INTENTS
from target_gorgias.config_schema import BATCH_KEYS, DEFAULTS, STREAM_KEYS
from target_gorgias.endpoints import MANUAL_METHODS, MESSAGE_TEMPLATES, TEMPLATES, Endpoint, Lookup
from target_gorgias.errors import ConfigError
from target_gorgias.outcomes import MessageIntent, Mode, OnError

#: Headers a user may never set: the target owns them.
FORBIDDEN_HEADERS = frozenset({"authorization", "host", "content-length"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_SUBDOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MODES = tuple(m.value for m in Mode)
ON_ERROR_CHOICES = tuple(o.value for o in OnError)
#: The name `meltano config test` uses for its probe stream.
MELTANO_TEST_STREAM = "meltano_test_stream"
#: Settings the SDK or Meltano may pass to any loader: accepted (and ignored unless the SDK
#: uses them), never "unknown". The SDK's own built-ins come from the config schema.
PLATFORM_KEYS = frozenset({
    "add_record_metadata", "load_method", "batch_size_rows", "validate_records",
    "flattening_enabled", "flattening_max_depth", "flattening_max_key_length",
    "flattening_separator", "stream_maps", "stream_map_config", "faker_config",
    "hard_delete", "default_target_schema", "batch_config",
    "process_activate_version_messages",
})
#: Keys refused with their own message below (so they are not "unknown").
_REFUSED_KEYS = frozenset({"verify_ssl", "tls_verify"})
#: The credential settings: never shown in any message.
SECRET_KEYS = ("api_key", "access_token")
#: Characters a header value may not hold: controls other than TAB, and DEL.
_BAD_HEADER_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class BatchSettings:
    """How records of one stream are grouped into one request."""

    enabled: bool = False
    size: int = 100
    grouping: str = "count"
    group_by: str | None = None
    wrap_key: str | None = None
    pluck: str | None = None


@dataclass(frozen=True)
class StreamSettings:
    """Where and how one stream's records are sent."""

    key: str
    endpoint_id: str
    method: str
    path: str
    placeholders: tuple[str, ...]
    path_params: Mapping[str, str]
    keep_path_params: bool = False
    exclude_attributes: tuple[str, ...] = ()
    include_attributes: tuple[str, ...] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    batch: BatchSettings = BatchSettings()
    on_error: OnError = OnError.FAIL
    lookup: Lookup | None = None
    lookup_before_create: bool | str = "auto"  # True, False or "auto"
    mode: Mode = Mode.CREATE
    match_on: str | None = None
    update_path: str | None = None
    read_only: tuple[str, ...] = ()
    unflatten_separator: str | None = None
    message_intent: MessageIntent | None = None  # for templates that create messages


def did_you_mean(word: str, choices: Any, n: int = 3) -> str:
    """`` (did you mean 'dry_run'?)`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, sorted(str(c) for c in choices), n=n, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def unknown_keys(config: Mapping[str, Any], known: Any) -> list[str]:
    """One error per top-level key that is neither a setting nor a platform key.

    A typo is refused rather than ignored: ``dryrun: true`` must never lead to real writes.
    """
    allowed = set(known) | PLATFORM_KEYS | _REFUSED_KEYS
    errors = []
    for key in sorted(str(k) for k in config if k not in allowed):
        hint = did_you_mean(key, set(known) - PLATFORM_KEYS) or " (see --about for the settings)"
        errors.append(f"{key}: unknown setting{hint}")
    return errors


@dataclass(frozen=True)
class Settings:
    """The whole target config, checked (every field set by ``load_settings``; the defaults
    live in the config schema, ``config_schema.DEFAULTS``)."""

    base_url: str
    auth_kind: str
    email: str | None
    secret: str
    headers: Mapping[str, str]
    streams: Mapping[str, StreamSettings]
    dry_run: bool
    dry_run_sample: int
    timeout: float
    rate_limit: int
    rate_limit_window: float
    max_concurrency: int
    max_retries: int
    on_error: OnError
    dead_letter_path: str | None
    emit_responses: bool
    response_stream: str
    response_include_request: bool
    ca_bundle: str | None
    max_body_bytes: int
    lookup_before_create: bool | str
    record_limit: int | None
    preflight: bool
    progress_interval: float
    lookup_grace_seconds: float
    max_retry_after: float
    rate_limit_store: str
    rate_limit_store_path: str | None
    #: Start-up notices (e.g. a credential that was trimmed), logged as warnings.
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def stream(self, name: str) -> StreamSettings | None:
        """The settings of stream ``name``: an exact key wins, then the longest glob."""
        if name in self.streams:
            return self.streams[name]
        globs = [k for k in self.streams if _is_glob(k) and fnmatch.fnmatchcase(name, k)]
        if not globs:
            return None
        return self.streams[max(globs, key=lambda k: (len(k.replace("*", "")), len(k)))]


def _is_glob(key: str) -> bool:
    return any(c in key for c in "*?[")


def is_loopback(host: str) -> bool:
    """True for localhost and any loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_headers(value: Any, where: str) -> dict[str, str]:
    """Parse ``h1:v1,h2:v2`` or a JSON object into checked headers.

    A value may contain ``:`` (only the first one splits). Raises ``ConfigError``
    naming the header for CR/LF, an empty or invalid name, a missing ``:`` or a
    header the target owns (Authorization, Host, Content-Length).
    """
    if value in (None, ""):
        return {}
    pairs: list[tuple[str, Any]]
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError([f"{where}: not valid JSON ({exc.msg})"]) from None
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, str):
        pairs = []
        for part in value.split(","):
            if not part.strip():
                continue
            name, sep, val = part.partition(":")
            if not sep:
                raise ConfigError([f"{where}: header {part.strip()!r} has no ':' (use name:value)"])
            pairs.append((name, val))
    else:
        raise ConfigError([f"{where}: must be a 'name:value,name:value' string or an object"])
    headers: dict[str, str] = {}
    errors: list[str] = []
    for raw_name, raw_val in pairs:
        name = str(raw_name).strip()
        val = "" if raw_val is None else str(raw_val).strip()
        if not name:
            errors.append(f"{where}: a header has an empty name")
        elif any(c in name for c in "\r\n") or any(c in val for c in "\r\n\0"):
            errors.append(f"{where}: header {name!r} contains a line break")
        elif _BAD_HEADER_CHARS.search(val):
            errors.append(f"{where}: header {name!r} has a control character in its value")
        elif not _latin1(val):
            errors.append(f"{where}: header {name!r} has a value that cannot be sent in an "
                          "HTTP header (only Latin-1 characters can; percent-encode the rest)")
        elif not _TOKEN.match(name):
            errors.append(f"{where}: header name {name!r} is not a valid HTTP header name")
        elif name.lower() in FORBIDDEN_HEADERS:
            errors.append(f"{where}: header {name!r} is set by the target and cannot be overridden")
        else:
            headers[name] = val
    if errors:
        raise ConfigError(errors)
    return headers


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _base_url(config: Mapping[str, Any], errors: list[str]) -> str:
    api_url = config.get("api_url")
    subdomain = config.get("subdomain")
    if api_url:
        parts = urlsplit(str(api_url))
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            errors.append(f"api_url: {api_url!r} is not an http(s) URL with a host")
        elif parts.scheme == "http" and not is_loopback(host):
            errors.append(
                f"api_url: {api_url!r} must use https:// (plain http is allowed only for "
                "loopback hosts such as 127.0.0.1)"
            )
        elif parts.username or parts.password or parts.query or parts.fragment:
            errors.append("api_url: must not contain credentials, a query or a fragment")
        return str(api_url).rstrip("/")
    if subdomain:
        if not _SUBDOMAIN.match(str(subdomain)):
            errors.append(
                f"subdomain: {subdomain!r} is not a valid subdomain (the 'acme' of acme.gorgias.com)"
            )
        return f"https://{subdomain}.gorgias.com"
    errors.append("subdomain or api_url: one of them is required")
    return ""


def _rate_limit_store(value: Any, errors: list[str]) -> str:
    """``local`` (default), ``none`` or a ``redis://`` / ``rediss://`` / ``unix://`` URL."""
    if value in (None, ""):
        return "local"
    text = str(value).strip()
    if text in ("local", "none"):
        return text
    parts = urlsplit(text)
    if (parts.scheme in ("redis", "rediss") and parts.hostname) or (parts.scheme == "unix" and parts.path):
        return text
    errors.append("rate_limit_store: must be 'local', 'none' or a redis://host:port/db URL, "
                  f"got {(describe_store(text))!r}")
    return "local"


def describe_store(value: str) -> str:
    """The store setting for messages, without a password."""
    parts = urlsplit(value)
    return value.replace(parts.password, "***") if parts.password else value


def _credential(config: Mapping[str, Any], key: str, errors: list[str], notes: list[str]
                ) -> str | None:
    """A credential setting as a string, trimmed (with a note); never shows the value."""
    value = config.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        kind = "an object" if isinstance(value, Mapping) else f"a JSON {type(value).__name__}"
        errors.append(f"{key}: must be a string, got {kind} (the value is not shown)")
        return None
    trimmed = value.strip()
    if trimmed != value:
        if not trimmed:
            errors.append(f"{key}: is only whitespace")
            return None
        notes.append(f"{key}: leading/trailing whitespace was trimmed (the value is not shown)")
    if any(ord(c) < 32 or ord(c) == 127 for c in trimmed) or not _latin1(trimmed):
        errors.append(f"{key}: holds characters that cannot be sent in an HTTP header "
                      "(the value is not shown)")
        return None
    return trimmed


def _auth(config: Mapping[str, Any], errors: list[str], notes: list[str]
          ) -> tuple[str, str | None, str]:
    email = config.get("email")
    if isinstance(email, str):
        email = email.strip() or None
    elif email is not None:
        errors.append(f"email: must be a string, got {email!r}")
        email = None
    api_key = _credential(config, "api_key", errors, notes)
    token = _credential(config, "access_token", errors, notes)
    if token and (email or api_key):
        errors.append("access_token and email/api_key: choose exactly one auth method")
    if token:
        return "bearer", None, token
    if email and api_key:
        return "basic", str(email), api_key
    if any(config.get(k) not in (None, "") for k in SECRET_KEYS):
        if not email and api_key:
            errors.append("email: required with api_key (HTTP Basic auth)")
        return "basic", None, ""
    if email or api_key:
        missing = "api_key" if email else "email"
        errors.append(f"{missing}: required with {'email' if email else 'api_key'} (HTTP Basic auth)")
    else:
        errors.append("auth: set email and api_key (API key) or access_token (OAuth2)")
    return "basic", None, ""


def _pos_int(config: Mapping[str, Any], key: str, default: int, errors: list[str],
             minimum: int = 1, label: str | None = None) -> int:
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        errors.append(f"{label or key}: must be an integer >= {minimum}, got {value!r}")
        return default
    return value


def _pos_number(config: Mapping[str, Any], key: str, default: float, errors: list[str]) -> float:
    value = config.get(key)
    if value is None:
        return float(default)
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)) or value <= 0:
        errors.append(f"{key}: must be a number > 0, got {value!r}")
        return float(default)
    return float(value)


def _interval(config: Mapping[str, Any], key: str, default: float, errors: list[str]) -> float:
    """Seconds >= 0 (0 turns the feature off); a numeric string (from the environment) too."""
    value = config.get(key)
    if value is None:
        return default
    try:
        number = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        number = -1.0
    if number < 0:
        errors.append(f"{key}: must be a number of seconds >= 0 (0 turns it off), got {value!r}")
        return default
    return number


def _grace(config: Mapping[str, Any], errors: list[str]) -> float:
    """``lookup_grace_seconds``: a number >= 0 (0: look up at once)."""
    value = config.get("lookup_grace_seconds")
    default = float(DEFAULTS["lookup_grace_seconds"])
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)) or value < 0:
        errors.append(f"lookup_grace_seconds: must be a number >= 0, got {value!r}")
        return default
    return float(value)


def _choice(value: Any, choices: tuple[str, ...], where: str, errors: list[str]) -> str:
    if value not in choices:
        errors.append(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
        return choices[0]
    return str(value)


def _str_list(value: Any, where: str, errors: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        errors.append(f"{where}: must be a list of field names")
        return ()
    return tuple(value)


def _batch(raw: Any, defaults: Mapping[str, Any], where: str, errors: list[str]) -> BatchSettings:
    merged: dict[str, Any] = dict(defaults)
    if raw is not None:
        if not isinstance(raw, Mapping):
            errors.append(f"{where}: must be an object")
            return BatchSettings()
        for key in sorted(set(raw) - BATCH_KEYS):
            errors.append(f"{where}.{key}: unknown setting (known: {', '.join(sorted(BATCH_KEYS))})")
        merged.update(raw)
    size = _pos_int(merged, "size", 100, errors, label=f"{where}.size")
    grouping = _choice(merged.get("grouping", "count"), ("count", "field"), f"{where}.grouping",
                       errors)
    group_by = merged.get("group_by")
    if grouping == "field" and not group_by:
        errors.append(f"{where}.group_by: required when grouping is 'field'")
    for key in ("group_by", "wrap_key", "pluck"):
        if merged.get(key) is not None and not (isinstance(merged[key], str) and merged[key]):
            errors.append(f"{where}.{key}: must be a non-empty string")
    return BatchSettings(
        enabled=bool(merged.get("enabled", False)), size=size, grouping=grouping,
        group_by=group_by, wrap_key=merged.get("wrap_key"), pluck=merged.get("pluck"),
    )


def _lookup_mode(value: Any, where: str, errors: list[str]) -> bool | str:
    """``lookup_before_create``: true, false or "auto" (also as strings, from the env)."""
    if isinstance(value, bool) or value == "auto":
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "auto"):
        text = value.strip().lower()
        return text if text == "auto" else text == "true"
    errors.append(f"{where}: must be true, false or \"auto\", got {value!r}")
    return "auto"


def _stream(key: str, raw: Any, base_url: str, default_on_error: str,
            default_lookup: bool | str, errors: list[str], upsert_by_default: bool = False
            ) -> StreamSettings | None:
    where = f"streams.{key}"
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: must be an object with 'endpoint' or 'method' + 'path'")
        return None
    for unknown in sorted(set(raw) - STREAM_KEYS):
        errors.append(f"{where}.{unknown}: unknown setting (known: {', '.join(sorted(STREAM_KEYS))})")
    template: Endpoint | None = None
    method = raw.get("method")
    path = raw.get("path")
    if raw.get("endpoint") is not None:
        template = TEMPLATES.get(str(raw["endpoint"]))
        if template is None:
            hint = did_you_mean(str(raw["endpoint"]), TEMPLATES)
            errors.append(
                f"{where}.endpoint: unknown template {raw['endpoint']!r}"
                + (hint or f" (known: {', '.join(sorted(TEMPLATES))})")
            )
            return None
        if path or raw.get("url"):
            errors.append(f"{where}: give either 'endpoint' or 'path'/'url', not both")
        path = template.path
        method = str(method).upper() if method else template.method
        if method == "PATCH" and "PATCH" not in template.allowed_methods:
            errors.append(
                f"{where}.method: {template.id} does not offer PATCH: Gorgias documents only "
                f"{template.method} for it (its PUT is already a partial update); remove "
                "'method' or use a manual 'method' + 'path'"
            )
        elif method not in template.allowed_methods:
            errors.append(
                f"{where}.method: {template.id} allows {', '.join(template.allowed_methods)}, "
                f"got {raw.get('method')!r}"
            )
    else:
        if raw.get("url"):
            if path:
                errors.append(f"{where}: give either 'path' or 'url', not both")
            url = str(raw["url"])
            if not url.startswith(base_url + "/"):
                errors.append(
                    f"{where}.url: {url!r} is not under the configured base URL {base_url!r} "
                    "(credentials are only ever sent to that host)"
                )
                return None
            path = url[len(base_url):]
        if not method or not path:
            errors.append(f"{where}: needs 'endpoint' (a template id) or 'method' and 'path'")
            return None
        method = str(method).upper()
        if method not in MANUAL_METHODS:
            errors.append(f"{where}.method: must be one of {', '.join(MANUAL_METHODS)}, got "
                          f"{raw.get('method')!r}")
    path = str(path)
    if not path.startswith("/") or any(c in path for c in "?#\r\n \\"):
        errors.append(f"{where}.path: {path!r} must start with '/' and hold no '?', '#', '\\' or spaces")
    placeholders = tuple(_PLACEHOLDER.findall(path))
    for name in placeholders:
        if not name.isidentifier():
            errors.append(f"{where}.path: placeholder {{{name}}} is not a valid name")
    content_format = raw.get("content_format", "json")
    if content_format != "json":
        errors.append(f"{where}.content_format: Gorgias only accepts 'json', got {content_format!r}")
    path_params_raw = raw.get("path_params") or {}
    path_params: dict[str, str] = {}
    if not isinstance(path_params_raw, Mapping):
        errors.append(f"{where}.path_params: must be an object placeholder -> record field")
    else:
        for name, fld in path_params_raw.items():
            if name not in placeholders:
                errors.append(f"{where}.path_params.{name}: the path {path!r} has no {{{name}}}")
            elif not isinstance(fld, str) or not fld:
                errors.append(f"{where}.path_params.{name}: must be a record field name")
            else:
                path_params[name] = fld
    for name in placeholders:
        path_params.setdefault(name, name)
    headers: dict[str, str] = {}
    try:
        headers = parse_headers(raw.get("headers"), f"{where}.headers")
    except ConfigError as exc:
        errors.extend(exc.errors)
    include = raw.get("include_attributes")
    default_mode: str = Mode.CREATE
    if upsert_by_default and template is not None and template.sync is not None:
        default_mode = Mode.UPSERT  # the SDK's load_method: upsert, where the template can
    mode = Mode(_choice(raw.get("mode", default_mode), MODES, f"{where}.mode", errors))
    match_on = raw.get("match_on")
    sync = template.sync if template else None
    if mode != Mode.CREATE:
        if template is None or sync is None or template.lookup is None:
            with_sync = sorted(t.id for t in TEMPLATES.values() if t.sync)
            errors.append(f"{where}.mode: '{mode}' needs a create template that Gorgias can "
                          f"look up ({', '.join(with_sync)})")
        else:
            keys = template.lookup.keys
            match_on = match_on or keys[0]
            if match_on not in keys:
                errors.append(f"{where}.match_on: {template.id} can match on "
                              f"{' or '.join(keys)}, got {match_on!r}")
    elif match_on is not None:
        errors.append(f"{where}.match_on: only used with mode update or upsert")
    if mode != Mode.CREATE and isinstance(raw.get("batch"), Mapping) and raw["batch"].get("enabled"):
        errors.append(f"{where}: mode '{mode}' sends one record at a time; turn batch off")
    separator = raw.get("unflatten_separator", "__") if raw.get("unflatten") else None
    if separator is not None and not (isinstance(separator, str) and separator):
        errors.append(f"{where}.unflatten_separator: must be a non-empty string")
    batch = _batch(raw.get("batch"), template.batch if template else {}, f"{where}.batch", errors)
    intent: MessageIntent | None = None
    if template is not None and template.id in MESSAGE_TEMPLATES:
        intent = MessageIntent(_choice(raw.get("message_intent", "import"), INTENTS,
                                       f"{where}.message_intent", errors))
    elif raw.get("message_intent") is not None:
        errors.append(f"{where}.message_intent: only for templates that create messages "
                      f"({', '.join(sorted(MESSAGE_TEMPLATES))})")
    return StreamSettings(
        key=key,
        endpoint_id=template.id if template else "manual",
        method=method,
        path=path,
        placeholders=placeholders,
        path_params=path_params,
        keep_path_params=bool(raw.get("keep_path_params", False)),
        exclude_attributes=_str_list(raw.get("exclude_attributes"), f"{where}.exclude_attributes",
                                     errors),
        include_attributes=(None if include is None
                            else _str_list(include, f"{where}.include_attributes", errors)),
        headers=headers,
        batch=batch,
        on_error=OnError(_choice(raw.get("on_error", default_on_error), ON_ERROR_CHOICES,
                                 f"{where}.on_error", errors)),
        lookup=template.lookup if template and method == "POST" else None,
        lookup_before_create=_lookup_mode(raw.get("lookup_before_create", default_lookup),
                                          f"{where}.lookup_before_create", errors),
        mode=mode,
        match_on=match_on if mode != Mode.CREATE else None,
        update_path=sync.update_path if sync and mode != Mode.CREATE else None,
        read_only=sync.read_only if sync and mode != Mode.CREATE else (),
        unflatten_separator=separator,
        message_intent=intent,
    )


def _dead_letter_path(value: Any, errors: list[str]) -> str | None:
    """The dead-letter file: a file path (not a directory) whose parent exists or can be
    created, writable. Nothing is created at start-up."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        errors.append(f"dead_letter_path: must be a file path, got {value!r}")
        return None
    path = Path(value).expanduser()
    if value.endswith(("/", os.sep)) or path.is_dir():
        errors.append(f"dead_letter_path: {value!r} is a directory; give a file path such as "
                      f"'{value.rstrip('/')}/dead_letters.jsonl'")
        return None
    if path.exists():
        if not path.is_file() or not os.access(path, os.W_OK):
            errors.append(f"dead_letter_path: {value!r} is not a writable file")
            return None
        return value
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        errors.append(f"dead_letter_path: {value!r} cannot be created: {str(parent)!r} is "
                      "not a directory")
    elif not os.access(parent, os.W_OK | os.X_OK):
        errors.append(f"dead_letter_path: {value!r} cannot be created: {str(parent)!r} is "
                      "not writable")
    return value


def _ca_bundle(value: Any, errors: list[str]) -> str | None:
    if value in (None, ""):
        return None
    path = Path(str(value)).expanduser()
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        errors.append(f"ca_bundle: {value!r} is not a readable file ({exc.strerror or exc})")
        return None
    return str(value)


def load_settings(config: Mapping[str, Any], known: Any = None) -> Settings:
    """Check ``config`` and build ``Settings``; raise ``ConfigError`` listing every problem.

    ``known``: the top-level setting names; when given, any other key is an error.
    """
    errors: list[str] = []
    notes: list[str] = []
    if known is not None:
        errors.extend(unknown_keys(config, known))
    load_method = getattr(config.get("load_method"), "value", config.get("load_method"))
    if load_method == "overwrite":
        errors.append("load_method: 'overwrite' has no meaning for Gorgias (nothing can be "
                      "replaced wholesale); use append-only (create) or upsert")
    base_url = _base_url(config, errors)
    auth_kind, email, secret = _auth(config, errors, notes)
    headers: dict[str, str] = {}
    try:
        headers = parse_headers(config.get("request_headers"), "request_headers")
    except ConfigError as exc:
        errors.extend(exc.errors)
    on_error = OnError(_choice(config.get("on_error", DEFAULTS["on_error"]), ON_ERROR_CHOICES, "on_error",
                               errors))
    streams_raw = config.get("streams") or {}
    streams: dict[str, StreamSettings] = {}
    lookup_mode = _lookup_mode(config.get("lookup_before_create", DEFAULTS["lookup_before_create"]),
                               "lookup_before_create", errors)
    if not isinstance(streams_raw, Mapping):
        errors.append("streams: must be an object: stream name (or glob) -> stream settings")
    else:
        for key, raw in streams_raw.items():
            parsed = _stream(str(key), raw, base_url, on_error, lookup_mode, errors,
                             upsert_by_default=load_method == "upsert")
            if parsed:
                streams[str(key)] = parsed
    default_limit = 80 if auth_kind == "bearer" else 40
    ca_bundle = _ca_bundle(config.get("ca_bundle"), errors)
    dead_letter_path = _dead_letter_path(config.get("dead_letter_path"), errors)
    preflight_raw = config.get("preflight")
    if preflight_raw is not None and not isinstance(preflight_raw, bool):
        errors.append(f"preflight: must be true or false, got {preflight_raw!r}")
    dry_run = bool(config.get("dry_run", DEFAULTS["dry_run"]))
    warnings = tuple(
        f"streams.{key}: manual method PATCH: Gorgias documents only PUT (a partial update); "
        "PATCH may be answered 405"
        for key, st in streams.items() if st.method == "PATCH" and st.endpoint_id == "manual")
    if config.get("verify_ssl") is False or config.get("tls_verify") is False:
        errors.append("TLS verification cannot be turned off; use ca_bundle for a private CA")
    settings = Settings(
        base_url=base_url,
        auth_kind=auth_kind,
        email=email,
        secret=secret,
        headers=headers,
        streams=streams,
        dry_run=dry_run,
        dry_run_sample=_pos_int(config, "dry_run_sample", DEFAULTS["dry_run_sample"], errors,
                                minimum=0),
        timeout=_pos_number(config, "timeout", DEFAULTS["timeout"], errors),
        rate_limit=_pos_int(config, "rate_limit", default_limit, errors),
        rate_limit_window=_pos_number(config, "rate_limit_window", DEFAULTS["rate_limit_window"],
                                      errors),
        max_concurrency=_pos_int(config, "max_concurrency", DEFAULTS["max_concurrency"], errors),
        max_retries=_pos_int(config, "max_retries", DEFAULTS["max_retries"], errors, minimum=0),
        on_error=on_error,
        dead_letter_path=dead_letter_path,
        emit_responses=bool(config.get("emit_responses", DEFAULTS["emit_responses"])),
        response_stream=str(config.get("response_stream") or DEFAULTS["response_stream"]),
        response_include_request=bool(config.get("response_include_request",
                                                 DEFAULTS["response_include_request"])),
        ca_bundle=ca_bundle,
        max_body_bytes=_pos_int(config, "max_body_bytes", DEFAULTS["max_body_bytes"], errors),
        lookup_before_create=lookup_mode,
        lookup_grace_seconds=_grace(config, errors),
        max_retry_after=_pos_number(config, "max_retry_after", DEFAULTS["max_retry_after"], errors),
        record_limit=(_pos_int(config, "record_limit", 0, errors)
                      if config.get("record_limit") is not None else None),
        notes=tuple(notes),
        preflight=dry_run if not isinstance(preflight_raw, bool) else preflight_raw,
        warnings=warnings,
        progress_interval=_interval(config, "progress_interval", DEFAULTS["progress_interval"],
                                    errors),
        rate_limit_store=_rate_limit_store(config.get("rate_limit_store"), errors),
        rate_limit_store_path=config.get("rate_limit_store_path") or None,
    )
    if errors:
        raise ConfigError(errors)
    return settings
