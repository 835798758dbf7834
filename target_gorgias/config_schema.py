"""The config, declared once: every setting's name, type, default and description.

``CONFIG_SCHEMA`` is what ``--about``, Meltano and the SDK's validation see; ``settings.py``
checks the values against it and reads the defaults (``DEFAULTS``) and the keys a stream
entry may hold (``STREAM_KEYS``, ``BATCH_KEYS``) from here.
"""

from __future__ import annotations

from typing import Any

from singer_sdk import typing as th

from target_gorgias.outcomes import MessageIntent, Mode, OnError

# No "default" keys below: the SDK writes schema defaults into the config, which would hide
# a template's own batch defaults (delete_tags batches unless told otherwise).
BATCH_SCHEMA = {
    "type": "object",
    "properties": {
        "enabled": {"type": "boolean"},
        "size": {"type": "integer", "minimum": 1},
        "grouping": {"type": "string", "enum": ["count", "field"]},
        "group_by": {"type": "string"},
        "wrap_key": {"type": "string"},
        "pluck": {"type": "string"},
    },
}
STREAM_SCHEMA = {
    "type": "object",
    "properties": {
        "endpoint": {"type": "string", "description": "Endpoint template id."},
        "method": {"type": "string", "enum": ["POST", "PUT", "PATCH", "DELETE",
                                              "post", "put", "patch", "delete"]},
        "path": {"type": "string"},
        "url": {"type": "string"},
        "content_format": {"type": "string"},
        "path_params": {"type": "object", "additionalProperties": {"type": "string"}},
        "keep_path_params": {"type": "boolean"},
        "exclude_attributes": {"type": "array", "items": {"type": "string"}},
        "include_attributes": {"type": "array", "items": {"type": "string"}},
        "headers": {"type": ["string", "object"]},
        "batch": BATCH_SCHEMA,
        "on_error": {"type": "string", "enum": [o.value for o in OnError]},
        "lookup_before_create": {"type": ["boolean", "string"],
                                 "enum": [True, False, "auto", "true", "false"]},
        "mode": {"type": "string", "enum": [m.value for m in Mode]},
        "match_on": {"type": "string"},
        "unflatten": {"type": "boolean"},
        "unflatten_separator": {"type": "string"},
        "message_intent": {"type": "string", "enum": [i.value for i in MessageIntent]},
    },
}


def _config_schema() -> dict:
    return th.PropertiesList(
        th.Property("subdomain", th.StringType,
                    description="Helpdesk subdomain: the 'acme' of https://acme.gorgias.com."),
        th.Property("api_url", th.StringType,
                    description="Base URL override, e.g. http://127.0.0.1:8080 for the bundled "
                                "fake server. Must be https:// unless the host is loopback."),
        th.Property("email", th.StringType,
                    description="HTTP Basic auth user: the email of the API key's user."),
        th.Property("api_key", th.StringType, secret=True,
                    description="Gorgias REST API key (HTTP Basic auth password)."),
        th.Property("access_token", th.StringType, secret=True,
                    description="OAuth2 bearer token, instead of email + api_key."),
        th.Property("request_headers", th.CustomType({"type": ["string", "object"]}),
                    description="Extra headers for every call: 'h1:v1,h2:v2' or a JSON object. "
                                "Authorization, Host and Content-Length cannot be set."),
        th.Property("streams", th.CustomType({"type": "object",
                                              "additionalProperties": STREAM_SCHEMA}),
                    description="Per stream (name or glob such as 'orders_*'): an endpoint "
                                "template or a manual method + path, with path_params, "
                                "exclude_attributes, headers, batch, on_error, mode "
                                "(create/update/upsert) + match_on, unflatten, "
                                "message_intent (import/send)."),
        th.Property("dry_run", th.BooleanType, default=False,
                    description="Build every request, send none; print the first "
                                "dry_run_sample requests in full and count the rest."),
        th.Property("dry_run_sample", th.IntegerType, default=10,
                    description="How many requests a dry run prints in full."),
        th.Property("timeout", th.NumberType, default=30,
                    description="Seconds to wait for one answer."),
        th.Property("rate_limit", th.IntegerType,
                    description="Requests allowed per window (default 40 with an API key, "
                                "80 with OAuth2)."),
        th.Property("rate_limit_window", th.NumberType, default=20,
                    description="Length of the rate-limit window in seconds (Enterprise: 10)."),
        th.Property("rate_limit_store", th.StringType, default="local",
                    description="Where runs on one account share its rate: local (a file "
                                "under the user's cache dir, for runs on this machine), "
                                "redis://host:port/db (runs on many machines) or none."),
        th.Property("rate_limit_store_path", th.StringType,
                    description="The local store's file (default: "
                                "$XDG_CACHE_HOME/target-gorgias/rate-<account hash>.json)."),
        th.Property("max_concurrency", th.IntegerType, default=4,
                    description="Requests in flight at once, across all streams."),
        th.Property("max_retries", th.IntegerType, default=5,
                    description="Retries of one request (5xx, timeouts, dropped "
                                "connections; 429s do not count, see max_retry_after)."),
        th.Property("max_retry_after", th.NumberType, default=300,
                    description="Longest Retry-After wait (seconds or HTTP date, on 429 and "
                                "503) honoured, for one pause and in total for one call; a "
                                "longer one fails the call naming the wait asked."),
        th.Property("lookup_grace_seconds", th.NumberType, default=2,
                    description="After a timeout, dropped connection or 5xx, wait this long "
                                "before the lookup that decides whether to re-send a create "
                                "(covers a write Gorgias commits after the client gave up)."),
        th.Property("on_error", th.StringType, default="fail", allowed_values=["fail", "continue"],
                    description="fail: stop at the first record Gorgias rejects. continue: "
                                "report it, go on, exit 0. Can be set per stream too."),
        th.Property("dead_letter_path", th.StringType,
                    description="JSONL file that receives every record that finally failed."),
        th.Property("emit_responses", th.BooleanType, default=False,
                    description="Write Gorgias' answers to stdout as a Singer stream (one "
                                "record per call), for chaining."),
        th.Property("response_stream", th.StringType, default="gorgias_responses",
                    description="Name of the response stream."),
        th.Property("response_include_request", th.BooleanType, default=False,
                    description="Add the request body to each response record."),
        th.Property("ca_bundle", th.StringType,
                    description="CA bundle file for a private CA (TLS is always verified)."),
        th.Property("max_body_bytes", th.IntegerType, default=1048576,
                    description="Largest JSON body sent; a bigger record is rejected."),
        th.Property("record_limit", th.IntegerType,
                    description="Take only the first N records of the input and emit no "
                                "state: with dry_run a preview of the exact requests, "
                                "without it a send-test of N real records."),
        th.Property("lookup_before_create",
                    th.CustomType({"type": ["boolean", "string"],
                                   "enum": [True, False, "auto", "true", "false"]}),
                    default="auto",
                    description="Before a create whose record has a lookup key (tickets, "
                                "messages: external_id; customers, users: email or "
                                "external_id; tags: name), look it up and skip the create if "
                                "it exists. auto: only the head of each stream, until a run "
                                "of lookups is absent (exactly-once after a crash at a small "
                                "constant cost); true: every create; false: none. Uncertain "
                                "outcomes are always looked up. Also per stream."),
        th.Property("preflight", th.BooleanType,
                    description="Check every body against what Gorgias accepts (unknown, "
                                "missing or wrong-typed fields) before sending. Default: on "
                                "for dry runs (flagged, not sent), off otherwise; true: such "
                                "records follow on_error without a request."),
        th.Property("progress_interval", th.NumberType, default=10,
                    description="Seconds between progress lines on long runs (delivered, "
                                "failed, request rate vs allowed, 429s, calls waiting); "
                                "0 turns them off."),
    ).to_dict()


#: The target's config schema (``--about``, Meltano, the SDK's validation).
CONFIG_SCHEMA: dict[str, Any] = _config_schema()
#: Each top-level setting's default, as declared above (None where it has none).
DEFAULTS: dict[str, Any] = {name: prop.get("default")
                            for name, prop in CONFIG_SCHEMA["properties"].items()}
#: The keys a stream entry and its ``batch`` may hold, as declared above.
STREAM_KEYS = frozenset(STREAM_SCHEMA["properties"])
BATCH_KEYS = frozenset(BATCH_SCHEMA["properties"])
