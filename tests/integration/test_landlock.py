"""Landlock around both processes (issue 19), proven from outside with the test hooks.

- The logged-in monitor opens by absolute path with openat2, not resolved in the user's
  root (SITE TESTHOOK MONITOR-OPEN / MONITOR-CREATE): /etc/passwd and a file outside
  the user's tree that its uid could read or write are refused with EACCES, which only
  Landlock answers there (the same hooks succeed with landlock = off).
- The child binds outside the passive range (SITE TESTHOOK CHILD-BIND): EACCES, where
  without Landlock the bind succeeds. It has no connect at all, active mode or not
  (seccomp kills it: test_sandbox.py; Landlock denies TCP connect behind that):
  active mode's connections are made by the monitor (IPC_CONNECT), to the control
  connection's client only and never below port 1024, whatever a child taken over asks
  (SITE TESTHOOK ASK-CONNECT).
- The monitor before login (root, no seccomp yet) cannot exec: FTPSD_TEST_EXEC_BEFORE_LOGIN
  makes it try right after its pre-login layer (EACCES), and with
  landlock-before-login = off the same exec runs.
- The log says once which ABI was applied; FTPSD_TEST_LANDLOCK_ABI (test builds) makes
  this kernel look older: ABI 3 has no TCP rules and says so; no Landlock at all runs
  the session with landlock = on and refuses it with landlock = required.
- The session still works under the walls: uploads (O_TMPFILE), renames across
  directories (Landlock's REFER right), listings, deletions, directories.
"""

import errno
import ftplib
import io
import os
import re
import socket
import subprocess
import tempfile

import pytest

from ftpsd_testlib import (HELLO, PASSWORD, ROOT, USER, ConnectionClosed, Control, ftp_login,
                           landlock_abi, quit_quietly, retr_bytes, secured, session_pids,
                           wait_for)

needs_root = pytest.mark.skipif(not ROOT, reason="needs root (the monitor as the user)")


needs_landlock = pytest.mark.skipif(os.uname().machine != "x86_64" or landlock_abi() < 6,
                                    reason="needs Landlock ABI 6 (Linux 6.12)")


def hook(c, name):
    c.send("SITE TESTHOOK " + name)
    try:
        r = c.reply_within(5)
    except ConnectionClosed:
        return None
    if r is not None and r.code == 504:
        pytest.skip("ftpsd built without -Dtest-hooks=true (SITE TESTHOOK answers 504)")
    return r


def answered(r):
    assert r is not None and r.code == 200, r
    m = re.search(r"monitor answered (-?\d+)", r.first)
    assert m, r
    return int(m.group(1))


def tcp_answer(r):
    assert r is not None and r.code == 200, r
    m = re.search(r"(bind|connect) returned (-?\d+) errno (\d+)", r.first)
    assert m, r
    return int(m.group(2)), int(m.group(3))


def outside_writable(srv):
    """A directory outside the user's root that the user's uid may write into."""
    d = os.path.join(srv.dir, "outside")
    os.chmod(d, 0o777)
    return d


# ------------------------------------------------------------ the monitor after login

@needs_landlock
@needs_root
@pytest.mark.parametrize("mode", ["on", "off"])
def test_monitor_cannot_open_outside_the_users_root(server, tls, mode):
    srv = server(landlock=mode)
    secret = os.path.join(srv.dir, "outside", "secret.txt")
    new = os.path.join(outside_writable(srv), "created-by-monitor")
    with secured(srv, tls) as c:
        results = [answered(hook(c, "MONITOR-OPEN /etc/passwd")),
                   answered(hook(c, "MONITOR-OPEN " + secret)),
                   answered(hook(c, "MONITOR-CREATE " + new))]
        # The session goes on, and its own tree is still served.
        assert c.cmd("PWD").code == 257
    if mode == "on":
        assert results == [-errno.EACCES] * 3, results
        assert not os.path.exists(new)
    else:
        # The control: the user's uid may do all three; only Landlock stops them.
        assert results == [0, 0, 0], results
        assert os.path.exists(new)


@needs_landlock
@needs_root
def test_monitor_logs_the_abi_it_applied(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        monitor, child = session_pids(srv)
        assert c.cmd("NOOP").code == 200
    line = "ftpsd[%d]: " % monitor
    want = ("sandbox: Landlock ABI %d: filesystem only beneath the user's root and the "
            "session record, no TCP bind, connect for active mode only; abstract unix "
            "sockets scoped to the monitor" % landlock_abi())
    assert wait_for(lambda: any(line in x and want in x for x in srv.log.splitlines()),
                    timeout=3), srv.log
    assert wait_for(lambda: "child sandbox: Landlock ABI %d: no filesystem, TCP bind to "
                    "passive ports, no connect; abstract unix sockets and "
                    "kill() scoped to the child" % landlock_abi() in srv.log,
                    timeout=3), srv.log


# ------------------------------------------------------------ the child

def pasv_port(reply):
    assert reply.code == 227, reply
    nums = reply.lines[0].split("(")[1].split(")")[0].split(",")
    return int(nums[4]) * 256 + int(nums[5])


@needs_landlock
def test_each_session_binds_only_its_own_few_passive_ports(server, tls):
    """A Landlock rule per port costs some 2 us: a session allows only 128 ports
    of pasv-ports, chosen at random when it starts, and PASV uses those; another
    session chooses others, so the range is used whole."""
    srv = server(landlock="on", pasv_ports="50000-59999")
    seen = []
    for _ in range(2):
        with secured(srv, tls) as c:
            ports = {pasv_port(c.cmd("PASV")) for _ in range(40)}
            assert all(50000 <= p <= 59999 for p in ports), ports
            assert len(ports) <= 128
            seen.append(ports)
    assert seen[0] != seen[1]


@needs_landlock
@pytest.mark.parametrize("mode", ["on", "off"])
def test_child_binds_only_passive_ports(server, tls, mode):
    srv = server(landlock=mode)
    # A free port outside the passive range (61000-61999).
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with secured(srv, tls) as c:
        outside = tcp_answer(hook(c, "CHILD-BIND %d" % port))
        # One of the session's passive ports (its Landlock layer allows only
        # the few it chose when it started), free again after a second PASV.
        first = pasv_port(c.cmd("PASV"))
        assert 61000 <= first <= 61999
        second = pasv_port(c.cmd("PASV"))
        inside = tcp_answer(hook(c, "CHILD-BIND %d" % first)) if first != second else (0, 0)
        # Passive mode still works.
        ftp = ftp_login(srv)
        assert retr_bytes(ftp, "hello.txt") == HELLO
        quit_quietly(ftp)
    # Free again, unless another session (the suites share 61000-61999) took it since:
    # either way not Landlock's EACCES.
    assert inside in ((0, 0), (-1, errno.EADDRINUSE)), inside
    assert outside == ((-1, errno.EACCES) if mode == "on" else (0, 0)), outside


@pytest.mark.parametrize("active", ["on", "off"])
def test_monitor_connects_only_to_the_client_for_active_mode(server, tls, active):
    """IPC_CONNECT as a child taken over would send it (SITE TESTHOOK ASK-CONNECT), from a
    client at 127.0.0.2: the monitor connects to 127.0.0.2 at the port asked, never to
    another address; a port below 1024 ends the session (a malformed request); with
    active-mode = off it refuses (-EPERM), and its Landlock layer and seccomp filter
    have no TCP connect at all then."""
    srv = server(active_mode=active)
    listeners = {}
    for host in ("127.0.0.1", "127.0.0.2"):
        listeners[host] = socket.socket()
        listeners[host].bind((host, 0 if not listeners.get("127.0.0.1") else
                              listeners["127.0.0.1"].getsockname()[1]))
        listeners[host].listen(1)
        listeners[host].settimeout(0.5)
    port = listeners["127.0.0.1"].getsockname()[1]
    try:
        c = Control(srv.port, source="127.0.0.2")
        assert c.reply().code == 220
        assert c.cmd("AUTH TLS").code == 234
        c.starttls(tls)
        c.login(USER, PASSWORD)
        r = hook(c, "ASK-CONNECT %d" % port)
        if active == "on":
            assert r is not None and r.first == "200 monitor answered 0", r
            conn, _ = listeners["127.0.0.2"].accept()  # the client's address, asked port
            conn.close()
        else:
            assert r is not None and r.first == "200 monitor answered %d" % -errno.EPERM, r
        with pytest.raises(socket.timeout):
            listeners["127.0.0.1"].accept()
        assert c.cmd("NOOP").code == 200
        r = hook(c, "ASK-CONNECT 25")
        assert r is None or not r.first.startswith("200 monitor answered"), r
        c.wait_closed(timeout=5)
        c.close()
    finally:
        for sock in listeners.values():
            sock.close()
    assert wait_for(lambda: "malformed message of type 22 from the child" in srv.log,
                    timeout=3), srv.log
    if active == "off" and landlock_abi() >= 6:
        assert wait_for(lambda: "no TCP bind or connect; abstract unix" in srv.log,
                        timeout=3), srv.log


@needs_landlock
def test_active_mode_still_connects(server, tls):
    srv = server()
    ftp = ftp_login(srv)
    ftp.set_pasv(False)
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_quietly(ftp)


# ------------------------------------------------------------ older kernels, none

@needs_landlock
@needs_root
def test_abi_3_runs_without_tcp_rules_and_says_so(server, tls, monkeypatch):
    monkeypatch.setenv("FTPSD_TEST_LANDLOCK_ABI", "3")
    srv = server(active_mode="off")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with secured(srv, tls) as c:
        # Filesystem rules from ABI 1: still refused.
        assert answered(hook(c, "MONITOR-OPEN /etc/passwd")) == -errno.EACCES
        # No port rules before ABI 4: outside the passive range, bind goes through
        # (seccomp allows the call).
        assert tcp_answer(hook(c, "CHILD-BIND %d" % port)) == (0, 0)
    assert wait_for(lambda: "sandbox: Landlock ABI 3: filesystem only beneath the user's "
                    "root and the session record; no TCP rules (ABI 4); no scopes (ABI 6)"
                    in srv.log, timeout=3), srv.log


@needs_landlock
@needs_root
def test_abi_1_leaves_the_monitor_alone_so_that_renames_work(server, tls, monkeypatch):
    """ABI 1 refuses every rename across directories: the monitor then goes without
    Landlock (and says so), the child keeps its filesystem wall."""
    monkeypatch.setenv("FTPSD_TEST_LANDLOCK_ABI", "1")
    srv = server()
    with secured(srv, tls) as c:
        assert answered(hook(c, "MONITOR-OPEN /etc/passwd")) == 0
    ftp = ftp_login(srv)
    ftp.rename("hello.txt", "sub/hello.txt")
    assert retr_bytes(ftp, "sub/hello.txt") == HELLO
    quit_quietly(ftp)
    assert "sandbox: Landlock ABI 1 cannot allow renames across directories: the monitor " \
           "is not restricted" in srv.log, srv.log
    assert "child sandbox: Landlock ABI 1: no filesystem; no TCP rules (ABI 4); no scopes " \
           "(ABI 6)" in srv.log, srv.log


@needs_root
def test_no_landlock_runs_with_on_and_says_so(server, tls, monkeypatch):
    monkeypatch.setenv("FTPSD_TEST_LANDLOCK_ABI", "0")
    srv = server()
    with secured(srv, tls) as c:
        assert answered(hook(c, "MONITOR-OPEN /etc/passwd")) == 0
    assert wait_for(lambda: "sandbox: no Landlock in this kernel" in srv.log, timeout=3), \
        srv.log


@pytest.mark.parametrize("abi", ["0", "1"])
def test_required_refuses_a_session_without_landlock(server, tls, monkeypatch, abi):
    monkeypatch.setenv("FTPSD_TEST_LANDLOCK_ABI", abi)
    srv = server(landlock="required")
    with pytest.raises((ftplib.Error, EOFError, ConnectionError, OSError)) as e:
        ftp = ftp_login(srv)
        quit_quietly(ftp)
    assert "421" in str(e.value) or isinstance(e.value, (EOFError, ConnectionError)), e.value
    assert wait_for(lambda: "session refused: landlock = required, and " in srv.log,
                    timeout=3), srv.log


@needs_landlock
def test_required_serves_where_the_kernel_has_it(server):
    srv = server(landlock="required")
    ftp = ftp_login(srv)
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_quietly(ftp)


# ------------------------------------------------------------ the job still gets done

@needs_landlock
@pytest.mark.parametrize("upload_mode", ["atomic", "in-place"])
def test_transfers_renames_and_listings_under_landlock(server, upload_mode):
    srv = server(upload_mode=upload_mode)
    ftp = ftp_login(srv)
    data = os.urandom(300000)
    ftp.storbinary("STOR up.bin", io.BytesIO(data))
    ftp.mkd("newdir")
    # Across directories: Landlock's REFER right.
    ftp.rename("up.bin", "newdir/moved.bin")
    ftp.rename("newdir/moved.bin", "sub/deeper/moved.bin")
    assert retr_bytes(ftp, "sub/deeper/moved.bin") == data
    ftp.rename("newdir", "sub/newdir")
    assert "sub/deeper/moved.bin" in ftp.nlst("sub/deeper")
    facts = dict(ftp.mlsd("sub"))
    assert "newdir" in facts and "inner.txt" in facts
    ftp.storbinary("APPE sub/deeper/moved.bin", io.BytesIO(b"tail"))
    assert retr_bytes(ftp, "sub/deeper/moved.bin") == data + b"tail"
    ftp.delete("sub/deeper/moved.bin")
    ftp.rmd("sub/newdir")
    quit_quietly(ftp)
    with open(os.path.join(srv.root, "hello.txt"), "rb") as f:
        assert f.read() == HELLO
    assert not os.path.exists(os.path.join(srv.root, "sub", "deeper", "moved.bin"))


# ------------------------------------------------------------ --check-config

def check_config(srv, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([srv.binary, "--check-config", "--config", srv.config_path],
                          capture_output=True, text=True, timeout=10, env=e)


@needs_landlock
def test_check_config_says_what_the_kernel_offers(server):
    srv = server(start=False)
    r = check_config(srv)
    assert r.returncode == 0, r.stderr
    assert "landlock: Landlock ABI %d: filesystem, renames across directories, truncation, " \
           "TCP bind and connect, device ioctls, signal and abstract socket scopes\n" \
           % landlock_abi() in r.stdout, r.stdout


@pytest.mark.parametrize("landlock,rc", [("on", 0), ("required", 1)])
def test_check_config_without_landlock(server, landlock, rc):
    srv = server(start=False, landlock=landlock)
    r = check_config(srv, {"FTPSD_TEST_LANDLOCK_ABI": "0"})
    if "no Landlock" not in r.stdout + r.stderr:
        pytest.skip("ftpsd built without -Dtest-hooks=true (FTPSD_TEST_LANDLOCK_ABI unused)")
    assert r.returncode == rc, (r.stdout, r.stderr)
    if rc == 0:
        assert "landlock: no Landlock in this kernel" in r.stdout, r.stdout
    else:
        assert re.search(r":\d+: landlock = required, and no Landlock in this kernel",
                         r.stderr), r.stderr


# ------------------------------------------------------------ the monitor before login

@needs_landlock
@pytest.mark.parametrize("before_login", ["on", "off"])
def test_root_monitor_cannot_exec_before_login(server, tls, monkeypatch, before_login):
    """FTPSD_TEST_EXEC_BEFORE_LOGIN (test builds): right after its pre-login Landlock
    layer the monitor, still root and without seccomp, forks and execs the program;
    EACCES (status 13) from Landlock, and the same exec runs with the layer off."""
    monkeypatch.setenv("FTPSD_TEST_EXEC_BEFORE_LOGIN", "/bin/true")
    srv = server(landlock_before_login=before_login)
    with secured(srv, tls) as c:
        assert c.cmd("NOOP").code == 200
    want = 13 if before_login == "on" else 0
    assert wait_for(lambda: "test hook: exec /bin/true before login: exit status %d" % want
                    in srv.log, timeout=3), srv.log
    if before_login == "on":
        assert re.search(r"sandbox: Landlock ABI %d before login: writes only beneath \d+ "
                         r"directories, no exec, no special files made, no device ioctls, "
                         r"no TCP bind" % landlock_abi(), srv.log), srv.log


@needs_landlock
@pytest.mark.parametrize("before_login", ["on", "off"])
def test_root_monitor_writes_only_where_sessions_write_before_login(
        server, tls, monkeypatch, tmp_path, before_login):
    """FTPSD_TEST_CREATE_BEFORE_LOGIN (test builds): right after its pre-login layer the
    monitor, still root, creates a file by absolute path. Outside runtime-dir, quota-dir
    and the roots a login may get: EACCES from Landlock; with the layer off, created.
    Beneath runtime-dir (the session records) the same create succeeds."""
    os.chmod(tmp_path, 0o755)
    outside = tmp_path / "written-by-root"
    monkeypatch.setenv("FTPSD_TEST_CREATE_BEFORE_LOGIN", str(outside))
    srv = server(landlock_before_login=before_login)
    with secured(srv, tls) as c:
        assert c.cmd("NOOP").code == 200
    want = "Permission denied" if before_login == "on" else "created"
    assert wait_for(lambda: "test hook: create %s before login: %s" % (outside, want)
                    in srv.log, timeout=3), srv.log
    assert outside.exists() == (before_login == "off")
    if before_login == "on":
        srv.stop()
        inside = os.path.join(srv.dir, "run", "written-by-root")
        monkeypatch.setenv("FTPSD_TEST_CREATE_BEFORE_LOGIN", inside)
        srv.start()
        with secured(srv, tls) as c:
            assert c.cmd("NOOP").code == 200
        assert wait_for(lambda: "test hook: create %s before login: created" % inside
                        in srv.log, timeout=3), srv.log
        os.unlink(inside)


@needs_landlock
@needs_root
def test_users_file_entry_added_after_the_session_began_is_refused(server, tls):
    """The pre-login layer allows the roots the users file had when the session began:
    an entry added later, with a root elsewhere, is refused at its PASS (530, and the
    log says why) rather than fail every upload; the next session logs it in."""
    srv = server()
    root = os.path.join(srv.dir, "late-root")  # next to the users-file root, not in it
    os.mkdir(root)
    os.chown(root, srv.accounts.uid, srv.accounts.gid)
    with secured(srv, tls, login=False) as c:
        with open(srv.users_path, "a") as f:
            f.write("late:%s:%d:%d:%s\n" % (srv.pki.hash, srv.accounts.uid, srv.accounts.gid,
                                            root))
        assert c.cmd("USER late").code == 331
        assert c.cmd("PASS Wonderland-42").code == 530
    assert wait_for(lambda: "login of late refused: its root %s is not beneath a directory "
                    "the monitor may write before login" % root in srv.log, timeout=3), srv.log
    ftp = ftp_login(srv, user="late")
    ftp.storbinary("STOR late.txt", io.BytesIO(b"late\n"))
    quit_quietly(ftp)
    with open(os.path.join(root, "late.txt"), "rb") as f:
        assert f.read() == b"late\n"


@needs_landlock
@needs_root
def test_many_users_allow_the_directories_that_hold_their_roots(server, tls):
    """Beyond 256 users-file roots, the pre-login layer allows the directories that hold
    them: one of the 300 users uploads. A root that is itself a symbolic link to a
    directory elsewhere is not followed (a syscall per root would cost each session
    more than the rest of its login): its login is refused, saying so, until
    landlock-writable names where it leads."""
    srv = server()
    acc = srv.accounts
    many = os.path.join(srv.dir, "many")
    # Next to the server's directory, whose roots are allowed: outside all of them.
    elsewhere = tempfile.mkdtemp(prefix="elsewhere-", dir=os.path.dirname(srv.dir))
    os.chmod(elsewhere, 0o755)
    real = os.path.join(elsewhere, "real")
    os.mkdir(real)
    os.chown(real, acc.uid, acc.gid)
    os.mkdir(os.path.join(srv.dir, "links"))
    link = os.path.join(srv.dir, "links", "link")  # its directory holds no root
    os.symlink(real, link)
    os.mkdir(many)
    os.chmod(many, 0o755)
    with open(srv.users_path, "a") as f:
        for i in range(300):
            d = os.path.join(many, "u%d" % i)
            os.mkdir(d)
            os.chown(d, acc.uid, acc.gid)
            f.write("u%d:%s:%d:%d:%s\n" % (i, srv.pki.hash, acc.uid, acc.gid, d))
        f.write("linked:%s:%d:%d:%s\n" % (srv.pki.hash, acc.uid, acc.gid, link))
    def upload(user, where):
        ftp = ftp_login(srv, user=user)
        ftp.storbinary("STOR up.txt", io.BytesIO(b"many\n"))
        quit_quietly(ftp)
        with open(os.path.join(where, "up.txt"), "rb") as f:
            assert f.read() == b"many\n"

    upload("u299", os.path.join(many, "u299"))
    assert re.search(r"before login: writes only beneath [3-6] directories", srv.log), srv.log
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp_login(srv, user="linked")
    assert wait_for(lambda: "login of linked refused: its root %s is not beneath" % link
                    in srv.log, timeout=3), srv.log
    srv.stop()
    with open(srv.config_path, "a") as f:
        f.write("landlock-writable = %s\n" % os.path.dirname(real))
    srv.start()
    upload("linked", real)
