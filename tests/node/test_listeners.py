"""Reading /proc/net and telling a partition's own addresses from another's (issue 10)."""
from __future__ import annotations

import ipaddress
import os
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
