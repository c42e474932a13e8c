"""The two processes of a session, seen from /proc and ps.

systemd-socket-activate (srv.proc) starts the monitor for each connection; the
monitor forks the child. As root the child is chrooted into the empty dir and
runs as the unprivileged user with no_new_privs, and the monitor becomes the
logged-in user; as a normal user those assertions are skipped.
"""

import os
import signal

import pytest

from ftpsd_testlib import (ROOT, USER, Control, alive, proc_args, proc_comm, session_pids,
                           proc_status, secured, wait_for)

needs_root = pytest.mark.skipif(not ROOT, reason="privilege drop is only real as root")


def ids(status, key):
    return [int(x) for x in status[key].split()]


def test_two_ftpsd_processes_per_session(server, tls):
    srv = server()
    with secured(srv, tls):
        monitor, child = session_pids(srv)
        assert sorted(srv.sessions()) == sorted([monitor, child])
        assert proc_comm(monitor) == "ftpsd"
        assert proc_comm(child) == "ftpsd"


def test_two_sessions_four_processes(server, tls):
    srv = server()
    with secured(srv, tls), secured(srv, tls):
        assert wait_for(lambda: len(srv.sessions()) == 4), srv.sessions()
        assert len(srv.monitors()) == 2


def test_titles_before_and_after_login(server, tls):
    srv = server()
    with secured(srv, tls, login=False) as c:
        monitor, child = session_pids(srv)
        assert wait_for(lambda: proc_args(monitor) == "ftpsd: monitor 127.0.0.1"), \
            proc_args(monitor)
        assert wait_for(lambda: proc_args(child) == "ftpsd: child 127.0.0.1"), proc_args(child)
        c.login()
        assert wait_for(lambda: proc_args(monitor) == "ftpsd: %s@127.0.0.1 idle" % USER), \
            proc_args(monitor)
        assert wait_for(lambda: proc_args(child) == "ftpsd: child %s@127.0.0.1" % USER), \
            proc_args(child)


@needs_root
def test_child_is_unprivileged_chrooted_no_new_privs(server, tls):
    srv = server()
    acc = srv.accounts
    with secured(srv, tls, login=False) as c:
        monitor, child = session_pids(srv)
        st = proc_status(child)
        assert ids(st, "Uid") == [acc.unpriv_uid] * 4, st["Uid"]
        assert ids(st, "Gid") == [acc.unpriv_gid] * 4, st["Gid"]
        assert set(ids(st, "Groups") if st["Groups"] else []) <= {acc.unpriv_gid}, st["Groups"]
        assert st["NoNewPrivs"] == "1"
        assert st["CapEff"] == "0000000000000000" and st["CapPrm"] == "0000000000000000"
        assert os.readlink("/proc/%d/root" % child) == srv.pki.empty
        c.login()
        # still the same after login: logging in never gives the child anything
        st = proc_status(child)
        assert ids(st, "Uid") == [acc.unpriv_uid] * 4
        assert os.readlink("/proc/%d/root" % child) == srv.pki.empty


def test_child_has_seccomp_filter(server, tls):
    srv = server()
    with secured(srv, tls):
        monitor, child = session_pids(srv)
        st = proc_status(child)
        assert st["Seccomp"] == "2", st["Seccomp"]
        assert st["NoNewPrivs"] == "1"


@needs_root
def test_monitor_is_root_before_login_and_the_user_after(server, tls):
    srv = server()
    acc = srv.accounts
    with secured(srv, tls, login=False) as c:
        monitor, child = session_pids(srv)
        assert ids(proc_status(monitor), "Uid")[0] == 0
        c.login()
        assert wait_for(lambda: ids(proc_status(monitor), "Uid") == [acc.uid] * 4), \
            proc_status(monitor)["Uid"]
        st = proc_status(monitor)
        assert ids(st, "Gid") == [acc.gid] * 4, st["Gid"]
        assert 0 not in (ids(st, "Groups") if st["Groups"] else []), st["Groups"]
        assert st["CapEff"] == "0000000000000000", st["CapEff"]


@needs_root
def test_monitor_is_not_dumpable_after_login(server, tls):
    """PR_SET_DUMPABLE 0: /proc/PID stays root-owned although the monitor runs as the user,
    so the user's own uid cannot ptrace it for the key."""
    srv = server()
    with secured(srv, tls):
        monitor, child = session_pids(srv)
        assert wait_for(lambda: ids(proc_status(monitor), "Uid")[0] == srv.accounts.uid)
        assert os.stat("/proc/%d/status" % monitor).st_uid == 0


def test_no_process_left_after_quit(server, tls):
    srv = server()
    c = secured(srv, tls)
    monitor, child = session_pids(srv)
    assert c.cmd("QUIT").code == 221
    c.wait_closed(timeout=5)
    c.close()
    assert wait_for(lambda: not alive(monitor) and not alive(child), timeout=5), \
        (proc_args(monitor), proc_args(child))
    assert wait_for(lambda: srv.sessions() == [], timeout=3), srv.sessions()


def test_no_process_left_after_client_vanishes(server, tls):
    srv = server()
    c = secured(srv, tls)
    monitor, child = session_pids(srv)
    c.close()  # no QUIT, just gone
    assert wait_for(lambda: not alive(monitor) and not alive(child), timeout=5)


def test_no_process_left_after_client_vanishes_before_login(server):
    srv = server()
    c = Control(srv.port)
    assert c.reply().code == 220
    monitor, child = session_pids(srv)
    c.close()
    assert wait_for(lambda: not alive(monitor) and not alive(child), timeout=5)


def test_monitor_exits_when_child_dies(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        monitor, child = session_pids(srv)
        os.kill(child, signal.SIGKILL)
        assert wait_for(lambda: not alive(monitor), timeout=5)
        c.wait_closed(timeout=5)


def test_child_exits_when_monitor_dies(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        monitor, child = session_pids(srv)
        os.kill(monitor, signal.SIGKILL)
        assert wait_for(lambda: not alive(child), timeout=5)
        c.wait_closed(timeout=5)
