"""Host helpers: /proc/net parsing, address overlap, endpoints, versions, gate commands, disk."""
from __future__ import annotations

import os
import socket

import pytest

from ansible_collections.homeiq.deploy.plugins.module_utils import _preflight_host as host

# Captured from a Linux host: a listener on 127.0.0.1:8086, one on 0.0.0.0:22, an established
# connection (not a listener), and in tcp6 a listener on [::]:3000 and on ::ffff:127.0.0.1:9000.
TAIL = "00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0"


def table(*rows):
    """A /proc/net table: a header, then (local, remote, state, inode) rows as the kernel prints them."""
    lines = ["  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"]
    for i, (local, remote, state, inode) in enumerate(rows):
        lines.append(f"{i:4}: {local} {remote} {state} " + TAIL.format(inode=inode))
    return "\n".join(lines) + "\n"


V6_ANY = "0" * 32
# Captured shapes from a Linux host: a listener on 127.0.0.1:8086, one on 0.0.0.0:22, an established
# connection (not a listener); in tcp6 listeners on [::]:3000, ::ffff:127.0.0.1:9000 and [::1]:80.
PROC_TCP = table(("0100007F:1F96", "00000000:0000", "0A", 41231), ("00000000:0016", "00000000:0000", "0A", 1234),
                 ("0100007F:1F96", "0100007F:D2F0", "01", 51515))
PROC_TCP6 = table((V6_ANY + ":0BB8", V6_ANY + ":0000", "0A", 777),
                  ("0000000000000000FFFF00000100007F:2328", V6_ANY + ":0000", "0A", 778),
                  ("00000000000000000000000001000000:0050", V6_ANY + ":0000", "0A", 779))
PROC_UDP = table(("00000000:14E9", "00000000:0000", "07", 909))


def test_parse_proc_net_keeps_listeners_only():
    assert host.parse_proc_net(PROC_TCP, "tcp") == [("tcp", "127.0.0.1", 8086, 41231), ("tcp", "0.0.0.0", 22, 1234)]
    assert host.parse_proc_net(PROC_TCP6, "tcp") == [("tcp", "::", 3000, 777), ("tcp", "127.0.0.1", 9000, 778),
                                                     ("tcp", "::1", 80, 779)]
    assert host.parse_proc_net(PROC_UDP, "udp") == [("udp", "0.0.0.0", 5353, 909)]


def test_read_listeners_sees_a_real_socket():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        found = [x for x in host.read_listeners() if x[2] == port]
        assert found and found[0][:3] == ("tcp", "127.0.0.1", port)
        owners = host.socket_owners({found[0][3]})
        assert (os.getpid(), open(f"/proc/{os.getpid()}/comm").read().strip()) in owners[found[0][3]]


@pytest.mark.parametrize("a, b, overlap", [
    ("127.0.0.1", "127.0.0.1", True), ("", "127.0.0.1", True), ("0.0.0.0", "10.0.0.1", True),
    ("127.0.0.1", "127.0.0.2", False), ("::", "127.0.0.1", True), ("::1", "127.0.0.1", False),
    ("0.0.0.0", "::1", False), ("[::1]", "::1", True),
])
def test_addresses_overlap(a, b, overlap):
    assert host.addresses_overlap(a, b) is overlap
    assert host.addresses_overlap(b, a) is overlap  # pylint: disable=arguments-out-of-order


def test_container_port_holders():
    containers = [
        {"Names": ["/demo-influxdb-1"], "Labels": {"com.docker.compose.project": "demo"},
         "Ports": [{"IP": "127.0.0.1", "PrivatePort": 8086, "PublicPort": 8086, "Type": "tcp"}]},
        {"Names": ["/loose"], "Labels": {}, "Ports": [
            {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 3000, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 80, "PublicPort": 3000, "Type": "tcp"}]},
        {"Names": ["/unpublished"], "Labels": {}, "Ports": [{"PrivatePort": 80, "Type": "tcp"}]},
    ]
    assert host.container_port_holders(containers, 8086, "tcp", "127.0.0.1") == [("demo-influxdb-1", "demo")]
    assert host.container_port_holders(containers, 8086, "udp", "127.0.0.1") == []
    assert host.container_port_holders(containers, 3000, "tcp", "127.0.0.1") == [("loose", None)]
    assert host.container_port_holders(None, 3000, "tcp", "") == []


@pytest.mark.parametrize("text, expected", [
    ("influx.local:8086", ("influx.local", 8086)), ("http://ha.local:8123/api", ("ha.local", 8123)),
    ("https://ha.example.org", ("ha.example.org", 443)), ("[::1]:8080", ("::1", 8080)),
    ("postgres://u:p@db:5432/x", ("db", 5432)),
])
def test_parse_endpoint(text, expected):
    assert host.parse_endpoint(text) == expected


@pytest.mark.parametrize("text", ["justahost", "host:0", "host:70000", "ftp+x://nohost"])
def test_parse_endpoint_rejects(text):
    with pytest.raises(ValueError):
        host.parse_endpoint(text)


def test_probe_endpoint_refused_and_open():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        ok, why = host.probe_endpoint("127.0.0.1", s.getsockname()[1], 2)
        assert ok and "accepts connections" in why
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ok, why = host.probe_endpoint("127.0.0.1", port, 2)
    assert not ok and why == f"127.0.0.1:{port} does not accept connections (connection refused)"


@pytest.mark.parametrize("text, version", [
    ("2.26.1-4", (2, 26, 1)), ("v2.29.7", (2, 29, 7)), ("1.29.2", (1, 29, 2)), ("2.21", (2, 21, 0)), ("junk", None),
])
def test_parse_version(text, version):
    assert host.parse_version(text) == version


def test_short_error_finds_the_os_error():
    try:
        try:
            raise FileNotFoundError(2, "No such file or directory")
        except OSError as inner:
            raise RuntimeError("Connection aborted.", inner)
    except RuntimeError as exc:
        assert host.short_error(exc) == "No such file or directory"
    assert host.short_error(ValueError("line one\nline two")) == "line one"


def test_run_gate_status_output_and_timeout(tmp_path):
    rc, secs, lines = host.run_gate("echo one; echo two >&2; exit 4", str(tmp_path), 10)
    assert rc == 4 and lines == ["one", "two"] and secs < 10
    rc, secs, lines = host.run_gate("echo start; sleep 20 & sleep 20", str(tmp_path), 1)
    assert rc is None and secs < 10 and lines[-1] == "(stopped after 1s)"
    rc, _secs, lines = host.run_gate("true", str(tmp_path / "absent"), 5)
    assert rc is None and lines[0].startswith("could not start")


def test_free_bytes_walks_up_to_an_existing_parent(tmp_path):
    free, dev, probe = host.free_bytes(tmp_path / "not" / "yet")
    assert probe == str(tmp_path) and free > 0 and dev == os.stat(tmp_path).st_dev
    assert host.fmt_gb(12_345_678_901) == "12.3 GB" and host.fmt_gb(8_388_608) == "8 MB"


def test_engine_access_without_a_socket(tmp_path):
    ok, why = host.check_engine_access(f"unix://{tmp_path}/none.sock")
    assert not ok and "no engine socket" in why
    (tmp_path / "file").write_text("")
    ok, why = host.check_engine_access(f"unix://{tmp_path}/file")
    assert not ok and "is not a socket" in why
    ok, why = host.check_engine_access("ssh://user@host")
    assert ok and "engine check" in why
