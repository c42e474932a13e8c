"""The sandbox of a session, proven from outside (issue 3, items 1-3).

- Seccomp: the test hooks (SITE TESTHOOK, compiled only with -Dtest-hooks=true) make
  the child call a forbidden syscall (openat, and raw open, creat, openat2,
  name_to_handle_at, open_by_handle_at; execve; socket(AF_UNIX)) or the logged-in
  monitor call execve / socket(): the process must be killed by SIGSYS (the monitor's
  filter answers socket() with EPERM), the session must end, nothing may be left, and
  the next session must work.
- Key isolation: the child's memory (/proc/PID/mem, as root) holds no copy of the TLS
  private key's secret scalar; the monitor's does (so the scan can find it).
- Process hygiene: ids, groups, capabilities, chroot, no_new_privs, seccomp, not
  dumpable, resource limits, read from /proc for both processes.
- Either process dying (SIGKILL in the middle of a 64 MiB RETR) ends the other.
"""

import ftplib
import os
import re
import signal
import socket
import ssl
import time

import pytest

from ftpsd_testlib import (quit_quietly, HELLO, ROOT, ConnectionClosed, alive, ecdsa_secret,
                           ftp_login, memory_find, proc_limits, proc_status, retr_bytes,
                           secured, session_pids, wait_for)

needs_root = pytest.mark.skipif(not ROOT, reason="needs root (privilege drop, /proc/PID/mem)")

NOFILE = 64


quit_ = quit_quietly


def send_hook(c, name):
    """Send SITE TESTHOOK name; skip the test on a build without hooks. Returns the reply
    if one came, None if the connection closed first."""
    c.send("SITE TESTHOOK " + name)
    try:
        r = c.reply_within(5)
    except ConnectionClosed:
        return None
    if r is not None and r.code == 504:
        pytest.skip("ftpsd built without -Dtest-hooks=true (SITE TESTHOOK answers 504)")
    return r


def assert_nothing_left(srv, *pids, timeout=5):
    assert wait_for(lambda: not any(alive(p) for p in pids), timeout=timeout), \
        [(p, alive(p)) for p in pids]
    assert wait_for(lambda: srv.sessions() == [], timeout=timeout), srv.sessions()


def assert_next_session_works(srv, tls):
    with secured(srv, tls) as c:
        assert c.cmd("PWD").code == 257
        assert c.cmd("NOOP").code == 200
    ftp = ftp_login(srv)
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_(ftp)


def ids(status, key):
    return [int(x) for x in status[key].split()]


# ------------------------------------------------------------------ 1. seccomp

# CHILD-OPEN is glibc's open(), that is openat; the CHILD-RAW-* hooks make the other
# syscalls that open files as they are, so none of them can slip into the allow-list.
CHILD_HOOKS = ["CHILD-OPEN", "CHILD-EXEC", "CHILD-UNIX-SOCKET", "CHILD-CONNECT 2121",
               "CHILD-RAW-OPEN", "CHILD-RAW-CREAT", "CHILD-RAW-OPENAT2",
               "CHILD-RAW-NAME-TO-HANDLE-AT", "CHILD-RAW-OPEN-BY-HANDLE-AT",
               # connects by other names: TCP Fast Open, and a Multipath TCP socket
               "CHILD-RAW-TCP-FASTOPEN", "CHILD-RAW-MPTCP"]


@pytest.mark.parametrize("hook", CHILD_HOOKS)
def test_forbidden_syscall_in_child_kills_it_with_sigsys(server, tls, hook):
    srv = server()
    c = secured(srv, tls)
    monitor, child = session_pids(srv)
    r = send_hook(c, hook)
    if r is not None and r.code == 502:
        pytest.skip("no such syscall on this architecture: %r" % r)
    # The child is killed inside the syscall: it never gets to answer ("open returned -1"
    # would mean the filter only denied the call).
    assert r is None, "child survived %s: %r" % (hook, r)
    c.wait_closed(timeout=5)
    c.close()
    assert_nothing_left(srv, monitor, child)
    line = "ftpsd[%d]: " % monitor
    assert wait_for(lambda: any(line in x and "session ended: child killed by signal 31"
                                in x for x in srv.log.splitlines()), timeout=3), srv.log
    assert "Bad system call" in srv.log
    assert_next_session_works(srv, tls)


def test_monitor_exec_after_login_kills_the_monitor(server, tls):
    srv = server()
    c = secured(srv, tls)
    monitor, child = session_pids(srv)
    r = send_hook(c, "MONITOR-EXEC")
    assert r is None or not r.text.startswith("monitor answered"), \
        "the monitor survived execve: %r" % r
    c.wait_closed(timeout=5)
    c.close()
    assert_nothing_left(srv, monitor, child)
    assert wait_for(lambda: re.search(r"Child %d died with code 31\b" % monitor, srv.log),
                    timeout=3), srv.log
    assert_next_session_works(srv, tls)


@pytest.mark.parametrize("active", ["on", "off"])
def test_monitor_sockets_after_login(server, tls, active):
    """A TCP socket only where active mode needs one (the monitor connects for it);
    a unix socket (syslog reconnecting) is denied with EPERM either way, not killed."""
    srv = server(active_mode=active)
    with secured(srv, tls) as c:
        monitor, child = session_pids(srv)
        r = send_hook(c, "MONITOR-SOCKET")
        want = "200 monitor answered %d" % (0 if active == "on" else -1)
        assert r is not None and r.first == want, r
        r = send_hook(c, "MONITOR-UNIX-SOCKET")
        assert r is not None and r.first == "200 monitor answered -1", r
        # denied, not killed: the session goes on
        assert c.cmd("NOOP").code == 200
        assert c.cmd("PWD").code == 257
        assert alive(monitor) and alive(child)
    assert "signal" not in srv.log, srv.log


@pytest.mark.parametrize("hook", ["NO-SUCH-HOOK", "CHILD-RAW-NO-SUCH-SYSCALL"])
def test_unknown_test_hook_is_501(server, tls, hook):
    srv = server()
    with secured(srv, tls) as c:
        r = send_hook(c, hook)
        assert r is not None and r.code == 501, r
        assert c.cmd("NOOP").code == 200


# ---------------------------------------------------------- 2. key isolation

@needs_root
def test_private_key_is_in_the_monitor_never_in_the_child(server, tls):
    srv = server()
    secret = ecdsa_secret(srv.pki.key)
    with open(srv.pki.key) as f:
        pem_body = [line for line in f.read().splitlines() if not line.startswith("-----")]
    pem_head = pem_body[0][:40].encode()  # the PEM text of the key file, if copied whole
    needles = [secret, secret[::-1], pem_head]

    ftp = ftp_login(srv)
    # signatures happened: the control handshake (full) and data handshakes (resumed)
    assert retr_bytes(ftp, "hello.txt") == HELLO
    assert "hello.txt" in ftp.nlst()
    monitor, child = session_pids(srv)

    found, n = memory_find(child, needles)
    assert n > 1 << 20, "read only %d bytes of the child's memory" % n
    assert secret not in found, "the child holds the key's scalar (big-endian)"
    assert secret[::-1] not in found, "the child holds the key's scalar (little-endian)"
    assert pem_head not in found, "the child holds the PEM key file"

    # data-tls-reuse (the default): no signature can be needed after login, and the
    # monitor has dropped the key (test_monitor_keys.py)
    found, n = memory_find(monitor, needles)
    assert not found & {secret, secret[::-1]}, "the monitor kept the key after login"

    # the session is intact after being read
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_(ftp)

    # positive control: the same scan finds the scalar where it must be, in a monitor
    # before login (the control handshake has just been signed)
    with secured(srv, tls, login=False):
        monitor, child = session_pids(srv)
        found, n = memory_find(monitor, needles)
        assert found & {secret, secret[::-1]}, \
            "the key's scalar was not found in the monitor (%d bytes scanned)" % n
        found, n = memory_find(child, needles)
        assert not found, "the child holds the key before login"


# ------------------------------------------------------- 3. process hygiene

def assert_limits(pid, who, fsize=None):
    lim = proc_limits(pid)
    assert lim["Max open files"] == (NOFILE, NOFILE), (who, lim["Max open files"])
    assert lim["Max core file size"] == (0, 0), (who, lim["Max core file size"])
    if fsize is not None:
        assert lim["Max file size"] == (fsize, fsize), (who, lim["Max file size"])


def assert_child_hygiene(srv, child):
    st = proc_status(child)
    assert st["Seccomp"] == "2", st["Seccomp"]
    assert st["NoNewPrivs"] == "1", st["NoNewPrivs"]
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(st[cap], 16) == 0, (cap, st[cap])
    assert_limits(child, "child")
    if ROOT:
        acc = srv.accounts
        assert acc.unpriv_uid != 0 and acc.unpriv_gid != 0
        assert ids(st, "Uid") == [acc.unpriv_uid] * 4, st["Uid"]
        assert ids(st, "Gid") == [acc.unpriv_gid] * 4, st["Gid"]
        assert st["Groups"] == "", "supplementary groups: %r" % st["Groups"]
        assert os.readlink("/proc/%d/root" % child) == srv.pki.empty
        assert os.listdir(srv.pki.empty) == []
        # not dumpable: its /proc files belong to root, not to its own uid
        assert os.stat("/proc/%d/status" % child).st_uid == 0
        assert os.stat("/proc/%d/mem" % child).st_uid == 0


@needs_root
def test_child_hygiene_before_and_after_login(server, tls):
    srv = server()
    c = secured(srv, tls, login=False)
    monitor, child = session_pids(srv)
    assert_child_hygiene(srv, child)
    assert_limits(monitor, "monitor before login")
    c.login()
    assert c.cmd("PWD").code == 257
    assert_child_hygiene(srv, child)
    c.close()


def test_child_seccomp_and_limits_before_login_as_any_user(server, tls):
    """The parts that hold when not root too (no id change, no chroot)."""
    srv = server()
    with secured(srv, tls, login=False):
        monitor, child = session_pids(srv)
        st = proc_status(child)
        assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", st
        assert_limits(child, "child")


@needs_root
def test_monitor_hygiene_after_login(server, tls):
    srv = server()
    acc = srv.accounts
    c = secured(srv, tls, login=False)
    monitor, child = session_pids(srv)
    assert proc_status(monitor)["Seccomp"] == "0"  # the filter comes with the login
    c.login()
    assert c.cmd("PWD").code == 257
    assert wait_for(lambda: ids(proc_status(monitor), "Uid") == [acc.uid] * 4), \
        proc_status(monitor)["Uid"]
    st = proc_status(monitor)
    assert ids(st, "Gid") == [acc.gid] * 4, st["Gid"]
    assert 0 not in (ids(st, "Groups") if st["Groups"] else []), st["Groups"]
    assert st["Seccomp"] == "2", st["Seccomp"]
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(st[cap], 16) == 0, (cap, st[cap])
    # not dumpable: /proc/PID stays root's although the monitor runs as the user
    assert os.stat("/proc/%d/status" % monitor).st_uid == 0
    assert os.stat("/proc/%d/mem" % monitor).st_uid == 0
    # The monitor writes files now (atomic uploads): no RLIMIT_FSIZE of its own,
    # and SIGXFSZ ignored in both, so the launcher's limit is an EFBIG, not a death.
    assert_limits(monitor, "monitor")
    for pid in (monitor, child):
        assert int(proc_status(pid)["SigIgn"], 16) & (1 << (signal.SIGXFSZ - 1)), pid
    c.close()


# ------------------------------------------- 4. either one dying ends the other

def start_big_retr(srv, big_file):
    os.link(big_file, os.path.join(srv.root, "big.bin"))
    ftp = ftp_login(srv)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    got = 0
    while got < 1 << 20:
        chunk = conn.recv(65536)
        assert chunk, "data connection closed early"
        got += len(chunk)
    return ftp, conn, got


def drain(conn, timeout=5):
    """Read the data connection to its end; returns the byte count. Fails if it stays open."""
    n = 0
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "data connection still open after %ss" % timeout
        conn.settimeout(left)
        try:
            chunk = conn.recv(1 << 20)
        except (socket.timeout, TimeoutError):
            raise AssertionError("data connection still open after %ss" % timeout)
        except (ssl.SSLError, OSError):
            return n
        if not chunk:
            return n
        n += len(chunk)


def control_closed(ftp, timeout=5):
    """The control connection is closed by the server (whatever it said before)."""
    ftp.sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = ftp.file.readline()
        except (socket.timeout, TimeoutError):
            return False
        except (ssl.SSLError, OSError):
            return True
        if not line:
            return True
    return False


def test_sigkill_child_mid_transfer_ends_the_monitor(server, tls, big_file):
    srv = server()
    ftp, conn, got = start_big_retr(srv, big_file)
    monitor, child = session_pids(srv)
    os.kill(child, signal.SIGKILL)
    assert wait_for(lambda: not alive(monitor), timeout=5), "monitor survived its child"
    assert got + drain(conn) < 64 << 20  # the transfer did not complete
    assert control_closed(ftp), "control connection still open"
    ftp.close()
    conn.close()
    assert_nothing_left(srv, monitor, child)
    assert "ftpsd[%d]: " % monitor in srv.log
    assert "session ended: child killed by signal 9 (Killed)" in srv.log, srv.log
    assert_next_session_works(srv, tls)


def test_sigkill_monitor_mid_transfer_ends_the_child(server, tls, big_file):
    srv = server()
    ftp, conn, got = start_big_retr(srv, big_file)
    monitor, child = session_pids(srv)
    os.kill(monitor, signal.SIGKILL)
    assert wait_for(lambda: not alive(child), timeout=5), "child survived its monitor"
    assert got + drain(conn) < 64 << 20
    assert control_closed(ftp), "control connection still open"
    ftp.close()
    conn.close()
    assert_nothing_left(srv, monitor, child)
    assert wait_for(lambda: re.search(r"Child %d died with code 9\b" % monitor, srv.log),
                    timeout=3), srv.log
    assert_next_session_works(srv, tls)


@pytest.mark.parametrize("who", ["child", "monitor"])
def test_session_survives_sigstop_and_sigcont(server, tls, who):
    """Job control (SIGSTOP/SIGCONT, also what a debugger's attach does) interrupts the
    event loop's poll(); the kernel resumes it with restart_syscall(2), which the allow-list
    must permit: a paused session is not a sandbox violation."""
    srv = server()
    with secured(srv, tls) as c:
        monitor, child = session_pids(srv)
        pid = child if who == "child" else monitor
        time.sleep(0.2)  # both are idle in their event loops now
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.3)
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.3)
        assert alive(child) and alive(monitor), srv.log
        assert c.cmd("NOOP").code == 200
        assert c.cmd("PWD").code == 257
    assert "signal" not in srv.log, srv.log
