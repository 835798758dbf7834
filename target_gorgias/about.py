"""``--about``: mark the settings a config needs, and show defaults as a user would type them.

No single setting is required on its own, so the JSON Schema ``required`` list stays empty;
instead each connection setting carries ``x-required`` (shown in the Markdown table's
Required column and in the JSON output), and the description says it in one sentence.
"""

from __future__ import annotations

import copy
import enum
import typing as t

from singer_sdk.about import AboutFormatter, AboutInfo, MarkdownFormatter

BASE_URL = "yes: subdomain or api_url"
AUTH = "yes: email + api_key, or access_token"
#: Setting -> what must be set, for the Required column.
REQUIRED_ONE_OF = {
    "subdomain": BASE_URL, "api_url": BASE_URL,
    "email": AUTH, "api_key": AUTH, "access_token": AUTH,
}
SUMMARY = ("Required: subdomain or api_url, and either email + api_key or access_token "
           "(plus a 'streams' entry for every stream you send).")


def _plain(value: t.Any) -> t.Any:
    """An enum default (``TargetLoadMethods.APPEND_ONLY``) as its value (``append-only``)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def readable_settings(settings: dict[str, t.Any]) -> dict[str, t.Any]:
    """A copy of the settings schema with plain defaults and ``x-required`` marks."""
    out = _plain(copy.deepcopy(settings))
    for name, mark in REQUIRED_ONE_OF.items():
        prop = out.get("properties", {}).get(name)
        if prop is not None:
            prop["x-required"] = mark
    return out


class RequiredMarkdown(MarkdownFormatter, format_name="gorgias-markdown"):
    """The SDK's Markdown, with ``x-required`` in the Required column."""

    def _generate_property_row(self, name: str, schema: dict[str, t.Any], *, required: bool,
                               parent_name: str | None = None) -> t.Generator[str, None, None]:
        rows = super()._generate_property_row(name, schema, required=required,
                                              parent_name=parent_name)
        first = next(rows)
        mark = schema.get("x-required")
        if mark and not parent_name:
            cells = first.split(" | ")
            cells[1] = mark
            first = " | ".join(cells)
        yield first
        yield from rows


def formatter(output_format: str | None) -> AboutFormatter:
    """The formatter for ``--format`` (ours for Markdown)."""
    if output_format == "markdown":
        return RequiredMarkdown()
    return AboutFormatter.get_formatter(output_format or "text")


def with_summary(info: AboutInfo) -> AboutInfo:
    """``info`` with readable settings and the requirement sentence in its description."""
    info.settings = readable_settings(info.settings)
    info.description = f"{(info.description or '').strip()} {SUMMARY}"
    return info
