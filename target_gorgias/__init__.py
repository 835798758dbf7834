"""target-gorgias: a Singer target that loads any Singer stream into the Gorgias REST API."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("target-gorgias")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
