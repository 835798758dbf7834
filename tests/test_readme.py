"""The README's generated tables match the code, and its commands exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from target_gorgias.endpoints import TEMPLATES

ROOT = Path(__file__).resolve().parent.parent


def test_readme_tables_are_current():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "update_readme.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_names_every_template_and_both_front_door_commands():
    text = (ROOT / "README.md").read_text()
    for template_id in TEMPLATES:
        assert f"`{template_id}`" in text
    assert "bash examples/demo.sh" in text and "bash .ci/run" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/python -m pytest" in ci and ".venv/bin/python -m pytest" in text
