"""Session resumption on data connections: TLS 1.3 tickets (a fresh one at each
PASV/EPSV), TLS 1.2 tickets and session IDs, and no resumption across sessions.
All with data-tls-reuse = required, so a data connection that did not resume
fails with 522.
"""

import ftplib
import io
import os
import ssl
import stat
import subprocess
import time

import pytest

from ftpsd_testlib import (quit_quietly, HELLO, assert_resuming_refused, IO_TIMEOUT, PASSWORD, RO_PASSWORD, RO_USER, USER, StockFTP_TLS,
                           client_context, ftp_login, retr_bytes, transfer_outcome)


quit_ = quit_quietly


def test_tls13_many_transfers_in_a_row_each_resume(server):
    srv = server(data_tls_reuse="required")
    ctx = client_context(srv.cafile, minimum_version=ssl.TLSVersion.TLSv1_3)
    ftp = ftp_login(srv, context=ctx, passive="EPSV")
    assert ftp.sock.version() == "TLSv1.3"
    for i in range(6):
        lines = []
        ftp.retrlines("LIST", lines.append)
        assert any("hello.txt" in line for line in lines), (i, lines)
    for i in range(4):
        assert retr_bytes(ftp, "hello.txt") == HELLO
        ftp.storbinary("STOR up%d.txt" % i, io.BytesIO(b"round %d\n" % i))
        assert retr_bytes(ftp, "up%d.txt" % i) == b"round %d\n" % i
    assert ftp.data_resumed == [True] * 18, ftp.data_resumed
    quit_(ftp)


def test_tls13_pasv_also_gets_fresh_tickets(server):
    srv = server(data_tls_reuse="required")
    ctx = client_context(srv.cafile, minimum_version=ssl.TLSVersion.TLSv1_3)
    ftp = ftp_login(srv, context=ctx, passive="PASV")
    for _ in range(5):
        assert "hello.txt" in ftp.nlst()
    assert ftp.data_resumed == [True] * 5
    quit_(ftp)


def test_tls13_each_data_connection_offers_a_fresh_ticket(server):
    """The session object changes between transfers: a new ticket arrived with each EPSV."""
    srv = server(data_tls_reuse="required")
    ctx = client_context(srv.cafile, minimum_version=ssl.TLSVersion.TLSv1_3)
    ftp = ftp_login(srv, context=ctx)
    seen = []
    for _ in range(3):
        ftp.nlst()
        seen.append(ftp.sock.session.id)
    assert len(set(seen)) == 3, seen
    quit_(ftp)


def test_tls13_idle_between_transfers_still_resumes(server):
    srv = server(data_tls_reuse="required")
    ctx = client_context(srv.cafile, minimum_version=ssl.TLSVersion.TLSv1_3)
    ftp = ftp_login(srv, context=ctx)
    assert "hello.txt" in ftp.nlst()
    time.sleep(1.5)
    ftp.voidcmd("NOOP")
    assert retr_bytes(ftp, "hello.txt") == HELLO
    assert ftp.data_resumed == [True, True]
    quit_(ftp)


@pytest.mark.parametrize("passive", ["EPSV", "PASV"])
def test_tls12_resumption_with_tickets(server, passive):
    srv = server(data_tls_reuse="required")
    ctx = client_context(srv.cafile, maximum_version=ssl.TLSVersion.TLSv1_2)
    ftp = ftp_login(srv, context=ctx, passive=passive)
    assert ftp.sock.version() == "TLSv1.2"
    for _ in range(3):
        assert "hello.txt" in ftp.nlst()
        assert retr_bytes(ftp, "hello.txt") == HELLO
    ftp.storbinary("STOR tls12.txt", io.BytesIO(b"tls 1.2\n"))
    assert retr_bytes(ftp, "tls12.txt") == b"tls 1.2\n"
    assert ftp.data_resumed == [True] * 8, ftp.data_resumed
    quit_(ftp)


def test_tls12_resumption_with_session_ids(server):
    """OP_NO_TICKET: the client resumes by session ID, from the server's per-process cache."""
    srv = server(data_tls_reuse="required")
    ctx = client_context(srv.cafile, maximum_version=ssl.TLSVersion.TLSv1_2, no_ticket=True)
    ftp = ftp_login(srv, context=ctx)
    assert ftp.sock.version() == "TLSv1.2"
    for _ in range(3):
        assert retr_bytes(ftp, "hello.txt") == HELLO
    assert ftp.data_resumed == [True] * 3, ftp.data_resumed
    quit_(ftp)


def test_tls12_another_control_sessions_ticket_is_refused(server):
    """TLS 1.2 tickets are issued in the handshake, before login, under each process's
    own key: a data connection resuming a *different* control connection's session is
    refused: 522, no data."""
    srv = server(data_tls_reuse="required")
    v = ssl.TLSVersion.TLSv1_2
    ctx = client_context(srv.cafile, minimum_version=v, maximum_version=v)
    a = ftp_login(srv, context=ctx)
    b = ftp_login(srv, context=ctx)
    assert "hello.txt" in a.nlst()  # A now holds a ticket/session for its own connection
    assert a.data_resumed == [True]
    assert_resuming_refused(b, a.sock.session)
    quit_(a)
    quit_(b)


def test_tls13_same_users_other_session_ticket_resumes(server):
    """TLS 1.3 tickets are issued after login under a key of the user and the client's
    address: another session of the same user from the same address resumes them (what
    clients sharing one session cache among connections, like rclone, need)."""
    srv = server(data_tls_reuse="required")
    ctx = client_context(srv.cafile, minimum_version=ssl.TLSVersion.TLSv1_3)
    a = ftp_login(srv, context=ctx)
    b = ftp_login(srv, context=ctx)
    assert "hello.txt" in a.nlst()
    b.session_override = a.sock.session
    assert retr_bytes(b, "hello.txt") == HELLO
    assert b.data_resumed == [True]
    quit_(a)
    quit_(b)


def test_tls13_other_users_ticket_is_refused(server):
    """...and nobody else's: a ticket alice received does not resume for reader."""
    srv = server(data_tls_reuse="required")
    ctx = client_context(srv.cafile, minimum_version=ssl.TLSVersion.TLSv1_3)
    a = ftp_login(srv, context=ctx)
    b = ftp_login(srv, context=ctx, user=RO_USER, password=RO_PASSWORD)
    assert "hello.txt" in a.nlst()
    assert_resuming_refused(b, a.sock.session)
    quit_(a)
    quit_(b)


def test_tls12_session_from_a_previous_connection_is_refused(server):
    """Even the same client's session from an earlier (closed) control connection."""
    srv = server(data_tls_reuse="required")
    v = ssl.TLSVersion.TLSv1_2
    ctx = client_context(srv.cafile, minimum_version=v, maximum_version=v)
    a = ftp_login(srv, context=ctx)
    a.nlst()
    old = a.sock.session
    quit_(a)
    b = ftp_login(srv, context=ctx)
    b.session_override = old
    data, final = transfer_outcome(b, "LIST")
    assert final.startswith("522"), final
    assert b"hello.txt" not in data
    quit_(b)


def stock_login(srv, user, password, host=None):
    ftp = StockFTP_TLS(context=client_context(srv.cafile), timeout=IO_TIMEOUT)
    ftp.connect("127.0.0.1", srv.port)
    if host is not None:
        assert ftp.sendcmd("HOST " + host).startswith("220")
    ftp.auth()
    ftp.login(user, password)
    ftp.prot_p()
    return ftp


def refused_522(ftp):
    """The data handshake is refused (alert access_denied), then the command 522."""
    with pytest.raises(ssl.SSLError) as e:
        ftp.nlst()
    assert "ACCESS_DENIED" in str(e.value), e.value
    with pytest.raises(ftplib.error_perm) as e:
        ftp.getresp()
    return str(e.value).startswith("522")


def test_data_tls_reuse_off_for_one_user(server):
    """users-file data-tls-reuse=off: that account's client need not resume (a legacy
    Java/.NET client); everyone else's still must."""
    srv = server(data_tls_reuse="required")
    with open(srv.users_path) as f:
        lines = f.read().splitlines()
    lines[1] += ",data-tls-reuse=off"  # reader:...:read-only -> read-only,data-tls-reuse=off
    with open(srv.users_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    legacy = stock_login(srv, RO_USER, RO_PASSWORD)
    assert "hello.txt" in legacy.nlst()
    assert retr_bytes(legacy, "hello.txt") == HELLO
    quit_(legacy)
    other = stock_login(srv, USER, PASSWORD)
    assert refused_522(other)
    quit_(other)
    assert "FTPSD_EVENT" not in srv.log  # stderr has the line, the journal the field
    assert "it needs TLS session resumption, or data-tls-reuse = off for this user" in srv.log
    assert "Public key signing has failed" not in srv.log


def test_data_tls_reuse_off_for_one_virtual_host(server):
    """[host] data-tls-reuse = off applies to sessions of that host only."""
    srv = server(data_tls_reuse="required", extra="\n[host legacy.test]\ndata-tls-reuse = off\n")
    legacy = stock_login(srv, USER, PASSWORD, host="legacy.test")
    assert "hello.txt" in legacy.nlst()
    quit_(legacy)
    other = stock_login(srv, USER, PASSWORD)
    assert refused_522(other)
    quit_(other)


def test_users_file_data_tls_reuse_required_overrides_an_off_server(server):
    srv = server(data_tls_reuse="off")
    with open(srv.users_path) as f:
        lines = f.read().splitlines()
    lines[0] += ":data-tls-reuse=required"
    with open(srv.users_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    strict = stock_login(srv, USER, PASSWORD)
    assert refused_522(strict)
    quit_(strict)
    loose = stock_login(srv, RO_USER, RO_PASSWORD)
    assert "hello.txt" in loose.nlst()
    quit_(loose)


def test_ticket_secret_is_made_once_and_private(server):
    """The first session makes tls-ticket-secret (32 random bytes, mode 0600); later
    sessions read the same one."""
    srv = server()
    path = os.path.join(srv.dir, "ticket-secret")
    quit_(ftp_login(srv))
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 32, st
    with open(path, "rb") as f:
        first = f.read()
    quit_(ftp_login(srv))
    with open(path, "rb") as f:
        assert f.read() == first
    assert "tls-ticket-secret" not in srv.log


def test_readable_ticket_secret_is_not_used(server, ftpsd_bin):
    """A secret others can read would let them make tickets: it is not used (logged, and
    --check-config says so); each session then keys its own tickets, so another session's
    ticket no longer resumes, even the same user's."""
    srv = server(start=False)
    path = os.path.join(srv.dir, "ticket-secret")
    with open(path, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(path, 0o644)
    r = subprocess.run([ftpsd_bin, "--config", srv.config_path, "--check-config"],
                       capture_output=True, text=True, timeout=IO_TIMEOUT)
    assert r.returncode == 1 and "tls-ticket-secret" in r.stdout + r.stderr, r
    srv.start()
    ctx = client_context(srv.cafile, minimum_version=ssl.TLSVersion.TLSv1_3)
    a = ftp_login(srv, context=ctx)
    b = ftp_login(srv, context=ctx)
    assert "hello.txt" in a.nlst()
    assert_resuming_refused(b, a.sock.session)
    quit_(a)
    quit_(b)
    assert "tls-ticket-secret %s: it must be a regular file" % path in srv.log
