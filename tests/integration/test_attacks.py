"""Attack tests from outside (issue 3, items 6 and 7), real sockets on loopback;
127.0.0.2 plays the attacker's host where the attack needs another address.

FTP bounce (PORT/EPRT), passive port theft, cross-session and cross-server TLS
resumption, clear-text passwords, a directory swapped for a symlink, bad input (long
lines, NUL, Telnet IAC, invalid UTF-8, bursts, random TLS handshakes, a client that stops
reading), brute force, slow clients, upload integrity (close_notify, fsync) and a PAM
system user.

Already covered elsewhere and not repeated here: `..`, absolute paths and symlinks out
of the root for RETR/CWD/LIST/STOR (test_transfers.py), a PROT P data connection from
127.0.0.2 made before RETR (test_transfers.py), cross-session resumption between two
control connections of one server with TLS 1.3 and TLS 1.2 tickets, and a session from
a closed connection (test_tls13_tickets.py), the basic login failure delay, the
max-login-failures limit and clear USER refused (test_control_tls.py).
"""

import ftplib
import io
import os
import pwd
import re
import socket
import shutil
import ssl
import subprocess
import threading
import time

import pytest

from ftpsd_testlib import (quit_quietly, HELLO, IO_TIMEOUT, ROOT, USER, ConnectionClosed, Control,
                           alive, assert_resuming_refused, client_context, ftp_login, landlock_abi, memory_find, pam_system_user,
                           retr_bytes, secured, session_pids, transfer_outcome, wait_for)

needs_root = pytest.mark.skipif(not ROOT, reason="needs root")


quit_ = quit_quietly


def greeted(srv):
    c = Control(srv.port)
    assert c.reply().code == 220
    return c


def read_all(sock, timeout=IO_TIMEOUT):
    """Everything until EOF (bounded by `timeout` overall)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no EOF after %ss (%d bytes read)" % (timeout, len(data))
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def stolen_bytes(sock, timeout=1.0):
    """What an attacker's socket receives within `timeout`: b'' if closed, reset or silent."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, TimeoutError, ConnectionResetError, ssl.SSLError, OSError):
        pass
    return data


CRASH_SIGNALS = {4, 6, 7, 8, 9, 11, 31}  # ILL ABRT BUS FPE KILL SEGV SYS


def assert_no_crash(srv):
    """No process of the server was killed by a signal (the monitor logs its child's,
    the launcher the monitor's) and no sanitizer report."""
    for line in srv.log.splitlines():
        assert "signal" not in line, line
        m = re.search(r"died with code (\d+)", line)
        assert not (m and int(m.group(1)) in CRASH_SIGNALS), line
        assert "Sanitizer" not in line and "runtime error:" not in line, line


# -------------------------------------------------------------------- 5. FTP bounce

def bounce_targets(port):
    hi, lo = port >> 8, port & 255
    return [
        "PORT 127,0,0,2,%d,%d" % (hi, lo),
        "EPRT |1|127.0.0.2|%d|" % port,
        "PORT 127,0,0,1,0,21",
        "PORT 127,0,0,1,0,80",
        "PORT 127,0,0,1,3,255",  # 1023
        "EPRT |1|127.0.0.1|21|",
        "EPRT |1|127.0.0.1|80|",
        "EPRT |1|127.0.0.1|1023|",
    ]


def test_port_and_eprt_bounce_refused_with_504(server, tls):
    srv = server()
    victim = socket.socket()
    victim.bind(("127.0.0.2", 0))
    victim.listen(4)
    vport = victim.getsockname()[1]
    with secured(srv, tls) as c:
        assert c.cmd("PBSZ 0").code == 200
        assert c.cmd("PROT P").code == 200
        for cmd in bounce_targets(vport):
            r = c.cmd(cmd)
            assert r.code == 504, (cmd, r)
            # nothing was set up: a transfer now has no data connection to use
            r = c.cmd("RETR hello.txt")
            assert r.code == 425, (cmd, r)
        # positive control: the client's own address and a port >= 1024 is accepted
        own = socket.socket()
        own.bind(("127.0.0.1", 0))
        own.listen(1)
        p = own.getsockname()[1]
        assert c.cmd("PORT 127,0,0,1,%d,%d" % (p >> 8, p & 255)).code == 200
        assert c.cmd("EPRT |1|127.0.0.1|%d|" % p).code == 200
        own.close()
        assert c.cmd("NOOP").code == 200
    victim.settimeout(0.5)
    with pytest.raises(socket.timeout):
        victim.accept()
    victim.close()


def test_eprt_ipv6_from_an_ipv4_session_refused(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        # (::ffff:127.0.0.1 is the client itself, v4-mapped: not a bounce, not tested)
        for cmd in ("EPRT |2|::1|40000|", "EPRT |2|::2|40000|",
                    "EPRT |2|::ffff:127.0.0.2|40000|"):
            r = c.cmd(cmd)
            # 504 (not this host) or 522 (network protocol not supported, RFC 2428)
            assert r.code in (504, 522), (cmd, r)
            assert c.cmd("RETR hello.txt").code == 425, cmd
        assert c.cmd("NOOP").code == 200


@pytest.mark.parametrize("cmd", [
    "PORT 127,0,0,1,300,1",
    "PORT 127,0,0,1,4",
    "PORT 127,0,0,1,4,0,0",
    "PORT 127,0,0,-1,4,0",
    "PORT 1277,0,0,1,4,0",
    "PORT a,b,c,d,e,f",
    "EPRT |1|127.0.0.1|70000|",
    "EPRT |1|127.0.0.1|0|",
    "EPRT |1|127.0.0.1||",
    "EPRT |1|127.0.0.256|4000|",
    "EPRT |3|127.0.0.1|4000|",
    "EPRT 127.0.0.1|4000",
])
def test_malformed_port_and_eprt_are_refused(server, tls, cmd):
    srv = server()
    with secured(srv, tls) as c:
        r = c.cmd(cmd)
        assert r.code in (501, 504, 522), (cmd, r)
        assert c.cmd("RETR hello.txt").code == 425
        assert c.cmd("NOOP").code == 200


# ------------------------------------------------------------ 6. passive port theft

def epsv_port(c):
    r = c.cmd("EPSV")
    assert r.code == 229, r
    return int(re.search(r"\(\|\|\|(\d+)\|\)", r.first).group(1))


def thief_connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT,
                                    source_address=("127.0.0.2", 0))


@pytest.mark.parametrize("when", ["before-retr", "after-150"])
def test_passive_port_theft_clear_data_gets_no_bytes(server, tls, when):
    """With PROT C nothing but the address check protects the file: a connection from
    127.0.0.2 to the passive port, made before the client's own, must get nothing, and
    the client still gets the whole file."""
    srv = server(data_tls="optional")
    payload = os.urandom(256 << 10)
    with open(os.path.join(srv.root, "loot.bin"), "wb") as f:
        f.write(payload)
    os.chmod(os.path.join(srv.root, "loot.bin"), 0o644)
    with secured(srv, tls) as c:
        assert c.cmd("PBSZ 0").code == 200
        assert c.cmd("PROT C").code == 200
        assert c.cmd("TYPE I").code == 200
        port = epsv_port(c)
        if when == "before-retr":
            thief = thief_connect(port)
            time.sleep(0.3)
            r = c.cmd("RETR loot.bin")
            assert r.code == 150, r
        else:
            r = c.cmd("RETR loot.bin")
            assert r.code == 150, r
            thief = thief_connect(port)
            time.sleep(0.3)
        own = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        data = read_all(own)
        own.close()
        r = c.reply()
        assert r.code == 226, r
        assert data == payload
        stolen = stolen_bytes(thief)
        thief.close()
        assert stolen == b"", "the thief got %d bytes" % len(stolen)
        assert c.cmd("NOOP").code == 200
    assert "refused data connection from 127.0.0.2" in srv.log, srv.log


def test_passive_port_theft_tls_data_after_150(server, tls):
    """PROT P: a thief that connects after the 150 and starts a TLS handshake must not be
    taken as the data connection (that would also end the real transfer with 522)."""
    srv = server()
    ftp = ftp_login(srv)
    ftp.voidcmd("TYPE I")
    resp = ftp.sendcmd("EPSV")
    _, port = ftplib.parse229(resp, ("127.0.0.1", 0))
    assert ftp.sendcmd("RETR hello.txt").startswith("150")
    raw = thief_connect(port)
    raw.settimeout(1.5)
    thief_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    thief_ctx.check_hostname = False
    thief_ctx.verify_mode = ssl.CERT_NONE
    handshake_done = False
    try:
        thief = thief_ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        handshake_done = True
        stolen = stolen_bytes(thief)
    except (ssl.SSLError, OSError, socket.timeout):
        stolen = b""
    raw.close()
    assert not handshake_done, "the thief completed a TLS handshake on the data port"
    assert stolen == b""
    own = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    own = ftp.context.wrap_socket(own, server_hostname="127.0.0.1", session=ftp.sock.session)
    assert own.session_reused
    data = read_all(own)
    own.close()
    assert ftp.voidresp().startswith("226")
    assert data == HELLO
    quit_(ftp)
    assert "refused data connection from 127.0.0.2" in srv.log, srv.log


# ------------------------------------------------- 7. cross-session TLS resumption

VERSIONS = {
    "TLSv1.3": dict(minimum_version=ssl.TLSVersion.TLSv1_3),
    "TLSv1.2-ticket": dict(maximum_version=ssl.TLSVersion.TLSv1_2),
    "TLSv1.2-session-id": dict(maximum_version=ssl.TLSVersion.TLSv1_2, no_ticket=True),
}


@pytest.mark.parametrize("version", list(VERSIONS))
def test_session_from_another_server_instance_is_refused(server, version):
    """Two ftpsd instances with the same certificate and key: a session issued by one is
    useless on the other's data connection (own random ticket key, own cache)."""
    one = server(data_tls_reuse="required")
    two = server(data_tls_reuse="required")
    ctx = client_context(one.cafile, **VERSIONS[version])
    a = ftp_login(one, context=ctx)
    b = ftp_login(two, context=ctx)
    assert "hello.txt" in a.nlst()
    assert a.data_resumed == [True]
    assert_resuming_refused(b, a.sock.session)
    assert b.data_resumed[-1] is True
    quit_(a)
    quit_(b)


def test_tls12_session_id_of_another_control_connection_is_refused(server):
    """Same server, TLS 1.2 without tickets: the session-ID cache is per session (per
    process), so B cannot resume A's ID (tickets are covered in test_tls13_tickets.py)."""
    srv = server(data_tls_reuse="required")
    ctx = client_context(srv.cafile, **VERSIONS["TLSv1.2-session-id"])
    a = ftp_login(srv, context=ctx)
    b = ftp_login(srv, context=ctx)
    assert retr_bytes(a, "hello.txt") == HELLO
    assert a.data_resumed == [True]
    b.session_override = a.sock.session
    data, final = transfer_outcome(b, "LIST")
    assert final.startswith("522"), (final, data)
    assert b"hello.txt" not in data
    b.session_override = None
    assert "hello.txt" in b.nlst()
    quit_(a)
    quit_(b)


# ------------------------------------------------------------------ 8. cleartext

@needs_root
def test_clear_text_password_never_reaches_the_monitor(server, tls):
    """control-tls = required: USER and PASS in clear get 530 and the password is never
    checked: no failure is counted, no failure delay applied, and the string is nowhere
    in the monitor's memory. Positive control: a wrong password sent over TLS *is* found
    there by the same scan (the monitor checked it), and is counted as failure 1."""
    srv = server(control_tls="required", max_login_failures="2", login_failure_delay="600ms")
    secret = ("clear-%s" % os.urandom(12).hex()).encode()
    checked = ("tls-%s" % os.urandom(12).hex()).encode()
    with greeted(srv) as c:
        monitor, child = session_pids(srv)
        assert c.cmd("USER " + USER).code == 530
        for _ in range(2):
            t0 = time.monotonic()
            assert c.cmd("PASS " + secret.decode()).code == 530
            assert time.monotonic() - t0 < 0.4, "a clear PASS was delayed like a failed login"
        assert c.cmd("NOOP").code == 200  # two clear PASS did not reach max-login-failures
        found, n = memory_find(monitor, [secret])
        assert n > 1 << 20
        assert not found, "the clear-text password is in the monitor's memory"
        assert c.cmd("AUTH TLS").code == 234
        c.starttls(tls)
        assert c.cmd("USER " + USER).code == 331
        t0 = time.monotonic()
        assert c.cmd("PASS " + checked.decode()).code == 530
        assert time.monotonic() - t0 >= 0.55  # the first counted failure: 1 x delay
        found, n = memory_find(monitor, [secret, checked])
        assert checked in found, "positive control: the checked password was not found"
        assert secret not in found
        c.login()  # failure 1 of 2 only: the clear attempts were not counted
        assert c.cmd("PWD").code == 257
    assert re.search(r"login failed for user %s .*\(1 of 2\)" % USER, srv.log), srv.log
    assert "(2 of 2)" not in srv.log
    assert secret.decode() not in srv.log and checked.decode() not in srv.log


# ---------------------------------------------------------------------- 9. paths

def make_swap_tree(srv):
    """root/swapdir/data.txt (inside) and <dir>/swap-target/data.txt (outside)."""
    inside = os.path.join(srv.root, "swapdir")
    os.mkdir(inside)
    with open(os.path.join(inside, "data.txt"), "wb") as f:
        f.write(b"INSIDE\n")
    target = os.path.join(srv.dir, "swap-target")
    os.mkdir(target)
    with open(os.path.join(target, "data.txt"), "wb") as f:
        f.write(b"SWAP-OUTSIDE-SECRET\n")
    with open(os.path.join(target, "outside-only.txt"), "wb") as f:
        f.write(b"SWAP-OUTSIDE-SECRET\n")
    for p in (inside, target):
        os.chmod(p, 0o755)
        os.chmod(os.path.join(p, "data.txt"), 0o644)
        if ROOT:
            os.chown(p, srv.accounts.uid, srv.accounts.gid)
            os.chown(os.path.join(p, "data.txt"), srv.accounts.uid, srv.accounts.gid)
    return inside, target


def swap_for_symlink(inside, link_target):
    os.rename(inside, inside + "-moved")
    os.symlink(link_target, inside)


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_directory_swapped_for_symlink_after_cwd(server, kind):
    srv = server()
    inside, target = make_swap_tree(srv)
    ftp = ftp_login(srv)
    ftp.cwd("swapdir")
    assert retr_bytes(ftp, "data.txt") == b"INSIDE\n"
    swap_for_symlink(inside, target if kind == "absolute" else "../swap-target")
    with open(os.path.join(inside, "data.txt"), "rb") as f:
        assert f.read().startswith(b"SWAP")  # armed: the old path now leads outside
    try:
        data = retr_bytes(ftp, "data.txt")
    except ftplib.error_perm as e:
        assert str(e).startswith("550"), e
    else:
        assert b"SWAP-OUTSIDE-SECRET" not in data, "RETR read outside the root"
    lines = []
    try:
        ftp.retrlines("LIST", lines.append)
    except ftplib.error_perm as e:
        assert str(e)[:3] in ("450", "550"), e
    assert not any("outside-only.txt" in x for x in lines), "LIST showed outside: %r" % lines
    with pytest.raises(ftplib.error_perm, match="^550"):
        retr_bytes(ftp, "outside-only.txt")
    try:
        ftp.storbinary("STOR planted.txt", io.BytesIO(b"PLANTED\n"))
    except ftplib.error_perm:
        pass
    assert not os.path.exists(os.path.join(target, "planted.txt")), "STOR wrote outside"
    ftp.cwd("/")
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_(ftp)


def test_directory_swapped_for_symlink_between_two_retrs(server):
    srv = server()
    inside, target = make_swap_tree(srv)
    ftp = ftp_login(srv)
    assert retr_bytes(ftp, "swapdir/data.txt") == b"INSIDE\n"
    swap_for_symlink(inside, target)
    try:
        data = retr_bytes(ftp, "swapdir/data.txt")
    except ftplib.error_perm as e:
        assert str(e).startswith("550"), e
    else:
        assert b"SWAP-OUTSIDE-SECRET" not in data
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.cwd("swapdir")
    quit_(ftp)


# ------------------------------------------------------------------ 10. bad input

def replies_until(c, code, limit, timeout=IO_TIMEOUT):
    """Read replies until one has `code`; returns the ones before it."""
    before = []
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, before[-5:]
        r = c.reply()
        if r.code == code:
            return before
        before.append(r)
        assert len(before) <= limit, before[-5:]


def test_one_mebibyte_line_without_newline(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        monitor, child = session_pids(srv)
        c.sock.sendall(b"A" * (1 << 20))
        c.sock.sendall(b"\r\nNOOP\r\n")
        try:
            before = replies_until(c, 200, limit=300)
        except ConnectionClosed:
            before = None  # a clean close is acceptable
        if before is not None:
            assert before, "no reply for the 1 MiB line"
            assert all(r.code == 500 for r in before), before[:3]
            assert "too long" in before[0].text.lower(), before[0]
            assert c.cmd("PWD").code == 257
    assert_no_crash(srv)


def test_overlong_line_before_login_in_clear(server):
    srv = server(control_tls="optional")
    with greeted(srv) as c:
        c.sock.sendall(b"USER " + b"B" * 100000 + b"\r\nNOOP\r\n")
        before = replies_until(c, 200, limit=100)
        assert before and all(r.code == 500 for r in before), before[:3]
        c.login()
        assert c.cmd("PWD").code == 257
    assert_no_crash(srv)


@pytest.mark.parametrize("line", [
    b"NO\x00OP",
    b"\x00",
    b"USER al\x00ice",
    b"CWD sub\x00/../..",
    b"RETR hello.txt\x00.jpg",
])
def test_nul_bytes_are_500_and_the_session_goes_on(server, tls, line):
    srv = server()
    with secured(srv, tls, login=not line.startswith(b"USER")) as c:
        c.sock.sendall(line + b"\r\n")
        assert c.reply().code == 500
        assert c.cmd("NOOP").code == 200
    assert_no_crash(srv)


@pytest.mark.parametrize("raw,same_as", [
    (b"\xff\xf4\xff\xf2ABOR", "ABOR"),        # IP, Synch, ABOR (RFC 959 4.1.3)
    (b"\xff\xfb\x01\xff\xfd\x03NOOP", "NOOP"),  # WILL ECHO, DO SGA: negotiation dropped
    (b"N\xff\xf1OOP", "NOOP"),                   # IAC NOP inside the verb
    (b"\xff\xf4\xff\xf2", None),                # nothing left: an empty line
    (b"\xff\xff\xff\xff", None),                # two literal 0xff bytes
    (b"\xff", None),                              # a lone IAC at the end of the line
])
def test_telnet_iac_sequences(server, tls, raw, same_as):
    """Telnet commands are removed before parsing: the line means what is left of it."""
    srv = server()
    with secured(srv, tls) as c:
        want = c.cmd(same_as).code if same_as else 500
        c.sock.sendall(raw + b"\r\n")
        r = c.reply()
        assert r.code == want, (raw, r)
        assert c.cmd("NOOP").code == 200
        assert c.cmd("PWD").code == 257
    assert_no_crash(srv)


def test_telnet_abort_sequence_during_transfer(server, tls, big_file):
    """IP/Synch + ABOR mid-RETR (what RFC 959 clients send): the transfer is aborted or
    completes, every reply is well formed, and the session goes on."""
    srv = server()
    os.link(big_file, os.path.join(srv.root, "big.bin"))
    ftp = ftp_login(srv)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    assert conn.recv(65536)
    ftp.sock.sendall(b"\xff\xf4\xff\xf2ABOR\r\n")
    replies = [ftp.getmultiline()]
    while not replies[-1].startswith("2"):
        assert replies[-1][:3] in ("426", "451"), replies
        replies.append(ftp.getmultiline())
    assert replies[-1][:3] in ("225", "226"), replies
    conn.close()
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_(ftp)
    assert_no_crash(srv)


@pytest.mark.parametrize("raw", [
    b"CWD \xc3\x28",
    b"CWD \xfe\xfd\xfc",  # (no 0xff: that is Telnet IAC, stripped before parsing)
    b"CWD sub/\xed\xa0\x80",  # an encoded surrogate
    b"CWD \xc0\xaf\xc0\xae",  # overlong '/' and '.'
])
def test_invalid_utf8_in_cwd(server, tls, raw):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("OPTS UTF8 ON").code == 200
        c.sock.sendall(raw + b"\r\n")
        r = c.reply()
        assert r.code == 550, (raw, r)
        r = c.cmd("PWD")
        assert r.code == 257 and r.text.startswith('"/"'), r
    assert_no_crash(srv)


@pytest.mark.parametrize("name", [b"\xc3\x28.txt", b"\xfe\xfd", b"sub/\xc0\xaf..\xc0\xafhello.txt"])
def test_invalid_utf8_in_retr(server, tls, name):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("PBSZ 0").code == 200
        assert c.cmd("PROT P").code == 200
        epsv_port(c)
        c.sock.sendall(b"RETR " + name + b"\r\n")
        r = c.reply()
        assert r.code == 550, (name, r)
        assert c.cmd("NOOP").code == 200
    assert_no_crash(srv)


def test_ten_thousand_commands_in_a_burst(server, tls):
    """10,000 NOOPs in one write: every one answered in order, and the session goes on
    (the child sets no limit on pipelined commands: it reads the next one once the
    reply to the last is written, so a burst costs the client its own time only);
    meanwhile another session logs in and transfers."""
    srv = server(control_tls="optional")
    n = 10000
    c = greeted(srv)
    c.login()
    errors = []

    def send():
        try:
            c.sock.sendall(b"NOOP\r\n" * n)
        except OSError as e:
            errors.append(e)

    other_result = []

    def other():
        try:
            ftp = ftp_login(srv)
            other_result.append(retr_bytes(ftp, "hello.txt"))
            quit_(ftp)
        except Exception as e:  # reported below
            other_result.append(e)

    sender = threading.Thread(target=send)
    second = threading.Thread(target=other)
    sender.start()
    second.start()
    answered = 0
    deadline = time.monotonic() + 20
    try:
        while answered < n:
            assert time.monotonic() < deadline, "only %d of %d answered" % (answered, n)
            r = c.reply()
            assert r.code == 200 and len(r.lines) == 1, (answered, r)
            answered += 1
    except ConnectionClosed:
        raise AssertionError("closed after %d of %d NOOPs answered:\n%s"
                             % (answered, n, srv.log))
    sender.join(IO_TIMEOUT)
    assert not sender.is_alive() and errors == [], errors
    second.join(IO_TIMEOUT * 2)
    assert not second.is_alive()
    assert other_result == [HELLO], other_result
    # nothing more than one reply each, and the session still works
    assert c.reply_within(0.2) is None
    assert c.cmd("PWD").code == 257
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    c.close()
    assert_no_crash(srv)


@pytest.mark.parametrize("kind", ["random", "record-header"])
def test_tls_handshake_of_random_bytes(server, tls, kind):
    srv = server()
    c = greeted(srv)
    monitor, child = session_pids(srv)
    assert c.cmd("AUTH TLS").code == 234
    junk = os.urandom(64 << 10)
    if kind == "record-header":
        # a handshake record header (ClientHello) with a random body
        junk = b"\x16\x03\x01\x40\x00\x01\x00\x3f\xfc\x03\x03" + junk[11:]
    try:
        c.sock.sendall(junk)
    except OSError:
        pass  # the server may close before reading it all
    c.wait_closed(timeout=5)
    c.close()
    assert wait_for(lambda: not alive(monitor) and not alive(child), timeout=5)
    assert_no_crash(srv)
    with secured(srv, tls) as c2:
        assert c2.cmd("PWD").code == 257


def test_client_that_stops_reading_mid_transfer_is_ended_by_idle_timeout(server, big_file):
    srv = server(idle_timeout="3s")
    os.link(big_file, os.path.join(srv.root, "big.bin"))
    ftp = ftp_login(srv)
    ftp.voidcmd("TYPE I")
    monitor, child = session_pids(srv)
    conn = ftp.transfercmd("RETR big.bin")
    assert conn.recv(65536)
    t0 = time.monotonic()
    # read nothing more, on either connection, until the server gives up
    assert wait_for(lambda: not alive(monitor) and not alive(child), timeout=10), \
        "session still running %.1fs after the client stopped reading" % (
            time.monotonic() - t0)
    elapsed = time.monotonic() - t0
    assert elapsed >= 2.5, "ended after %.1fs, before the idle timeout" % elapsed
    assert srv.sessions() == []
    ftp.sock.settimeout(2)
    rest = b""
    try:
        while True:
            chunk = ftp.sock.recv(4096)
            if not chunk:
                break
            rest += chunk
    except (ssl.SSLError, OSError):
        pass
    assert b"421" in rest, rest
    ftp.close()
    conn.close()
    assert_no_crash(srv)


# -------------------------------------------------------------- 11. brute force

def test_failure_delay_grows_then_530_421_and_close(server, tls):
    srv = server(max_login_failures="3", login_failure_delay="300ms")
    with secured(srv, tls, login=False) as c:
        took = []
        for i in range(3):
            assert c.cmd("USER " + USER).code == 331
            t0 = time.monotonic()
            r = c.cmd("PASS wrong-%d" % i)
            took.append(time.monotonic() - t0)
            assert r.code == 530, r
        for i, t in enumerate(took):
            want = 0.3 * (i + 1)
            assert want - 0.02 <= t < want + 0.5, took
        r = c.reply_within(2)
        assert r is not None and r.code == 421, r
        c.wait_closed(timeout=3)
    # the limit is per session: a new connection may log in at once
    with secured(srv, tls, login=False) as c:
        t0 = time.monotonic()
        c.login()
        assert time.monotonic() - t0 < 0.3


def test_failures_count_across_users_and_unknown_users(server, tls):
    srv = server(max_login_failures="2", login_failure_delay="50ms")
    with secured(srv, tls, login=False) as c:
        assert c.cmd("USER nosuchuser").code == 331
        assert c.cmd("PASS x").code == 530
        assert c.cmd("USER reader").code == 331
        assert c.cmd("PASS y").code == 530
        r = c.reply_within(2)
        assert r is not None and r.code == 421, r
        c.wait_closed(timeout=3)


# ------------------------------------------------------------- 12. slow clients

def closed_with_421(c, t0, low, high):
    data = c.wait_closed(timeout=high + 2)
    elapsed = time.monotonic() - t0
    assert low <= elapsed <= high, "closed after %.2fs" % elapsed
    assert data.startswith(b"421"), data
    return elapsed


def test_login_timeout_silent_client(server):
    srv = server(login_timeout="2s")
    t0 = time.monotonic()
    with greeted(srv) as c:
        closed_with_421(c, t0, 1.8, 3.5)


def test_login_timeout_is_not_reset_by_noops(server):
    """A client that keeps talking but never logs in is still closed at login-timeout
    (an absolute deadline from the connection, not an idle timer)."""
    srv = server(login_timeout="2s", control_tls="optional")
    t0 = time.monotonic()
    with greeted(srv) as c:
        final = None
        while final is None:
            assert time.monotonic() - t0 < 6, "still open after 6s of NOOPs"
            r = c.cmd("NOOP")
            if r.code != 200:
                final = r
                break
            final = c.reply_within(0.4)  # an unsolicited reply while idle: the 421
        elapsed = time.monotonic() - t0
        assert final.code == 421, final
        assert 1.8 <= elapsed <= 3.5, elapsed
        c.wait_closed(timeout=3)


def test_login_timeout_during_a_stalled_tls_handshake(server):
    srv = server(login_timeout="2s")
    t0 = time.monotonic()
    with greeted(srv) as c:
        monitor, child = session_pids(srv)
        assert c.cmd("AUTH TLS").code == 234
        c.wait_closed(timeout=5)  # never sends a ClientHello
        elapsed = time.monotonic() - t0
        assert 1.8 <= elapsed <= 3.5, elapsed
    assert wait_for(lambda: not alive(monitor) and not alive(child), timeout=3)


def test_idle_timeout_after_login(server, tls):
    srv = server(idle_timeout="2s")
    with secured(srv, tls) as c:
        monitor, child = session_pids(srv)
        t0 = time.monotonic()
        closed_with_421(c, t0, 1.8, 3.5)
    assert wait_for(lambda: not alive(monitor) and not alive(child), timeout=3)
    assert "idle timeout" in srv.log


# ------------------------------------------------------------ 13. data integrity

def stor_without_close_notify(ftp, name, payload):
    conn = ftp.transfercmd("STOR " + name)
    conn.sendall(payload)
    conn.shutdown(socket.SHUT_RDWR)  # FIN without TLS close_notify (no unwrap)
    conn.close()
    try:
        return ftp.voidresp()
    except ftplib.Error as e:
        return str(e)


def test_upload_without_close_notify_strict_off_is_226_possibly_truncated(server):
    srv = server(data_tls_strict_eof="off")
    ftp = ftp_login(srv)
    ftp.voidcmd("TYPE I")
    payload = os.urandom(300000)
    final = stor_without_close_notify(ftp, "cut.bin", payload)
    assert final.startswith("226"), final
    assert "possibly truncated" in final, final
    assert re.search(r"upload of \S*cut\.bin ended without TLS close_notify.*may be truncated",
                     srv.log), srv.log
    # a proper upload on the same session is a plain 226
    ftp.storbinary("STOR whole.bin", io.BytesIO(payload))
    assert "truncated" not in ftp.lastresp + ftp.voidcmd("NOOP")
    quit_(ftp)


def test_upload_without_close_notify_strict_on_is_426_and_not_stored(server):
    srv = server(data_tls_strict_eof="on")
    ftp = ftp_login(srv)
    ftp.voidcmd("TYPE I")
    final = stor_without_close_notify(ftp, "cut.bin", os.urandom(300000))
    assert final.startswith("426"), final
    assert not os.path.exists(os.path.join(srv.root, "cut.bin"))
    assert wait_for(lambda: "ended without TLS close_notify" in srv.log, timeout=5), srv.log
    # with close_notify the same policy accepts the upload
    payload = os.urandom(300000)
    resp = ftp.storbinary("STOR whole.bin", io.BytesIO(payload))
    assert resp.startswith("226") and "truncated" not in resp, resp
    with open(os.path.join(srv.root, "whole.bin"), "rb") as f:
        assert f.read() == payload
    quit_(ftp)


def traced_server(server, ftpsd_bin, syscalls="fsync,fdatasync", before_start=None, **overrides):
    """A server whose ftpsd runs under `strace -D -f` from its start (-D keeps the pid that
    LISTEN_PID names; tracing from the start, not attaching later, never interrupts a
    syscall). Only `syscalls` are recorded, in srv.trace_path."""
    srv = server(start=False, **overrides)
    srv.trace_path = os.path.join(srv.dir, "strace.out")
    argv = srv.argv
    srv.argv = lambda: ["strace", "-D", "-f", "-qq", "-o", srv.trace_path,
                        "-e", "trace=" + syscalls] + argv()
    if before_start is not None:
        before_start(srv)
    srv.start()
    return srv


@needs_root
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")
@pytest.mark.parametrize("fsync", ["on", "off"])
def test_upload_fsync_before_226(server, ftpsd_bin, fsync):
    srv = traced_server(server, ftpsd_bin, upload_fsync=fsync)
    payload = os.urandom(4 << 20)
    ftp = ftp_login(srv)
    ftp.voidcmd("TYPE I")
    resp = ftp.storbinary("STOR synced.bin", io.BytesIO(payload), blocksize=1 << 20)
    assert resp.startswith("226") and "truncated" not in resp, resp
    # the reply came after the sync: the trace has it already (strace writes as it goes)
    with open(srv.trace_path) as f:
        trace = f.read()
    quit_(ftp)
    with open(os.path.join(srv.root, "synced.bin"), "rb") as f:
        assert f.read() == payload
    synced = re.search(r"\b(fsync|fdatasync)\(\d+\)\s+= 0", trace)
    if fsync == "on":
        assert synced, "no fsync/fdatasync before the 226; trace:\n" + trace
    else:
        assert not synced, trace
    assert_no_crash(srv)


@needs_root
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")
def test_yescrypt_scratch_memory_asks_for_huge_pages(server, ftpsd_bin):
    """yescrypt's 16 MiB scratch region is mapped 2 MiB-aligned with MADV_HUGEPAGE while
    the monitor hashes (hugepages.c), and the answer is still the hash's: right password
    in, wrong password out. (Not in sanitizer builds, whose runtime owns mmap.)"""
    with open(ftpsd_bin, "rb") as f:
        if b"__asan_init" in f.read():
            pytest.skip("AddressSanitizer build: the runtime intercepts mmap itself")
    password = "Yes-%s" % os.urandom(6).hex()
    hashed = subprocess.run([ftpsd_bin, "--hash-password"], input=password + "\n", text=True,
                            capture_output=True, check=True, timeout=IO_TIMEOUT).stdout.strip()
    assert hashed.startswith("$y$"), hashed

    def add_user(srv):
        with open(srv.users_path) as f:
            first = f.readline().rstrip("\n").split(":")
        with open(srv.users_path, "a") as f:
            f.write(":".join(["yes", hashed] + first[2:]) + "\n")

    srv = traced_server(server, ftpsd_bin, syscalls="madvise", before_start=add_user)
    with pytest.raises(ftplib.error_perm, match="^530"):
        ftp_login(srv, user="yes", password=password + "x")
    ftp = ftp_login(srv, user="yes", password=password)
    ftp.voidcmd("NOOP")
    quit_(ftp)
    with open(srv.trace_path) as f:
        trace = f.read()
    huge = [(int(a, 16), int(n)) for a, n in
            re.findall(r"madvise\(0x([0-9a-f]+), (\d+), MADV_HUGEPAGE\)\s+= 0", trace)]
    # (each connection's strace rewrites the file: this is the last session's)
    assert huge, "no MADV_HUGEPAGE for the hash's scratch memory:\n" + trace
    for addr, length in huge:
        assert addr % (2 << 20) == 0 and length >= 16 << 20, (hex(addr), length)
    assert_no_crash(srv)


# ---------------------------------------------------------------------- 14. PAM

@pytest.fixture
def pam_user(session_dir):
    if not ROOT:
        pytest.skip("needs root (system user, /etc/pam.d)")
    with pam_system_user(session_dir, "pam", "auth required pam_unix.so nodelay\n"
                         "account required pam_unix.so\n",
                         {"pam-hello.txt": b"hello from a PAM user's home\n"}) as u:
        yield u


def test_pam_system_user_logs_in_to_its_home(server, tls, pam_user):
    name, password, service, home = pam_user
    # The home is not below /home: landlock-writable names where system users live.
    srv = server(pam_service=service, landlock_writable=os.path.dirname(home))
    with open(srv.users_path) as f:
        assert name not in f.read()
    ftp = ftp_login(srv, user=name, password=password)
    assert ftp.pwd() == "/"
    assert "pam-hello.txt" in ftp.nlst()
    assert "hello.txt" not in ftp.nlst()  # the users-file root is not this user's
    assert retr_bytes(ftp, "pam-hello.txt") == b"hello from a PAM user's home\n"
    ftp.storbinary("STOR up.txt", io.BytesIO(b"pam upload\n"))
    st = os.stat(os.path.join(home, "up.txt"))
    pw = pwd.getpwnam(name)
    assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid)
    quit_(ftp)
    with secured(srv, tls, login=False) as c:
        assert c.cmd("USER " + name).code == 331
        assert c.cmd("PASS wrong-" + password).code == 530
    # users-file users still work next to PAM
    ftp = ftp_login(srv)
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_(ftp)


def test_pam_home_outside_landlock_writable_is_refused(server, tls, pam_user):
    """Before login the monitor may write only beneath landlock-writable (default /home)
    among system users' homes: a home elsewhere would fail every upload, so the login
    is refused and the log says which key; with landlock-before-login = off it works."""
    name, password, service, home = pam_user
    if os.uname().machine != "x86_64" or landlock_abi() < 2:
        pytest.skip("needs Landlock ABI 2")
    srv = server(pam_service=service)
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp_login(srv, user=name, password=password)
    assert wait_for(lambda: "login of %s refused: its root %s is not beneath a directory "
                    "the monitor may write before login (landlock-writable" % (name, home)
                    in srv.log, timeout=3), srv.log
    srv.stop()
    srv = server(pam_service=service, landlock_before_login="off")
    ftp = ftp_login(srv, user=name, password=password)
    ftp.storbinary("STOR up.txt", io.BytesIO(b"pam upload\n"))
    quit_(ftp)
    assert os.path.exists(os.path.join(home, "up.txt"))


FAILLOCK_STACK = ("auth required pam_faillock.so preauth deny=1 unlock_time=600\n"
                  "auth [success=1 default=bad] pam_unix.so nodelay\n"
                  "auth [default=die] pam_faillock.so authfail deny=1 unlock_time=600\n"
                  "auth sufficient pam_faillock.so authsucc deny=1 unlock_time=600\n"
                  "account required pam_unix.so\n")


@pytest.mark.skipif(not os.path.exists("/usr/lib/x86_64-linux-gnu/security/pam_faillock.so"),
                    reason="no pam_faillock")
@pytest.mark.parametrize("writable", ["default", "home only"])
def test_pam_faillock_still_locks_under_the_pre_login_layer(server, session_dir, writable):
    """pam_faillock opens its tally read-write even to check it, and lets the login
    through when it cannot: the pre-login Landlock layer allows /run/faillock by default
    where PAM is used (the default landlock-writable, with a home below /home). One wrong
    password locks the account (deny=1): the right one is then refused too. The control:
    landlock-writable without /run/faillock, and the lock fails open."""
    if not ROOT:
        pytest.skip("needs root (system user, /etc/pam.d)")
    if not os.path.isdir("/home"):
        pytest.skip("no /home")
    with pam_system_user(session_dir, "flk", FAILLOCK_STACK, {}, home_base="/home") as u:
        name, password, service, home = u
        tally = "/run/faillock/" + name
        try:
            srv = server(pam_service=service,
                         landlock_writable=None if writable == "default" else "/home")
            with pytest.raises(ftplib.error_perm, match="530"):
                ftp_login(srv, user=name, password="wrong-" + password)
            if writable == "default":
                assert os.path.exists(tally), srv.log
                with pytest.raises(ftplib.error_perm, match="530"):
                    ftp_login(srv, user=name, password=password)
            elif landlock_abi() >= 2:
                assert not os.path.exists(tally), srv.log
                ftp = ftp_login(srv, user=name, password=password)
                quit_(ftp)
        finally:
            if os.path.exists(tally):
                os.unlink(tally)


# ------------------------------------------------ 15. Oversized handshake messages

HUGE_CLAIM = (16 << 20) - 1  # what the handshake message header claims: the most it can
HUGE_SENT = 4 << 20          # what the attacker sends of it


def vm_hwm_kib(pid):
    """Peak resident memory of a process (VmHWM), in KiB; None once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def send_huge_client_hello(sock, pid):
    """A ClientHello whose handshake header claims HUGE_CLAIM bytes, followed by up to
    HUGE_SENT bytes of it in full 16 KiB records; the child's VmHWM is sampled every
    256 KiB. Returns (bytes sent when the server closed or stopped reading, or all of
    them; highest VmHWM seen while the child lived)."""
    sent, peak = 0, vm_hwm_kib(pid) or 0
    body = b"\x01" + HUGE_CLAIM.to_bytes(3, "big") + bytes(16384 - 4)
    sock.settimeout(2)
    try:
        while sent < HUGE_SENT:
            sock.sendall(b"\x16\x03\x01" + len(body).to_bytes(2, "big") + body)
            sent += len(body)
            body = bytes(16384)
            if sent % (256 << 10) == 0:
                peak = max(peak, vm_hwm_kib(pid) or 0)
    except (BrokenPipeError, ConnectionResetError, socket.timeout, TimeoutError):
        pass
    time.sleep(0.2)
    peak = max(peak, vm_hwm_kib(pid) or 0)
    return sent, peak


def closed_by_peer(sock, timeout=5):
    """True if the peer closes (EOF, reset or a TLS alert and EOF) within `timeout`."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, TimeoutError):
        return False
    return False


@pytest.mark.parametrize("channel", ["control", "data"])
def test_huge_handshake_message_is_refused_early(server, tls, channel):
    """Issue 13: GnuTLS gathers a whole handshake message before it checks its size, so
    a ClientHello claiming 16 MiB made the child buffer all that was sent. The child
    caps a handshake at 64 KiB of messages and stops reading one that sends more: its
    memory stays small, the control connection is closed at once, a data connection at
    the transfer command that finds it failed (425), and the session goes on."""
    srv = server()
    if channel == "control":
        c = greeted(srv)
        assert c.cmd("AUTH TLS").code == 234
        sock = c.sock
    else:
        c = secured(srv, tls)
        assert c.cmd("PBSZ 0").code == 200 and c.cmd("PROT P").code == 200
        sock = socket.create_connection(("127.0.0.1", epsv_port(c)), IO_TIMEOUT)
    _, child = session_pids(srv)
    before = vm_hwm_kib(child)
    sent, peak = send_huge_client_hello(sock, child)
    assert peak - before < 2048, (before, peak, sent)
    assert wait_for(lambda: "TLS handshake failed: over 128 KiB of handshake records"
                    in srv.log), srv.log
    if channel == "data":
        r = c.cmd("RETR hello.txt")
        while r.code < 200:
            r = c.reply()
        assert r.code == 425, r
        assert closed_by_peer(sock)
        assert c.cmd("NOOP").code == 200                   # the session goes on
        c.close()
    else:
        assert closed_by_peer(sock), "still open after %d bytes of a 16 MiB ClientHello" % sent
        assert wait_for(lambda: not alive(child), timeout=5)
    sock.close()
    assert_no_crash(srv)


def test_whole_client_hello_over_64_kib_is_refused(server):
    """The cap itself (gnutls_handshake_set_max_packet_length, 64 KiB of handshake
    messages): a complete 100 KiB ClientHello (a padding extension), under the 128 KiB
    the child reads before it stops, is refused by GnuTLS as too large; its default
    (128 KiB) would have parsed it."""
    srv = server()
    c = greeted(srv)
    assert c.cmd("AUTH TLS").code == 234
    # Each list has a 16-bit length: 100 KiB takes long cipher and extension lists.
    suites = b"\x13\x01\xc0\x2b" + b"\x0a\x0a" * 25000    # 0x0a0a: GREASE, ignored
    padding = bytes(50000)
    ext = b"\x00\x15" + len(padding).to_bytes(2, "big") + padding
    body = (b"\x03\x03" + os.urandom(32) + b"\x00" + len(suites).to_bytes(2, "big") + suites
            + b"\x01\x00" + len(ext).to_bytes(2, "big") + ext)
    assert 96 << 10 < len(body) < 112 << 10
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    for i in range(0, len(msg), 16384):
        part = msg[i:i + 16384]
        c.sock.sendall(b"\x16\x03\x01" + len(part).to_bytes(2, "big") + part)
    assert closed_by_peer(c.sock)
    c.close()
    assert wait_for(lambda: "control TLS handshake failed: The handshake data size is too "
                    "large" in srv.log), srv.log
    assert_no_crash(srv)


class MiniTLS13:
    """Just enough of a TLS 1.3 client (X25519, TLS_AES_128_GCM_SHA256, no certificate
    check) to send what no TLS library lets a caller send: handshake messages of any
    size after the handshake. RFC 8446 section 7 for the key schedule."""

    def __init__(self, sock):
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        self.sock = sock
        self.buf = b""
        key = X25519PrivateKey.generate()
        shares = b"\x00\x1d\x00\x20" + key.public_key().public_bytes(Encoding.Raw,
                                                                    PublicFormat.Raw)
        ext = b"".join(t.to_bytes(2, "big") + len(v).to_bytes(2, "big") + v for t, v in (
            (43, b"\x02\x03\x04"),                                 # supported_versions
            (10, b"\x00\x02\x00\x1d"),                             # supported_groups
            (13, b"\x00\x06\x04\x03\x08\x04\x08\x07"),             # signature_algorithms
            (51, len(shares).to_bytes(2, "big") + shares)))        # key_share
        body = (b"\x03\x03" + os.urandom(32) + b"\x20" + os.urandom(32) + b"\x00\x02\x13\x01"
                + b"\x01\x00" + len(ext).to_bytes(2, "big") + ext)
        hello = b"\x01" + len(body).to_bytes(3, "big") + body
        sock.sendall(b"\x16\x03\x01" + len(hello).to_bytes(2, "big") + hello)
        rtype, server_hello = self.record()
        assert rtype == 0x16 and server_hello[0] == 2, server_hello[:8]
        transcript = hello + server_hello
        # The ServerHello's key_share: X25519, 32 bytes.
        i = server_hello.index(b"\x00\x33\x00\x24\x00\x1d\x00\x20") + 8
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
        shared = key.exchange(X25519PublicKey.from_public_bytes(server_hello[i:i + 32]))
        early = self.extract(bytes(32), bytes(32))
        hs = self.extract(self.derive(early, b"derived", b""), shared)
        c_hs = self.derive(hs, b"c hs traffic", transcript)
        self.keys(self.derive(hs, b"s hs traffic", transcript), "read")
        msgs = b""
        while True:                                  # EncryptedExtensions .. Finished
            rtype, data = self.record()
            if rtype == 0x14:
                continue                             # middlebox ChangeCipherSpec
            plain = self.open(data)
            assert plain[-1] == 0x16, plain[-1]
            msgs += plain[:-1]
            done = False
            while len(msgs) >= 4 and len(msgs) >= 4 + int.from_bytes(msgs[1:4], "big"):
                n = 4 + int.from_bytes(msgs[1:4], "big")
                transcript += msgs[:n]
                done = msgs[0] == 20
                msgs = msgs[n:]
            if done:
                break
        master = self.extract(self.derive(hs, b"derived", b""), bytes(32))
        c_ap = self.derive(master, b"c ap traffic", transcript)
        s_ap = self.derive(master, b"s ap traffic", transcript)
        import hashlib
        import hmac
        fin_key = self.label(c_hs, b"finished", b"", 32)
        verify = hmac.new(fin_key, hashlib.sha256(transcript).digest(), hashlib.sha256).digest()
        self.keys(c_hs, "write")
        self.send(b"\x14\x00\x00\x20" + verify, 0x16)
        self.keys(c_ap, "write")
        self.keys(s_ap, "read")

    def recv(self):
        """The next record of application data (messages such as NewSessionTicket are
        skipped)."""
        while True:
            rtype, data = self.record()
            assert rtype == 0x17, rtype
            plain = self.open(data)
            if plain[-1] == 0x17:
                return plain[:-1]

    @staticmethod
    def extract(salt, ikm):
        import hashlib
        import hmac
        return hmac.new(salt, ikm, hashlib.sha256).digest()

    @staticmethod
    def label(secret, label, context, length):
        import hashlib
        import hmac
        full = b"tls13 " + label
        info = (length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)])
                + context)
        out, t, i = b"", b"", 1
        while len(out) < length:
            t = hmac.new(secret, t + info + bytes([i]), hashlib.sha256).digest()
            out += t
            i += 1
        return out[:length]

    def derive(self, secret, label, messages):
        import hashlib
        return self.label(secret, label, hashlib.sha256(messages).digest(), 32)

    def keys(self, secret, way):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        setattr(self, way, [AESGCM(self.label(secret, b"key", b"", 16)),
                            self.label(secret, b"iv", b"", 12), 0])

    def nonce(self, way):
        aead, iv, seq = way
        way[2] += 1
        return bytes(a ^ b for a, b in zip(iv, seq.to_bytes(12, "big")))

    def record(self):
        while len(self.buf) < 5 or len(self.buf) < 5 + int.from_bytes(self.buf[3:5], "big"):
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed during the handshake"
            self.buf += chunk
        n = 5 + int.from_bytes(self.buf[3:5], "big")
        rec, self.buf = self.buf[:n], self.buf[n:]
        self.header = rec[:5]
        return rec[0], rec[5:]

    def open(self, data):
        """The inner plaintext, content type last."""
        return self.read[0].decrypt(self.nonce(self.read), data, self.header).rstrip(b"\0")

    def send(self, data, content_type):
        n = len(data) + 1 + 16
        header = b"\x17\x03\x03" + n.to_bytes(2, "big")
        sealed = self.write[0].encrypt(self.nonce(self.write), data + bytes([content_type]),
                                       header)
        self.sock.sendall(header + sealed)


def test_huge_message_after_the_handshake_is_refused_early(server, tls):
    """Issue 13, after the handshake: TLS 1.3 lets a client send handshake messages at any
    time (KeyUpdate), encrypted, and GnuTLS gathers those whole too. The child reads at
    most 128 KiB without application data coming out, before login as after."""
    pytest.importorskip("cryptography.hazmat.primitives.ciphers.aead")
    srv = server()
    c = greeted(srv)
    assert c.cmd("AUTH TLS").code == 234
    c.sock.settimeout(IO_TIMEOUT)
    t = MiniTLS13(c.sock)
    _, child = session_pids(srv)
    # The session works: a command under the new keys gets its answer.
    t.send(b"NOOP\r\n", 0x17)
    assert t.recv().startswith(b"200 "), "no answer to NOOP"
    before = vm_hwm_kib(child)
    sent, peak = 0, before
    body = b"\x18" + HUGE_CLAIM.to_bytes(3, "big") + bytes(16000 - 4)   # KeyUpdate
    c.sock.settimeout(2)
    try:
        while sent < HUGE_SENT:
            t.send(body, 0x16)
            sent += len(body)
            body = bytes(16000)
            if sent % (16000 * 16) == 0:
                peak = max(peak, vm_hwm_kib(child) or 0)
    except (BrokenPipeError, ConnectionResetError, socket.timeout, TimeoutError):
        pass
    time.sleep(0.2)
    peak = max(peak, vm_hwm_kib(child) or 0)
    assert peak - before < 2048, (before, peak, sent)
    assert closed_by_peer(c.sock), "still open after %d bytes of a 16 MiB KeyUpdate" % sent
    assert wait_for(lambda: not alive(child), timeout=5)
    assert "TLS receive: over 128 KiB of records without application data" in srv.log, srv.log
    c.close()
    assert_no_crash(srv)
