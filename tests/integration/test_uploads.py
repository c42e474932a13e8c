"""Uploads never destroy data (issue 13): every way an upload can fail leaves the
previous file byte for byte, no partial file under the target name and nothing in any
listing; a complete upload replaces the file in one step and keeps its mode. Each
transfer that ends leaves exactly one xferlog record with its real status.

The failure matrix runs against a target that already holds OLD: a refusal after 150
(522), the client gone before and after 150, ABOR, a reset, a full disk, kill -9 of the
child and of the monitor, an intruder on the passive port, TLS without close_notify.
Clients: Python's ftplib (resuming the session, as curl and lftp do), raw sockets where
the test needs to misbehave, and curl.
"""

import ftplib
import io
import os
import resource
import signal
import socket
import ssl
import struct
import subprocess
import time

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import (IO_TIMEOUT, StockFTP_TLS, ftp_login, retr_bytes, session_pids,
                           wait_for)

MIB = 1 << 20
OLD = b"the previous content, which no failed upload may touch\n" * 1000


# ------------------------------------------------------------------- helpers

def own(srv, path):
    os.lchown(path, srv.accounts.uid, srv.accounts.gid)


def put_old(srv, rel="target.bin", mode=0o640, data=OLD):
    path = os.path.join(srv.root, rel)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    own(srv, path)
    return path


def on_disk(srv, rel="target.bin"):
    with open(os.path.join(srv.root, rel), "rb") as f:
        return f.read()


def names(srv, rel=""):
    """Every name in a directory of the served tree, hidden ones included."""
    return sorted(os.listdir(os.path.join(srv.root, rel)))


def xfer_server(server, **kw):
    srv = server(start=False)
    path = os.path.join(srv.dir, "xferlog")
    srv = server(xferlog=path, **kw)
    srv.xferlog_path = path
    return srv


def xferlog_lines(srv, count, timeout=5):
    """The xferlog's lines once there are `count` of them (and a moment to see no more)."""
    path = srv.xferlog_path

    def lines():
        try:
            with open(path) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []
    got = wait_for(lambda: len(lines()) >= count and lines(), timeout=timeout)
    time.sleep(0.2)
    got = lines()
    assert len(got) == count, got
    return [line.split() for line in got]


quit_ = lib.quit_quietly


def close_quietly(conn):
    try:
        conn.close()
    except OSError:
        pass


def reset(sock):
    """Close with RST: the peer sees a reset, not an orderly end."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def reset_control(ftp):
    """The client's control connection ends with RST (ftplib's reader holds the socket
    open otherwise)."""
    sock = ftp.sock
    ftp.file.close()
    reset(sock)


def wait_received(ftp, n):
    """STAT during an upload until the server has n bytes."""
    deadline = time.monotonic() + IO_TIMEOUT
    while True:
        r = ftp.sendcmd("STAT")
        if "%d bytes received" % n in r:
            return
        assert time.monotonic() < deadline, r
        time.sleep(0.05)


def overfill(ftp, rel, size=3 * MIB):
    """STOR more than the server can take; the final reply (the server may close first)."""
    conn = ftp.transfercmd("STOR " + rel)
    try:
        conn.sendall(os.urandom(size))
        conn.unwrap()
    except OSError:
        pass
    close_quietly(conn)
    return ftp.getmultiline()


def abort(ftp, conn):
    """ABOR during a transfer: 426 for it, then 226 for the ABOR."""
    ftp.putcmd("ABOR")
    assert ftp.getmultiline().startswith("426")
    assert ftp.getmultiline().startswith("226")
    close_quietly(conn)


def stor_without_resumption(srv):
    """STOR from CPython's stock FTP_TLS, whose data connection does not resume: refused."""
    ftp = ftp_login(srv, cls=StockFTP_TLS)
    with pytest.raises((ftplib.Error, ssl.SSLError, OSError)):
        ftp.storbinary("STOR target.bin", io.BytesIO(b"NEW" * 1000))
    ftp.close()


def unchanged(srv, rel="target.bin", mode=0o640):
    assert on_disk(srv, rel) == OLD
    assert os.stat(os.path.join(srv.root, rel)).st_mode & 0o7777 == mode


def no_debris(srv, expected):
    assert names(srv) == sorted(expected), names(srv)


ROOT_NAMES = ["etc-link", "hello.txt", "outside-abs-link", "passwd-link", "secret-abs-link",
              "secret-rel-link", "sub", "target.bin"]


# ------------------------------------------------------------ the happy path

def test_complete_upload_replaces_in_one_step_and_keeps_the_mode(server):
    srv = xfer_server(server)
    put_old(srv, mode=0o640)
    new = os.urandom(3 * MIB)
    ftp = ftp_login(srv)
    ftp.storbinary("STOR target.bin", io.BytesIO(new))
    assert on_disk(srv) == new
    st = os.stat(os.path.join(srv.root, "target.bin"))
    assert st.st_mode & 0o7777 == 0o640
    assert st.st_uid == srv.accounts.uid
    ftp.storbinary("STOR fresh.bin", io.BytesIO(b"fresh"))
    # A new file: 0666 less the umask (022).
    assert os.stat(os.path.join(srv.root, "fresh.bin")).st_mode & 0o7777 == 0o644
    quit_(ftp)
    no_debris(srv, ROOT_NAMES + ["fresh.bin"])
    rec = xferlog_lines(srv, 2)
    assert rec[0][7] == str(len(new)) and rec[0][11] == "i" and rec[0][17] == "c", rec


def test_the_upload_is_invisible_until_it_is_complete(server):
    """While an upload runs, the target still holds the old bytes and no other name
    appears in any listing (LIST -a, MLSD, the directory itself)."""
    srv = server()
    put_old(srv)
    ftp = ftp_login(srv)
    conn = ftp.transfercmd("STOR target.bin")
    conn.sendall(os.urandom(2 * MIB))
    wait_received(ftp, 2 * MIB)
    assert on_disk(srv) == OLD
    no_debris(srv, ROOT_NAMES)
    probe = ftp_login(srv)
    listing = []
    probe.retrlines("LIST -a", listing.append)
    assert not any("ftpsd" in line for line in listing), listing
    shown = sorted(n for n, _ in probe.mlsd())
    assert "target.bin" in shown and set(shown) <= set(ROOT_NAMES), shown
    quit_(probe)
    conn.sendall(b"tail")
    conn.unwrap()
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert len(on_disk(srv)) == 2 * MIB + 4
    quit_(ftp)


def test_curl_upload_replaces_atomically(server, tmp_path):
    srv = server()
    put_old(srv)
    src = tmp_path / "new.bin"
    src.write_bytes(os.urandom(MIB + 17))
    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "-k", "-T", str(src),
                        "ftp://%s:%s@127.0.0.1:%d/target.bin" % (lib.USER, lib.PASSWORD, srv.port)],
                       capture_output=True, timeout=IO_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert on_disk(srv) == src.read_bytes()
    no_debris(srv, ROOT_NAMES)


# ----------------------------------------------------------- the failure matrix

def test_refused_data_connection_522_changes_nothing(server):
    """A client that does not resume the TLS session (CPython's stock FTP_TLS) gets 522;
    the file is untouched and the refused transfer has its 'i' record."""
    srv = xfer_server(server)
    put_old(srv)
    stor_without_resumption(srv)
    unchanged(srv)
    no_debris(srv, ROOT_NAMES)
    rec = xferlog_lines(srv, 1)
    assert rec[0][7] == "0" and rec[0][17] == "i", rec


def test_refused_protection_level_521_changes_nothing(server):
    srv = server()
    put_old(srv)
    ftp = ftp_login(srv, prot_p=False)
    with pytest.raises(ftplib.error_perm, match="^521"):
        ftp.storbinary("STOR target.bin", io.BytesIO(b"NEW"))
    unchanged(srv)
    quit_(ftp)


@pytest.mark.parametrize("when", ["before-150", "after-150", "mid-transfer"])
def test_client_gone_changes_nothing(server, when):
    """The client's whole connection goes away (reset) at three moments: the file is
    untouched, nothing is left, the one xferlog record says 'i' and the next session
    works."""
    srv = xfer_server(server)
    put_old(srv)
    ftp = ftp_login(srv)
    ftp.sendcmd("TYPE I")
    if when == "before-150":
        host, port = ftplib.parse229(ftp.sendcmd("EPSV"), ftp.sock.getpeername())
        ftp.putcmd("STOR target.bin")
        reset_control(ftp)
    else:
        conn = ftp.transfercmd("STOR target.bin")
        if when == "mid-transfer":
            conn.sendall(os.urandom(2 * MIB))
            wait_received(ftp, 2 * MIB)
        reset_control(ftp)
        reset(conn)
    assert wait_for(lambda: srv.sessions() == [], timeout=5), srv.sessions()
    unchanged(srv)
    no_debris(srv, ROOT_NAMES)
    if when != "before-150":
        rec = xferlog_lines(srv, 1)
        assert rec[0][17] == "i", rec
        if when == "mid-transfer":
            assert int(rec[0][7]) >= 2 * MIB, rec
    nxt = ftp_login(srv)
    assert retr_bytes(nxt, "target.bin") == OLD
    quit_(nxt)


def test_abor_changes_nothing_and_the_session_goes_on(server):
    srv = xfer_server(server)
    put_old(srv)
    ftp = ftp_login(srv)
    conn = ftp.transfercmd("STOR target.bin")
    conn.sendall(os.urandom(MIB))
    wait_received(ftp, MIB)
    abort(ftp, conn)
    unchanged(srv)
    no_debris(srv, ROOT_NAMES)
    rec = xferlog_lines(srv, 1)
    assert rec[0][7] == str(MIB) and rec[0][17] == "i", rec
    assert "discarded, the previous file is unchanged" in srv.log
    ftp.storbinary("STOR target.bin", io.BytesIO(b"after"))
    assert on_disk(srv) == b"after"
    quit_(ftp)


def test_data_connection_reset_changes_nothing(server):
    srv = server()
    put_old(srv)
    ftp = ftp_login(srv)
    conn = ftp.transfercmd("STOR target.bin")
    conn.sendall(os.urandom(MIB))
    wait_received(ftp, MIB)
    reset(conn)
    assert ftp.getmultiline()[:3] in ("426", "451")
    unchanged(srv)
    no_debris(srv, ROOT_NAMES)
    assert ftp.sendcmd("NOOP").startswith("200")
    quit_(ftp)


@pytest.mark.skipif(not lib.ROOT, reason="mounts a small tmpfs (root only)")
def test_full_disk_keeps_the_previous_file(server):
    srv = server()
    small = os.path.join(srv.root, "small")
    os.mkdir(small)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", small],
                   check=True, timeout=IO_TIMEOUT)
    try:
        own(srv, small)
        put_old(srv, "small/target.bin")
        ftp = ftp_login(srv)
        final = overfill(ftp, "small/target.bin")
        assert final[:3] in ("452", "552"), final
        unchanged(srv, "small/target.bin")
        assert names(srv, "small") == ["target.bin"]
        # The space is free again: a smaller upload now fits.
        ftp.storbinary("STOR small/target.bin", io.BytesIO(b"z" * (600 * 1024)))
        assert on_disk(srv, "small/target.bin") == b"z" * (600 * 1024)
        quit_(ftp)
    finally:
        subprocess.run(["umount", "-l", small], timeout=IO_TIMEOUT)


@pytest.mark.parametrize("victim", ["child", "monitor"])
def test_kill_9_mid_upload_changes_nothing(server, victim):
    """kill -9 of either process mid-upload: the unnamed file dies with it. When the
    child dies, the monitor still writes the transfer's record."""
    srv = xfer_server(server)
    put_old(srv)
    ftp = ftp_login(srv)
    conn = ftp.transfercmd("STOR target.bin")
    conn.sendall(os.urandom(2 * MIB))
    wait_received(ftp, 2 * MIB)
    monitor, child = session_pids(srv)
    os.kill(child if victim == "child" else monitor, signal.SIGKILL)
    assert wait_for(lambda: srv.sessions() == [], timeout=5), srv.sessions()
    close_quietly(conn)
    ftp.close()
    unchanged(srv)
    no_debris(srv, ROOT_NAMES)
    if victim == "child":
        rec = xferlog_lines(srv, 1)
        assert rec[0][17] == "i" and int(rec[0][7]) >= 2 * MIB, rec
        assert "the session ended during it" in srv.log
    nxt = ftp_login(srv)
    nxt.storbinary("STOR target.bin", io.BytesIO(b"next"))
    assert on_disk(srv) == b"next"
    quit_(nxt)


def test_intruder_on_the_passive_port_changes_nothing(server, pki):
    """Someone on the client's own address grabs the passive port first and completes a
    full TLS handshake: the victim's STOR is refused with 522 and its file stays."""
    srv = server()
    put_old(srv)
    ftp = ftp_login(srv)
    host, port = ftplib.parse229(ftp.sendcmd("EPSV"), ftp.sock.getpeername())
    intruder = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    ctx = lib.client_context(pki.cert)
    try:
        ctx.wrap_socket(intruder, server_hostname="127.0.0.1")
    except (ssl.SSLError, OSError):
        pass
    with pytest.raises(ftplib.error_perm, match="^522"):
        ftp.sendcmd("STOR target.bin")
    close_quietly(intruder)
    unchanged(srv)
    no_debris(srv, ROOT_NAMES)
    assert ftp.sendcmd("NOOP").startswith("200")
    quit_(ftp)


def raw_upload_without_close_notify(srv, payload):
    """STOR over a resumed PROT P data connection that ends with a bare TCP FIN."""
    ftp = ftp_login(srv)
    conn = ftp.transfercmd("STOR target.bin")
    conn.sendall(payload)
    s = socket.socket(fileno=conn.detach())
    s.shutdown(socket.SHUT_WR)
    final = ftp.getmultiline()
    s.close()
    return ftp, final


def test_upload_without_close_notify_is_logged_incomplete(server):
    """data-tls-strict-eof = off: the upload is stored and answered 226 with a warning,
    but its record says 'i' (it may be cut short)."""
    srv = xfer_server(server)
    put_old(srv)
    ftp, final = raw_upload_without_close_notify(srv, b"N" * 5000)
    assert final.startswith("226") and "close_notify" in final, final
    assert on_disk(srv) == b"N" * 5000
    rec = xferlog_lines(srv, 1)
    assert rec[0][17] == "i", rec
    quit_(ftp)


def test_strict_eof_upload_without_close_notify_is_426_and_not_stored(server):
    srv = xfer_server(server, data_tls_strict_eof="on")
    put_old(srv)
    ftp, final = raw_upload_without_close_notify(srv, b"N" * 5000)
    assert final.startswith("426"), final
    unchanged(srv)
    no_debris(srv, ROOT_NAMES)
    rec = xferlog_lines(srv, 1)
    assert rec[0][17] == "i", rec
    quit_(ftp)


# ------------------------------------------------------------- APPE, REST, STOU

def test_atomic_appe_and_rest_build_on_the_old_content(server):
    srv = server()
    put_old(srv)
    ftp = ftp_login(srv)
    ftp.storbinary("APPE target.bin", io.BytesIO(b"+more"))
    assert on_disk(srv) == OLD + b"+more"
    ftp.storbinary("STOR target.bin", io.BytesIO(b"TAIL"), rest=10)
    assert on_disk(srv) == (OLD + b"+more")[:10] + b"TAIL"
    with pytest.raises(ftplib.error_perm, match="^554"):
        ftp.storbinary("STOR target.bin", io.BytesIO(b"x"), rest=1 << 40)
    assert on_disk(srv) == (OLD + b"+more")[:10] + b"TAIL"
    # An aborted APPE leaves the old content as it was.
    conn = ftp.transfercmd("APPE target.bin")
    conn.sendall(b"lost" * 1000)
    wait_received(ftp, 4000)
    abort(ftp, conn)
    assert on_disk(srv) == (OLD + b"+more")[:10] + b"TAIL"
    no_debris(srv, ROOT_NAMES)
    quit_(ftp)


def test_stou_is_atomic_and_never_replaces(server):
    srv = server()
    put_old(srv, "ftpsd.upload")
    ftp = ftp_login(srv)
    conn, _ = ftp.ntransfercmd("STOU")
    conn.sendall(b"unique")
    conn.unwrap()
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert on_disk(srv, "ftpsd.upload") == OLD
    assert on_disk(srv, "ftpsd.upload.1") == b"unique"
    quit_(ftp)


def test_in_place_mode_truncates_only_once_the_data_connection_is_up(server):
    """upload-mode = in-place writes the target itself, but a refused data connection
    (522) still leaves it as it was."""
    srv = server(upload_mode="in-place")
    put_old(srv)
    stor_without_resumption(srv)
    unchanged(srv)
    ftp = ftp_login(srv)
    ftp.storbinary("STOR target.bin", io.BytesIO(b"in place"))
    assert on_disk(srv) == b"in place"
    quit_(ftp)


def test_users_file_upload_mode_in_place(server):
    srv = server()
    with open(srv.users_path) as f:
        lines = f.read().splitlines()
    lines[0] += ":upload-mode=in-place"
    with open(srv.users_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    put_old(srv)
    ftp = ftp_login(srv)
    conn = ftp.transfercmd("STOR target.bin")
    conn.sendall(b"P" * MIB)
    wait_received(ftp, MIB)
    # In place: the bytes are under the name while the upload runs.
    assert on_disk(srv)[:MIB] == b"P" * MIB
    conn.unwrap()
    conn.close()
    assert ftp.voidresp().startswith("226")
    quit_(ftp)


# ------------------------------------------------------ without O_TMPFILE

@pytest.fixture
def no_tmpfile(monkeypatch):
    """Test builds: the monitor acts as on a filesystem without O_TMPFILE."""
    monkeypatch.setenv("FTPSD_TEST_NO_TMPFILE", "1")


def test_without_o_tmpfile_the_hidden_file_never_shows_and_never_stays(server, no_tmpfile):
    srv = server()
    put_old(srv)
    ftp = ftp_login(srv)
    conn = ftp.transfercmd("STOR target.bin")
    conn.sendall(os.urandom(MIB))
    wait_received(ftp, MIB)
    hidden = [n for n in names(srv) if n.startswith(".ftpsd-upload-")]
    assert len(hidden) == 1, names(srv)                 # the fallback really runs
    listing = []
    probe = ftp_login(srv)
    probe.retrlines("LIST -a", listing.append)
    assert not any(".ftpsd-upload-" in line for line in listing), listing
    quit_(probe)
    abort(ftp, conn)
    unchanged(srv)
    no_debris(srv, ROOT_NAMES)
    # Complete: the hidden file becomes the target, with the old mode.
    ftp.storbinary("STOR target.bin", io.BytesIO(b"via hidden name"))
    assert on_disk(srv) == b"via hidden name"
    assert os.stat(os.path.join(srv.root, "target.bin")).st_mode & 0o777 == 0o640
    no_debris(srv, ROOT_NAMES)
    # A kill -9 of the child: the monitor removes it.
    conn = ftp.transfercmd("STOR target.bin")
    conn.sendall(os.urandom(MIB))
    wait_received(ftp, MIB)
    os.kill(session_pids(srv)[1], signal.SIGKILL)
    assert wait_for(lambda: srv.sessions() == [], timeout=5)
    close_quietly(conn)
    ftp.close()
    no_debris(srv, ROOT_NAMES)


def test_without_o_tmpfile_a_stale_hidden_file_is_cleaned_by_the_next_upload(server,
                                                                              no_tmpfile):
    """What a killed monitor left (a hidden file nobody writes any more) goes at the next
    upload into that directory; a fresh one (another session's upload) stays."""
    srv = server()
    stale = put_old(srv, ".ftpsd-upload-00000000deadbeef")
    old = time.time() - 3600 * 24
    os.utime(stale, (old, old))
    fresh = put_old(srv, ".ftpsd-upload-00000000cafecafe")
    ftp = ftp_login(srv)
    ftp.storbinary("STOR new.bin", io.BytesIO(b"new"))
    quit_(ftp)
    assert not os.path.exists(stale)
    assert os.path.exists(fresh)


# ------------------------------------------------ records, limits, a stuck monitor

def test_xferlog_counts_clear_downloads_and_cut_downloads(server, big_file):
    """PROT C downloads go through sendfile(): their record has the real byte count. A
    download whose child is killed still gets its one record, 'i'."""
    srv = xfer_server(server, data_tls="optional")
    with open(big_file, "rb") as f:
        put_old(srv, "big.bin", mode=0o644, data=f.read())
    ftp = ftp_login(srv, prot_p=False)
    got = retr_bytes(ftp, "hello.txt")
    assert got == lib.HELLO
    rec = xferlog_lines(srv, 1)
    assert rec[0][7] == str(len(lib.HELLO)) and rec[0][11] == "o" and rec[0][17] == "c", rec
    conn = ftp.transfercmd("RETR big.bin")
    conn.recv(65536)
    os.kill(session_pids(srv)[1], signal.SIGKILL)
    assert wait_for(lambda: srv.sessions() == [], timeout=5)
    close_quietly(conn)
    ftp.close()
    rec = xferlog_lines(srv, 2)
    assert rec[1][8].endswith("/big.bin") and rec[1][11] == "o" and rec[1][17] == "i", rec


def test_a_stopped_monitor_ends_the_session_within_the_idle_timeout(server):
    srv = server(idle_timeout="2s")
    ftp = ftp_login(srv)
    monitor, child = session_pids(srv)
    os.kill(monitor, signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises((ftplib.error_temp, EOFError, OSError)) as e:
            ftp.sendcmd("CWD sub")
        took = time.monotonic() - start
        assert "421" in str(e.value) or isinstance(e.value, (EOFError, OSError)), e.value
        assert 1.5 <= took <= 6, took
        assert wait_for(lambda: not lib.alive(child), timeout=3)
    finally:
        os.kill(monitor, signal.SIGCONT)
    assert wait_for(lambda: srv.sessions() == [], timeout=5), srv.sessions()
    ftp.close()


def test_rest_far_beyond_the_file_is_554_and_the_session_goes_on(server):
    srv = server(upload_mode="in-place")
    put_old(srv)
    ftp = ftp_login(srv)
    for offset in (len(OLD) + 1, 1 << 40, (1 << 63) - 1):
        with pytest.raises(ftplib.error_perm, match="^554"):
            ftp.storbinary("STOR target.bin", io.BytesIO(b"x"), rest=offset)
        with pytest.raises(ftplib.error_perm, match="^554"):
            ftp.retrbinary("RETR target.bin", lambda b: None, rest=offset)
    unchanged(srv)
    assert ftp.sendcmd("NOOP").startswith("200")
    quit_(ftp)


def test_writes_past_rlimit_fsize_are_552_not_a_signal(server):
    """The launcher's RLIMIT_FSIZE (LimitFSIZE=): an upload past it fails with 552 and
    the session goes on; no process dies of SIGXFSZ."""
    srv = server(start=False)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (MIB, hard))
    try:
        srv.start()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    put_old(srv)
    ftp = ftp_login(srv)
    assert overfill(ftp, "target.bin").startswith("552")
    unchanged(srv)
    assert ftp.sendcmd("NOOP").startswith("200")
    ftp.storbinary("STOR small.bin", io.BytesIO(b"fits"))
    assert on_disk(srv, "small.bin") == b"fits"
    quit_(ftp)
    assert "signal" not in srv.log, srv.log


def test_nlst_with_a_long_argument_over_a_large_directory_stays_small(server):
    """NLST repeats the argument before each name; with a 3 KB argument over 50,000
    entries that was hundreds of MiB in the monitor. Now the listing is written as it is
    made (cut at its cap) and the monitor's peak memory stays small."""
    srv = server()
    big = os.path.join(srv.root, "many")
    os.mkdir(big)
    for i in range(50000):
        os.close(os.open(os.path.join(big, "entry-%06d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
    own(srv, big)
    ftp = ftp_login(srv)
    monitor, _ = session_pids(srv)
    before = int(lib.proc_status(monitor)["VmRSS"].split()[0])
    arg = "many" + "/." * 1500
    total = [0]
    lines = [0]

    def count(line):
        total[0] += len(line) + 2
        lines[0] += 1
    ftp.retrlines("NLST " + arg, count)
    peak = int(lib.proc_status(monitor)["VmHWM"].split()[0])
    assert lines[0] > 10000 and total[0] <= 64 * MIB, (lines[0], total[0])
    assert peak - before < 24 * 1024, (before, peak)   # KiB
    assert ftp.sendcmd("NOOP").startswith("200")
    quit_(ftp)


def test_xferlog_escapes_controls_del_and_c1(server):
    """Names with DEL, a C1 control (U+009B CSI), an escape and a space: the xferlog line
    stays one line of valid UTF-8 without any control character, fields unshifted."""
    srv = xfer_server(server)
    ftp = ftp_login(srv)
    ftp.encoding = "utf-8"
    name = "evil \x7f\u009b[31m\x1b.txt"
    ftp.storbinary("STOR " + name, io.BytesIO(b"x"))
    quit_(ftp)
    rec = xferlog_lines(srv, 1)
    assert len(rec[0]) == 18, rec
    assert rec[0][8].endswith("/evil_\\x7f\\xc2\\x9b[31m\\x1b.txt"), rec
    with open(srv.xferlog_path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8")
    assert not any(ord(c) < 0x20 and c != "\n" or 0x7f <= ord(c) <= 0x9f for c in text), raw
