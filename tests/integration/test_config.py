"""Configuration: --check-config, --version, and a session refusing to start on a bad config."""

import os
import re
import ssl
import subprocess

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import PASSWORD, ROOT, USER, Control, IO_TIMEOUT, ConnectionClosed, wait_for

GOOD = """\
# A complete configuration, every key once.
tls-certificate = {cert}
tls-key = {key}
tls-priority = NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:%SERVER_PRECEDENCE
users-file = {users}

empty-dir = {empty}
pasv-ports = 61000-61999
pasv-address = 127.0.0.1
control-tls = required
data-tls = optional
data-tls-reuse = off
idle-timeout = 5m
login-timeout = 1500ms
max-login-failures = 5
login-failure-delay = 2
umask = 027
banner = Hello there
"""

# Header of 6 lines, then the line under test is line 7.
HEADER = """\
# line 1: comment
tls-certificate = {cert}
tls-key = {key}

users-file = {users}
empty-dir = {empty}
"""
BAD_LINE = 7


def check_config(binary, path):
    return subprocess.run([binary, "--check-config", "--config", path], capture_output=True,
                          text=True, timeout=IO_TIMEOUT)


def good_config(server, text=None):
    srv = server(start=False)
    t = (text or GOOD).format(cert=srv.pki.cert, key=srv.pki.key, users=srv.users_path, empty=srv.pki.empty,
                 root=srv.root)
    if srv.accounts.unprivileged_user:
        t += "unprivileged-user = %s\n" % srv.accounts.unprivileged_user
    with open(srv.config_path, "w") as f:
        f.write(t)
    return srv


def test_check_config_good(server, ftpsd_bin):
    srv = good_config(server)
    r = check_config(ftpsd_bin, srv.config_path)
    assert r.returncode == 0, r.stderr
    assert srv.config_path + ":" not in r.stderr, r.stderr


def test_check_config_the_suites_own_config(server, ftpsd_bin):
    srv = server(start=False)
    r = check_config(ftpsd_bin, srv.config_path)
    assert r.returncode == 0, r.stderr


def test_check_config_durations_with_units(server, ftpsd_bin):
    srv = server(start=False, idle_timeout="90", login_timeout="2m", login_failure_delay="0ms")
    r = check_config(ftpsd_bin, srv.config_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("line", [
    "no-such-key = 1",
    "tls-certifcate = /etc/ssl/x.pem",
    "control-tls = maybe",
    "data-tls = never",
    "data-tls-reuse = sometimes",
    "pasv-ports = banana",
    "pasv-ports = 70000-80000",
    "pasv-ports = 62000-61000",
    "pasv-address = not.an.address",
    "idle-timeout = 5 parsecs",
    "login-timeout = -1",
    "max-login-failures = lots",
    "login-failure-delay = 1h",
    "umask = 999",
    "this line has no equals sign",
])
def test_check_config_reports_file_line_message(server, ftpsd_bin, line):
    srv = server(start=False, config_text=HEADER + line + "\n" + "banner = after the error\n")
    r = check_config(ftpsd_bin, srv.config_path)
    assert r.returncode == 1, (r.returncode, r.stderr)
    expected = "%s:%d: " % (srv.config_path, BAD_LINE)
    matching = [m for m in r.stderr.splitlines() if expected in m]
    assert matching, "no %r in stderr:\n%s" % (expected, r.stderr)
    assert len(matching[0].split(expected, 1)[1].strip()) > 3, "empty message: %r" % matching


def test_check_config_reports_every_error(server, ftpsd_bin):
    text = HEADER + "bogus-one = 1\n" + "# comment\n" + "control-tls = perhaps\n"
    srv = server(start=False, config_text=text)
    r = check_config(ftpsd_bin, srv.config_path)
    assert r.returncode == 1
    assert "%s:7: " % srv.config_path in r.stderr, r.stderr
    assert "%s:9: " % srv.config_path in r.stderr, r.stderr


def test_check_config_missing_file(ftpsd_bin, tmp_path):
    r = check_config(ftpsd_bin, str(tmp_path / "nope.conf"))
    assert r.returncode != 0
    assert "nope.conf" in r.stderr


def test_check_config_holds_allow_before_tls_to_the_command_table(server, ftpsd_bin):
    """A verb the server does not have would never run: FILE:LINE: allow-before-tls: unknown
    command XYZ, for the global part and for a [host] that sets its own list; a host that
    inherits the global list is not told twice."""
    text = (HEADER
            + "allow-before-tls = SITE, XYZ,help\n"    # line 7
            + "[host ftp.example.org]\n"
            + "allow-before-tls = feat,ABCD\n"          # line 9
            + "[host www.example.org]\n"
            + "banner = the global list\n")
    srv = server(start=False, config_text=text)
    r = check_config(ftpsd_bin, srv.config_path)
    assert r.returncode == 1, (r.returncode, r.stderr)
    unknown = [m for m in r.stderr.splitlines() if "unknown command" in m]
    assert unknown == ["%s:7: allow-before-tls: unknown command XYZ" % srv.config_path,
                       "%s:9: allow-before-tls: unknown command ABCD" % srv.config_path], r.stderr


def test_check_config_knows_every_command_help_lists(server, ftpsd_bin):
    """Every verb HELP lists may be named in allow-before-tls, in either case; so may the
    examples in policy/."""
    srv = server(control_tls="optional")
    with Control(srv.port) as c:
        assert c.reply().code == 220
        r = c.cmd("HELP")
    assert r.code == 214, r
    verbs = [v for line in r.body for v in line.split()]
    assert "SITE" in verbs and "XPWD" in verbs, r
    examples = []
    for name in sorted(os.listdir(os.path.join(lib.REPO, "policy"))):
        with open(os.path.join(lib.REPO, "policy", name)) as f:
            examples += re.findall(r"^#?\s*allow-before-tls\s*=\s*(.+)$", f.read(), re.M)
    assert examples, "no allow-before-tls example in policy/"
    for value in [",".join(verbs), ",".join(v.lower() for v in verbs)] + examples:
        conf = good_config(server, GOOD + "allow-before-tls = %s\n" % value)
        r = check_config(ftpsd_bin, conf.config_path)
        assert r.returncode == 0, (value, r.stderr)
        assert "unknown command" not in r.stderr, (value, r.stderr)


@pytest.mark.parametrize("line", [
    "banner = hello # a comment",
    "users-file = /etc/ftpsd/users   # the users",
])
def test_check_config_refuses_a_comment_after_a_value(server, ftpsd_bin, line):
    """'#' after a value would become part of it (a banner would show it): refused with
    FILE:LINE, while a '#' inside a word is the value's own."""
    srv = server(start=False, config_text=HEADER + line + "\n")
    r = check_config(ftpsd_bin, srv.config_path)
    assert r.returncode == 1, r.stderr
    assert "%s:%d: " % (srv.config_path, BAD_LINE) in r.stderr, r.stderr
    assert "not a comment" in r.stderr, r.stderr
    srv = server(start=False, config_text=HEADER + "banner = Welcome to host#1\n")
    r = check_config(ftpsd_bin, srv.config_path)
    assert "not a comment" not in r.stderr, r.stderr


def test_check_config_reads_every_users_file_line(server, ftpsd_bin):
    """Each line a login would refuse is an error at --check-config, with FILE:LINE and
    the user's name; comments, blank lines and good lines are not."""
    srv = server(start=False)
    bad = [
        ("carol:x:1000", "fewer than 5 fields"),
        ("dave:$6$salt$hash:10a0:100:/srv", "uid is not a number"),
        ("erin:$6$salt$hash:100:x:/srv", "gid is not a number"),
        ("root2:$6$salt$hash:0:100:/srv", "uid 0"),
        ("wheel:$6$salt$hash:100:0:/srv", "gid 0"),
        ("frank:$6$salt$hash:100:100:relative", "not an absolute path"),
        ("gina:$6$salt$hash:100:100:/srv:read-only,bogus", "unknown option"),
        (":$6$salt$hash:100:100:/srv", "no user name"),
        ("hank::100:100:/srv", "no password hash"),
    ]
    with open(srv.users_path) as f:
        good = f.read()
    first = good.splitlines()[0].split(":")[0]
    lines = good.rstrip("\n").split("\n") + ["# a comment", ""]
    start = len(lines) + 1
    lines += [text for text, _ in bad] + [first + ":!:100:100:/srv", "ivy:!:100:100:/srv:tls=required"]
    with open(srv.users_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = check_config(ftpsd_bin, srv.config_path)
    assert r.returncode == 1, r.stderr
    errors = [m for m in r.stderr.splitlines() if m.startswith(srv.users_path + ":")]
    for i, (text, why) in enumerate(bad):
        want = "%s:%d: " % (srv.users_path, start + i)
        found = [m for m in errors if m.startswith(want)]
        assert found and why in found[0], (want, why, r.stderr)
    dup = "%s:%d: user '%s'" % (srv.users_path, start + len(bad), first)
    assert any(m.startswith(dup) and "earlier line" in m for m in errors), r.stderr
    assert len(errors) == len(bad) + 1, r.stderr


def test_check_config_reports_a_bad_tls_priority_where_gnutls_stops(server, ftpsd_bin):
    srv = server(start=False, tls_priority="NORMAL:+BOGUS")
    r = check_config(ftpsd_bin, srv.config_path)
    assert r.returncode == 1, r.stderr
    line = [m for m in r.stderr.splitlines() if "tls-priority" in m]
    assert line and line[0].startswith(srv.config_path + ":") and "'+BOGUS'" in line[0], r.stderr


def test_check_config_says_why_a_certificate_cannot_be_read(server, ftpsd_bin, tmp_path):
    missing = str(tmp_path / "cert.pem")
    srv = server(start=False, tls_certificate=missing)
    r = check_config(ftpsd_bin, srv.config_path)
    assert r.returncode == 1, r.stderr
    assert "cannot read %s: No such file or directory" % missing in r.stderr, r.stderr


def test_the_example_users_file_passes_check_config(server, ftpsd_bin):
    """policy/users.example, as users-file, is read line by line without an error."""
    srv = server(start=False)
    with open(os.path.join(lib.REPO, "policy", "users.example")) as f, \
            open(srv.users_path, "w") as out:
        out.write(f.read())
    r = check_config(ftpsd_bin, srv.config_path)
    assert srv.users_path + ":" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr


def test_version(ftpsd_bin):
    r = subprocess.run([ftpsd_bin, "--version"], capture_output=True, text=True,
                       timeout=IO_TIMEOUT)
    assert r.returncode == 0
    assert re.match(r"^ftpsd \d+\.\d+(\.\d+)?\S*$", r.stdout.strip()), (r.stdout, r.stderr)


def test_unknown_option_fails(ftpsd_bin):
    r = subprocess.run([ftpsd_bin, "--no-such-option"], capture_output=True, text=True,
                       timeout=IO_TIMEOUT)
    assert r.returncode != 0


def session_refused(srv):
    """Connect; the session must not start: closed without a 220, or a 421."""
    with Control(srv.port) as c:
        try:
            first = c.read_line()
        except ConnectionClosed:
            return None
        assert not first.startswith("220"), first
        assert first.startswith("421"), first
        c.wait_closed(timeout=IO_TIMEOUT)
        return first


def test_session_with_unknown_key_does_not_start(server):
    srv = server(extra="no-such-key = 1\n")
    session_refused(srv)
    assert re.search(re.escape(srv.config_path) + r":\d+: ", srv.log), srv.log


def test_session_with_bad_value_does_not_start(server):
    srv = server(control_tls="maybe")
    session_refused(srv)
    assert re.search(re.escape(srv.config_path) + r":\d+: ", srv.log), srv.log


def assert_refused_because(srv, reason):
    """The monitor logged `reason` and exited with status 1: refused for that reason,
    not for another one, and not by a crash (which closes the connection just as well)."""
    assert wait_for(lambda: reason in srv.log
                    and re.search(r"Child \d+ died with code 1$", srv.log, re.M)), srv.log
    assert "signal" not in srv.log, srv.log


def test_session_with_missing_certificate_does_not_start(server, tmp_path):
    path = str(tmp_path / "missing.pem")
    srv = server(tls_certificate=path)
    session_refused(srv)
    assert_refused_because(srv, "cannot read tls-certificate %s: No such file or directory"
                           % path)


def test_session_with_unprivileged_user_missing_does_not_start_as_root(server):
    if not ROOT:
        pytest.skip("only checked when started as root")
    srv = server(unprivileged_user="no-such-user-ftpsd")
    session_refused(srv)
    assert_refused_because(srv, "unprivileged-user no-such-user-ftpsd does not exist")


@pytest.mark.parametrize("mode", [0o775, 0o757], ids=["group", "others"])
def test_session_with_group_writable_empty_dir_does_not_start_as_root(server, tmp_path,
                                                                      mode):
    if not ROOT:
        pytest.skip("only checked when started as root")
    d = tmp_path / "writable-empty"
    d.mkdir()
    d.chmod(mode)
    srv = server(empty_dir=str(d))
    session_refused(srv)
    assert_refused_because(srv, "empty-dir %s must be a directory owned by root and "
                           "writable by no one else" % d)


def test_session_with_a_key_that_is_not_the_certificates_ends(server, tmp_path):
    """The monitor compares the key with the certificate (the child no longer tests the
    key with a signature): the session ends, and the log says why."""
    other = lib.certtool_key(str(tmp_path / "other.key"))
    srv = server(tls_key=other)
    with Control(srv.port) as c:
        try:
            c.read_line()
            c.send("AUTH TLS")
            c.wait_closed(timeout=IO_TIMEOUT)
        except ConnectionClosed:
            pass
    assert wait_for(lambda: "does not match tls-key" in srv.log), srv.log


def test_rsa_key_with_an_rsa_pss_certificate_serves_and_checks(server, tmp_path):
    """The monitor compares key and certificate by their RSA modulus and exponent: an RSA
    key may serve a certificate that restricts it to RSA-PSS (certtool --key-type rsa-pss)."""
    key = lib.certtool_key(str(tmp_path / "rsa.key"), "rsa")
    tmpl = tmp_path / "pss.tmpl"
    tmpl.write_text('cn = "127.0.0.1"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\n'
                    'expiration_days = 30\n')
    cert = str(tmp_path / "pss.pem")
    subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", key, "--key-type",
                    "rsa-pss", "--hash", "sha256", "--template", str(tmpl), "--outfile", cert],
                   check=True, capture_output=True, timeout=60)
    os.chmod(tmp_path, 0o755)
    os.chmod(cert, 0o644)
    srv = server(tls_certificate=cert, tls_key=key)
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    with Control(srv.port) as c:
        assert c.reply().code == 220
        assert c.cmd("AUTH TLS").code == 234
        c.starttls(ctx)
        assert c.cmd("USER " + USER).code == 331
        assert c.cmd("PASS " + PASSWORD).code == 230
    r = subprocess.run([srv.binary, "--check-config", "--config", srv.config_path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
