"""The compatibility peer (slapos.core 1.26.1 built by scripts/peer-setup) is complete."""

from __future__ import annotations

import os
import re

import pytest

from tests.support.peer import NODE_USER, Peer

pytestmark = pytest.mark.peer

# On Python 3.11 or without slapos.libnetworkcache, cliff silently drops the node/proxy commands.
EXPECTED_COMMANDS = ["request", "supply", "proxy start", "node format", "node software", "node instance"]


def test_slapos_help_lists_client_node_and_proxy_commands(peer: Peer) -> None:
    result = peer.run(peer.slapos, "--help")
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^  (\S+(?: \S+)*?)  ", result.stdout, re.MULTILINE))
    missing = [command for command in EXPECTED_COMMANDS if command not in listed]
    assert not missing, f"slapos --help does not list {missing}:\n{result.stdout}"


def test_node_user_can_run_the_peer(peer: Peer) -> None:
    # As root, run as the unprivileged node user: the interpreter must live outside /root (0700).
    user = NODE_USER if os.geteuid() == 0 else None
    result = peer.run(peer.python, "-c", "import slapos.slap, slapos.format, netifaces", user=user)
    assert result.returncode == 0, result.stderr
    result = peer.run(peer.slapos_noext, "--version", user=user)
    assert result.returncode == 0, result.stderr
