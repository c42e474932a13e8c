"""The fail2ban filter units/fail2ban-ftpsd.conf against real ftpsd log lines.

A session sends wrong passwords (for a known and an unknown user, and for a
user name crafted to look like an address); the server's stderr (Server.log)
holds the monitor's lines. fail2ban-regex reads them as fail2ban would meet
them: with a syslog/journalctl timestamp and host in front (xinetd and syslog,
`journalctl -o short`), as the systemd backend builds them from a journal entry
("host ftpsd[PID]: MESSAGE", MESSAGE with or without the stderr line's own
"ftpsd[PID]: "), and bare. The
filter is installed the way it is used, as filter.d/ftpsd.conf next to
fail2ban's own common.conf.
"""

import ast
import ftplib
import os
import shutil
import subprocess
import time

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import IO_TIMEOUT

pytestmark = pytest.mark.skipif(shutil.which("fail2ban-regex") is None,
                                reason="fail2ban-regex missing (Debian: fail2ban)")

COMMON = "/etc/fail2ban/filter.d/common.conf"
FORGED = "x from 10.9.8.7 (1 of 3)"  # a user name that ends like a failure line


@pytest.fixture
def filter_path(tmp_path):
    d = tmp_path / "filter.d"
    d.mkdir()
    shutil.copy(COMMON, d / "common.conf")
    shutil.copy(os.path.join(lib.UNITS_SRC, "fail2ban-ftpsd.conf"), d / "ftpsd.conf")
    return str(d / "ftpsd.conf")


def fail2ban_regex(log_path, filter_path):
    """[(ip, user)] for each line the filter matched."""
    r = subprocess.run(["fail2ban-regex", "--raw", "--out", "row", log_path, filter_path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = []
    for line in r.stdout.splitlines():
        line = line.strip().rstrip(",")
        if line.startswith("["):
            ip, _, info = ast.literal_eval(line)
            rows.append((ip, info.get("user")))
    return rows


def failed_logins(srv):
    """One session with two wrong passwords, another with a forged user name, and a
    successful login; returns the server's log lines."""
    def attempt(ftp, user, password):
        with pytest.raises(ftplib.error_perm, match="530"):
            ftp.login(user, password)

    ftp = lib.ReusingFTP_TLS(context=lib.client_context(srv.cafile), timeout=IO_TIMEOUT)
    ftp.connect("127.0.0.1", srv.port)
    ftp.auth()
    attempt(ftp, lib.USER, "wrong-password")
    attempt(ftp, "nosuchuser", "whatever")
    ftp.close()
    ftp = lib.ReusingFTP_TLS(context=lib.client_context(srv.cafile), timeout=IO_TIMEOUT)
    ftp.connect("127.0.0.1", srv.port)
    ftp.auth()
    attempt(ftp, FORGED, "whatever")
    ftp.close()
    lib.ftp_login(srv).quit()
    assert lib.wait_for(lambda: srv.log.count("session ended") >= 3, timeout=5), srv.log
    lines = [line for line in srv.log.splitlines() if line.startswith("ftpsd[")]
    assert sum("login failed" in line for line in lines) == 3, srv.log
    assert any("login: user %s" % lib.USER in line for line in lines), srv.log
    return lines


def write(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


def syslog_form(lines):
    stamp = time.strftime("%b %e %H:%M:%S")
    return ["%s testhost %s" % (stamp, line) for line in lines]


def journal_backend_form(lines, message_is_stderr=False):
    """What fail2ban's systemd backend makes of ftpsd's journal entry:
    "_HOSTNAME SYSLOG_IDENTIFIER[_PID]: MESSAGE", with MESSAGE the line after its
    "ftpsd[PID]: " (native entries), or the whole stderr line (when the journal
    gets ftpsd's stderr). A date in front, for fail2ban-regex, which reads a file."""
    stamp = time.strftime("%b %e %H:%M:%S")
    out = []
    for line in lines:
        prefix = line[:line.index("]: ") + 3]
        message = line if message_is_stderr else line[len(prefix):]
        out.append("%s testhost %s%s" % (stamp, prefix, message))
    return out


@pytest.mark.parametrize("form", ["syslog", "journal", "journal-stderr", "bare"])
def test_filter_matches_each_failed_login_with_the_clients_address(server, filter_path,
                                                                   tmp_path, form):
    lines = failed_logins(server())
    shaped = {"syslog": syslog_form, "journal": journal_backend_form,
              "journal-stderr": lambda x: journal_backend_form(x, message_is_stderr=True),
              "bare": lambda x: x}[form](lines)
    rows = fail2ban_regex(write(tmp_path / "ftpsd.log", shaped), filter_path)
    assert rows == [("127.0.0.1", lib.USER), ("127.0.0.1", "nosuchuser"),
                    ("127.0.0.1", FORGED)], rows


def test_filter_ignores_successful_logins_and_other_lines(server, filter_path, tmp_path):
    lines = [line for line in failed_logins(server()) if "login failed" not in line]
    assert any("login: user" in line for line in lines)
    assert fail2ban_regex(write(tmp_path / "ok.log", syslog_form(lines)), filter_path) == []


def test_filter_ignores_other_daemons(filter_path, tmp_path):
    line = ("Jan  1 00:00:00 testhost otherd[7]: monitor 192.0.2.1:5: login failed for user a "
            "from 192.0.2.1 (1 of 3)")
    assert fail2ban_regex(write(tmp_path / "other.log", [line]), filter_path) == []
