"""Short names of software releases (``product.NAME``), resolved by the master.

A request or a supply whose URL is ``product.NAME`` gets the URL an admin published under NAME
(`publish`, table ``software_names``), else the shipped release of that name on the master's
machine (`slap.software_names.shipped_releases`; useful where nodes share the master's files,
as with the proxy). An unknown name is a 400 listing the known names. Only an admin (or the
proxy's local user) publishes; publishing a name again replaces its URL.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from partita.master.db.models import SoftwareName
from partita.master.services import audit
from partita.master.services.identity import Caller
from partita.master.services.validation import clean_software_release
from partita.slap import software_names
from partita.slap.errors import Forbidden


is_short_name = software_names.is_short_name


@dataclass(frozen=True)
class NamedRelease:
    name: str
    url: str
    source: str  # "published" or "shipped"


def known_names(session: Session) -> list[NamedRelease]:
    """Every name, published ones first in priority (a published name hides a shipped one)."""
    published = {row.name: NamedRelease(row.name, row.url, "published")
                 for row in session.scalars(select(SoftwareName))}
    shipped = {name: NamedRelease(name, url, "shipped")
               for name, url in software_names.shipped_releases().items()}
    merged = {**shipped, **published}
    return [merged[name] for name in sorted(merged)]


def lookup(session: Session, name: str) -> NamedRelease:
    """The release named `name` (``NAME`` or ``product.NAME``); a 400 listing the known ones."""
    name = software_names.split_name(name)
    row = session.scalar(select(SoftwareName).where(SoftwareName.name == name))
    if row is not None:
        return NamedRelease(row.name, row.url, "published")
    shipped = software_names.shipped_releases()
    if name in shipped:
        return NamedRelease(name, shipped[name], "shipped")
    raise software_names.unknown_name(name, [entry.name for entry in known_names(session)])


def resolve(session: Session, url: str) -> str:
    """`url` itself, or the release a ``product.NAME`` names."""
    if not software_names.is_short_name(url):
        return url
    return lookup(session, url).url


def publish(session: Session, caller: Caller, name: str, url: str) -> NamedRelease:
    """Publish (or re-point) `name` for `url`: admins only (and the proxy's local user)."""
    if not (caller.is_admin or caller.role == "local"):
        raise Forbidden("only an admin may publish software release names")
    name = software_names.split_name(name)
    url = clean_software_release(url)
    if software_names.is_short_name(url):
        url = resolve(session, url)
    row = session.scalar(select(SoftwareName).where(SoftwareName.name == name))
    if row is None:
        row = SoftwareName(name=name, url=url, published_by=caller.actor, published_at=time.time())
        session.add(row)
    else:
        row.url, row.published_by, row.published_at = url, caller.actor, time.time()
    if caller.authenticated:
        audit.record(session, caller, "software.publish", name, detail=url)
    session.flush()
    return NamedRelease(name, url, "published")
