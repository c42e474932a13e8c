"""Behind HAProxy: a real haproxy on loopback sends the PROXY protocol (v2 and
v1) to ftpsd; the client connects from 127.0.0.3. The address in the header is
the one logged, and the one passive data connections must come from."""

import os
import shutil
import socket
import subprocess

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import ReusingFTP_TLS, client_context, free_port, wait_for

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

pytestmark = pytest.mark.skipif(not os.path.exists(HAPROXY), reason="haproxy is not installed")

CLIENT = "127.0.0.3"


@pytest.fixture
def haproxy(tmp_path):
    procs = []

    def start(backend_port, send_proxy="send-proxy-v2"):
        port = free_port()
        cfg = tmp_path / ("haproxy-%d.cfg" % port)
        cfg.write_text(
            "global\n    maxconn 64\n"
            "defaults\n    mode tcp\n    timeout connect 5s\n"
            "    timeout client 30s\n    timeout server 30s\n"
            "frontend ftp\n    bind 127.0.0.1:%d\n    default_backend ftpsd\n"
            "backend ftpsd\n    server s1 127.0.0.1:%d %s\n" % (port, backend_port, send_proxy))
        p = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        procs.append(p)
        assert wait_for(lambda: lib.tcp_listening(port), timeout=5), "haproxy did not start"
        return port

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()


def login_via(srv, port):
    ftp = ReusingFTP_TLS(context=client_context(srv.cafile), timeout=lib.IO_TIMEOUT,
                         source_address=(CLIENT, 0))
    ftp.connect("127.0.0.1", port)
    ftp.auth()
    ftp.login(lib.USER, lib.PASSWORD)
    ftp.prot_p()
    return ftp


@pytest.mark.parametrize("send_proxy", ["send-proxy-v2", "send-proxy"])
def test_session_through_haproxy(server, haproxy, send_proxy):
    srv = server(proxy_protocol="on", proxy_protocol_from="127.0.0.1")
    port = haproxy(srv.port, send_proxy)
    ftp = login_via(srv, port)
    # The passive data connection comes straight from 127.0.0.3, the address
    # the header gave: it is accepted.
    assert "hello.txt" in ftp.nlst()
    data = bytearray()
    ftp.retrbinary("RETR hello.txt", data.extend)
    assert bytes(data) == lib.HELLO
    ftp.quit()
    assert wait_for(lambda: "session ended" in srv.log, timeout=5)
    log = srv.log
    assert "client %s via balancer 127.0.0.1" % CLIENT in log, log
    assert "login: user %s from %s" % (lib.USER, CLIENT) in log, log
    assert "monitor %s:" % CLIENT in log, log


def test_data_from_the_balancer_address_is_refused(server, haproxy):
    """With the client known to be 127.0.0.3, a data connection from the
    balancer's own address (127.0.0.1) must say in a PROXY header whose it
    is; one that says nothing is no one's."""
    srv = server(proxy_protocol="on", proxy_protocol_from="127.0.0.1")
    port = haproxy(srv.port)
    ftp = login_via(srv, port)
    host, dport = ftplib_epsv(ftp)
    thief = socket.create_connection(("127.0.0.1", dport), timeout=3,
                                     source_address=("127.0.0.1", 0))
    thief.settimeout(2)
    try:
        got = thief.recv(100)
    except (socket.timeout, ConnectionResetError):
        got = b""
    thief.close()
    assert got == b""
    assert wait_for(lambda: "refused data connection via balancer 127.0.0.1: closed before its "
                    "PROXY header" in srv.log, timeout=5), srv.log
    ftp.close()


def closed_without_a_word(c):
    """The server closed the connection and said nothing (a reset counts: it
    closed with our bytes unread)."""
    try:
        return c.recv(100) == b""
    except ConnectionResetError:
        return True


def ftplib_epsv(ftp):
    import ftplib
    resp = ftp.sendcmd("EPSV")
    return ftplib.parse229(resp, ftp.sock.getpeername())


def test_connection_not_from_a_listed_balancer_is_refused(server):
    srv = server(proxy_protocol="on", proxy_protocol_from="127.0.0.9")
    c = socket.create_connection(("127.0.0.1", srv.port), timeout=5,
                                 source_address=("127.0.0.2", 0))
    c.settimeout(5)
    # Even a well-formed header is not taken from an unlisted address.
    c.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 21\r\n")
    assert closed_without_a_word(c)
    c.close()
    assert wait_for(lambda: "is not in proxy-protocol-from" in srv.log, timeout=5), srv.log


def test_listed_balancer_without_header_is_refused(server):
    srv = server(proxy_protocol="on", proxy_protocol_from="127.0.0.1")
    c = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    c.settimeout(5)
    c.sendall(b"USER alice\r\n")  # FTP where the header should be
    assert closed_without_a_word(c)
    c.close()
    assert wait_for(lambda: "no valid PROXY protocol header" in srv.log, timeout=5), srv.log


def test_proxy_protocol_needs_its_balancers(server, ftpsd_bin):
    srv = server(start=False, proxy_protocol="on")
    r = subprocess.run([ftpsd_bin, "--check-config", "--config", srv.config_path],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "proxy-protocol-from" in r.stderr
