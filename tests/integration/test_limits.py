"""Session limits and session records, with no daemon: lock slots below
runtime-dir/limits (max-sessions, max-sessions-per-address, max-sessions-per-user
and the users file's max-sessions=), one record per session below
runtime-dir/sessions, the progress of a transfer in the record and the process
title, and SIGTERM to a monitor (ftpsd-user lock/del) ending its session with a
421. The server listens on 127.0.0.1; clients bind 127.0.0.2 and 127.0.0.3 to be
other addresses."""

import os
import signal
import subprocess
import socket
import ssl
import time

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import (IO_TIMEOUT, ROOT, USER, Control, ConnectionClosed, ReusingFTP_TLS,
                           client_context, proc_args, session_pids, wait_for)

TOTAL = "421 Too many sessions (max-sessions %d), try again later."
ADDRESS = "421 Too many sessions from your address (max-sessions-per-address %d), try again later."
PER_USER = "421 Too many sessions of this user (max-sessions-per-user %d), try again later."


def connect(srv, source="127.0.0.1", proxy=None, implicit=None):
    """A Control from a chosen source address, after an optional PROXY header and
    implicit TLS handshake."""
    c = Control.__new__(Control)
    c.host = "127.0.0.1"
    c.timeout = IO_TIMEOUT
    c.buf = b""
    c.sock = socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT,
                                      source_address=(source, 0))
    if proxy is not None:
        c.sock.sendall(("PROXY TCP4 %s 127.0.0.1 40000 21\r\n" % proxy).encode())
    if implicit is not None:
        c.starttls(implicit)
    return c


def greeting(c):
    """The first reply's line, or "" when the server closed without one."""
    try:
        return c.reply().lines[0]
    except ConnectionClosed:
        return ""


def accepted(srv, n, **kw):
    out = []
    for _ in range(n):
        c = connect(srv, **kw)
        g = greeting(c)
        assert g.startswith("220 "), g
        out.append(c)
    return out


def refused_then_accepted(srv, opened, text, **kw):
    """One more is refused with text and closed; once one of `opened` ends, one
    more is accepted again (the monitor's exit frees its slot)."""
    c = connect(srv, **kw)
    assert greeting(c) == text
    c.wait_closed()
    c.close()
    opened.pop().close()

    def again():
        c = connect(srv, **kw)
        g = greeting(c)
        if g.startswith("220 "):
            opened.append(c)
            return True
        c.close()
        return False
    assert wait_for(again, timeout=5, interval=0.2), "no session accepted after one ended"


def close_all(cs):
    for c in cs:
        c.close()


def test_max_sessions(server):
    srv = server(max_sessions=3, max_sessions_per_address=0)
    opened = accepted(srv, 3)
    refused_then_accepted(srv, opened, TOTAL % 3)
    close_all(opened)
    assert "refused: Too many sessions (max-sessions 3)" in srv.log, srv.log


def test_max_sessions_per_address(server):
    srv = server(max_sessions_per_address=2)
    two = accepted(srv, 2, source="127.0.0.2")
    # Another address has slots of its own.
    three = accepted(srv, 2, source="127.0.0.3")
    refused_then_accepted(srv, two, ADDRESS % 2, source="127.0.0.2")
    c = connect(srv, source="127.0.0.3")
    assert greeting(c) == ADDRESS % 2
    close_all(two + three + [c])


def test_max_sessions_per_address_counts_the_proxy_header(server):
    """Behind a balancer every connection comes from it: the address the PROXY header
    gives is the one counted."""
    srv = server(proxy_protocol="on", proxy_protocol_from="127.0.0.1",
                 max_sessions_per_address=2)
    five = accepted(srv, 2, proxy="127.0.0.5")
    six = accepted(srv, 2, proxy="127.0.0.6")
    refused_then_accepted(srv, five, ADDRESS % 2, proxy="127.0.0.5")
    close_all(five + six)
    assert "session from 127.0.0.5 refused" in srv.log, srv.log


def login(srv, tls, user=USER, password=lib.PASSWORD):
    c = lib.secured(srv, tls, login=False)
    assert c.cmd("USER " + user).code == 331
    return c, c.cmd("PASS " + password)


def check_user_limit(srv, tls, n):
    opened = []
    for _ in range(n):
        c, r = login(srv, tls)
        assert r.code == 230, r
        opened.append(c)
    # Another user is not counted with alice.
    other, r = login(srv, tls, lib.RO_USER, lib.RO_PASSWORD)
    assert r.code == 230, r
    c, r = login(srv, tls)
    assert r.lines[0] == PER_USER % n, r
    c.wait_closed()
    c.close()
    opened.pop().close()

    def again():
        c, r = login(srv, tls)
        if r.code == 230:
            opened.append(c)
            return True
        c.close()
        return False
    assert wait_for(again, timeout=5, interval=0.2), "no login after a session ended"
    close_all(opened + [other])
    assert "login of alice refused" in srv.log, srv.log


def test_max_sessions_per_user(server, tls):
    srv = server(max_sessions_per_user=2)
    check_user_limit(srv, tls, 2)


def test_users_file_max_sessions_overrides(server, tls):
    srv = server(max_sessions_per_user=5)
    with open(srv.users_path) as f:
        lines = f.read().splitlines()
    lines[0] += ":max-sessions=1"
    with open(srv.users_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    check_user_limit(srv, tls, 1)


def test_implicit_tls_gets_the_421_after_the_handshake(server, tls):
    srv = server(implicit=True, max_sessions=1)
    first = connect(srv, implicit=tls)
    assert greeting(first).startswith("220 ")
    c = connect(srv, implicit=tls)
    assert isinstance(c.sock, ssl.SSLSocket)
    assert greeting(c) == TOTAL % 1
    c.wait_closed()
    c.close()
    first.close()


def record_dir(srv, uid):
    return os.path.join(srv.dir, "run", "sessions", str(uid))


def read_record(path):
    out = {}
    with open(path) as f:
        for line in f.read().splitlines():
            k, _, v = line.partition("=")
            out[k] = v
    return out


def start_time(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()[19]


def test_kill_9_of_a_monitor_frees_its_slot(server, tls):
    srv = server(max_sessions=1)
    c = lib.secured(srv, tls)
    monitor, child = session_pids(srv)
    uid = srv.accounts.uid if ROOT else os.geteuid()
    path = os.path.join(record_dir(srv, uid), str(monitor))
    assert wait_for(lambda: os.path.exists(path)), os.listdir(record_dir(srv, uid))
    rec = read_record(path)
    assert rec["start"] == start_time(monitor)
    refused = connect(srv)
    assert greeting(refused) == TOTAL % 1
    refused.close()
    os.kill(monitor, signal.SIGKILL)
    assert wait_for(lambda: not lib.alive(monitor) and not lib.alive(child), timeout=5)
    again = connect(srv)
    assert greeting(again).startswith("220 ")
    again.close()
    c.close()
    # The record a kill leaves is stale by the start-time rule: no live process has
    # that pid with that start time.
    if os.path.exists(path):
        assert not os.path.exists("/proc/%d" % monitor) or start_time(monitor) != rec["start"]


def test_session_record_and_title_through_a_session(server, tls, big_file):
    srv = server()
    os.link(big_file, os.path.join(srv.root, "big.bin"))
    size = os.path.getsize(big_file)
    c = lib.secured(srv, tls, login=False)
    monitor, _ = session_pids(srv)
    pre = os.path.join(record_dir(srv, 0 if ROOT else os.geteuid()), str(monitor))
    assert wait_for(lambda: os.path.exists(pre))
    rec = read_record(pre)
    assert rec["pid"] == str(monitor) and rec["start"] == start_time(monitor), rec
    assert rec["user"] == "" and rec["command"] == "login" and rec["login"] == "0", rec
    assert rec["address"] == "127.0.0.1" and rec["host"] == "", rec
    assert abs(int(rec["since"]) - time.time()) < 30, rec
    if ROOT:
        assert os.stat(pre).st_uid == 0
    c.login()
    uid = srv.accounts.uid if ROOT else os.geteuid()
    post = os.path.join(record_dir(srv, uid), str(monitor))
    assert wait_for(lambda: os.path.exists(post))
    # (In development mode both are the one user's directory.)
    assert pre == post or not os.path.exists(pre)
    st = os.stat(post)
    assert st.st_uid == uid
    dst = os.stat(record_dir(srv, uid))
    assert dst.st_uid == uid and (dst.st_mode & 0o777) == 0o755
    rec = read_record(post)
    assert rec["user"] == USER and rec["command"] == "idle" and int(rec["login"]) > 0, rec
    assert rec["path"] == "" and rec["size"] == "", rec
    assert proc_args(monitor) == "ftpsd: %s@127.0.0.1 idle" % USER
    c.close()

    # A slow RETR: the record and the title follow it.
    ftp = ReusingFTP_TLS(context=client_context(srv.cafile), timeout=IO_TIMEOUT)
    ftp.connect("127.0.0.1", srv.port)
    ftp.auth()
    ftp.login(USER, lib.PASSWORD)
    ftp.prot_p()
    assert wait_for(lambda: len(srv.monitors()) == 1)
    monitor = srv.monitors()[0]
    post = os.path.join(record_dir(srv, uid), str(monitor))
    conn = ftp.transfercmd("RETR big.bin")
    got = 0
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(seen) < 3:
        got += len(conn.recv(256 * 1024))
        time.sleep(0.05)
        try:
            rec = read_record(post)
        except FileNotFoundError:
            continue
        if rec.get("command") == "RETR" and (not seen or int(rec["bytes"]) > seen[-1]):
            seen.append(int(rec["bytes"]))
            assert rec["path"] == "/big.bin" and rec["size"] == str(size), rec
            title = proc_args(monitor)
            assert title.startswith("ftpsd: %s@127.0.0.1 RETR /big.bin " % USER), title
            assert title.endswith("iB") or title.endswith(" B"), title
    # (What the server sent includes what the socket buffers hold.)
    assert len(seen) >= 2 and seen[0] < seen[-1] < size, (seen, got)
    assert int(rec["rate"]) > 0, rec
    conn.close()
    try:
        ftp.voidresp()
    except ftplib_errors():
        pass
    assert wait_for(lambda: read_record(post)["command"] == "idle", timeout=5)
    ftp.quit()
    assert wait_for(lambda: not os.path.exists(post), timeout=5), os.listdir(record_dir(srv, uid))


def ftplib_errors():
    import ftplib
    return ftplib.all_errors


def test_sigterm_ends_the_session_with_421_and_keeps_the_old_file(server, tls):
    srv = server()
    target = os.path.join(srv.root, "hello.txt")
    ftp = ReusingFTP_TLS(context=client_context(srv.cafile), timeout=IO_TIMEOUT)
    ftp.connect("127.0.0.1", srv.port)
    ftp.auth()
    ftp.login(USER, lib.PASSWORD)
    ftp.prot_p()
    monitor = srv.monitors()[0]
    conn = ftp.transfercmd("STOR hello.txt")
    conn.sendall(b"new content that must not land " * 4096)
    uid = srv.accounts.uid if ROOT else os.geteuid()
    record = os.path.join(record_dir(srv, uid), str(monitor))
    assert wait_for(lambda: os.path.exists(record))
    assert wait_for(lambda: read_record(record)["command"] == "STOR", timeout=5)
    os.kill(monitor, signal.SIGTERM)
    ftp.sock.settimeout(IO_TIMEOUT)
    line = ftp.getline()
    assert line == "421 Session ended by the administrator.", line
    try:
        conn.close()
    except (OSError, ssl.SSLError):
        pass
    ftp.close()
    assert wait_for(lambda: not lib.alive(monitor), timeout=5)
    with open(target, "rb") as f:
        assert f.read() == lib.HELLO
    assert not os.path.exists(record)
    assert wait_for(lambda: "ended by the administrator" in srv.log, timeout=5)
    # The next session works.
    c = lib.secured(srv, tls)
    assert c.cmd("NOOP").code == 200
    c.close()


@pytest.mark.skipif(not ROOT, reason="the processes' descriptors are root's to read")
def test_the_lock_files_never_reach_the_child(server, tls):
    """An OFD lock lives as long as any copy of its descriptor: the monitor holds the
    lock files, the child none of them."""
    srv = server(max_sessions_per_user=3)
    c = lib.secured(srv, tls)
    monitor, child = session_pids(srv)
    limits = os.path.join(srv.dir, "run", "limits")

    def fds(pid):
        out = []
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
            except OSError:
                pass
        return out
    held = [p for p in fds(monitor) if p.startswith(limits)]
    assert sorted(os.path.basename(p) for p in held) == ["address", "rate", "total", "user"], held
    assert not [p for p in fds(child) if p.startswith(os.path.join(srv.dir, "run"))], fds(child)
    c.close()


@pytest.mark.skipif(not ROOT, reason="runtime-dir must be root's only when ftpsd runs as root")
@pytest.mark.parametrize("why", ["mode", "owner"])
def test_a_runtime_dir_others_may_write_is_refused(server, ftpsd_bin, why):
    """Fail closed: a runtime-dir that someone else could write (its own mode, or
    another owner) is not used; the session gets a 421 and the log says why;
    --check-config says it too."""
    srv = server()
    run = os.path.join(srv.dir, "run")
    os.mkdir(run)
    if why == "mode":
        os.chmod(run, 0o777)
        reason = "writable by group or others"
    else:
        os.chmod(run, 0o755)
        os.chown(run, srv.accounts.uid, srv.accounts.gid)
        reason = "not owned by root"
    c = connect(srv)
    assert greeting(c) == "421 Service not available; closing the connection."
    c.close()
    assert wait_for(lambda: "runtime-dir %s: %s" % (run, reason) in srv.log), srv.log
    r = subprocess.run([ftpsd_bin, "--check-config", "--config", srv.config_path],
                       capture_output=True, text=True, timeout=IO_TIMEOUT)
    assert r.returncode == 1 and "runtime-dir %s: %s" % (run, reason) in r.stderr, r.stderr
    # Made right, it serves again.
    os.chown(run, 0, 0)
    os.chmod(run, 0o755)
    c = connect(srv)
    assert greeting(c).startswith("220 ")
    c.close()
    st = os.stat(os.path.join(run, "limits", "key"))
    assert st.st_uid == 0 and (st.st_mode & 0o777) == 0o600 and st.st_size == 32
    for d in ("limits", "sessions"):
        st = os.stat(os.path.join(run, d))
        assert st.st_uid == 0 and (st.st_mode & 0o777) == 0o755, d


def test_refusals_are_journal_events_with_the_limit(server, tls):
    """fail2ban and admins search for FTPSD_LIMIT=max-sessions (and the others) in the
    journal: each refusal is an entry with that field."""
    srv = server(start=False, max_sessions=1, max_sessions_per_user=1)
    got = _journal_entries(srv, tls)
    if got is None:
        pytest.skip("binding the journal socket needs root and no running journald")
    limits = [e for e in got if "FTPSD_LIMIT" in e]
    assert [e["FTPSD_LIMIT"] for e in limits] == ["max-sessions", "max-sessions-per-user"], limits
    assert limits[0]["FTPSD_EVENT"] == "session-refused"
    assert "Too many sessions (max-sessions 1)" in limits[0]["MESSAGE"]
    assert limits[1]["FTPSD_USER"] == USER
    assert "max-sessions-per-user 1" in limits[1]["MESSAGE"]


def _journal_entries(srv, tls):
    """Run srv with stderr as "the journal stream" and a native journal socket bound
    here (as test_journal.py does); a total refusal, then a per-user one. None when the
    journal socket cannot be ours."""
    import test_journal as tj
    if not ROOT or os.path.exists(tj.JOURNAL_SOCKET):
        return None
    import threading
    os.makedirs(os.path.dirname(tj.JOURNAL_SOCKET), exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(tj.JOURNAL_SOCKET)
    os.chmod(tj.JOURNAL_SOCKET, 0o666)
    s.settimeout(0.2)
    got, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                got.append(tj.parse_native(s.recv(1 << 16)))
            except socket.timeout:
                pass
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    srv.port = lib.free_port()
    logf = open(srv.log_path, "ab")
    st = os.fstat(logf.fileno())
    env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    srv.proc = subprocess.Popen(
        ["systemd-socket-activate", "--accept", "-E", "JOURNAL_STREAM",
         "-l", "127.0.0.1:%d" % srv.port, "--"] + srv.argv(),
        stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env, start_new_session=True)
    try:
        assert wait_for(lambda: lib.tcp_listening(srv.port), timeout=5)
        first = lib.secured(srv, tls)
        c = connect(srv)
        assert greeting(c) == TOTAL % 1
        c.close()
        first.close()
        assert wait_for(lambda: srv.sessions() == [], timeout=5)
        # One at a time now, and alice twice: the second login is over her limit.
        with open(srv.config_path) as f:
            text = f.read()
        with open(srv.config_path, "w") as f:
            f.write(lib.rewrite_config(text, {"max-sessions": "0"}))
        first = lib.secured(srv, tls)
        c, r = login(srv, tls)
        assert r.lines[0] == PER_USER % 1, r
        c.close()
        first.close()
        assert wait_for(lambda: srv.sessions() == [], timeout=5)
        time.sleep(0.3)
        return list(got)
    finally:
        srv.stop()
        logf.close()
        stop.set()
        t.join(timeout=2)
        s.close()
        os.unlink(tj.JOURNAL_SOCKET)


@pytest.mark.parametrize("when", ["before-login", "idle"])
def test_sigterm_before_login_and_when_idle(server, tls, when):
    srv = server()
    c = lib.secured(srv, tls, login=when != "before-login")
    monitor, child = session_pids(srv)
    uid = 0 if when == "before-login" else srv.accounts.uid
    record = os.path.join(record_dir(srv, uid if ROOT else os.geteuid()), str(monitor))
    assert wait_for(lambda: os.path.exists(record))
    os.kill(monitor, signal.SIGTERM)
    assert c.reply().lines[0] == "421 Session ended by the administrator."
    c.wait_closed()
    c.close()
    assert wait_for(lambda: not lib.alive(monitor) and not lib.alive(child), timeout=5)
    assert not os.path.exists(record)


def test_modes_under_the_units_umask(server, tls):
    """The service runs with UMask=0077; what the tools read stays readable: the
    directories 0755, the records 0644."""
    srv = server(start=False)
    old = os.umask(0o077)
    try:
        srv.start()
    finally:
        os.umask(old)
    c = lib.secured(srv, tls, login=False)
    monitor, _ = session_pids(srv)
    run = os.path.join(srv.dir, "run")
    pre_uid = 0 if ROOT else os.geteuid()
    assert wait_for(lambda: os.path.exists(os.path.join(record_dir(srv, pre_uid), str(monitor))))
    c.login()
    uid = srv.accounts.uid if ROOT else os.geteuid()
    record = os.path.join(record_dir(srv, uid), str(monitor))
    assert wait_for(lambda: os.path.exists(record))
    for d in (run, os.path.join(run, "limits"), os.path.join(run, "sessions"),
              record_dir(srv, pre_uid), record_dir(srv, uid)):
        assert (os.stat(d).st_mode & 0o777) == 0o755, d
    assert (os.stat(record).st_mode & 0o777) == 0o644
    c.close()


from test_vhosts import vhosts  # noqa: E402,F401  (the fixture: hosts a.test and b.test)


def test_per_user_limit_of_a_virtual_host_and_its_record(vhosts):
    """max-sessions-per-user set in [host b.test] counts bob of b.test (the key is host
    and name); his record says host=b.test."""
    with open(vhosts.config_path, "a") as f:
        f.write("max-sessions-per-user = 1\n")  # into the last section, [host b.test]

    def bob():
        c = Control(vhosts.port)
        assert c.reply().code == 220
        assert c.cmd("HOST b.test").code == 220
        assert c.cmd("USER bob").code == 331
        return c, c.cmd("PASS pw-b")
    first, r = bob()
    assert r.code == 230, r
    monitor = [p for p in vhosts.monitors()][0]
    uid = vhosts.accounts.uid if ROOT else os.geteuid()
    record = os.path.join(record_dir(vhosts, uid), str(monitor))
    assert wait_for(lambda: os.path.exists(record))
    rec = read_record(record)
    assert rec["host"] == "b.test" and rec["user"] == "bob", rec
    second, r = bob()
    assert r.lines[0] == PER_USER % 1, r
    second.close()
    first.close()
