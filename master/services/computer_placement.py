"""What placement knows of a computer, set by its owner or an admin: tags, network, allocation scope.

`slapos computer tag set|unset`, `slapos computer network set`, `slapos computer open|close|drain`.
The computer itself (its node) may not change them: a node does not choose what it is sent. A change
that may let a waiting request in (a tag, a network, opening) allocates the waiting requests.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from partita.master.allocation.model import OPEN, SCOPES
from partita.master.allocation.sla import bad_tag_name, is_tag_name
from partita.master.db.models import Computer
from partita.master.services import access, allocator, audit
from partita.master.services.computers import get_computer
from partita.master.services.identity import Caller
from partita.master.services.validation import MAX_TITLE, clean_label
from partita.slap.errors import ValidationError

MAX_TAGS = 64


def _managed(session: Session, caller: Caller, reference: str, what: str) -> Computer:
    """The computer `reference`, if the caller is a person who may manage it (owner or admin)."""
    access.require_user(caller, what)
    computer = get_computer(session, reference)
    access.check_computer(session, caller, computer)
    return computer


def clean_tags(tags: Mapping[str, object]) -> dict[str, str]:
    """Tag names are short identifiers; values are one-line labels (pure)."""
    cleaned: dict[str, str] = {}
    for name, value in tags.items():
        if not is_tag_name(name):
            raise ValidationError(bad_tag_name(name))
        if not isinstance(value, str):
            raise ValidationError(f"tag {name!r} must be a string")
        cleaned[name] = clean_label(value, f"tag {name!r}", MAX_TITLE)
    return cleaned


def set_tags(session: Session, caller: Caller, reference: str, tags: Mapping[str, object],
             unset: Sequence[str] = ()) -> dict[str, str]:
    """Set `tags` and remove the `unset` names on the computer; its tags after the change."""
    computer = _managed(session, caller, reference, "tag computers")
    cleaned = clean_tags(tags)
    for name in unset:
        if not is_tag_name(name):
            raise ValidationError(bad_tag_name(name))
    current = {str(k): str(v) for k, v in (computer.tags or {}).items()}
    wanted = {k: v for k, v in {**current, **cleaned}.items() if k not in unset}
    if len(wanted) > MAX_TAGS:
        raise ValidationError(f"a computer has at most {MAX_TAGS} tags")
    if wanted != current:
        computer.tags = wanted
        _changed(session, caller, computer, "computer.tag",
                 " ".join([f"{k}={v}" for k, v in sorted(cleaned.items())] + [f"-{k}" for k in unset]))
    return wanted


def set_network(session: Session, caller: Caller, reference: str, network: str) -> str | None:
    """Put the computer in `network` ("" takes it out of any); its network after the change."""
    computer = _managed(session, caller, reference, "set the network of computers")
    wanted = clean_label(network, "network", MAX_TITLE) if network else None
    if wanted != computer.network:
        computer.network = wanted
        _changed(session, caller, computer, "computer.network", wanted or "")
    return wanted


def set_scope(session: Session, caller: Caller, reference: str, scope: str) -> str:
    """Open, close or drain the computer to new instances; its scope after the change."""
    if scope not in SCOPES:
        raise ValidationError(f"unknown allocation scope {scope!r}: one of {', '.join(SCOPES)}")
    computer = _managed(session, caller, reference, "open or close computers")
    if scope != computer.allocation_scope:
        computer.allocation_scope = scope
        _changed(session, caller, computer, f"computer.{scope}", "")
    return scope


def _changed(session: Session, caller: Caller, computer: Computer, action: str, detail: str) -> None:
    session.flush()
    if caller.authenticated:
        audit.record(session, caller, action, computer.reference, detail=detail)
    if computer.allocation_scope == OPEN:
        allocator.allocate_waiting(session, needs_supply=caller.authenticated)
