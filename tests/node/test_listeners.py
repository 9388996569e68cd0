"""Reading /proc/net and telling a partition's own addresses from another's (issue 10)."""
from __future__ import annotations

import ipaddress
import os
import random
import socket
import subprocess
import sys

from partita.node.listeners import Listener, kill_squatters, parse_proc_net, read_listeners, squats

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0301007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 1 1 0
   1: 0201007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1002        0 2 1 0
   2: 0201007F:0051 0100007F:1234 01 00000000:00000000 00:00000000 00000000  1002        0 3 1 0
   3: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0
"""
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 726170FD617469740000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 5 1 0
"""
NETWORKS = [ipaddress.ip_network("127.0.1.0/24"), ipaddress.ip_network("fd70:6172:7469:7461::/64")]


def test_parse_proc_net_keeps_listening_sockets_with_their_owner() -> None:
    assert parse_proc_net(TCP, "tcp") == [Listener("tcp", "127.0.1.3", 8080, 1001),
                                          Listener("tcp", "127.0.1.2", 80, 1002),
                                          Listener("tcp", "0.0.0.0", 22, 0)]
    assert parse_proc_net(TCP6, "tcp6") == [Listener("tcp6", "fd70:6172:7469:7461::1", 8080, 1001)]


def test_a_socket_on_another_partitions_address_is_a_squat() -> None:
    listeners = parse_proc_net(TCP, "tcp") + parse_proc_net(TCP6, "tcp6")
    # uid 1001 owns 127.0.1.2 and fd70:...::2; it listens on 127.0.1.3 (B's) and ::1 (B's)
    found = squats(listeners, 1001, ["127.0.1.2", "fd70:6172:7469:7461::2"], NETWORKS)
    assert [str(listener) for listener in found] == ["tcp 127.0.1.3:8080", "tcp6 [fd70:6172:7469:7461::1]:8080"]
    assert squats(listeners, 1002, ["127.0.1.2"], NETWORKS) == []  # its own address
    assert squats(listeners, 0, [], NETWORKS) == []  # a wildcard bind is not a squat (documented)


def test_read_listeners_sees_a_real_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert Listener("tcp", "127.0.0.1", port, os.geteuid()) in read_listeners()


def test_the_inode_of_each_socket_is_kept_to_find_its_holders() -> None:
    assert [listener.inode for listener in parse_proc_net(TCP, "tcp")] == [1, 2, 4]


def test_kill_squatters_signals_only_the_holders_of_the_sockets_found() -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import socket, time\n"
                               "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], flush=True)\n"
                               "time.sleep(60)\n"], stdout=subprocess.PIPE)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        found = [listener for listener in read_listeners() if listener.port == port]
        assert found and found[0].inode
        assert kill_squatters(found, os.geteuid() + 1) == []  # another user's: nobody killed
        assert kill_squatters(found, os.geteuid()) == [holder.pid]
        assert holder.wait(timeout=10) < 0
        assert bystander.poll() is None
    finally:
        for process in (holder, bystander):
            process.kill()
            process.wait()


def test_orphans_are_the_users_processes_outside_the_keepers_trees():
    """Issue 13: what a dead supervisord left (parent 1) is an orphan; what the running supervisord
    or the node started (at any depth) is not; other users' processes never are."""
    from partita.node.listeners import ProcessFacts, descends_from, orphans

    table = [ProcessFacts(1, 0, 0), ProcessFacts(100, 1, 0),            # the running supervisord
             ProcessFacts(101, 100, 1001), ProcessFacts(102, 101, 1001),  # its service and a child
             ProcessFacts(200, 1, 1001), ProcessFacts(201, 200, 1001),    # an orphan and its child
             ProcessFacts(300, 1, 0), ProcessFacts(301, 300, 1001),       # the node, a promise it runs
             ProcessFacts(400, 1, 1002)]                                  # another partition's orphan
    assert orphans(table, 1001, {100, 300}) == [200, 201]
    assert orphans(table, 1002, {100, 300}) == [400]
    assert descends_from(102, {100}, {p.pid: p.ppid for p in table})
    assert not descends_from(201, {100}, {p.pid: p.ppid for p in table})
    assert not descends_from(5, {100}, {5: 5})  # a loop in a racy table ends


def test_kill_orphans_kills_only_the_holder_of_the_partitions_address_and_waits_for_its_end():
    from partita.node.listeners import kill_orphans

    address = f"127.{random.randint(100, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"  # no one else's
    code = ("import socket,sys,time; s=socket.socket(); s.bind((sys.argv[1],0)); s.listen(); "
            "print(s.getsockname()[1], flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, address], stdout=subprocess.PIPE, text=True)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        port = int(holder.stdout.readline())
        assert kill_orphans(os.getuid(), {os.getpid()}, addresses=[address]) == []  # below a keeper
        other = address.rpartition(".")[0] + ".1"  # nothing listens there: nothing to kill
        assert kill_orphans(os.getuid(), set(), addresses=[other]) == []
        assert kill_orphans(os.getuid(), set(), addresses=[address]) == [holder.pid]
        assert holder.wait(timeout=1) == -9 and bystander.poll() is None
        assert not [l for l in read_listeners() if l.port == port and l.address == address]
    finally:
        for process in (holder, bystander):
            process.kill()
            process.wait()
