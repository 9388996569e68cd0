"""The import rules of docs/design.md ("Layers"), declared as import-linter contracts in
``.importlinter``: slap imports no other package, master and node never import each other, the
database layer never imports services, allocation is free of SQLAlchemy, recipes import slap only."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
