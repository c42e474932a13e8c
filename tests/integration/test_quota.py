"""Quotas (issue 16): quota-bytes and quota-files, kept in one usage file per user in
quota-dir ("bytes=N\\nfiles=N\\n", root's, 0600), changed under its lock by every
session of the user, with no daemon.

An upload past quota-bytes is stopped with 552 and the quota in the text; an atomic
upload's previous file stays byte for byte; in place, what fits in the quota stays.
The monitor checks every upload's real size at its end, so neither a child taken over
nor two sessions of one user together leave the tree past the quota. MKD and new
files past quota-files get 552; DELE and RMD give room back. After every step the
usage file says what a scan of the tree says.
"""

import ftplib
import io
import os
import signal
import socket
import stat
import subprocess
import threading

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import IO_TIMEOUT, ftp_login, session_pids, wait_for

KIB = 1 << 10
MIB = 1 << 20
OLD = b"the previous content, which no refused upload may touch\n" * 1000
HIDDEN = lib.HIDDEN_UPLOAD


# ------------------------------------------------------------------- helpers

def quota_server(server, tmp_path, **kw):
    """A server whose quota-dir is its own; the usage file is alice's."""
    qdir = str(tmp_path / "quota")
    srv = server(quota_dir=qdir, **kw)
    srv.quota_dir = qdir
    return srv


def usage_path(srv, name=lib.USER):
    return os.path.join(srv.quota_dir, name)


def usage(srv, name=lib.USER):
    """(bytes, files) from the usage file, whose format is exact."""
    with open(usage_path(srv, name), "rb") as f:
        text = f.read().decode()
    lines = text.split("\n")
    assert len(lines) == 3 and lines[2] == "", repr(text)
    assert lines[0].startswith("bytes=") and lines[1].startswith("files="), repr(text)
    b, n = lines[0][6:], lines[1][6:]
    assert b.isdigit() and n.isdigit() and str(int(b)) == b and str(int(n)) == n, repr(text)
    return int(b), int(n)


scan = lib.tree_usage


def consistent(srv):
    assert usage(srv) == scan(srv.root)


def own(srv, path):
    if lib.ROOT:
        os.lchown(path, srv.accounts.uid, srv.accounts.gid)


def put(srv, rel, data):
    path = os.path.join(srv.root, rel)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)
    own(srv, path)
    return path


def on_disk(srv, rel):
    with open(os.path.join(srv.root, rel), "rb") as f:
        return f.read()


def send_all(ftp, cmd, data, rest=None):
    """An upload that the server may stop midway: the final reply line."""
    try:
        conn = ftp.transfercmd(cmd, rest)
    except ftplib.Error as e:
        return str(e)
    try:
        conn.sendall(data)
        conn.unwrap()
    except (OSError, ValueError):
        pass
    try:
        conn.close()
    except OSError:
        pass
    return ftp.getmultiline()


quit_ = lib.quit_quietly


def login(srv):
    ftp = ftp_login(srv)
    consistent(srv)  # the first login has scanned the tree
    return ftp


# --------------------------------------------------------------- the usage file

@pytest.mark.skipif(not lib.ROOT, reason="the usage file is root's")
def test_first_login_scans_the_tree_into_a_root_file(server, tmp_path):
    srv = server(start=False)
    # Files that were there before any quota: counted at the first login.
    os.makedirs(os.path.join(srv.root, "old", "deep"))
    put(srv, "old/deep/a.bin", b"a" * 12345)
    put(srv, HIDDEN + "0123456789abcdef", b"h" * 999)  # an upload's debris: left out
    qdir = str(tmp_path / "quota")
    srv.quota_dir = qdir
    with open(srv.config_path, "a") as f:
        f.write("quota-dir = %s\nquota-files = 1000\n" % qdir)
    srv.start()
    assert not os.path.exists(qdir)
    ftp = ftp_login(srv)
    st = os.stat(qdir)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and st.st_mode & 0o777 == 0o700
    st = os.lstat(usage_path(srv))
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0 and st.st_mode & 0o777 == 0o600
    b, n = usage(srv)
    assert (b, n) == scan(srv.root)
    assert b == len(lib.HELLO) + len(lib.INNER) + 12345
    # hello.txt, sub, sub/deeper, sub/inner.txt, old, old/deep, old/deep/a.bin
    assert n == 7
    # The file is the monitor's: the session's user cannot read it, the child never
    # gets it.
    monitor, child = session_pids(srv)
    for pid in (monitor, child):
        targets = [os.readlink("/proc/%d/fd/%s" % (pid, fd))
                   for fd in os.listdir("/proc/%d/fd" % pid)]
        assert (usage_path(srv) in targets) == (pid == monitor), targets
    quit_(ftp)


@pytest.mark.skipif(not lib.ROOT, reason="quota-dir ownership is checked as root")
def test_a_quota_dir_others_may_write_refuses_the_login(server, tmp_path):
    qdir = tmp_path / "quota"
    qdir.mkdir()
    os.chmod(qdir, 0o777)
    srv = quota_server(server, tmp_path, quota_bytes="1M")
    with pytest.raises(ftplib.Error):
        ftp_login(srv)
    assert "not owned by root, or writable by others" in srv.log
    assert os.listdir(qdir) == []


# ----------------------------------------------------------------- quota-bytes

def test_upload_past_the_quota_is_552_and_the_old_file_stays(server, tmp_path):
    srv = quota_server(server, tmp_path, quota_bytes="1M")
    put(srv, "target.bin", OLD)
    ftp = login(srv)
    final = send_all(ftp, "STOR target.bin", os.urandom(2 * MIB))
    used = usage(srv)[0]
    assert final.startswith("552 Quota exceeded: alice may store 1 MiB (quota-bytes), "), final
    assert on_disk(srv, "target.bin") == OLD
    assert sorted(os.listdir(srv.root)) == sorted(
        ["etc-link", "hello.txt", "outside-abs-link", "passwd-link", "secret-abs-link",
         "secret-rel-link", "sub", "target.bin"])
    consistent(srv)
    assert used == len(lib.HELLO) + len(lib.INNER) + len(OLD)
    # The session goes on, and an upload within the quota succeeds.
    assert ftp.sendcmd("NOOP").startswith("200")
    data = os.urandom(300 * KIB)
    assert ftp.storbinary("STOR target.bin", io.BytesIO(data)).startswith("226")
    assert on_disk(srv, "target.bin") == data
    consistent(srv)
    assert usage(srv)[0] == used - len(OLD) + len(data)
    ftp.storbinary("STOR new.bin", io.BytesIO(b"n" * (500 * KIB)))
    consistent(srv)
    quit_(ftp)


def test_a_replaced_file_gives_its_room_back(server, tmp_path):
    """Replacing a 900 KiB file with 950 KiB under a 1 MiB quota fits: the old
    file's bytes are not counted twice."""
    srv = quota_server(server, tmp_path, quota_bytes="1M")
    put(srv, "big.bin", b"o" * (900 * KIB))
    ftp = login(srv)
    data = os.urandom(950 * KIB)
    assert ftp.storbinary("STOR big.bin", io.BytesIO(data)).startswith("226")
    assert on_disk(srv, "big.bin") == data
    consistent(srv)
    quit_(ftp)


def test_appe_and_rest_past_the_quota(server, tmp_path):
    srv = quota_server(server, tmp_path, quota_bytes="1M")
    old = os.urandom(900 * KIB)
    put(srv, "a.bin", old)
    ftp = login(srv)
    final = send_all(ftp, "APPE a.bin", os.urandom(200 * KIB))
    assert final.startswith("552 Quota exceeded") and "1 MiB (quota-bytes)" in final, final
    assert on_disk(srv, "a.bin") == old
    consistent(srv)
    # REST 500 KiB + 600 KiB: 1100 KiB in place of 900 KiB, past the quota.
    final = send_all(ftp, "STOR a.bin", os.urandom(600 * KIB), rest=500 * KIB)
    assert final.startswith("552 Quota exceeded"), final
    assert on_disk(srv, "a.bin") == old
    consistent(srv)
    # Within the quota both work.
    more = os.urandom(50 * KIB)
    assert ftp.storbinary("APPE a.bin", io.BytesIO(more)).startswith("226")
    assert on_disk(srv, "a.bin") == old + more
    tail = os.urandom(100 * KIB)
    assert ftp.storbinary("STOR a.bin", io.BytesIO(tail), rest=800 * KIB).startswith("226")
    assert on_disk(srv, "a.bin") == old[:800 * KIB] + tail
    consistent(srv)
    quit_(ftp)


def test_in_place_keeps_what_fits_in_the_quota(server, tmp_path):
    """upload-mode = in-place: the upload is stopped at the quota with 552 and what
    was written up to it stays; the tree then holds exactly the quota."""
    srv = quota_server(server, tmp_path, quota_bytes="1M", upload_mode="in-place")
    ftp = login(srv)
    before = usage(srv)[0]
    data = os.urandom(2 * MIB)
    final = send_all(ftp, "STOR new.bin", data)
    assert final.startswith("552 Quota exceeded: alice may store 1 MiB (quota-bytes), 1 MiB used."), final
    kept = MIB - before
    assert on_disk(srv, "new.bin") == data[:kept]
    consistent(srv)
    assert usage(srv)[0] == MIB
    # Full: the next upload keeps nothing, APPE neither; a smaller STOR over the
    # same file fits again.
    final = send_all(ftp, "APPE new.bin", b"x" * 1000)
    assert final.startswith("552"), final
    assert on_disk(srv, "new.bin") == data[:kept]
    small = os.urandom(10 * KIB)
    assert ftp.storbinary("STOR new.bin", io.BytesIO(small)).startswith("226")
    assert on_disk(srv, "new.bin") == small
    consistent(srv)
    quit_(ftp)


def test_two_sessions_of_one_user_cannot_pass_the_quota_together(server, tmp_path):
    """Each upload alone fits (700 KiB of 1 MiB), both together do not: the monitor
    checks each one's real size at its end, under the usage file's lock."""
    srv = quota_server(server, tmp_path, quota_bytes="1M")
    login(srv).close()
    results = {}
    barrier = threading.Barrier(2)

    def upload(name):
        ftp = ftp_login(srv)
        try:
            conn = ftp.transfercmd("STOR " + name)
            barrier.wait(timeout=IO_TIMEOUT)
            try:
                conn.sendall(os.urandom(700 * KIB))
                conn.unwrap()
            except (OSError, ValueError):
                pass
            conn.close()
            results[name] = ftp.getmultiline()
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            results[name] = repr(e)
        finally:
            quit_(ftp)

    threads = [threading.Thread(target=upload, args=(n,)) for n in ("one.bin", "two.bin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(IO_TIMEOUT * 2)
    codes = sorted(r[:3] for r in results.values())
    assert codes == ["226", "552"], results
    assert scan(srv.root)[0] <= MIB
    consistent(srv)
    stored = [n for n in ("one.bin", "two.bin") if os.path.exists(os.path.join(srv.root, n))]
    assert len(stored) == 1


def curl_put(srv, src, name, *extra):
    url = "ftp://%s:%s@127.0.0.1:%d/%s" % (lib.USER, lib.PASSWORD, srv.port, name)
    return subprocess.run(["curl", "-sS", "-v", "--ssl-reqd", "--cacert", srv.cafile,
                           "--max-time", str(IO_TIMEOUT * 2), "-T", str(src)] + list(extra)
                          + [url], capture_output=True, text=True, timeout=IO_TIMEOUT * 3)


def test_curl_and_the_users_file_quota(server, tmp_path):
    """curl, and alice's own quota-bytes= in the users file over the configuration's:
    an upload past it fails in curl with the server's 552, the next one fits."""
    srv = quota_server(server, tmp_path, quota_bytes="10M")
    with open(srv.users_path) as f:
        lines = f.read().splitlines()
    lines[0] += ":quota-bytes=200K"
    with open(srv.users_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    put(srv, "target.bin", OLD)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(MIB))
    r = curl_put(srv, big, "target.bin")
    assert r.returncode != 0, r
    assert "< 552 Quota exceeded: alice may store 200 KiB (quota-bytes), " in r.stderr, r.stderr
    assert on_disk(srv, "target.bin") == OLD
    consistent(srv)
    fits = tmp_path / "fits.bin"
    fits.write_bytes(os.urandom(100 * KIB))
    r = curl_put(srv, fits, "target.bin")
    assert r.returncode == 0, r.stderr
    assert on_disk(srv, "target.bin") == fits.read_bytes()
    consistent(srv)
    # curl --append: APPE past the quota.
    r = curl_put(srv, fits, "target.bin", "--append")
    assert r.returncode != 0 and "< 552 Quota exceeded" in r.stderr, r.stderr
    assert on_disk(srv, "target.bin") == fits.read_bytes()
    consistent(srv)


# ----------------------------------------------------------------- quota-files

def test_quota_files_refuses_mkd_and_new_files_and_dele_frees_room(server, tmp_path):
    # The tree holds 4: hello.txt, sub, sub/deeper, sub/inner.txt.
    srv = quota_server(server, tmp_path, quota_files="5")
    c = lib.secured(srv, lib.client_context(srv.cafile))
    r = c.cmd("MKD d1")
    assert r.code == 257, r
    r = c.cmd("MKD d2")
    assert r.code == 552, r
    assert r.first == ("552 Quota exceeded: alice may have 5 files and directories "
                       "(quota-files), 5 used."), r
    assert not os.path.exists(os.path.join(srv.root, "d2"))
    c.close()
    consistent(srv)
    ftp = ftp_login(srv)
    with pytest.raises(ftplib.error_perm, match="^552 Quota exceeded: .*quota-files"):
        ftp.storbinary("STOR new.txt", io.BytesIO(b"new"))
    assert not os.path.exists(os.path.join(srv.root, "new.txt"))
    # Replacing a file makes none: allowed.
    assert ftp.storbinary("STOR hello.txt", io.BytesIO(b"hi")).startswith("226")
    assert ftp.sendcmd("DELE hello.txt").startswith("250")
    consistent(srv)
    assert ftp.storbinary("STOR new.txt", io.BytesIO(b"new")).startswith("226")
    assert ftp.sendcmd("RMD d1").startswith("250")
    assert ftp.sendcmd("MKD d3").startswith("257")
    # RNTO over an existing file gives it back.
    ftp.sendcmd("RNFR new.txt")
    assert ftp.sendcmd("RNTO sub/inner.txt").startswith("250")
    consistent(srv)
    assert usage(srv)[1] == 4
    quit_(ftp)


# ----------------------------------------------------------- crashes and a liar

def test_kill_9_of_the_monitor_mid_upload_leaves_the_usage_right(server, tmp_path):
    srv = quota_server(server, tmp_path, quota_bytes="100M")
    put(srv, "target.bin", OLD)
    ftp = login(srv)
    conn = ftp.transfercmd("STOR target.bin")
    conn.sendall(os.urandom(2 * MIB))
    deadline = IO_TIMEOUT
    assert wait_for(lambda: "%d bytes received" % (2 * MIB) in ftp.sendcmd("STAT"),
                    timeout=deadline)
    monitor, child = session_pids(srv)
    os.kill(monitor, signal.SIGKILL)
    assert wait_for(lambda: srv.sessions() == [], timeout=5), srv.sessions()
    try:
        conn.close()
    except OSError:
        pass
    ftp.close()
    assert on_disk(srv, "target.bin") == OLD
    consistent(srv)
    nxt = ftp_login(srv)
    nxt.storbinary("STOR target.bin", io.BytesIO(b"next"))
    consistent(srv)
    quit_(nxt)


def test_kill_9_mid_upload_in_place_is_counted_again_at_the_next_login(server, tmp_path):
    """In place, an upload's growth is counted at its end; one whose session is
    killed never ends. Its start left the usage file "unsettled" with a kernel read
    lock that died with the monitor: the next session that reads the usage sees no
    live holder and counts the tree again. A live upload in place meanwhile is not
    mistaken for a dead one."""
    srv = quota_server(server, tmp_path, quota_bytes="100M", upload_mode="in-place")
    put(srv, "target.bin", OLD)
    ftp = login(srv)
    conn = ftp.transfercmd("STOR target.bin")
    conn.sendall(os.urandom(2 * MIB))
    assert wait_for(lambda: "%d bytes received" % (2 * MIB) in ftp.sendcmd("STAT"),
                    timeout=IO_TIMEOUT)
    with open(usage_path(srv)) as f:
        assert "unsettled=1\n" in f.read()
    # Another session of the user meanwhile: the upload is alive, nothing recounted.
    other = ftp_login(srv)
    other.mkd("d")
    with open(usage_path(srv)) as f:
        assert "unsettled=1\n" in f.read()
    quit_(other)
    monitor, child = session_pids(srv)
    os.kill(monitor, signal.SIGKILL)
    assert wait_for(lambda: srv.sessions() == [], timeout=5), srv.sessions()
    try:
        conn.close()
    except OSError:
        pass
    ftp.close()
    assert os.path.getsize(os.path.join(srv.root, "target.bin")) == 2 * MIB
    # The next session's first look at the usage counts the tree again.
    nxt = login(srv)
    assert "cut off by the end of its session" in srv.log
    nxt.storbinary("STOR small.bin", io.BytesIO(b"next"))
    consistent(srv)
    quit_(nxt)


def site_hook(ftp, what):
    try:
        return ftp.sendcmd("SITE TESTHOOK " + what)
    except ftplib.error_perm as e:
        if str(e).startswith("504"):
            pytest.skip("ftpsd built without -Dtest-hooks=true")
        raise


def test_a_child_that_ignores_its_allowance_is_refused_by_the_monitor(server, tmp_path):
    """The child taken over writes past the allowance: at the end the monitor finds
    the file past the quota, drops it (the old file stays) and answers 552."""
    srv = quota_server(server, tmp_path, quota_bytes="1M")
    put(srv, "target.bin", OLD)
    ftp = login(srv)
    assert site_hook(ftp, "IGNORE-QUOTA").startswith("200")
    data = os.urandom(2 * MIB)
    final = send_all(ftp, "STOR target.bin", data)
    assert final.startswith("552 Quota exceeded: alice may store 1 MiB (quota-bytes), "), final
    assert on_disk(srv, "target.bin") == OLD
    assert "past its quota" in srv.log
    consistent(srv)
    quit_(ftp)


def test_a_child_that_ignores_its_allowance_in_place_is_cut_back(server, tmp_path):
    srv = quota_server(server, tmp_path, quota_bytes="1M", upload_mode="in-place")
    ftp = login(srv)
    before = usage(srv)[0]
    assert site_hook(ftp, "IGNORE-QUOTA").startswith("200")
    data = os.urandom(2 * MIB)
    final = send_all(ftp, "STOR new.bin", data)
    assert final.startswith("552 Quota exceeded"), final
    assert on_disk(srv, "new.bin") == data[:MIB - before]
    consistent(srv)
    quit_(ftp)


# --------------------------------------------------------- the kernel's limits

@pytest.mark.skipif(not lib.ROOT, reason="mounts a small tmpfs (root only)")
def test_a_full_disk_is_552_and_the_session_goes_on(server, tmp_path):
    srv = quota_server(server, tmp_path, quota_bytes="100M")
    small = os.path.join(srv.root, "small")
    os.mkdir(small)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", small],
                   check=True, timeout=IO_TIMEOUT)
    try:
        own(srv, small)
        ftp = login(srv)
        final = send_all(ftp, "STOR small/x.bin", os.urandom(3 * MIB))
        assert final.startswith("552 "), final
        assert os.listdir(small) == []
        consistent(srv)
        assert ftp.sendcmd("NOOP").startswith("200")
        ftp.storbinary("STOR small/x.bin", io.BytesIO(b"z" * (600 * KIB)))
        consistent(srv)
        quit_(ftp)
    finally:
        subprocess.run(["umount", "-l", small], timeout=IO_TIMEOUT)


# ------------------------------------------------------------- --check-config

def check_config(srv):
    return subprocess.run([srv.binary, "--check-config", "--config", srv.config_path],
                          capture_output=True, text=True, timeout=IO_TIMEOUT)


def test_check_config_reports_an_unusable_quota_dir(server, tmp_path):
    srv = server(start=False, quota_bytes="1M", quota_dir=str(tmp_path / "no" / "quota"))
    r = check_config(srv)
    assert r.returncode != 0
    assert "quota-dir %s: missing, and so is the directory it would be made in" % (
        tmp_path / "no" / "quota") in r.stderr + r.stdout, r
    # Made at the first login where its parent is.
    srv = server(start=False, quota_bytes="1M", quota_dir=str(tmp_path / "quota"))
    r = check_config(srv)
    assert r.returncode == 0, r
    (tmp_path / "file").write_text("")
    srv = server(start=False, quota_files="9", quota_dir=str(tmp_path / "file"))
    r = check_config(srv)
    assert r.returncode != 0 and "quota-dir %s: not a directory" % (tmp_path / "file") in (
        r.stderr + r.stdout), r
    if lib.ROOT:
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(shared, 0o777)
        srv = server(start=False, quota_bytes="1M", quota_dir=str(shared))
        r = check_config(srv)
        assert r.returncode != 0 and "not owned by root, or writable by others" in (
            r.stderr + r.stdout), r
    srv = server(start=False, quota_dir="relative/quota")
    r = check_config(srv)
    assert r.returncode != 0 and "quota-dir must be an absolute path" in r.stderr + r.stdout, r


def test_the_hidden_upload_names_are_the_servers(server, tmp_path):
    """The quota leaves out the hidden files of unfinished uploads: a client may not
    name one (RNTO, STOR, MKD, RETR), or it could hide a file from the quota."""
    srv = quota_server(server, tmp_path, quota_bytes="1M")
    put(srv, "big.bin", b"b" * 4096)
    ftp = login(srv)
    hidden = lib.HIDDEN_UPLOAD + "0123456789abcdef"
    ftp.sendcmd("RNFR big.bin")
    with pytest.raises(ftplib.error_perm) as e:
        ftp.sendcmd("RNTO " + hidden)
    assert str(e.value).startswith("550"), e.value
    for cmd in ("MKD " + hidden, "MKD sub/" + hidden, "DELE " + hidden):
        with pytest.raises(ftplib.error_perm) as e:
            ftp.sendcmd(cmd)
        assert str(e.value).startswith("550"), (cmd, e.value)
    with pytest.raises(ftplib.error_perm) as e:
        ftp.storbinary("STOR " + hidden, io.BytesIO(b"x" * 100))
    assert str(e.value).startswith("550"), e.value
    assert sorted(os.listdir(srv.root)) == sorted(n for n in os.listdir(srv.root)
                                                  if not n.startswith(lib.HIDDEN_UPLOAD))
    consistent(srv)
    quit_(ftp)


def test_one_upload_in_place_of_a_file_at_a_time(server, tmp_path):
    """A second STOR of a file that an upload in place is writing would truncate
    bytes not yet counted against the quota (and interleave two writers): it is
    refused with 451 until the first ends, and the usage stays right."""
    srv = quota_server(server, tmp_path, quota_bytes="100M", upload_mode="in-place")
    put(srv, "target.bin", OLD)
    first = login(srv)
    conn = first.transfercmd("STOR target.bin")
    conn.sendall(os.urandom(MIB))
    assert wait_for(lambda: "%d bytes received" % MIB in first.sendcmd("STAT"),
                    timeout=IO_TIMEOUT)
    second = ftp_login(srv)
    with pytest.raises(ftplib.error_temp) as e:
        second.storbinary("STOR target.bin", io.BytesIO(b"second"))
    assert str(e.value).startswith("451"), e.value
    assert os.path.getsize(os.path.join(srv.root, "target.bin")) == MIB
    conn.close()
    first.voidresp()
    consistent(srv)
    second.storbinary("STOR target.bin", io.BytesIO(b"second"))
    assert on_disk(srv, "target.bin") == b"second"
    consistent(srv)
    quit_(first)
    quit_(second)
