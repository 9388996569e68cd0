"""The catalog's tables, as SQLAlchemy 2 declarative models.

Every tree and supply has an owner. Instance titles are unique per (owner, scope): the scope of a
root instance is 0, the scope of every other instance of a tree is the id of the tree's root, so a
child requested by a child lands in the root's namespace (as in SlapOS).

The schema is changed only through Alembic migrations in ``master/migrations``; a test checks that
these models and the migrations agree.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON, BigInteger, Boolean, Float, ForeignKey, Integer, MetaData, String, Text, UniqueConstraint,
)
from sqlalchemy.sql.expression import false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROOT_SCOPE = 0


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON}


class Owner(Base):
    """A user of the catalog. In proxy mode everything belongs to the built-in user ``local``.
    An admin manages computers, users and tokens (see `master.services.access`)."""

    __tablename__ = "owners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Computer(Base):
    """A node. ``generation`` grows on every change that concerns it (the node's wake-up signal);
    ``last_contact`` is when its node last called (written at most every few seconds)."""

    __tablename__ = "computers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(255), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"))
    title: Mapped[str] = mapped_column(String(255), default="")
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    netmask: Mapped[str | None] = mapped_column(String(64), nullable=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    # Placement (`master.allocation`): free-form tags matched by the SLA's tag.NAME, the network
    # matched by network_guid and mode=unique_by_network, and whether it takes new instances.
    tags: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=dict)
    network: Mapped[str | None] = mapped_column(String(255), nullable=True)
    allocation_scope: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    last_contact: Mapped[float | None] = mapped_column(Float, nullable=True)  # the node's, on its calls
    # May fill the binary cache (`master.services.binary_cache`): set by an admin only.
    builder: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    partitions: Mapped[list[Partition]] = relationship(
        back_populates="computer", order_by="Partition.id", cascade="all, delete-orphan"
    )


class Partition(Base):
    """A computer partition: a unix user and a directory on a node, with its own addresses."""

    __tablename__ = "partitions"
    __table_args__ = (UniqueConstraint("computer_id", "reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    computer_id: Mapped[int] = mapped_column(ForeignKey("computers.id", ondelete="CASCADE"), index=True)
    reference: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="free", index=True)
    # The IPv6 network the node routes to this partition (canonical, e.g. "2001:db8::1:0/112"), if any.
    ipv6_range: Mapped[str | None] = mapped_column(String(64), nullable=True)

    computer: Mapped[Computer] = relationship(back_populates="partitions")
    addresses: Mapped[list[PartitionAddress]] = relationship(
        back_populates="partition", order_by="PartitionAddress.id", cascade="all, delete-orphan"
    )
    instance: Mapped[SoftwareInstance | None] = relationship(back_populates="partition", uselist=False)


class PartitionAddress(Base):
    __tablename__ = "partition_addresses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partition_id: Mapped[int] = mapped_column(ForeignKey("partitions.id", ondelete="CASCADE"), index=True)
    interface: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(64))
    netmask: Mapped[str] = mapped_column(String(64), default="")

    partition: Mapped[Partition] = relationship(back_populates="addresses")


class Supply(Base):
    """"Computer C must have software release U installed (or removed)", and what C reported."""

    __tablename__ = "supplies"
    __table_args__ = (UniqueConstraint("computer_id", "url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    computer_id: Mapped[int] = mapped_column(ForeignKey("computers.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"))
    url: Mapped[str] = mapped_column(Text)
    requested_state: Mapped[str] = mapped_column(String(16), default="available")
    reported_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    error_log: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[float] = mapped_column(Float)

    computer: Mapped[Computer] = relationship()


class SoftwareInstance(Base):
    """A requested deployment of a software release, allocated to a partition (or waiting for one)."""

    __tablename__ = "software_instances"
    __table_args__ = (UniqueConstraint("owner_id", "scope_id", "title"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guid: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    scope_id: Mapped[int] = mapped_column(Integer, default=ROOT_SCOPE)
    root_id: Mapped[int | None] = mapped_column(ForeignKey("software_instances.id"), nullable=True, index=True)
    requester_id: Mapped[int | None] = mapped_column(
        ForeignKey("software_instances.id", ondelete="SET NULL"), nullable=True, index=True
    )
    software_release: Mapped[str] = mapped_column(Text)
    software_type: Mapped[str] = mapped_column(String(255), default="default")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    connection_parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sla: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requested_state: Mapped[str] = mapped_column(String(16), default="started")
    reported_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    partition_id: Mapped[int | None] = mapped_column(
        ForeignKey("partitions.id"), nullable=True, unique=True
    )
    timestamp: Mapped[float] = mapped_column(Float, default=0.0)  # bumped on every change
    status_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)

    partition: Mapped[Partition | None] = relationship(back_populates="instance")
    owner: Mapped[Owner] = relationship()
    attachment: Mapped[SharedAttachment | None] = relationship(
        foreign_keys="SharedAttachment.shared_instance_id", back_populates="shared_instance",
        uselist=False, cascade="all, delete-orphan",
    )


class SharedAttachment(Base):
    """A shared instance served by a host instance (which owns the partition)."""

    __tablename__ = "shared_attachments"

    shared_instance_id: Mapped[int] = mapped_column(
        ForeignKey("software_instances.id", ondelete="CASCADE"), primary_key=True
    )
    host_instance_id: Mapped[int] = mapped_column(
        ForeignKey("software_instances.id", ondelete="CASCADE"), index=True
    )

    shared_instance: Mapped[SoftwareInstance] = relationship(
        foreign_keys=[shared_instance_id], back_populates="attachment"
    )
    host_instance: Mapped[SoftwareInstance] = relationship(foreign_keys=[host_instance_id])


class IssuedCertificate(Base):
    """A certificate the master's CA signed: whose it is, how long it lives, whether it was revoked.

    The master keeps the serial, never a key. A client certificate is accepted only if its serial
    is here, not revoked and not expired (`master.services.certificates.identify`). ``kind`` is
    ``user`` (``owner_id``), ``computer`` (``computer_id``) or ``partition`` (``computer_id`` and
    ``partition_reference``)."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), nullable=True,
                                                 index=True)
    computer_id: Mapped[int | None] = mapped_column(ForeignKey("computers.id", ondelete="CASCADE"),
                                                    nullable=True, index=True)
    partition_reference: Mapped[str | None] = mapped_column(String(255), nullable=True)
    not_before: Mapped[float] = mapped_column(Float)
    not_after: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    # A partition certificate whose key the master derives (SLAP XML's getComputerPartitionCertificate):
    # the label the key is derived from, and the certificate to answer again while it is valid.
    key_label: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pem: Mapped[str | None] = mapped_column(Text, nullable=True)


class Token(Base):
    """An enrolment token (single use: a new computer, a computer enrolling again, a new user) or
    an API token (a bearer credential of a user). Only the SHA-256 of the secret is stored."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    secret_hash: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    computer_id: Mapped[int | None] = mapped_column(ForeignKey("computers.id", ondelete="CASCADE"),
                                                    nullable=True)
    title: Mapped[str] = mapped_column(String(255), default="")
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AuditEvent(Base):
    """One change or refused call: who (``actor``, and the user it acts for), when, from where."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    actor_owner: Mapped[str] = mapped_column(String(255), default="", index=True)
    address: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    detail: Mapped[str] = mapped_column(Text, default="")


class SoftwareName(Base):
    """A short name an admin published for a software release (``slapos request T product.NAME``,
    `master.services.software_names`)."""

    __tablename__ = "software_names"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(Text)
    published_by: Mapped[str] = mapped_column(String(255), default="")
    published_at: Mapped[float] = mapped_column(Float)


class BinaryCacheEntry(Base):
    """The built software of one release on one platform (`master.services.binary_cache`): its file
    is ``<binary_cache_directory>/<key>.tar`` once ``state`` is ``complete``."""

    __tablename__ = "binary_cache_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    release_url: Mapped[str] = mapped_column(Text)
    platform: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    uploader: Mapped[str] = mapped_column(String(255))  # the builder computer's reference
    created_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))  # uploading | complete
