"""Who is calling: a user, a computer (node), or a partition acting for the instance it hosts.

Every service function takes a Caller. ``role`` says how the caller was identified:

    role        identified by                                   owner            computer  partition
    local       nothing: the proxy trusts its one machine       ``local``        (named)   (named)
    user        a user certificate or an API token              the user         -         -
    computer    a computer certificate                          computer's owner  its own   -
    partition   a partition certificate (or a computer acting   instance owner   its own   its own
                for one of its partitions)

In proxy mode every caller is ``local`` and a partition is whatever the request names (SlapOS's
slapproxy does the same); on an authenticated master the identity comes from the client
certificate or token only (`master.api.authentication`), never from a header or a form field.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from partita.slap.errors import Forbidden

LOCAL_OWNER = "local"
ROLES = ("local", "user", "computer", "partition")


@dataclass(frozen=True)
class Caller:
    owner: str = LOCAL_OWNER
    computer: str | None = None
    partition: str | None = None
    role: str = "local"
    admin: bool = False
    address: str = ""
    by_computer: bool = False  # a partition role taken by its computer's certificate (acting_as)

    @property
    def is_partition(self) -> bool:
        return self.partition is not None

    @property
    def authenticated(self) -> bool:
        """Identified by a certificate or token (not the proxy's trust-everyone ``local``)."""
        return self.role != "local"

    @property
    def is_admin(self) -> bool:
        """An authenticated admin user (the proxy has no admins: it manages no credentials)."""
        return self.role == "user" and self.admin

    @property
    def actor(self) -> str:
        """How the audit log names the caller: ``user:alice``, ``computer:COMP-1``, ``partition:C/P``."""
        if self.role == "user":
            return f"user:{self.owner}"
        if self.role == "computer" or self.by_computer:
            return f"computer:{self.computer}"
        if self.partition is not None:
            return f"partition:{self.computer}/{self.partition}"
        return "local"

    def acting_as(self, computer: str | None, partition: str | None) -> Caller:
        """The caller for a call that names a partition (form fields, X-SlapPartition header).

        The proxy believes the names. A computer may act for its own partitions; a partition
        only for itself; a user for none (403)."""
        if not computer or not partition:
            return self
        if self.role == "local":
            return replace(self, computer=computer, partition=partition)
        if self.role == "computer" and computer == self.computer:
            return replace(self, role="partition", partition=partition, by_computer=True)
        if self.role == "partition" and (computer, partition) == (self.computer, self.partition):
            return self
        raise Forbidden(f"{self.actor} may not act as partition {partition!r} of computer {computer!r}")
