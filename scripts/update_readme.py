"""Regenerate the README's settings and template tables (a test checks they are current).

    .venv/bin/python scripts/update_readme.py          # rewrite README.md
    .venv/bin/python scripts/update_readme.py --check  # exit 1 if README.md is stale
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from target_gorgias.endpoints import ENDPOINTS

README = Path(__file__).resolve().parent.parent / "README.md"


def settings_table() -> str:
    """The Settings section of ``target-gorgias --about --format=markdown``."""
    cli = Path(sys.executable).with_name("target-gorgias")
    about = subprocess.run([str(cli), "--about", "--format=markdown"], capture_output=True,
                           text=True, check=True).stdout
    lines = about.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Setting"))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return "\n".join(lines[start:end])


def templates_table() -> str:
    """One row per endpoint template, with a record that would be sent to it."""
    rows = ["| id | method | path | what it does | example record |", "|---|---|---|---|---|"]
    for e in ENDPOINTS:
        methods = e.method + (f" ({', '.join(e.methods)} allowed)" if e.methods else "")
        example = json.dumps(e.example, ensure_ascii=False).replace("|", "\\|")
        rows.append(f"| `{e.id}` | {methods} | `{e.path}` | {e.summary} | `{example}` |")
    rows.append("")
    rows.append("Config for any of them: `\"streams\": {\"<stream>\": {\"endpoint\": \"<id>\"}}`; "
                "placeholders take the record field of the same name unless `path_params` "
                "says otherwise.")
    return "\n".join(rows)


def render(text: str) -> str:
    """``text`` with both generated sections replaced."""
    for name, body in (("settings-table", settings_table()), ("templates-table", templates_table())):
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = f"{head}{start}\n{body}\n{end}{tail}"
    return text


def main() -> int:
    """Rewrite README.md, or with --check report whether it is stale."""
    current = README.read_text()
    fresh = render(current)
    if "--check" in sys.argv:
        if fresh != current:
            print("README.md is stale: run scripts/update_readme.py")
            return 1
        return 0
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
