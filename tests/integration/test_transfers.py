"""Data transfers with Python's ftplib: listings, RETR/STOR byte for byte, the data
protection policy (521/522), and paths that try to leave the served root.

ReusingFTP_TLS resumes the control session on each data connection (as curl,
lftp and FileZilla do); StockFTP_TLS is CPython's FTP_TLS, which does not.
"""

import ftplib
import io
import os
import socket
import ssl
import time

import pytest

from ftpsd_testlib import (quit_quietly, HELLO, INNER, ROOT, USER, PASSWORD, RO_USER, RO_PASSWORD, IO_TIMEOUT,
                           ImplicitFTP_TLS, ReusingFTP_TLS, StockFTP_TLS, client_context, ftp_login, retr_bytes,
                           retr_sha256, sha256_file, transfer_outcome)


quit_ = quit_quietly


@pytest.fixture
def session(server):
    """A logged-in ReusingFTP_TLS session with PROT P on a default server."""
    srv = server()
    ftp = ftp_login(srv)
    yield srv, ftp
    quit_(ftp)


# -------------------------------------------------------------------- listings

@pytest.mark.parametrize("passive", ["EPSV", "PASV"])
def test_list_shows_the_root(server, passive):
    srv = server()
    ftp = ftp_login(srv, passive=passive)
    lines = []
    ftp.retrlines("LIST", lines.append)
    text = "\n".join(lines)
    assert "hello.txt" in text and "sub" in text, lines
    assert "outside" not in text and "secret.txt" not in text
    assert ftp.data_resumed == [True]
    quit_(ftp)


def test_pasv_announces_the_control_address_and_a_configured_port(server):
    srv = server(pasv_ports="61500-61509")
    ftp = ftp_login(srv, passive="PASV")
    ftp.retrlines("LIST", lambda line: None)
    resp = ftp.passive_replies[-1]
    assert resp.startswith("227 "), resp
    host, port = ftplib.parse227(resp)
    assert host == "127.0.0.1"
    assert 61500 <= port <= 61509
    quit_(ftp)


def test_epsv_reply_format_and_port_range(server):
    srv = server(pasv_ports="61510-61519")
    ftp = ftp_login(srv, passive="EPSV")
    ftp.retrlines("LIST", lambda line: None)
    resp = ftp.passive_replies[-1]
    assert resp.startswith("229 ") and "(|||" in resp and resp.rstrip().endswith("|)"), resp
    _, port = ftplib.parse229(resp, ("127.0.0.1", 0))
    assert 61510 <= port <= 61519
    quit_(ftp)


def test_pasv_address_is_announced(server):
    srv = server(pasv_address="127.0.0.2")
    ftp = ftp_login(srv, passive="PASV")
    resp = ftp.sendcmd("PASV")
    assert ftplib.parse227(resp)[0] == "127.0.0.2", resp
    quit_(ftp)


def test_nlst_names(session):
    srv, ftp = session
    names = ftp.nlst()
    assert "hello.txt" in names and "sub" in names, names
    assert sorted(os.path.basename(n) for n in ftp.nlst("sub")) == ["deeper", "inner.txt",
                                                                     "up-link"]


def test_mlsd_facts(session):
    srv, ftp = session
    entries = {name: facts for name, facts in ftp.mlsd()}
    assert entries["hello.txt"]["type"] == "file"
    assert entries["hello.txt"].get("size", str(len(HELLO))) == str(len(HELLO))
    assert entries["sub"]["type"] == "dir"
    assert "outside" not in entries


def test_list_of_subdirectory_and_cwd_listing(session):
    srv, ftp = session
    lines = []
    ftp.retrlines("LIST sub", lines.append)
    assert any("inner.txt" in line for line in lines), lines
    ftp.cwd("sub")
    lines = []
    ftp.retrlines("LIST", lines.append)
    assert any("inner.txt" in line for line in lines), lines


def test_several_listings_on_one_session(session):
    srv, ftp = session
    for _ in range(3):
        assert "hello.txt" in ftp.nlst()
        assert retr_bytes(ftp, "hello.txt") == HELLO
    assert ftp.data_resumed == [True] * 6


# ----------------------------------------------------------------- RETR / STOR

@pytest.mark.parametrize("passive", ["EPSV", "PASV"])
def test_retr_small_file(server, passive):
    srv = server()
    ftp = ftp_login(srv, passive=passive)
    assert retr_bytes(ftp, "hello.txt") == HELLO
    assert retr_bytes(ftp, "sub/inner.txt") == INNER
    assert retr_bytes(ftp, "/sub/inner.txt") == INNER
    quit_(ftp)


@pytest.mark.parametrize("passive", ["EPSV", "PASV"])
def test_stor_small_file(server, passive):
    srv = server()
    ftp = ftp_login(srv, passive=passive)
    payload = b"uploaded via %s\n" % passive.encode()
    ftp.storbinary("STOR up.txt", io.BytesIO(payload))
    with open(os.path.join(srv.root, "up.txt"), "rb") as f:
        assert f.read() == payload
    assert retr_bytes(ftp, "up.txt") == payload
    quit_(ftp)


def test_stor_empty_file(session):
    srv, ftp = session
    ftp.storbinary("STOR empty.bin", io.BytesIO(b""))
    assert os.path.getsize(os.path.join(srv.root, "empty.bin")) == 0
    assert retr_bytes(ftp, "empty.bin") == b""


def test_stored_file_belongs_to_the_user_and_honours_umask(server):
    srv = server(umask="027")
    ftp = ftp_login(srv)
    ftp.storbinary("STOR owned.txt", io.BytesIO(b"x"))
    st = os.stat(os.path.join(srv.root, "owned.txt"))
    assert st.st_mode & 0o777 == 0o640, oct(st.st_mode)
    if ROOT:
        assert (st.st_uid, st.st_gid) == (srv.accounts.uid, srv.accounts.gid)
    quit_(ftp)


def test_retr_64mib_byte_for_byte(session, big_file):
    srv, ftp = session
    os.link(big_file, os.path.join(srv.root, "big.bin"))
    ftp.voidcmd("TYPE I")
    assert ftp.size("big.bin") == 64 << 20
    digest, n = retr_sha256(ftp, "big.bin")
    assert n == 64 << 20
    assert digest == sha256_file(big_file)


def test_stor_64mib_byte_for_byte(session, big_file):
    srv, ftp = session
    ftp.voidcmd("TYPE I")
    with open(big_file, "rb") as f:
        ftp.storbinary("STOR big-up.bin", f, blocksize=1 << 20)
    dst = os.path.join(srv.root, "big-up.bin")
    assert os.path.getsize(dst) == 64 << 20
    assert sha256_file(dst) == sha256_file(big_file)
    assert ftp.size("big-up.bin") == 64 << 20


def test_stor_overwrites(session):
    srv, ftp = session
    ftp.storbinary("STOR hello.txt", io.BytesIO(b"short\n"))
    with open(os.path.join(srv.root, "hello.txt"), "rb") as f:
        assert f.read() == b"short\n"  # truncated, not overlaid


def test_read_only_user_cannot_store(server):
    srv = server()
    ftp = ftp_login(srv, user=RO_USER, password=RO_PASSWORD)
    assert retr_bytes(ftp, "hello.txt") == HELLO
    with pytest.raises(ftplib.error_perm):
        ftp.storbinary("STOR nope.txt", io.BytesIO(b"x"))
    assert not os.path.exists(os.path.join(srv.root, "nope.txt"))
    with pytest.raises(ftplib.error_perm):
        ftp.storbinary("STOR hello.txt", io.BytesIO(b"x"))
    with open(os.path.join(srv.root, "hello.txt"), "rb") as f:
        assert f.read() == HELLO
    quit_(ftp)


# ------------------------------------------------------------- navigation, SIZE

def test_pwd_cwd_cdup(session):
    srv, ftp = session
    assert ftp.pwd() == "/"
    assert ftp.cwd("sub").startswith("250")
    assert ftp.pwd() == "/sub"
    assert ftp.cwd("deeper").startswith("250")
    assert ftp.pwd() == "/sub/deeper"
    assert ftp.voidcmd("CDUP").startswith("250")
    assert ftp.pwd() == "/sub"
    assert ftp.cwd("/").startswith("250")
    assert ftp.pwd() == "/"


def test_pwd_reply_is_257_quoted(session):
    srv, ftp = session
    assert ftp.sendcmd("PWD") .startswith('257 "/"')


def test_cwd_missing_is_550(session):
    srv, ftp = session
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.cwd("no-such-dir")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.cwd("hello.txt")  # a file is not a directory
    assert ftp.pwd() == "/"


def test_size(session):
    srv, ftp = session
    ftp.voidcmd("TYPE I")
    assert ftp.sendcmd("SIZE hello.txt") == "213 %d" % len(HELLO)
    assert ftp.size("sub/inner.txt") == len(INNER)
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.size("missing.txt")


def test_type_a_i_and_utf8(session):
    srv, ftp = session
    assert ftp.voidcmd("TYPE A").startswith("200")
    assert ftp.voidcmd("TYPE I").startswith("200")
    assert ftp.voidcmd("OPTS UTF8 ON").startswith("200")


def test_utf8_file_names(session):
    srv, ftp = session
    ftp.voidcmd("OPTS UTF8 ON")
    name = "grüße-日本.txt"
    ftp.storbinary("STOR " + name, io.BytesIO(b"utf8\n"))
    assert os.path.exists(os.path.join(srv.root, name))
    assert name in ftp.nlst()
    assert retr_bytes(ftp, name) == b"utf8\n"


# -------------------------------------------------------------- error replies

def test_retr_missing_file_is_550(session):
    srv, ftp = session
    with pytest.raises(ftplib.error_perm, match="^550"):
        retr_bytes(ftp, "missing.txt")
    assert retr_bytes(ftp, "hello.txt") == HELLO  # the session goes on


def test_retr_directory_is_550(session):
    srv, ftp = session
    with pytest.raises(ftplib.error_perm, match="^550"):
        retr_bytes(ftp, "sub")


def test_retr_without_pasv_is_425(session):
    srv, ftp = session
    with pytest.raises(ftplib.error_temp, match="^425"):
        ftp.sendcmd("RETR hello.txt")
    with pytest.raises(ftplib.error_temp, match="^425"):
        ftp.sendcmd("LIST")
    assert retr_bytes(ftp, "hello.txt") == HELLO


def test_stor_without_pasv_is_425(session):
    srv, ftp = session
    with pytest.raises(ftplib.error_temp, match="^425"):
        ftp.sendcmd("STOR x.txt")
    assert not os.path.exists(os.path.join(srv.root, "x.txt"))


# ------------------------------------------------- data protection and reuse

def refused_522(ftp, call):
    """call() fails with 522; if the data handshake failed first (a full handshake where
    the server wanted a resumption: the key does not sign for it), the 522 follows."""
    try:
        call()
    except ftplib.error_perm as e:
        assert str(e).startswith("522"), e
        return
    except (ssl.SSLError, OSError):
        pass
    else:
        raise AssertionError("the data connection was used")
    with pytest.raises(ftplib.error_perm, match="^522"):
        ftp.voidresp()


def test_stock_ftplib_gets_522_when_reuse_required(server):
    srv = server(data_tls_reuse="required")
    ftp = ftp_login(srv, cls=StockFTP_TLS)
    refused_522(ftp, lambda: ftp.retrlines("LIST", lambda line: None))
    refused_522(ftp, lambda: retr_bytes(ftp, "hello.txt"))
    assert ftp.voidcmd("NOOP").startswith("200")  # the control session survives
    quit_(ftp)


def test_unresumed_data_connection_gets_150_then_522(server):
    """The server cannot know before the data handshake: 150 first, then 522, no data
    (the data handshake itself fails: a full one would need the key, which after login
    signs nothing when data connections must resume)."""
    srv = server(data_tls_reuse="required")
    ftp = ftp_login(srv, cls=StockFTP_TLS)
    try:
        conn = ftp.transfercmd("RETR hello.txt")  # raises if the answer is not a 1xx
    except (ssl.SSLError, OSError):
        conn = None
    assert ftp.lastresp == "150", ftp.lastresp
    if conn is not None:
        try:
            data = conn.recv(65536)
        except (ssl.SSLError, OSError):
            data = b""
        assert data == b""
        conn.close()
    with pytest.raises(ftplib.error_perm, match="^522"):
        ftp.voidresp()
    quit_(ftp)


def test_stock_ftplib_upload_refused_and_nothing_written_when_reuse_required(server):
    srv = server(data_tls_reuse="required")
    ftp = ftp_login(srv, cls=StockFTP_TLS)
    data, final = transfer_outcome(ftp, "STOR refused.txt")
    assert final.startswith("522"), final
    p = os.path.join(srv.root, "refused.txt")
    assert not os.path.exists(p) or os.path.getsize(p) == 0
    quit_(ftp)


def test_stock_ftplib_works_with_reuse_off(server):
    srv = server(data_tls_reuse="off")
    ftp = ftp_login(srv, cls=StockFTP_TLS)
    assert "hello.txt" in ftp.nlst()
    assert retr_bytes(ftp, "hello.txt") == HELLO
    ftp.storbinary("STOR stock.txt", io.BytesIO(b"stock\n"))
    with open(os.path.join(srv.root, "stock.txt"), "rb") as f:
        assert f.read() == b"stock\n"
    quit_(ftp)


def test_prot_c_with_data_tls_required_is_521(server):
    srv = server(data_tls="required")
    ftp = ftp_login(srv, prot_p=False)
    assert ftp.voidcmd("PBSZ 0") == "200 PBSZ=0"
    ftp.prot_c()
    with pytest.raises(ftplib.error_perm, match="^521"):
        retr_bytes(ftp, "hello.txt")
    with pytest.raises(ftplib.error_perm, match="^521"):
        ftp.retrlines("LIST", lambda line: None)
    with pytest.raises(ftplib.error_perm, match="^521"):
        ftp.storbinary("STOR clear.txt", io.BytesIO(b"x"))
    assert not os.path.exists(os.path.join(srv.root, "clear.txt"))
    ftp.prot_p()
    assert retr_bytes(ftp, "hello.txt") == HELLO  # PROT may change any time
    quit_(ftp)


def test_auth_tls_without_prot_means_clear_data(server):
    """AUTH TLS: data defaults to Clear, so data-tls=required refuses with 521."""
    srv = server(data_tls="required")
    ftp = ReusingFTP_TLS(context=client_context(srv.cafile), timeout=IO_TIMEOUT)
    ftp.connect("127.0.0.1", srv.port)
    ftp.auth_mech("TLS")
    ftp.login(USER, PASSWORD)
    with pytest.raises(ftplib.error_perm, match="^521"):
        ftp.retrlines("LIST", lambda line: None)
    quit_(ftp)


def test_auth_ssl_without_prot_means_private_data(server):
    """AUTH SSL (what curl sends): data defaults to Private with no PBSZ/PROT."""
    srv = server(data_tls="required")
    ftp = ReusingFTP_TLS(context=client_context(srv.cafile), timeout=IO_TIMEOUT)
    ftp.connect("127.0.0.1", srv.port)
    ftp.auth_mech("SSL")
    ftp.login(USER, PASSWORD)
    ftp._prot_p = True  # what the server assumes after AUTH SSL, without sending PROT
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_(ftp)


def test_implicit_tls_data_is_private_by_default(server):
    """--implicit-tls: no AUTH, no PBSZ/PROT, and the data channel is TLS (and resumed)."""
    srv = server(implicit=True, data_tls="required")
    ftp = ImplicitFTP_TLS(context=client_context(srv.cafile), timeout=IO_TIMEOUT)
    assert ftp.connect("127.0.0.1", srv.port).startswith("220")
    ftp.login(USER, PASSWORD)
    ftp._prot_p = True  # what the server assumes; nothing is sent
    assert retr_bytes(ftp, "hello.txt") == HELLO
    assert "hello.txt" in ftp.nlst()
    assert ftp.data_resumed == [True, True]
    quit_(ftp)


def test_prot_c_with_data_tls_optional_works(server):
    srv = server(data_tls="optional")
    ftp = ftp_login(srv, prot_p=False)
    assert ftp.voidcmd("PBSZ 0") == "200 PBSZ=0"
    ftp.prot_c()
    assert "hello.txt" in ftp.nlst()
    assert retr_bytes(ftp, "hello.txt") == HELLO
    ftp.storbinary("STOR clear.txt", io.BytesIO(b"clear\n"))
    with open(os.path.join(srv.root, "clear.txt"), "rb") as f:
        assert f.read() == b"clear\n"
    ftp.prot_p()
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_(ftp)


# ------------------------------------------------------------- path escapes

SECRET = b"OUTSIDE-THE-ROOT-SECRET"


def etc_passwd():
    with open("/etc/passwd", "rb") as f:
        return f.read()


def assert_no_escape(ftp, path):
    """RETR path either fails or yields something that is not outside the root."""
    try:
        data = retr_bytes(ftp, path)
    except ftplib.error_perm as e:
        assert str(e).startswith("550"), (path, e)
        return
    assert SECRET not in data, path
    assert data != etc_passwd(), path
    assert b"root:x:0:0" not in data, path


@pytest.mark.parametrize("path", [
    "../../etc/passwd",
    "../../../../../../../../etc/passwd",
    "/../../etc/passwd",
    "/etc/passwd",
    "../outside/secret.txt",
    "/../outside/secret.txt",
    "sub/../../outside/secret.txt",
    "passwd-link",
    "etc-link/passwd",
    "secret-abs-link",
    "secret-rel-link",
    "outside-abs-link/secret.txt",
    "sub/up-link/outside/secret.txt",
    "sub/up-link/etc/passwd",
])
def test_retr_cannot_escape_root(session, path):
    srv, ftp = session
    assert_no_escape(ftp, path)


def test_cwd_cannot_escape_root(session):
    srv, ftp = session
    for target in ("/../..", "../..", "..", "/..", "sub/up-link", "etc-link",
                   "outside-abs-link"):
        try:
            ftp.cwd("/")
            ftp.cwd(target)
        except ftplib.error_perm as e:
            assert str(e).startswith("550"), (target, e)
            continue
        names = [os.path.basename(n) for n in ftp.nlst()]
        assert "outside" not in names, (target, names)
        assert "passwd" not in names and "hostname" not in names, (target, names)
        if target in ("/../..", "../..", "..", "/.."):
            assert ftp.pwd() == "/", target
            assert "hello.txt" in names, (target, names)


def list_name(line):
    """The name in a LIST line (the last field, without a symlink's ' -> target')."""
    return line.split(None, 8)[-1].split(" -> ")[0]


def test_list_cannot_escape_root(session):
    srv, ftp = session
    for target in ("../..", "/../outside", "etc-link", "outside-abs-link",
                   "sub/up-link/outside"):
        lines = []
        try:
            ftp.retrlines("LIST " + target, lines.append)
        except ftplib.error_perm as e:
            assert str(e).startswith(("550", "450")), (target, e)
            continue
        names = {list_name(line) for line in lines}
        assert not names & {"secret.txt", "passwd", "shadow", "hostname", "planted.txt"}, \
            (target, lines)


def test_stor_cannot_escape_root(session):
    srv, ftp = session
    outside_dir = os.path.dirname(srv.root)
    for target in ("../planted.txt", "/../planted.txt", "secret-rel-link", "secret-abs-link",
                   "sub/up-link/planted.txt", "outside-abs-link/planted.txt",
                   "/../outside/planted.txt"):
        try:
            ftp.storbinary("STOR " + target, io.BytesIO(b"PLANTED\n"))
        except ftplib.error_perm:
            pass
    assert not os.path.exists(os.path.join(outside_dir, "planted.txt"))
    assert not os.path.exists(os.path.join(outside_dir, "outside", "planted.txt"))
    with open(os.path.join(outside_dir, "outside", "secret.txt"), "rb") as f:
        assert f.read() == SECRET + b"\n"


# ------------------------------------------------ data connection hijacking

def test_data_connection_from_another_address_is_refused(server):
    """Data connections are accepted only from the control connection's peer address:
    a connection from 127.0.0.2 to the passive port gets nothing, the client's own works."""
    srv = server()
    ftp = ftp_login(srv)
    ftp.voidcmd("TYPE I")
    resp = ftp.sendcmd("EPSV")
    _, port = ftplib.parse229(resp, ("127.0.0.1", 0))
    thief = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT,
                                     source_address=("127.0.0.2", 0))
    time.sleep(0.2)  # let the server see the thief first
    own = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    resp = ftp.sendcmd("RETR hello.txt")
    assert resp.startswith("150"), resp
    own = ftp.context.wrap_socket(own, server_hostname="127.0.0.1", session=ftp.sock.session)
    data = b""
    while True:
        chunk = own.recv(65536)
        if not chunk:
            break
        data += chunk
    own.close()
    assert ftp.voidresp().startswith("226")
    assert data == HELLO
    # the thief was closed without a byte (or, at most, is still waiting: never data)
    thief.settimeout(1)
    try:
        stolen = thief.recv(65536)
    except (socket.timeout, ConnectionResetError):
        stolen = b""
    assert stolen == b"", stolen
    thief.close()
    quit_(ftp)


def test_control_is_served_during_a_stalled_transfer_and_abor_works(session, big_file):
    """The child keeps reading the control connection mid-transfer: NOOP is answered
    while the data connection is stalled, and ABOR ends the transfer."""
    srv, ftp = session
    os.link(big_file, os.path.join(srv.root, "big.bin"))
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")  # 150 read
    first = conn.recv(65536)
    assert first
    # stop reading: the server's send blocks on a full socket buffer
    t0 = time.monotonic()
    assert ftp.sendcmd("NOOP").startswith("200")
    assert time.monotonic() - t0 < 5
    ftp.putcmd("ABOR")
    replies = [ftp.getmultiline()]
    while not replies[-1].startswith("2"):
        assert replies[-1].startswith("4"), replies  # 426 for the aborted transfer
        replies.append(ftp.getmultiline())
    assert replies[-1][:3] in ("225", "226"), replies
    conn.close()
    assert ftp.sendcmd("NOOP").startswith("200")
    assert retr_bytes(ftp, "hello.txt") == HELLO


# ----------------------------------------------------------------- active mode

def test_active_mode_port_to_own_address(server):
    srv = server()
    ftp = ftp_login(srv)
    ftp.set_pasv(False)
    assert retr_bytes(ftp, "hello.txt") == HELLO
    ftp.storbinary("STOR active.txt", io.BytesIO(b"active\n"))
    with open(os.path.join(srv.root, "active.txt"), "rb") as f:
        assert f.read() == b"active\n"
    assert ftp.data_resumed == [True, True]
    quit_(ftp)


def test_active_mode_never_connects_to_another_host(server):
    """No FTP bounce: PORT/EPRT naming another address is refused and nothing connects."""
    srv = server()
    ftp = ftp_login(srv)
    victim = socket.socket()
    victim.bind(("127.0.0.2", 0))
    victim.listen(1)
    victim.settimeout(1)
    vport = victim.getsockname()[1]
    for cmd in ("PORT 127,0,0,2,%d,%d" % (vport >> 8, vport & 255),
                "EPRT |1|127.0.0.2|%d|" % vport):
        try:
            resp = ftp.sendcmd(cmd)
        except ftplib.error_perm:
            continue
        # accepted at PORT? then the transfer must not reach the victim
        try:
            ftp.sendcmd("RETR hello.txt")
        except ftplib.Error:
            pass
        raise AssertionError("%r accepted: %r" % (cmd, resp))
    try:
        victim.accept()
        raise AssertionError("the server connected to another host")
    except socket.timeout:
        pass
    victim.close()
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_(ftp)


def test_active_mode_refuses_privileged_port(server):
    srv = server()
    ftp = ftp_login(srv)
    with pytest.raises(ftplib.error_perm):
        ftp.sendcmd("PORT 127,0,0,1,0,25")
    with pytest.raises(ftplib.error_perm):
        ftp.sendcmd("EPRT |1|127.0.0.1|25|")
    quit_(ftp)


def test_active_mode_off(server):
    srv = server(active_mode="off")
    ftp = ftp_login(srv)
    ftp.set_pasv(False)
    with pytest.raises(ftplib.error_perm):
        retr_bytes(ftp, "hello.txt")
    ftp.set_pasv(True)
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_(ftp)


def test_listing_of_a_large_directory(server):
    """Hundreds of entries: the monitor sorts them (glibc's qsort then asks for
    sysinfo, which its seccomp filter must allow) and every format lists them all."""
    srv = server()
    big = os.path.join(srv.root, "big")
    os.mkdir(big)
    names = {"file-%04d.txt" % i for i in range(600)}
    for n in names:
        open(os.path.join(big, n), "w").close()
    if ROOT:
        for p in [big] + [os.path.join(big, n) for n in names]:
            os.chown(p, srv.accounts.uid, srv.accounts.gid)
    ftp = ftp_login(srv)
    assert set(ftp.nlst("big")) == {"big/" + n for n in names}
    lines = []
    ftp.retrlines("LIST big", lines.append)
    assert len(lines) == len(names)
    mlsd = [name for name, facts in ftp.mlsd("big")]
    assert sorted(mlsd) == sorted(names)
    ftp.quit()


# ------------------------------------------------- passive ports in TIME_WAIT

def tcp_time_wait_on(ports):
    """Local ports in `ports` with a TCP_TIME_WAIT (06) socket, from /proc/net/tcp."""
    found = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            port = int(fields[1].split(":")[1], 16)
            if fields[3] == "06" and port in ports:
                found.add(port)
    return found


def test_passive_ports_in_time_wait_are_reused(server):
    """Issue 13: the server closes each data connection first (after RETR), which leaves
    a TIME_WAIT on the passive port for a minute. Without SO_REUSEADDR on the listener
    a port in TIME_WAIT cannot be bound again: with a 20-port range, 20 quick transfers
    left every port unusable and the next EPSV was 425. Clear data (PROT C): the
    client's FIN follows the server's, as with most clients (with TLS, ftplib's late
    close_notify makes the server's side end in a reset instead)."""
    import random
    low = random.randrange(62000, 64900, 20)               # outside the suite's range
    ports = set(range(low, low + 20))
    srv = server(pasv_ports="%d-%d" % (low, low + 19), data_tls="optional")
    used = set()
    for _ in range(3):                                     # several sessions in a row
        ftp = ftp_login(srv, prot_p=False)
        for _ in range(10):
            assert retr_bytes(ftp, "hello.txt") == HELLO
            used.add(ftplib.parse229(ftp.passive_replies[-1], ("127.0.0.1", 0))[1])
        quit_(ftp)
    assert used <= ports, used
    # The premise: the server's side of earlier transfers is in TIME_WAIT on ports of
    # the range, as many as there are ports.
    assert len(tcp_time_wait_on(ports)) >= 10, tcp_time_wait_on(ports)
    ftp = ftp_login(srv, prot_p=False)
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_(ftp)
