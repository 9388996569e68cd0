"""The node toolchain for tests: built once under ``$PARTITA_TEST_ROOT/toolchain`` and reused
while Partita's code does not change (`node.toolchain` keys it by a digest of the code)."""
from __future__ import annotations

import os
from pathlib import Path

from partita.node.config import DEFAULT_TOOLCHAIN_PYTHON
from partita.node.toolchain import Toolchain, ensure_toolchain

TOOLCHAIN_ROOT = Path(os.environ.get("PARTITA_TEST_ROOT", "/opt/partita-test")) / "toolchain"


def test_toolchain() -> Toolchain:
    return ensure_toolchain(TOOLCHAIN_ROOT, DEFAULT_TOOLCHAIN_PYTHON)


test_toolchain.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name
