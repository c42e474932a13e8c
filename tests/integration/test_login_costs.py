"""What a login costs before it succeeds (issue 13), and what it leaves behind.

  * The users file is read once, at the first USER, and kept in the monitor's memory
    until login, when it is wiped: no hash stays in the process that becomes the user.
"""

import os
import subprocess

import pytest

from ftpsd_testlib import (IO_TIMEOUT, PASSWORD, ROOT, USER, add_users, memory_find, secured,
                           session_pids)


def user_line(srv, name, hashed):
    with open(srv.users_path) as f:
        first = f.readline().rstrip("\n").split(":")
    return ":".join([name, hashed] + first[2:])


def hash_password(ftpsd_bin, password):
    return subprocess.run([ftpsd_bin, "--hash-password"], input=password + "\n", text=True,
                          capture_output=True, check=True, timeout=IO_TIMEOUT).stdout.strip()


@pytest.mark.skipif(not ROOT, reason="needs root (the monitor's memory)")
def test_users_file_is_kept_until_login_then_wiped(server, tls, ftpsd_bin):
    """Read at the first USER and kept (positive control: every hash of the file is in
    the monitor's memory), wiped at login: the monitor becomes the user, and neither
    another user's hash nor its own stays in its memory."""
    srv = server()
    other = hash_password(ftpsd_bin, "Other-%s" % os.urandom(6).hex())
    add_users(srv, [user_line(srv, "other", other)])
    needles = [srv.pki.hash.encode(), srv.pki.ro_hash.encode(), other.encode()]
    with secured(srv, tls, login=False) as c:
        monitor, child = session_pids(srv)
        assert c.cmd("USER " + USER).code == 331
        found, n = memory_find(monitor, needles)
        assert found == set(needles), "positive control: the users file is not in memory"
        assert c.cmd("PASS " + PASSWORD).code == 230
        found, n = memory_find(monitor, needles)
        assert n > 1 << 20, "read only %d bytes of the monitor's memory" % n
        assert not found, "hashes left in the logged-in monitor: %s" % sorted(found)
        assert c.cmd("PWD").code == 257
