"""download-rate and upload-rate (issue 16): a paced transfer never moves
more than the rate allows, the users-file option overrides the
configuration, and one user's concurrent transfers share the rate.

Only upper bounds are checked (what the rate allows in the time waited,
plus its burst), so a slow machine cannot fail them; the accuracy is
measured by tests/bench/rate.py, not here."""

import os
import threading
import time

import ftpsd_testlib as lib

KIB = 1024
WAIT = 3.0
# The bucket's burst (an eighth of a second, at least 16 KiB) and one
# second of slack for the clock between the server's start and ours.
def allowed(rate, secs):
    return rate * (secs + 1) + max(rate // 8, 16 * KIB)


def big(srv, name, size):
    path = os.path.join(srv.root, name)
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    os.chown(path, srv.accounts.uid, srv.accounts.gid)
    return path


def read_for(conn, secs):
    """Bytes read from a data connection within secs."""
    got = 0
    end = time.monotonic() + secs
    conn.settimeout(0.2)
    while time.monotonic() < end:
        try:
            b = conn.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not b:
            break
        got += len(b)
    return got


def paced_retr(srv, name, secs):
    ftp = lib.ftp_login(srv)
    try:
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd("RETR " + name)
        got = read_for(conn, secs)
        conn.close()
        return got
    finally:
        ftp.close()


def test_download_rate_paces_a_retr(server):
    srv = server(download_rate="64K")
    big(srv, "big.bin", 4 << 20)
    got = paced_retr(srv, "big.bin", WAIT)
    assert 0 < got <= allowed(64 * KIB, WAIT), got
    # Unset, the same file comes whole at once.
    srv2 = server()
    big(srv2, "big.bin", 4 << 20)
    ftp = lib.ftp_login(srv2)
    assert len(lib.retr_bytes(ftp, "big.bin")) == 4 << 20
    ftp.quit()


def test_users_file_rate_overrides_the_configuration(server):
    srv = server(download_rate="64M")
    with open(srv.users_path) as f:
        lines = f.read().splitlines()
    lines[0] += ":download-rate=32K"
    with open(srv.users_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    big(srv, "big.bin", 4 << 20)
    got = paced_retr(srv, "big.bin", WAIT)
    assert 0 < got <= allowed(32 * KIB, WAIT), got


def test_upload_rate_paces_a_stor(server):
    # In place, so that the file shows what the server has written so far.
    srv = server(upload_rate="64K", upload_mode="in-place")
    ftp = lib.ftp_login(srv)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR up.bin")
    stop = time.monotonic() + WAIT
    conn.settimeout(0.2)
    chunk = os.urandom(64 * KIB)
    while time.monotonic() < stop:
        try:
            conn.send(chunk)
        except TimeoutError:
            continue
    size = os.path.getsize(os.path.join(srv.root, "up.bin"))
    assert 0 < size <= allowed(64 * KIB, WAIT), size
    # ABOR ends it while it waits for the rate: the control connection is
    # still read.
    r = ftp.abort()
    conn.close()
    if r.startswith("426"):
        assert ftp.getresp().startswith("226")
    assert ftp.sendcmd("NOOP").startswith("200")
    ftp.quit()


def test_one_users_sessions_share_the_rate(server):
    srv = server(download_rate="128K")
    big(srv, "big.bin", 8 << 20)
    got = [0, 0]

    def one(i):
        got[i] = paced_retr(srv, "big.bin", WAIT)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Together within one rate (each started with its own burst).
    assert all(g > 0 for g in got), got
    assert sum(got) <= allowed(128 * KIB, WAIT) + 16 * KIB, got
