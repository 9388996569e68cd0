"""The request transaction file shared by partita:request and the node (slap.request_transaction)."""
from __future__ import annotations

from pathlib import Path

from partita.slap import request_transaction


def test_titles_are_recorded_one_per_line_and_read_back_once_each(tmp_path: Path) -> None:
    assert request_transaction.file_name("slappart3") == ".slapos-request-transaction-slappart3"
    for title in ("db", "front", "db"):
        request_transaction.record(tmp_path, "slappart3", title)
    text = (tmp_path / ".slapos-request-transaction-slappart3").read_text()
    assert text == "db\nfront\ndb\n"
    assert request_transaction.titles(text) == ["db", "front"]
    assert request_transaction.titles("\n  \nweb\n") == ["web"]
    assert request_transaction.titles("") == []
