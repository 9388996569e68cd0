"""Fixtures of the hello-web test (outside ``tests/``, so it declares the toolchain it needs)."""
from __future__ import annotations

import pytest

from partita.node.toolchain import Toolchain
from tests.support.toolchain import test_toolchain


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    """The node's toolchain (buildout + Partita's recipes), built once per version of the code."""
    return test_toolchain()
