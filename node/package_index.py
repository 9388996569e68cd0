"""Where builds get Python packages: the node's ``[slapos] package_index`` (issue 13).

A node that reaches only its master builds from the master's package index
(``<master_url>/packages/simple/``, `master.api.packages`); any other PEP 503 index works too.
`pip_environment` is what every pip the node starts is given: the toolchain's build
(`node.toolchain`), each software buildout and each instance buildout (``partita:pip`` runs pip
with buildout's environment), as SlapOS's and pip's own variables::

    PIP_INDEX_URL                   the index
    PIP_CERT                        the CA to verify an https index with (below)
    PIP_DISABLE_PIP_VERSION_CHECK   1: pip asks no one for its own newest version
    PIP_CONFIG_FILE                 /dev/null: no pip configuration of the machine (``/etc/pip.conf``
                                    and the like) adds other sources: the index is the only one

Without the option the toolchain's build takes these variables from the node's environment and
buildouts get none (pip's defaults: PyPI).

**The CA.** ``partita_ca_file`` may be readable by root only, and builds run as the software
and partition users. The CA certificate is public: its certificates (nothing else of the file)
are copied to ``software_root/.package-index-ca.pem``, mode 0644, written atomically by the node
into its own ``software_root`` (root's in root mode: no build user can replace it), and
rewritten only when they change.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from partita.node.config import NodeConfig
from partita.node.errors import SetupError
from partita.slap.fileio import atomic_write, open_regular

CA_COPY = ".package-index-ca.pem"
_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----")
_MAX_CA = 1024 * 1024


def pip_environment(config: NodeConfig, *, for_node: bool = False) -> dict[str, str]:
    """The variables every pip of this node gets (none without ``package_index``). `for_node`: a
    pip the node runs as itself (the toolchain's build), which reads ``partita_ca_file`` itself."""
    if not config.package_index:
        return {}
    environment = {"PIP_INDEX_URL": config.package_index, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                   "PIP_CONFIG_FILE": os.devnull}
    if config.package_index.startswith("https:") and config.ca_file:
        ca = config.ca_file if for_node else str(public_ca(Path(config.ca_file), config.software_root))
        environment["PIP_CERT"] = ca
    return environment


def certificates_of(pem: bytes) -> bytes:
    """The certificates of a PEM file, nothing else (pure)."""
    return b"\n".join(match.group(0).replace(b"\r\n", b"\n") for match in _CERTIFICATE.finditer(pem)) + b"\n"


def public_ca(ca_file: Path, software_root: Path) -> Path:
    """The copy of `ca_file`'s certificates every user may read (see the module docstring)."""
    try:
        fd = open_regular(ca_file)
        with open(fd, "rb") as stream:
            certificates = certificates_of(stream.read(_MAX_CA))
    except OSError as error:
        raise SetupError(f"cannot read partita_ca_file {ca_file} for the package index: "
                         f"{error.strerror or error}") from None
    if certificates == b"\n":
        raise SetupError(f"partita_ca_file {ca_file} holds no certificate for the package index")
    copy = software_root / CA_COPY
    try:
        fd = open_regular(copy)
        with open(fd, "rb") as stream:
            if stream.read(_MAX_CA + 1) == certificates:
                return copy
    except OSError:
        pass  # missing or odd: written anew
    try:
        atomic_write(copy, certificates, mode=0o644)
    except OSError as error:
        raise SetupError(f"cannot write {copy}: {error.strerror or error}") from None
    return copy
