"""Moved to `partita.master.db.changes` (the database layer announces changes when it commits).

Only a re-export for importers not yet updated; import from `partita.master.db.changes`.
"""
from partita.master.db.changes import (  # noqa: F401
    bump, changed_computers, mark_changed, mark_computer_changed, next_timestamp,
)
