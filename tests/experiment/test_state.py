"""`experiment.state`: the local state, written atomically and owner-only; a broken one refused."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from partita.experiment.errors import StateError
from partita.experiment.state import HostState, State, load, require, save


def test_round_trip_owner_only(tmp_path: Path) -> None:
    state = State(hosts=[HostState("h1", 1, "master", "/opt/x"), HostState("h2", 2, "node", "/opt/x",
                                                                          computer_id="COMP-1")], running=True)
    path = save(tmp_path / "dir", state)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "dir").st_mode & 0o077 == 0
    assert load(tmp_path / "dir") == state
    assert [entry.name for entry in (tmp_path / "dir").iterdir()] == ["experiment.json"]


def test_a_missing_or_foreign_state_is_refused(tmp_path: Path) -> None:
    assert load(tmp_path) is None
    with pytest.raises(StateError, match="no experiment under"):
        require(tmp_path)
    (tmp_path / "experiment.json").write_text('{"version": 1, "hosts": [{"nom": "x"}]}')
    with pytest.raises(StateError, match="is not an experiment state"):
        load(tmp_path)
