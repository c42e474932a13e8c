"""How protected data connections end, and which TLS sessions they may resume.

1. The server ends every data connection with its own TLS close_notify (gnutls_bye
   SHUT_WR), then closes TCP: downloads, listings and uploads, TLS 1.3 and 1.2, also
   when it ends one early (ABOR, a 426). Checked with Python's ssl (with the strict
   EOF handling Debian's Python does not have by default, see strict_eof_context) and
   with tests/tools/ftps_probe, a GnuTLS client.
2. TLS 1.3 uploads that end with alert user_canceled and then close_notify (what JDK
   clients send when they close) are complete: 226, stored byte for byte. A
   user_canceled that is not followed by close_notify (more data, or a bare FIN) is an
   incomplete upload: 426, nothing stored, an existing file untouched.
3. A data handshake that does not resume the control connection's session is refused
   at its ClientHello with a fatal alert access_denied (49) and the socket is closed,
   before any command; the command then gets 522. The log names the remedy
   (data-tls-reuse = off), never "Public key signing has failed".
4. With data-tls-reuse = required under TLS 1.3, a ticket issued after login on one
   control connection resumes the data connections of another session of the same user
   from the same address, and no one else's. Not under TLS 1.2.

The probe tests need $FTPSD_FTPS_PROBE (meson's integration test sets it to
build/tests/ftps_probe); without it they are skipped.
"""

import ftplib
import io
import os
import socket
import ssl
import threading
import time

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import (HELLO, IO_TIMEOUT, PASSWORD, RO_PASSWORD, RO_USER, USER,
                           CloseNotifyFTP_TLS, ReusingFTP_TLS, StockFTP_TLS, client_context,
                           ftp_login, retr_bytes, run_ftps_probe, strict_eof_context,
                           tls_read_to_end, tls_unwrap_outcome, transfer_outcome, wait_for)

VERSIONS = {"TLSv1.3": ssl.TLSVersion.TLSv1_3, "TLSv1.2": ssl.TLSVersion.TLSv1_2}

needs_probe = pytest.mark.skipif(
    not lib.FTPS_PROBE,
    reason="FTPSD_FTPS_PROBE is not set (meson test sets it; by hand: "
           "FTPSD_FTPS_PROBE=build/tests/ftps_probe)")

# Over 256 KiB (the server's upload buffer), not a multiple of a TLS record.
PAYLOAD = bytes(range(256)) * 4096 + os.urandom(123)

REMEDY = "data-tls-reuse = off"
SIGNING_FAILED = "Public key signing has failed"


quit_ = lib.quit_quietly


def context_for(srv, version, strict=False):
    v = VERSIONS[version]
    make = strict_eof_context if strict else client_context
    return make(srv.cafile, minimum_version=v, maximum_version=v)


def on_disk(srv, name):
    try:
        with open(os.path.join(srv.root, name), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def probe_ok(r):
    assert r.rc == 0, r
    return r


# ===================================================== 1. the server's close_notify

# ---- the Python detector itself: it must see a missing close_notify on this system

def _tls_server(pki, action):
    """A one-shot TLS server on loopback (a thread): action(conn) runs after the handshake."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(pki.cert, pki.key)
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(IO_TIMEOUT)
    errors = []

    def serve():
        try:
            raw, _ = lsock.accept()
            raw.settimeout(IO_TIMEOUT)
            conn = sctx.wrap_socket(raw, server_side=True)
            action(conn)
        except Exception as e:  # reported by the test
            errors.append(e)
        finally:
            lsock.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return lsock.getsockname()[1], t, errors


@pytest.mark.parametrize("ending", ["close_notify", "bare_fin"])
@pytest.mark.parametrize("direction", ["download", "upload"])
def test_python_detector_tells_close_notify_from_a_bare_fin(pki, direction, ending):
    """Self-test of strict_eof_context/tls_read_to_end/tls_unwrap_outcome against a local
    Python TLS server: Debian's Python sets OP_IGNORE_UNEXPECTED_EOF by default, under
    which a bare FIN looks exactly like close_notify."""
    def action(conn):
        if direction == "download":
            conn.sendall(b"x" * 1000)
        else:
            while conn.recv(65536):
                pass  # until the client's close_notify
        if ending == "close_notify":
            # download: ours, then the client's; upload: the client's came, ours goes
            conn.unwrap()
        conn.close()  # without unwrap(): TCP FIN, no close_notify

    port, t, errors = _tls_server(pki, action)
    raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    ctx = strict_eof_context(pki.cert)
    conn = ctx.wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)
    if direction == "download":
        data, got = tls_read_to_end(conn)
        assert data == b"x" * 1000
        if got == "close_notify":
            tls_unwrap_outcome(conn)
    else:
        conn.sendall(b"y" * 1000)
        got = tls_unwrap_outcome(conn)
    conn.close()
    t.join(IO_TIMEOUT)
    assert not errors, errors
    assert got == ("close_notify" if ending == "close_notify" else "eof"), got


def test_debian_python_hides_a_missing_close_notify_by_default(pki):
    """Why the detector clears OP_IGNORE_UNEXPECTED_EOF: with the default context a bare
    FIN reads as a clean end. (If this ever fails, the default changed; the detector
    does not depend on it.)"""
    port, t, errors = _tls_server(pki, lambda conn: (conn.sendall(b"z"), conn.close()))
    ctx = client_context(pki.cert)
    if not ctx.options & ssl.OP_IGNORE_UNEXPECTED_EOF:
        pytest.skip("this Python does not set OP_IGNORE_UNEXPECTED_EOF by default")
    raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    conn = ctx.wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)
    data, got = tls_read_to_end(conn)
    conn.close()
    t.join(IO_TIMEOUT)
    assert not errors, errors
    assert (data, got) == (b"z", "close_notify")


# ---- ftpsd, with Python's ssl

@pytest.mark.parametrize("command", ["STOR", "RETR", "LIST"])
@pytest.mark.parametrize("version", list(VERSIONS))
def test_server_sends_close_notify_python(server, version, command):
    srv = server()
    ftp = ftp_login(srv, cls=CloseNotifyFTP_TLS, context=context_for(srv, version, strict=True))
    assert ftp.sock.version() == version
    ftp.voidcmd("TYPE I")
    if command == "STOR":
        conn = ftp.transfercmd("STOR up.bin")
        conn.sendall(PAYLOAD)
        ending = tls_unwrap_outcome(conn)  # ours, then wait for the server's
        data = None
    else:
        conn = ftp.transfercmd("RETR hello.txt" if command == "RETR" else "LIST")
        data, ending = tls_read_to_end(conn)
    conn.close()
    final = ftp.voidresp()
    assert ftp.data_resumed == [True]
    assert final.startswith("226"), final
    if command == "STOR":
        assert on_disk(srv, "up.bin") == PAYLOAD
    elif command == "RETR":
        assert data == HELLO
    else:
        assert b"hello.txt" in data
    assert ending == "close_notify", "%s under %s: the server ended the data connection " \
        "with %s, not close_notify" % (command, version, ending)
    quit_(ftp)


@pytest.mark.parametrize("command", ["RETR", "STOR"])
@pytest.mark.parametrize("version", list(VERSIONS))
def test_server_sends_close_notify_when_aborting(server, version, command):
    """ABOR mid-transfer: 426 and 226, and the data connection still ends with close_notify."""
    srv = server()
    big = os.path.join(srv.root, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(8 << 20))
    ftp = ftp_login(srv, cls=CloseNotifyFTP_TLS, context=context_for(srv, version, strict=True))
    ftp.voidcmd("TYPE I")
    if command == "RETR":
        conn = ftp.transfercmd("RETR big.bin")
        assert conn.recv(65536)
    else:
        conn = ftp.transfercmd("STOR big.bin")
        conn.sendall(PAYLOAD)
        time.sleep(0.2)  # the server reads it all: no unread bytes (an RST) at its close
    ftp.putcmd("ABOR")
    _, ending = tls_read_to_end(conn)
    conn.close()
    assert ftp.getmultiline().startswith("426")
    assert ftp.getmultiline().startswith("226")
    assert ending == "close_notify", "%s aborted under %s: ended with %s" % (command, version,
                                                                            ending)
    quit_(ftp)


# ---- ftpsd, with the GnuTLS probe (handshake before the command, as curl does)

UPLOAD_MODES = ["close-notify", "user-canceled-then-close-notify", "user-canceled-then-data",
                "user-canceled-then-fin", "fin"]


@needs_probe
@pytest.mark.parametrize("mode", UPLOAD_MODES + ["retr", "list"])
@pytest.mark.parametrize("version", list(VERSIONS))
def test_server_sends_close_notify_probe(server, version, mode):
    """Whatever the client did (and whatever the verdict), the server's side of the data
    connection ends with close_notify."""
    srv = server()
    r = probe_ok(run_ftps_probe(srv, mode, version, name="hello.txt" if mode == "retr" else
                                "up.bin", input=PAYLOAD))
    assert r["control"] == r["data"] == version.replace("v", ""), r
    assert r["resumed"] == "yes", r
    assert r["reply"][:1] in ("2", "4"), r
    assert r["server-close-notify"] == "yes", \
        "%s under %s: the server's side ended with %s, not close_notify\n%r" % (
            mode, version, r.get("server-end"), r)


# ============================================================ 2. user_canceled

@needs_probe
@pytest.mark.parametrize("size", [len(PAYLOAD), 0])
@pytest.mark.parametrize("version", list(VERSIONS))
def test_upload_with_close_notify_is_complete(server, version, size):
    """The probe's plain ending, for comparison: 226 and the bytes on disk."""
    srv = server()
    r = probe_ok(run_ftps_probe(srv, "close-notify", version, name="up.bin",
                                input=PAYLOAD[:size]))
    assert r["sent"] == str(size), r
    assert r.reply.startswith("226 "), r
    assert on_disk(srv, "up.bin") == PAYLOAD[:size]


@needs_probe
@pytest.mark.parametrize("size", [len(PAYLOAD), 0])
@pytest.mark.parametrize("version", list(VERSIONS))
def test_user_canceled_then_close_notify_is_complete(server, version, size):
    """What JDK clients send at the end of an upload under TLS 1.3."""
    srv = server()
    r = probe_ok(run_ftps_probe(srv, "user-canceled-then-close-notify", version,
                                name="up.bin", input=PAYLOAD[:size]))
    assert r["sent"] == str(size), r
    assert r.reply.startswith("226 "), "%s, %d bytes: %s\n%r" % (version, size, r.reply, r)
    assert "possibly truncated" not in r.reply, r
    assert on_disk(srv, "up.bin") == PAYLOAD[:size]


@needs_probe
@pytest.mark.parametrize("target", ["new", "existing"])
@pytest.mark.parametrize("mode", ["user-canceled-then-data", "user-canceled-then-fin"])
@pytest.mark.parametrize("version", list(VERSIONS))
def test_user_canceled_without_close_notify_is_incomplete(server, version, mode, target):
    """The default upload-mode = atomic: 426; a new name stays absent, an existing file
    keeps its bytes. Under TLS 1.2 too, where user_canceled is a warning GnuTLS reads
    past: after it, only close_notify ends a stream completely."""
    srv = server()
    name = "hello.txt" if target == "existing" else "up.bin"
    r = probe_ok(run_ftps_probe(srv, mode, version, name=name, input=PAYLOAD))
    assert r["sent"] == str(len(PAYLOAD)), r
    assert r.reply.startswith("426 "), "%s (%s file): %s\n%r" % (mode, target, r.reply, r)
    assert on_disk(srv, name) == (HELLO if target == "existing" else None)


# ======================================== 3. a full handshake where a resumption is due

def log_has_remedy(log):
    return any("resume" in line and REMEDY in line for line in log.splitlines())


@needs_probe
@pytest.mark.parametrize("version", list(VERSIONS))
def test_full_data_handshake_is_refused_at_the_client_hello(server, version):
    """The probe handshakes without resuming right after EPSV, before any command."""
    srv = server()
    r = probe_ok(run_ftps_probe(srv, "no-resume", version, name="hello.txt", timeout=3))
    assert r["handshake"] == "failed", r
    assert r.get("alert") == "49", "expected a fatal alert access_denied (49), got %s " \
        "after %s ms\n%r" % (r.get("alert-name", r["handshake-error"]), r["handshake-ms"], r)
    assert r.get("alert-level") == "fatal", r
    assert int(r["handshake-ms"]) < 1000, r
    # No handshake message came before the alert. Telling under TLS 1.3, where a server
    # that went on with a full handshake sends its ServerHello (2) before it needs the
    # signature; a TLS 1.2 server sends nothing before signing its ServerKeyExchange.
    assert r["handshake-last-in"] == "-1", "refused after the ClientHello: %r" % r
    assert r["data-closed"] in ("fin", "reset"), "the data socket stayed open: %r" % r
    assert r.prelims == [], r  # the RETR after it: no 150
    assert r.reply.startswith("522 ") and "TLS session" in r.reply, r
    assert wait_for(lambda: log_has_remedy(srv.log), timeout=3), \
        "no log line about the missing resumption naming %r:\n%s" % (REMEDY, srv.log)
    assert SIGNING_FAILED not in srv.log


@pytest.mark.parametrize("version", list(VERSIONS))
def test_stock_ftplib_gets_522_promptly(server, version):
    """CPython's FTP_TLS (no resumption; data handshake after the 1xx): access_denied and
    522 within moments, not a hang until some timeout."""
    srv = server()
    ftp = ftp_login(srv, cls=StockFTP_TLS, context=context_for(srv, version))
    ftp.timeout = 6  # data sockets; a hang fails the test in seconds, not at the watchdog
    ftp.sock.settimeout(6)
    t0 = time.monotonic()
    try:
        ftp.retrbinary("RETR hello.txt", lambda b: None)
        raise AssertionError("the transfer succeeded without resumption")
    except (ssl.SSLError, OSError) as e:
        err = e  # the data handshake failed; the final reply is still due
        try:
            final = ftp.getresp()
        except ftplib.Error as fe:
            final = str(fe)
    except ftplib.Error as e:
        err, final = None, str(e)
    elapsed = time.monotonic() - t0
    assert elapsed < 5, "took %.1fs (%r, %r)" % (elapsed, err, final)
    assert final.startswith("522 ") and "TLS session" in final, (final, err)
    if err is not None:
        assert "ACCESS_DENIED" in str(err), "expected alert access_denied: %r" % (err,)
    assert wait_for(lambda: log_has_remedy(srv.log), timeout=3), srv.log
    assert SIGNING_FAILED not in srv.log
    quit_(ftp)


@needs_probe
@pytest.mark.parametrize("version", list(VERSIONS))
def test_full_data_handshake_is_fine_with_reuse_off(server, version):
    """data-tls-reuse = off: the same probe completes a full handshake and downloads."""
    srv = server(data_tls_reuse="off")
    r = probe_ok(run_ftps_probe(srv, "no-resume", version, name="hello.txt", timeout=3))
    assert r["handshake"] == "ok" and r["resumed"] == "no", r
    assert r.reply.startswith("226 "), r
    assert r["received"] == str(len(HELLO)), r
    assert r["server-close-notify"] == "yes", r


# =================================== 4. tickets shared by the sessions of one user

def login_from(srv, ctx, source, user=USER, password=PASSWORD):
    """ReusingFTP_TLS whose control and data connections come from `source` (127.0.0.x)."""
    ftp = ReusingFTP_TLS(context=ctx, timeout=IO_TIMEOUT, source_address=(source, 0))
    ftp.connect("127.0.0.1", srv.port)
    assert ftp.sock.getsockname()[0] == source
    ftp.auth()
    ftp.login(user, password)
    ftp.prot_p()
    return ftp


def post_login_ticket(ftp):
    """A fresh ticket issued after login, never used: the one that comes before the 229
    of an EPSV (its passive port is left unused). Unused, so that a refusal cannot come
    from a ticket being good for one resumption only."""
    before = ftp.sock.session
    assert ftp.sendcmd("EPSV").startswith("229")
    session = ftp.sock.session
    assert session.has_ticket and session.id != before.id, "no new ticket came with EPSV"
    return session


def refused(ftp, session):
    ftp.session_override = session
    data, final = transfer_outcome(ftp, "RETR hello.txt")
    ftp.session_override = None
    assert final.startswith("522"), (final, data)
    assert data == b""
    # the session itself goes on
    assert retr_bytes(ftp, "hello.txt") == HELLO
    assert ftp.data_resumed[-1] is True


def test_tls13_ticket_of_another_session_of_the_same_user_resumes(server):
    """Two sessions of alice from 127.0.0.1: A's data connections resume with tickets that
    came on B's control connection after B's login."""
    srv = server(data_tls_reuse="required")
    ctx = context_for(srv, "TLSv1.3")  # one context: Python resumes only its own sessions
    a = ftp_login(srv, context=ctx)
    b = ftp_login(srv, context=ctx)
    ticket_b = post_login_ticket(b)
    a.session_override = ticket_b
    data, final = transfer_outcome(a, "RETR hello.txt")
    assert final.startswith("226"), "A's data connection with B's ticket: %s" % final
    assert data == HELLO
    assert a.data_resumed == [True]
    a.session_override = post_login_ticket(b)
    a.storbinary("STOR from-a.bin", io.BytesIO(PAYLOAD))
    assert a.data_resumed == [True, True]
    assert on_disk(srv, "from-a.bin") == PAYLOAD
    a.session_override = None
    assert retr_bytes(a, "hello.txt") == HELLO
    quit_(a)
    quit_(b)


@pytest.mark.parametrize("holder,presenter", [(USER, RO_USER), (RO_USER, USER)])
def test_tls13_ticket_of_another_user_is_refused(server, holder, presenter):
    srv = server(data_tls_reuse="required")
    ctx = context_for(srv, "TLSv1.3")
    password = {USER: PASSWORD, RO_USER: RO_PASSWORD}
    h = ftp_login(srv, context=ctx, user=holder, password=password[holder])
    p = ftp_login(srv, context=ctx, user=presenter, password=password[presenter])
    refused(p, post_login_ticket(h))
    quit_(h)
    quit_(p)


@pytest.mark.parametrize("holder,presenter", [("127.0.0.1", "127.0.0.2"),
                                              ("127.0.0.2", "127.0.0.1")])
def test_tls13_ticket_of_the_same_user_from_another_address_is_refused(server, holder,
                                                                       presenter):
    """Loopback takes any 127/8 source address; the data connection comes from the same
    address as its control connection (the peer check), the ticket from the other one."""
    srv = server(data_tls_reuse="required")
    ctx = context_for(srv, "TLSv1.3")
    h = login_from(srv, ctx, holder)
    p = login_from(srv, ctx, presenter)
    refused(p, post_login_ticket(h))
    assert "from %s" % presenter in srv.log
    quit_(h)
    quit_(p)


def test_tls13_ticket_from_before_login_is_refused_on_another_session(server):
    """A client that says nothing after the control handshake (GnuTLS clients such as
    wget wait for a ticket then) gets one before login, under its own process's key: it
    belongs to no user, and another connection that never logged in cannot lend it to
    alice's session (it could be anyone behind the same address)."""
    srv = server(data_tls_reuse="required")
    ctx = context_for(srv, "TLSv1.3")
    stranger = lib.Control(srv.port)
    assert stranger.reply().code == 220
    assert stranger.cmd("AUTH TLS").code == 234
    stranger.starttls(ctx)
    time.sleep(0.3)  # silent, as wget is: the server sends a ticket before login
    assert stranger.cmd("NOOP").code == 200  # reads the ticket that came first
    ticket = stranger.sock.session
    assert ticket.has_ticket
    a = ftp_login(srv, context=ctx)
    refused(a, ticket)
    stranger.close()
    quit_(a)


@pytest.mark.parametrize("variant", ["ticket", "session-id"])
def test_tls12_no_resumption_across_sessions(server, variant):
    """TLS 1.2 is not part of the sharing: another session's ticket or session ID (same
    user, same address) does not resume; 522 as on current main."""
    srv = server(data_tls_reuse="required")
    v = ssl.TLSVersion.TLSv1_2
    ctx = client_context(srv.cafile, minimum_version=v, maximum_version=v,
                         no_ticket=variant == "session-id")
    a = ftp_login(srv, context=ctx)
    b = ftp_login(srv, context=ctx)
    assert "hello.txt" in b.nlst()
    refused(a, b.sock.session)
    quit_(a)
    quit_(b)
