"""Server policy (issue 5; RFC 4217 sections 9 and 10) through real clients.

One section per policy, each checking reply codes and their effects with Python's
ftplib and raw control connections, curl (OpenSSL), lftp and gnutls-cli (GnuTLS),
with client certificates made by certtool:

  control-tls and allow-before-tls        users-file tls= and read-only
  anonymous access                        data-tls, data-tls-listings, data-tls-reuse
  client certificates (cert=sha256:, 232) failed handshakes (421 in clear, or dropped)
  CCC                                     --check-config / --print-config
  the example policies in policy/ (strict, compatible, public): each one validated
  with its paths pointed at this test's files, then a session that does what the
  file's comments promise.

Everything runs on 127.0.0.1 with bounded timeouts.
"""

import ftplib
import io
import os
import random
import re
import socket
import ssl
import subprocess
import tempfile
import types

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import (HELLO, INNER, IO_TIMEOUT, PASSWORD, USER, ConnectionClosed, Control,
                           ReusingFTP_TLS, StockFTP_TLS, interact)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
POLICY_DIR = os.path.join(REPO, "policy")
CLIENT_TIMEOUT = 20

# Errors a client may see when the server ends a TLS session during or right after
# the handshake.
TLS_FAILURES = (ssl.SSLError, ConnectionClosed, ConnectionResetError, BrokenPipeError,
                socket.timeout, TimeoutError)


# ------------------------------------------------------------------ client helpers

def run(argv, input=None, env=None, timeout=CLIENT_TIMEOUT):
    return subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=env)


def curl(*args):
    return run(["curl", "-sS", "--max-time", str(IO_TIMEOUT * 2), "--connect-timeout",
                str(IO_TIMEOUT)] + list(args))


def url(srv, path="", user=USER, password=PASSWORD):
    cred = "" if user is None else "%s:%s@" % (user, password) if password is not None \
        else "%s@" % user
    return "ftp://%s127.0.0.1:%d/%s" % (cred, srv.port, path)


def ok(r):
    assert r.returncode == 0, "rc=%d\nstdout=%r\nstderr=%s" % (
        r.returncode, r.stdout[-2000:], r.stderr.decode(errors="replace")[-4000:])
    return r


def failed(r):
    assert r.returncode != 0, "client succeeded but should not have:\nstdout=%r\nstderr=%s" % (
        r.stdout[-2000:], r.stderr.decode(errors="replace")[-4000:])
    return r


def lftp(srv, commands, tmp_path, user=None, password=None, tls=False, protect_data=False,
         protect_list=False, settings=()):
    """lftp -c with bounded retries; user None means anonymous (lftp's default)."""
    yn = lambda b: "yes" if b else "no"  # noqa: E731
    script = [
        "set cmd:fail-exit yes",
        "set net:max-retries 1",
        "set net:timeout %d" % IO_TIMEOUT,
        "set net:reconnect-interval-base 1",
        "set xfer:clobber yes",
        "set ftp:ssl-allow %s" % yn(tls),
        "set ftp:ssl-force %s" % yn(tls),
        "set ftp:ssl-protect-data %s" % yn(protect_data),
        "set ftp:ssl-protect-list %s" % yn(protect_list),
        "set ssl:verify-certificate no",
    ] + list(settings)
    if user is None:
        script.append("open -p %d 127.0.0.1" % srv.port)
    else:
        script.append("open -u %s,%s -p %d 127.0.0.1" % (user, password, srv.port))
    home = tmp_path / "lftp-home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home), LFTP_HOME=str(home / ".lftp"))
    return run(["lftp", "-c", "; ".join(script + list(commands))], env=env)


def gnutls_cli(srv, lines, cert=None, priority=None):
    argv = ["gnutls-cli", "--starttls-proto=ftp", "--x509cafile", srv.cafile,
            "-p", str(srv.port), "127.0.0.1"]
    if cert is not None:
        argv[1:1] = ["--x509certfile", cert[0], "--x509keyfile", cert[1]]
    if priority is not None:
        argv[1:1] = ["--priority", priority]
    return interact(argv, "".join(l + "\r\n" for l in lines).encode())


def plain_ftp(srv):
    """ftplib without TLS, connected (220 read)."""
    ftp = ftplib.FTP(timeout=IO_TIMEOUT)
    ftp.connect("127.0.0.1", srv.port)
    return ftp


def tls_ftp(srv, context=None, cls=ReusingFTP_TLS):
    """ftplib FTP_TLS after AUTH TLS, not logged in."""
    ftp = cls(context=context or lib.client_context(srv.cafile), timeout=IO_TIMEOUT)
    ftp.connect("127.0.0.1", srv.port)
    ftp.auth()
    return ftp


def code_of(fn, *a):
    """The reply code of an ftplib call, whether it succeeded or raised."""
    try:
        return int(fn(*a)[:3])
    except ftplib.Error as e:
        return int(str(e)[:3])


def tls_control(srv, context=None):
    """A raw control connection after 220, AUTH TLS and the handshake."""
    c = Control(srv.port)
    assert c.reply().code == 220
    r = c.cmd("AUTH TLS")
    assert r.code == 234, r
    c.starttls(context or lib.client_context(srv.cafile))
    return c


def refused_before_1xx(ftp, cmd):
    """The code of a data command refused by its first reply (no 1xx), else None after
    finishing the transfer."""
    try:
        conn = ftp.transfercmd(cmd)
    except ftplib.Error as e:
        return int(str(e)[:3])
    conn.close()
    ftp.voidresp()
    return None


class Outcome:
    def __init__(self, before_1xx, code, data=b""):
        self.before_1xx, self.code, self.data = before_1xx, code, data

    def __repr__(self):
        return "Outcome(before_1xx=%s, code=%s, %d bytes)" % (self.before_1xx, self.code,
                                                            len(self.data))


def attempt(ftp, cmd, upload=None):
    """One data command through ftplib: Outcome(True, code) when the first reply refused
    it, else Outcome(False, final code, bytes received)."""
    try:
        conn = ftp.transfercmd(cmd)
    except ftplib.Error as e:
        return Outcome(True, int(str(e)[:3]))
    except (ssl.SSLError, OSError):
        # After the 1xx, the data handshake failed: a full handshake where the
        # server wanted a resumption (the monitor does not sign for it).
        try:
            return Outcome(False, int(ftp.voidresp()[:3]), b"")
        except ftplib.Error as e:
            return Outcome(False, int(str(e)[:3]), b"")
    data = b""
    try:
        if upload is not None:
            conn.sendall(upload)
        else:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        if isinstance(conn, ssl.SSLSocket):
            conn.unwrap()
    except (ssl.SSLError, OSError):
        pass
    finally:
        conn.close()
    try:
        return Outcome(False, int(ftp.voidresp()[:3]), data)
    except ftplib.Error as e:
        return Outcome(False, int(str(e)[:3]), data)


def user_line(srv, name, hash, options=""):
    a = srv.accounts
    line = "%s:%s:%d:%d:%s" % (name, hash, a.uid, a.gid, srv.root)
    return line + (":" + options if options else "")


def basenames(names):
    return [n.rstrip("/").rsplit("/", 1)[-1] for n in names]


# ============================================================== 1. control-tls

ALWAYS_BEFORE_TLS = [("FEAT", 211), ("NOOP", 200), ("HOST localhost", 220)]
REFUSED_BEFORE_TLS = ["USER alice", "PASS secret", "SYST", "HELP", "SITE HELP", "PWD",
                      "CWD /", "LIST", "EPSV", "PASV", "TYPE I", "STAT", "MODE S",
                      "OPTS UTF8 ON", "RETR hello.txt", "CCC"]


def test_control_tls_required_serves_only_auth_feat_host_noop_quit_before_auth(server, tls):
    srv = server(control_tls="required")
    wrong = []
    with Control(srv.port) as c:
        assert c.reply().code == 220
        for line in REFUSED_BEFORE_TLS:
            r = c.cmd(line)
            if r.code != 530 or "AUTH TLS" not in r.text:
                wrong.append((line, r.first))
        for line, code in ALWAYS_BEFORE_TLS:
            r = c.cmd(line)
            if r.code != code:
                wrong.append((line, r.first))
        r = c.cmd("AUTH TLS")
        assert r.code == 234, r
        c.starttls(tls)
        # Once protected, the same commands are served normally.
        assert c.cmd("SYST").code == 215
        c.login()
    assert not wrong, "before AUTH, expected 530 naming AUTH TLS (or the listed code): %s" % wrong


def test_control_tls_required_quit_before_auth_is_221(server):
    srv = server(control_tls="required")
    with Control(srv.port) as c:
        c.reply()
        assert c.cmd("QUIT").code == 221
        c.wait_closed()


def test_allow_before_tls_adds_exactly_the_listed_verbs(server, tls):
    srv = server(control_tls="required", allow_before_tls="SITE,HELP")
    with Control(srv.port) as c:
        c.reply()
        r = c.cmd("HELP")
        assert r.code == 214, r
        r = c.cmd("SITE HELP")
        # Allowed before TLS; whatever SITE itself then answers, it is not the TLS refusal.
        assert "AUTH TLS" not in r.text, r
        for line in ("SYST", "USER alice", "STAT", "PWD"):
            r = c.cmd(line)
            assert r.code == 530 and "AUTH TLS" in r.text, (line, r)


def test_allow_before_tls_is_case_insensitive_for_the_command(server):
    srv = server(control_tls="required", allow_before_tls="SYST")
    with Control(srv.port) as c:
        c.reply()
        assert c.cmd("syst").code == 215
        assert c.cmd("help").code == 530


def test_control_tls_required_clear_clients_cannot_log_in(server):
    srv = server(control_tls="required")
    ftp = plain_ftp(srv)
    with pytest.raises(ftplib.error_perm, match=r"^530.*AUTH TLS"):
        ftp.login(USER, PASSWORD)
    ftp.close()
    # curl without TLS: the USER is refused, nothing is downloaded.
    r = failed(curl(url(srv, "hello.txt")))
    assert r.stdout == b""
    # ... and with TLS it works.
    r = ok(curl("--ssl-reqd", "--cacert", srv.cafile, url(srv, "hello.txt")))
    assert r.stdout == HELLO


def test_control_tls_required_login_in_clear_is_refused_even_when_listed(server):
    """allow-before-tls cannot open a clear login under control-tls = required."""
    srv = server(control_tls="required", allow_before_tls="USER,PASS")
    with Control(srv.port) as c:
        c.reply()
        r = c.cmd("USER " + USER)
        if r.code == 331:
            r = c.cmd("PASS " + PASSWORD)
        assert r.code == 530, r


def test_control_tls_optional_clear_and_tls_logins_both_work(server, tmp_path):
    srv = server(control_tls="optional", data_tls="optional")
    ftp = plain_ftp(srv)
    assert ftp.login(USER, PASSWORD).startswith("230")
    assert lib.retr_bytes(ftp, "hello.txt") == HELLO
    ftp.quit()
    ftp = lib.ftp_login(srv)
    assert lib.retr_bytes(ftp, "hello.txt") == HELLO
    ftp.quit()
    assert ok(curl(url(srv, "hello.txt"))).stdout == HELLO
    r = ok(lftp(srv, ["cat hello.txt"], tmp_path, user=USER, password=PASSWORD))
    assert r.stdout == HELLO


def test_control_tls_off_refuses_auth_with_534_and_hides_it_from_feat(server):
    srv = server(control_tls="off", data_tls="off", tls_certificate=None, tls_key=None)
    with Control(srv.port) as c:
        c.reply()
        feat = c.cmd("FEAT")
        assert feat.code == 211
        listed = [l.strip().split()[0] for l in feat.body]
        for word in ("AUTH", "PBSZ", "PROT", "CCC"):
            assert word not in listed, feat
        assert "EPSV" in listed, feat  # the rest of FEAT is still there
        for mech in ("TLS", "SSL", "TLS-C", "TLS-P"):
            r = c.cmd("AUTH " + mech)
            assert r.code == 534, r
        # Still a working clear session.
        c.login()
        assert c.cmd("PWD").code == 257


def test_control_tls_off_real_clients(server, tmp_path):
    srv = server(control_tls="off", data_tls="off", tls_certificate=None, tls_key=None)
    failed(curl("--ssl-reqd", "--cacert", srv.cafile, url(srv, "hello.txt")))
    assert ok(curl(url(srv, "hello.txt"))).stdout == HELLO
    # curl --ssl (try TLS) falls back to clear after the 534.
    assert ok(curl("--ssl", url(srv, "hello.txt"))).stdout == HELLO
    r = ok(lftp(srv, ["ls"], tmp_path, user=USER, password=PASSWORD))
    assert b"hello.txt" in r.stdout


# ====================================================== 2. per-user TLS and read-only

@pytest.fixture
def user_server(server):
    """control-tls optional with users: secure (tls=required), plain (tls=forbidden),
    rosecure (read-only,tls=required), besides alice (no rule) and reader (read-only)."""
    def make(**kw):
        kw.setdefault("control_tls", "optional")
        kw.setdefault("data_tls", "optional")
        srv = server(start=False, **kw)
        h = srv.pki.hash
        lib.add_users(srv, [user_line(srv, "secure", h, "tls=required"),
                            user_line(srv, "plain", h, "tls=forbidden"),
                            user_line(srv, "rosecure", h, "read-only,tls=required"),
                            user_line(srv, "optuser", h, "tls=optional")])
        return srv.start()
    return make


def test_tls_required_user_in_clear_gets_530_at_user_before_any_password(user_server):
    srv = user_server()
    with Control(srv.port) as c:
        c.reply()
        r = c.cmd("USER secure")
        assert r.code == 530 and "TLS" in r.text, r
        # No password was asked for; a PASS now has no USER to go with.
        r = c.cmd("PASS " + PASSWORD)
        assert r.code != 230, r
    assert "login: user secure" not in srv.log


def test_tls_required_user_logs_in_over_tls(user_server):
    srv = user_server()
    ftp = tls_ftp(srv)
    assert ftp.login("secure", PASSWORD).startswith("230")
    ftp.prot_p()
    assert lib.retr_bytes(ftp, "hello.txt") == HELLO
    ftp.quit()


def test_tls_forbidden_user_over_tls_gets_530_at_user(user_server):
    srv = user_server()
    c = tls_control(srv)
    with c:
        r = c.cmd("USER plain")
        assert r.code == 530 and "without TLS" in r.text, r
        r = c.cmd("PASS " + PASSWORD)
        assert r.code != 230, r


def test_tls_forbidden_user_logs_in_in_clear(user_server):
    srv = user_server()
    ftp = plain_ftp(srv)
    assert ftp.login("plain", PASSWORD).startswith("230")
    assert lib.retr_bytes(ftp, "hello.txt") == HELLO
    ftp.quit()


def test_pass_rechecks_the_users_tls_rule(user_server):
    """USER in clear (331 for a tls=forbidden user), then AUTH TLS, then PASS: the
    login happens over TLS, which the user's rule forbids."""
    srv = user_server()
    with Control(srv.port) as c:
        c.reply()
        assert c.cmd("USER plain").code == 331
        assert c.cmd("AUTH TLS").code == 234
        c.starttls(lib.client_context(srv.cafile))
        r = c.cmd("PASS " + PASSWORD)
        # 530 from the PASS check; 503 would also keep the rule (AUTH forgetting the
        # USER, as RFC 2228 allows). Never a login.
        assert r.code in (530, 503), r
        if r.code == 530:
            assert "without TLS" in r.text, r
        assert c.cmd("PWD").code == 530
    assert "login: user plain" not in srv.log


@pytest.mark.parametrize("user,tls,works", [
    ("secure", True, True), ("secure", False, False),
    ("plain", True, False), ("plain", False, True),
    ("optuser", True, True), ("optuser", False, True),
])
def test_per_user_tls_rule_with_curl(user_server, user, tls, works):
    srv = user_server()
    args = (["--ssl-reqd", "--cacert", srv.cafile] if tls else []) + [
        url(srv, "hello.txt", user=user)]
    r = curl(*args)
    if works:
        assert ok(r).stdout == HELLO
    else:
        assert failed(r).stdout == b""


def test_read_only_option_combined_with_tls_rule(user_server, tmp_path):
    srv = user_server()
    ftp = tls_ftp(srv)
    ftp.login("rosecure", PASSWORD)
    ftp.prot_p()
    assert lib.retr_bytes(ftp, "hello.txt") == HELLO
    out = attempt(ftp, "STOR new.txt", upload=b"x")
    assert out.before_1xx and out.code == 550, out
    assert code_of(ftp.sendcmd, "MKD newdir") == 550
    assert code_of(ftp.sendcmd, "DELE hello.txt") == 550
    assert code_of(ftp.sendcmd, "RNFR hello.txt") in (550, 350)
    ftp.quit()
    assert not os.path.exists(os.path.join(srv.root, "new.txt"))
    assert not os.path.exists(os.path.join(srv.root, "newdir"))
    assert open(os.path.join(srv.root, "hello.txt"), "rb").read() == HELLO
    # curl's upload fails too.
    src = tmp_path / "up.txt"
    src.write_bytes(b"upload\n")
    failed(curl("--ssl-reqd", "--cacert", srv.cafile, "-T", str(src),
                url(srv, "up.txt", user="rosecure")))
    assert not os.path.exists(os.path.join(srv.root, "up.txt"))
    # The same upload as alice (no read-only) works: the refusal is the option's.
    ok(curl("--ssl-reqd", "--cacert", srv.cafile, "-T", str(src), url(srv, "up.txt")))
    assert open(os.path.join(srv.root, "up.txt"), "rb").read() == b"upload\n"


# =================================================================== 3. anonymous

ANON_FILE = b"public file for anonymous users\n"


@pytest.fixture(scope="module")
def anon_account():
    try:
        return lib.ensure_system_user("ftp")
    except KeyError:
        pytest.skip("no 'ftp' account and not root to create it")


def make_anon_root(srv, owner):
    """A served tree for anonymous sessions, owned (and writable) by `owner`, so that
    only the server's policy can stop writes."""
    root = os.path.join(srv.dir, "anon")
    os.makedirs(os.path.join(root, "pub"))
    with open(os.path.join(root, "pub", "file.txt"), "wb") as f:
        f.write(ANON_FILE)
    with open(os.path.join(root, "welcome.msg"), "wb") as f:
        f.write(b"welcome\n")
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for n in filenames:
            os.chmod(os.path.join(dirpath, n), 0o644)
        if lib.ROOT:
            os.chown(dirpath, owner.pw_uid, owner.pw_gid)
            for n in filenames:
                os.chown(os.path.join(dirpath, n), owner.pw_uid, owner.pw_gid)
    return root


@pytest.fixture
def anon_server(server, anon_account):
    def make(account=None, **kw):
        account = account or anon_account
        kw.setdefault("control_tls", "optional")
        kw.setdefault("data_tls", "optional")
        srv = server(start=False, **kw)
        root = make_anon_root(srv, account)
        text = lib.rewrite_config(srv.config_text, {
            "anonymous": "on", "anonymous-root": root,
            "anonymous-user": account.pw_name,
            **{k.replace("_", "-"): v for k, v in kw.items()
               if k.startswith("anonymous_") and v is not None}})
        with open(srv.config_path, "w") as f:
            f.write(text)
        srv.anon_root = root
        srv.anon_account = account
        return srv.start()
    return make


def test_anonymous_logs_in_with_any_password_and_the_password_is_logged(anon_server):
    srv = anon_server()
    ftp = plain_ftp(srv)
    assert ftp.login("anonymous", "guest@example.org").startswith("230")
    assert lib.retr_bytes(ftp, "pub/file.txt") == ANON_FILE
    names = ftp.nlst()
    assert "pub" in names and "welcome.msg" in names, names
    # The anonymous root, not the users' root.
    assert "hello.txt" not in names
    ftp.quit()
    ftp = plain_ftp(srv)
    assert ftp.login("ftp", "").startswith("230")
    ftp.quit()
    log = lib.wait_for(lambda: srv.log if 'password "guest@example.org"' in srv.log else None)
    assert re.search(r'anonymous login from 127\.0\.0\.1, password "guest@example\.org"',
                     log or srv.log), srv.log


def test_anonymous_is_read_only_by_default(anon_server):
    srv = anon_server()
    ftp = plain_ftp(srv)
    ftp.login("anonymous", "x@y")
    out = attempt(ftp, "STOR pub/up.txt", upload=b"data")
    assert out.before_1xx and out.code == 550, out
    out = attempt(ftp, "APPE pub/file.txt", upload=b"data")
    assert out.before_1xx and out.code == 550, out
    assert code_of(ftp.sendcmd, "MKD newdir") == 550
    assert code_of(ftp.sendcmd, "DELE pub/file.txt") == 550
    assert code_of(ftp.sendcmd, "RMD pub") == 550
    r = code_of(ftp.sendcmd, "RNFR welcome.msg")
    if r == 350:
        r = code_of(ftp.sendcmd, "RNTO renamed.msg")
    assert r == 550
    ftp.quit()
    # The files are writable by the anonymous account: only the policy refused.
    assert open(os.path.join(srv.anon_root, "pub", "file.txt"), "rb").read() == ANON_FILE
    assert sorted(os.listdir(srv.anon_root)) == ["pub", "welcome.msg"]
    assert os.listdir(os.path.join(srv.anon_root, "pub")) == ["file.txt"]


def test_anonymous_with_curl_and_lftp(anon_server, tmp_path):
    srv = anon_server()
    # curl logs in as anonymous by itself when the URL has no user.
    assert ok(curl(url(srv, "pub/file.txt", user=None))).stdout == ANON_FILE
    r = ok(curl("--list-only", url(srv, "pub/", user=None)))
    assert b"file.txt" in r.stdout
    assert ok(curl("--ssl-reqd", "--cacert", srv.cafile,
                   url(srv, "pub/file.txt", user=None))).stdout == ANON_FILE
    src = tmp_path / "up.txt"
    src.write_bytes(b"upload\n")
    failed(curl("-T", str(src), url(srv, "pub/up.txt", user=None)))
    assert not os.path.exists(os.path.join(srv.anon_root, "pub", "up.txt"))
    # lftp: anonymous by default, listing and download in clear.
    r = ok(lftp(srv, ["ls pub", "cat pub/file.txt"], tmp_path))
    assert b"file.txt" in r.stdout and ANON_FILE in r.stdout, r.stdout
    failed(lftp(srv, ["put %s -o pub/up.txt" % src], tmp_path))
    assert not os.path.exists(os.path.join(srv.anon_root, "pub", "up.txt"))


def test_anonymous_session_runs_as_anonymous_user(anon_server):
    if not lib.ROOT:
        pytest.skip("ids change only when started as root")
    srv = anon_server()
    ftp = plain_ftp(srv)
    ftp.login("anonymous", "x@y")
    monitor, child = lib.session_pids(srv)
    uids = lib.proc_status(monitor)["Uid"].split()
    assert all(int(u) == srv.anon_account.pw_uid for u in uids), uids
    ftp.quit()


def test_anonymous_write_on_uploads_as_anonymous_user(anon_server):
    acct = lib.ensure_system_user("ftpsd-anon") if lib.ROOT else None
    if acct is None:
        pytest.skip("needs root to create the anonymous-user account")
    srv = anon_server(account=acct, anonymous_write="on")
    ftp = plain_ftp(srv)
    ftp.login("anonymous", "x@y")
    out = attempt(ftp, "STOR pub/up.txt", upload=b"anonymous upload\n")
    assert not out.before_1xx and out.code == 226, out
    assert code_of(ftp.sendcmd, "MKD incoming") == 257
    ftp.quit()
    path = os.path.join(srv.anon_root, "pub", "up.txt")
    assert open(path, "rb").read() == b"anonymous upload\n"
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (acct.pw_uid, acct.pw_gid)
    assert os.stat(os.path.join(srv.anon_root, "incoming")).st_uid == acct.pw_uid


def test_anonymous_user_missing_means_no_anonymous_login(anon_server):
    srv = anon_server()
    text = lib.rewrite_config(open(srv.config_path).read(),
                              {"anonymous-user": "no-such-ftpsd-account"})
    with open(srv.config_path, "w") as f:
        f.write(text)
    ftp = plain_ftp(srv)
    with pytest.raises(ftplib.error_perm, match="^530"):
        ftp.login("anonymous", "x@y")
    ftp.close()


def test_anonymous_off_refuses_anonymous(server):
    srv = server(control_tls="optional", data_tls="optional")
    ftp = plain_ftp(srv)
    with pytest.raises(ftplib.error_perm, match="^530"):
        ftp.login("anonymous", "guest@example.org")
    ftp.close()
    assert "anonymous login" not in srv.log


def test_anonymous_tls_required(anon_server):
    srv = anon_server(anonymous_tls="required")
    with Control(srv.port) as c:
        c.reply()
        r = c.cmd("USER anonymous")
        assert r.code == 530 and "TLS" in r.text, r
    ftp = tls_ftp(srv)
    assert ftp.login("anonymous", "x@y").startswith("230")
    ftp.prot_p()
    assert lib.retr_bytes(ftp, "pub/file.txt") == ANON_FILE
    ftp.quit()
    failed(curl(url(srv, "pub/file.txt", user=None)))
    assert ok(curl("--ssl-reqd", "--cacert", srv.cafile,
                   url(srv, "pub/file.txt", user=None))).stdout == ANON_FILE


def test_anonymous_tls_forbidden(anon_server):
    srv = anon_server(anonymous_tls="forbidden")
    c = tls_control(srv)
    with c:
        r = c.cmd("USER ftp")
        assert r.code == 530 and "without TLS" in r.text, r
    ftp = plain_ftp(srv)
    assert ftp.login("anonymous", "x@y").startswith("230")
    ftp.quit()
    failed(curl("--ssl-reqd", "--cacert", srv.cafile, url(srv, "pub/file.txt", user=None)))
    assert ok(curl(url(srv, "pub/file.txt", user=None))).stdout == ANON_FILE


# ========================================================== 4. data channel policy

OK = 226
KINDS = ["RETR", "STOR", "APPE", "LIST", "NLST", "MLSD"]
LISTINGS = {"LIST", "NLST", "MLSD"}


def expected(data_tls, listings, prot, kind):
    p = listings if kind in LISTINGS else data_tls
    if p == "required" and prot == "C":
        return 521
    if p == "off" and prot == "P":
        return 521
    return OK


DATA_TABLE = [
    ("required", None), ("optional", None), ("off", None),
    ("required", "optional"), ("required", "off"),
    ("off", "required"), ("off", "optional"), ("optional", "off"), ("optional", "required"),
]


@pytest.mark.parametrize("data_tls,listings", DATA_TABLE,
                         ids=["%s-%s" % (a, b or "default") for a, b in DATA_TABLE])
def test_data_tls_and_data_tls_listings_table(server, data_tls, listings):
    srv = server(data_tls=data_tls, data_tls_listings=listings)
    eff_listings = listings or data_tls
    ftp = tls_ftp(srv)
    ftp.login(USER, PASSWORD)
    ftp.sendcmd("PBSZ 0")
    wrong = []
    for prot in ("C", "P"):
        r = code_of(ftp.sendcmd, "PROT " + prot)
        if prot == "P" and data_tls == "off" and eff_listings == "off":
            # Nothing may be Private: PROT P itself is refused.
            assert r == 534, r
            continue
        assert r == 200, (prot, r)
        ftp._prot_p = prot == "P"
        for kind in KINDS:
            name = "up-%s-%s.bin" % (prot, kind)
            payload = b"payload %s %s\n" % (prot.encode(), kind.encode())
            if kind == "RETR":
                out = attempt(ftp, "RETR hello.txt")
            elif kind in ("STOR", "APPE"):
                out = attempt(ftp, "%s %s" % (kind, name), upload=payload)
            else:
                out = attempt(ftp, kind)
            want = expected(data_tls, eff_listings, prot, kind)
            if want == 521:
                good = out.before_1xx and out.code == 521 and out.data == b""
            else:
                good = not out.before_1xx and out.code == OK
                if kind == "RETR":
                    good = good and out.data == HELLO
                elif kind in LISTINGS:
                    good = good and b"hello.txt" in out.data
            if kind in ("STOR", "APPE"):
                exists = os.path.exists(os.path.join(srv.root, name))
                good = good and exists == (want == OK)
                if exists and want == OK:
                    good = good and open(os.path.join(srv.root, name), "rb").read() == payload
            if not good:
                wrong.append("PROT %s %s: expected %s, got %r" % (prot, kind, want, out))
    ftp.quit()
    assert not wrong, "\n".join(wrong)


def test_521_changes_nothing_and_prot_change_then_works(server):
    srv = server(data_tls="required", data_tls_listings="required")
    ftp = tls_ftp(srv)
    ftp.login(USER, PASSWORD)
    ftp.sendcmd("PBSZ 0")
    ftp.sendcmd("PROT C")
    ftp._prot_p = False
    for _ in range(3):
        assert refused_before_1xx(ftp, "RETR hello.txt") == 521
        assert refused_before_1xx(ftp, "LIST") == 521
    ftp.prot_p()
    assert lib.retr_bytes(ftp, "hello.txt") == HELLO
    assert lib.retr_bytes(ftp, "sub/inner.txt") == INNER
    ftp.sendcmd("PROT C")
    ftp._prot_p = False
    assert refused_before_1xx(ftp, "RETR hello.txt") == 521
    ftp.prot_p()
    assert lib.retr_bytes(ftp, "hello.txt") == HELLO
    ftp.quit()


def test_521_closes_the_passive_port(server, tls):
    srv = server(data_tls="required")
    c = tls_control(srv, tls)
    with c:
        c.login()
        assert c.cmd("PBSZ 0").code == 200 and c.cmd("PROT C").code == 200
        r = c.cmd("EPSV")
        port = int(re.search(r"\(\|\|\|(\d+)\|\)", r.text).group(1))
        r = c.cmd("RETR hello.txt")
        assert r.code == 521, r
        # The refused transfer leaves no listener behind. (The 521 may be sent just
        # before the port is closed: poll until a connection is refused.)
        def refused():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return False
            except OSError:
                return True
        assert lib.wait_for(refused, timeout=3), "port %d still accepts after 521" % port
        assert c.cmd("NOOP").code == 200


@pytest.mark.parametrize("data_tls,works", [("required", False), ("optional", True)])
def test_curl_clear_data_with_tls_control(server, data_tls, works):
    """curl --ftp-ssl-control: TLS login, PROT C transfers."""
    srv = server(data_tls=data_tls)
    r = curl("-v", "--ftp-ssl-control", "--cacert", srv.cafile, url(srv, "hello.txt"))
    if works:
        assert ok(r).stdout == HELLO
    else:
        failed(r)
        assert r.stdout == b""
        assert b"< 521" in r.stderr, r.stderr[-2000:]


def test_curl_with_data_tls_off(server):
    srv = server(data_tls="off")
    # --ssl-reqd insists on PROT P, which gets 534: curl gives up.
    r = failed(curl("-v", "--ssl-reqd", "--cacert", srv.cafile, url(srv, "hello.txt")))
    assert b"< 534" in r.stderr, r.stderr[-2000:]
    # --ssl (TLS if possible) goes on with Clear data.
    assert ok(curl("--ssl", "--cacert", srv.cafile, url(srv, "hello.txt"))).stdout == HELLO


def test_auth_ssl_with_data_tls_off_leaves_data_clear(server, tls):
    """AUTH SSL implies PROT P (DESIGN.md), but with data-tls and data-tls-listings off
    Private data does not exist here (PROT P gets 534): the implied level must not be
    one the client cannot use or even learn about. (curl --ssl sends AUTH SSL first.)"""
    srv = server(data_tls="off")
    with Control(srv.port) as c:
        c.reply()
        assert c.cmd("AUTH SSL").code == 234
        c.starttls(tls)
        c.login()
        assert c.cmd("PBSZ 0").code == 200
        assert c.cmd("PROT P").code == 534
        r = c.cmd("EPSV")
        port = int(re.search(r"\(\|\|\|(\d+)\|\)", r.text).group(1))
        data = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        r = c.cmd("RETR hello.txt")
        assert r.code == 150, r
        got = b""
        while True:
            chunk = data.recv(65536)
            if not chunk:
                break
            got += chunk
        data.close()
        assert c.reply().code == 226
        assert got == HELLO


def test_lftp_clear_listings_protected_files(server, tmp_path):
    srv = server(data_tls="required", data_tls_listings="optional")
    r = ok(lftp(srv, ["ls", "cat hello.txt"], tmp_path, user=USER, password=PASSWORD, tls=True,
                protect_data=True, protect_list=False))
    assert b"hello.txt" in r.stdout and HELLO in r.stdout
    # Files in clear are refused. (lftp's "cat" hangs after any failed transfer: "get".)
    r = failed(lftp(srv, ["get hello.txt -o %s" % (tmp_path / "h.txt")], tmp_path, user=USER,
                    password=PASSWORD, tls=True, protect_data=False, protect_list=False))
    assert b"521" in r.stderr, r.stderr


@pytest.mark.parametrize("reuse", ["required", "off"])
def test_data_tls_reuse(server, reuse):
    srv = server(data_tls_reuse=reuse)
    ftp = lib.ftp_login(srv, cls=StockFTP_TLS)
    got = attempt(ftp, "RETR hello.txt")
    listing = attempt(ftp, "NLST")
    ftp.quit()
    if reuse == "required":
        assert not got.before_1xx and got.code == 522 and got.data == b"", got
        assert not listing.before_1xx and listing.code == 522 and listing.data == b"", listing
    else:
        assert got.code == 226 and got.data == HELLO, got
        assert listing.code == 226 and b"hello.txt" in listing.data, listing
    # A client that resumes works either way.
    ftp = lib.ftp_login(srv)
    assert lib.retr_bytes(ftp, "hello.txt") == HELLO
    assert ftp.data_resumed == [True]
    ftp.quit()


# ======================================================= 5. client certificates

@pytest.fixture(scope="module")
def cpki(session_dir):
    d = tempfile.mkdtemp(prefix="client-pki-", dir=session_dir)
    os.chmod(d, 0o755)
    p = types.SimpleNamespace(dir=d)
    p.ca = lib.certtool_ca(d, "client-ca", "ftpsd test client CA")
    p.rogue_ca = lib.certtool_ca(d, "rogue-ca", "ftpsd test rogue CA")
    p.carol = lib.certtool_cert(d, "carol", "carol", p.ca)
    p.dave = lib.certtool_cert(d, "dave", "dave", p.ca)
    p.mallory = lib.certtool_cert(d, "mallory", "mallory", p.rogue_ca)
    p.eve = lib.certtool_cert(d, "eve", "eve", p.ca, purpose="tls_www_server")
    p.rita = lib.certtool_cert(d, "rita", "rita", p.ca, key_type="rsa")
    p.ed = lib.certtool_cert(d, "ed", "ed", p.ca, key_type="ed25519")
    return p


def add_cert_users(srv, cpki):
    lib.add_users(srv, [
        # Certificate only: "*" disables the password; the pin with colons.
        user_line(srv, "carol", "*", "cert=sha256:" + lib.cert_sha256(cpki.carol[0], True)),
        # Certificate or password; the pin without colons, with another option.
        user_line(srv, "dave", srv.pki.hash,
                  "cert=sha256:" + lib.cert_sha256(cpki.dave[0]) + ",tls=required"),
        # Pinned to certificates the CA did not sign for a client.
        user_line(srv, "mallory", "*", "cert=sha256:" + lib.cert_sha256(cpki.mallory[0])),
        user_line(srv, "eve", "*", "cert=sha256:" + lib.cert_sha256(cpki.eve[0])),
        user_line(srv, "rita", "*", "cert=sha256:" + lib.cert_sha256(cpki.rita[0])),
        user_line(srv, "ed", "*", "cert=sha256:" + lib.cert_sha256(cpki.ed[0])),
    ])


@pytest.fixture
def cert_server(server, cpki):
    def make(mode="request", invalid="close", **kw):
        srv = server(start=False, tls_client_certificate=mode, tls_client_ca=cpki.ca[0],
                     tls_client_certificate_invalid=invalid, **kw)
        add_cert_users(srv, cpki)
        return srv.start()
    return make


def cert_ctx(srv, cert, **kw):
    return lib.client_cert_context(srv.cafile, *(cert or (None, None)), **kw)


TLS_VERSIONS = {"tls1.2": ssl.TLSVersion.TLSv1_2, "tls1.3": ssl.TLSVersion.TLSv1_3}


@pytest.mark.parametrize("version", sorted(TLS_VERSIONS))
def test_pinned_certificate_logs_in_with_user_alone_232(cert_server, cpki, version):
    srv = cert_server()
    v = TLS_VERSIONS[version]
    ftp = tls_ftp(srv, cert_ctx(srv, cpki.carol, minimum_version=v, maximum_version=v))
    resp = ftp.sendcmd("USER carol")
    assert resp.startswith("232"), resp
    assert ftp.sendcmd("PWD").startswith("257")
    ftp.prot_p()
    assert lib.retr_bytes(ftp, "hello.txt") == HELLO
    assert ftp.data_resumed == [True]
    ftp.quit()
    assert "by client certificate" in srv.log


@pytest.mark.parametrize("version", sorted(TLS_VERSIONS))
@pytest.mark.parametrize("who", ["rita", "ed"])
def test_rsa_and_ed25519_certificates_log_in(cert_server, cpki, version, who):
    """The monitor checks the client's own signature over the handshake: RSA (PSS, and
    PKCS#1 v1.5 where TLS 1.2 allows it) and Ed25519 keys, as OpenSSL clients sign."""
    srv = cert_server()
    v = TLS_VERSIONS[version]
    ftp = tls_ftp(srv, cert_ctx(srv, getattr(cpki, who), minimum_version=v, maximum_version=v))
    resp = ftp.sendcmd("USER " + who)
    assert resp.startswith("232"), resp
    ftp.quit()
    assert "client certificate verified" in srv.log


HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


def server_random(msg_dump):
    """The ServerHello random from `openssl s_client -msg` output (not a
    HelloRetryRequest's, which is a constant)."""
    lines = msg_dump.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("<<<") and line.endswith("ServerHello"):
            data = []
            for hexline in lines[i + 1:]:
                if not hexline.startswith(" "):
                    break
                data += hexline.split()
            rnd = bytes.fromhex("".join(data[6:38]))
            if rnd != HRR_RANDOM:
                return rnd
    raise AssertionError("no ServerHello in: " + msg_dump[-2000:])


def test_server_random_keeps_the_downgrade_sentinel(cert_server):
    """With client certificates on, the monitor chooses the control handshake's server
    random; a TLS 1.2 ServerHello still ends with RFC 8446's DOWNGRD 01 for a client that
    did not offer TLS 1.3, and a TLS 1.3 one does not; each session has its own."""
    srv = cert_server()
    seen = []
    for flag, sentinel in (("-tls1_2", True), ("-tls1_3", False), ("-tls1_3", False)):
        r = run(["openssl", "s_client", "-starttls", "ftp", "-connect", "127.0.0.1:%d" % srv.port,
                 "-msg", "-crlf", flag], input=b"QUIT\n")
        out = r.stdout.decode(errors="replace")
        rnd = server_random(out)
        assert len(rnd) == 32
        # The default groups put X25519 first: OpenSSL's one key share is taken, with
        # no HelloRetryRequest (a round trip more for each connection).
        assert HRR_RANDOM.hex(" ") not in " ".join(out.split()), out[-3000:]
        assert (rnd[24:] == b"DOWNGRD\x01") == sentinel, rnd
        seen.append(rnd[:24])
    assert len(set(seen)) == 3


def test_pinned_certificate_with_curl(cert_server, cpki):
    srv = cert_server()
    r = ok(curl("-v", "--ssl-reqd", "--cacert", srv.cafile, "--cert", cpki.carol[0],
                "--key", cpki.carol[1], url(srv, "hello.txt", user="carol", password=None)))
    assert r.stdout == HELLO
    assert b"< 232" in r.stderr, r.stderr[-2000:]
    assert b"> PASS" not in r.stderr


def test_pinned_certificate_with_gnutls_cli(cert_server, cpki):
    srv = cert_server()
    rc, out, err = gnutls_cli(srv, ["USER carol", "PWD", "QUIT"], cert=cpki.carol)
    assert "Handshake was completed" in out, out + err
    after = out.split("Handshake was completed", 1)[1]
    assert re.search(r"^232 ", after, re.M) and re.search(r"^257 ", after, re.M), out + err


def test_pin_without_colons_and_with_other_options(cert_server, cpki):
    srv = cert_server()
    ftp = tls_ftp(srv, cert_ctx(srv, cpki.dave))
    assert ftp.sendcmd("USER dave").startswith("232")
    ftp.quit()


def test_locked_account_is_not_logged_in_by_its_certificate(cert_server, cpki):
    """ftpsd-user lock puts "!" before the hash: that locks the certificate login
    too, not only the password (a locked user must not come back with a pin)."""
    srv = cert_server()
    with open(srv.users_path) as f:
        lines = f.read().splitlines()
    lines = [l.replace("dave:", "dave:!", 1) if l.startswith("dave:") else l for l in lines]
    with open(srv.users_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    ftp = tls_ftp(srv, cert_ctx(srv, cpki.dave))
    assert ftp.sendcmd("USER dave").startswith("331")
    with pytest.raises(ftplib.error_perm) as e:
        ftp.sendcmd("PASS " + PASSWORD)
    assert str(e.value).startswith("530")
    ftp.close()
    assert "login: user dave" not in srv.log


def test_certificate_only_user_cannot_use_a_password(cert_server, cpki):
    srv = cert_server()
    c = tls_control(srv)
    with c:
        assert c.cmd("USER carol").code == 331  # no certificate: a password is asked for
        r = c.cmd("PASS *")
        assert r.code == 530, r
        assert c.cmd("USER carol").code == 331
        assert c.cmd("PASS ").code in (530, 501)
    # With another valid certificate (dave's), carol's pin does not match either.
    c = tls_control(srv, cert_ctx(srv, cpki.dave))
    with c:
        assert c.cmd("USER carol").code == 331
        assert c.cmd("PASS " + PASSWORD).code == 530
    assert "login: user carol" not in srv.log


def test_valid_certificate_does_not_log_in_a_user_without_that_pin(cert_server, cpki):
    srv = cert_server()
    c = tls_control(srv, cert_ctx(srv, cpki.carol))
    with c:
        assert c.cmd("USER " + USER).code == 331
        assert c.cmd("PASS " + PASSWORD).code == 230


def test_password_user_with_pin_can_still_use_the_password(cert_server):
    srv = cert_server()
    c = tls_control(srv)
    with c:
        assert c.cmd("USER dave").code == 331
        assert c.cmd("PASS " + PASSWORD).code == 230


@pytest.mark.parametrize("who", ["mallory", "eve"])
def test_invalid_certificate_close_is_421_and_the_connection_ends(cert_server, cpki, who):
    """mallory: signed by another CA; eve: signed by the CA but for a TLS server only.
    Both are pinned by their users, so only the chain check can refuse them."""
    srv = cert_server(invalid="close")
    c = tls_control(srv, cert_ctx(srv, getattr(cpki, who)))
    with c:
        r = c.reply()
        assert r.code == 421, r
        c.wait_closed()
    assert "login: user" not in srv.log


def test_invalid_certificate_close_with_gnutls_cli(cert_server, cpki):
    srv = cert_server(invalid="close")
    rc, out, err = gnutls_cli(srv, ["USER mallory", "NOOP"], cert=cpki.mallory)
    after = out.split("Handshake was completed", 1)[-1]
    assert re.search(r"^421 ", after, re.M), out + err
    assert not re.search(r"^(232|331|200) ", after, re.M), out + err


def test_invalid_certificate_refuse_keeps_the_session_but_logs_no_one_in(cert_server, cpki):
    srv = cert_server(invalid="refuse")
    c = tls_control(srv, cert_ctx(srv, cpki.mallory))
    with c:
        assert c.cmd("NOOP").code == 200
        assert c.cmd("USER mallory").code == 331  # not 232, though the pin matches
        assert c.cmd("PASS anything").code == 530
        assert c.cmd("USER " + USER).code == 331
        assert c.cmd("PASS " + PASSWORD).code == 230
    assert "login: user mallory" not in srv.log


def test_a_child_claiming_a_certificate_it_has_seen_logs_no_one_in(cert_server, cpki):
    """A child taken over (here: a test hook) can send the monitor carol's certificate,
    which is public, in handshake messages with this session's server random; it cannot
    sign them with carol's key, so the monitor logs no one in."""
    srv = cert_server(invalid="refuse")
    with open(cpki.carol[0]) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    c = tls_control(srv)
    with c:
        r = c.cmd("SITE TESTHOOK CERT-CLAIM " + der.hex())
        if r.code == 504:
            pytest.skip("ftpsd built without -Dtest-hooks=true")
        assert r.code == 200 and r.text.endswith("answered -13"), r.lines  # -EACCES
        assert c.cmd("USER carol").code == 331
        assert c.cmd("PASS *").code == 530
    assert "no proof that the client holds its key" in srv.log
    assert "login: user carol" not in srv.log


def test_the_monitor_checks_one_client_certificate_per_session(cert_server, cpki):
    """The monitor's request table: one client-certificate check per session, and no
    handshake messages after it. A child that claims a certificate a second time (here:
    the test hook twice) ends the session."""
    srv = cert_server(invalid="refuse")
    with open(cpki.carol[0]) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    with tls_control(srv) as c:
        r = c.cmd("SITE TESTHOOK CERT-CLAIM " + der.hex())
        if r.code == 504:
            pytest.skip("ftpsd built without -Dtest-hooks=true")
        assert r.code == 200 and r.text.endswith("answered -13"), r.lines
        hook_ends_session(c, "CERT-CLAIM " + der.hex())
    assert "handshake messages after the client certificate" in srv.log


def hook_ends_session(c, hook):
    """SITE TESTHOOK hook: the monitor ends the session (no reply, or 421)."""
    c.send("SITE TESTHOOK " + hook)
    try:
        r = c.reply_within(5)
    except ConnectionClosed:
        r = None
    if r is not None and r.code == 504:
        pytest.skip("ftpsd built without -Dtest-hooks=true")
    assert r is None or r.code == 421, r.lines
    c.wait_closed()


@pytest.mark.parametrize("reuse", ["required", "off"])
def test_the_key_signs_once_before_login_and_after_it_only_without_reuse(server, reuse):
    """Before login the monitor signs for the control handshake only, and after it only
    where data connections may be full handshakes (data-tls-reuse = off): a child taken
    over cannot use the key to pose as this server to anyone else (for a password or a
    client's signature)."""
    srv = server(data_tls_reuse=reuse)
    with tls_control(srv) as c:
        hook_ends_session(c, "SIGN")
    assert "a second signature before login" in srv.log
    with tls_control(srv) as c:
        assert c.cmd("USER " + USER).code == 331
        assert c.cmd("PASS " + PASSWORD).code == 230
        if reuse == "off":
            r = c.cmd("SITE TESTHOOK SIGN")
            assert r.code == 200 and r.text.endswith("signed 0"), r.lines
        else:
            hook_ends_session(c, "SIGN")
    if reuse == "required":
        assert "a signature after login, where data connections resume" in srv.log


@pytest.mark.parametrize("version", sorted(TLS_VERSIONS))
def test_require_without_certificate_fails_the_handshake(cert_server, version):
    srv = cert_server(mode="require")
    v = TLS_VERSIONS[version]
    ctx = cert_ctx(srv, None, minimum_version=v, maximum_version=v)
    c = Control(srv.port)
    with c:
        c.reply()
        assert c.cmd("AUTH TLS").code == 234
        with pytest.raises(TLS_FAILURES):
            c.starttls(ctx)
            # TLS 1.3: the client finished first; the server's alert comes with the next read.
            c.cmd("USER carol")
    assert "login: user" not in srv.log


def test_require_with_curl(cert_server, cpki):
    srv = cert_server(mode="require")
    r = failed(curl("--ssl-reqd", "--cacert", srv.cafile, url(srv, "hello.txt")))
    assert r.stdout == b""
    # With a certificate: 232, then Private data connections that resume the session.
    r = ok(curl("--ssl-reqd", "--cacert", srv.cafile, "--cert", cpki.carol[0], "--key",
                cpki.carol[1], url(srv, "hello.txt", user="carol", password=None),
                url(srv, "sub/inner.txt", user="carol", password=None)))
    assert r.stdout == HELLO + INNER
    # A valid certificate without a pin, and a password.
    r = ok(curl("--ssl-reqd", "--cacert", srv.cafile, "--cert", cpki.dave[0], "--key",
                cpki.dave[1], url(srv, "hello.txt")))
    assert r.stdout == HELLO


def test_require_with_gnutls_cli_without_certificate(cert_server):
    srv = cert_server(mode="require")
    rc, out, err = gnutls_cli(srv, ["USER " + USER, "NOOP"])
    assert not re.search(r"^(331|200|230) ", out.split("Handshake was completed", 1)[-1], re.M), \
        out + err
    assert "Handshake was completed" not in out or rc != 0, out + err


def test_certificate_off_is_not_requested_and_logs_no_one_in(cert_server, cpki):
    srv = cert_server(mode="off")
    c = tls_control(srv, cert_ctx(srv, cpki.carol))
    with c:
        assert c.cmd("USER carol").code == 331
        assert c.cmd("PASS x").code == 530
    assert "client certificate" not in srv.log


# ========================================================== 6. failed handshakes

GARBAGE = {
    "http": b"GET / HTTP/1.0\r\nHost: example\r\n\r\n",
    "random": bytes([0x42]) + random.Random(4217).randbytes(255),
}


@pytest.mark.parametrize("garbage", sorted(GARBAGE))
def test_handshake_failing_outright_gets_421_in_clear_then_close(server, garbage):
    srv = server()
    with Control(srv.port) as c:
        c.reply()
        assert c.cmd("AUTH TLS").code == 234
        c.sock.sendall(GARBAGE[garbage])
        r = c.reply()
        assert r.code == 421, r
        c.wait_closed()


def test_handshake_failing_midway_is_dropped_without_reply(server, cpki):
    """The client rejects the server's certificate (it trusts another CA) and sends an
    alert after the server's first flight: the server has spoken TLS, so nothing in
    clear may follow."""
    srv = server()
    c = Control(srv.port)
    with c:
        c.reply()
        assert c.cmd("AUTH TLS").code == 234
        ctx = lib.client_context(cpki.ca[0])
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
        received = b""
        for _ in range(50):
            try:
                obj.do_handshake()
                pytest.fail("handshake succeeded with an untrusted server certificate")
            except ssl.SSLWantReadError:
                c.sock.sendall(out.read())
                data = c.sock.recv(65536)
                assert data, "server closed before its first flight"
                received += data
                inc.write(data)
            except ssl.SSLCertVerificationError:
                c.sock.sendall(out.read())  # the client's alert
                break
        assert received[:1] == b"\x16", received[:16]  # the server did answer in TLS
        rest = c.wait_closed()
    assert not re.search(rb"(^|\n)421 ", rest), rest
    assert lib.wait_for(lambda: "handshake failed" in srv.log, timeout=5), srv.log


def test_tls_priority_tls13_only_refuses_a_tls12_client(server):
    """tls-priority is applied to the control handshake: TLS 1.3 only refuses TLS 1.2."""
    srv = server(tls_priority="NORMAL:-VERS-ALL:+VERS-TLS1.3:%SERVER_PRECEDENCE")
    c = Control(srv.port)
    with c:
        c.reply()
        assert c.cmd("AUTH TLS").code == 234
        with pytest.raises(ssl.SSLError):
            c.starttls(lib.client_context(srv.cafile, maximum_version=ssl.TLSVersion.TLSv1_2))


# ======================================================================= 7. CCC

def feat_words(c):
    r = c.cmd("FEAT")
    assert r.code == 211, r
    return [l.strip().split()[0] for l in r.body if l.strip()]


@pytest.mark.parametrize("version", sorted(TLS_VERSIONS))
def test_ccc_on_clears_control_and_keeps_private_resumed_data(server, version):
    srv = server(ccc="on", data_tls="required", data_tls_reuse="required")
    v = TLS_VERSIONS[version]
    tls = lib.client_context(srv.cafile, minimum_version=v, maximum_version=v)
    c = tls_control(srv, tls)
    with c:
        assert "CCC" in feat_words(c)
        c.login()
        assert c.cmd("PBSZ 0").code == 200 and c.cmd("PROT P").code == 200
        r = c.cmd("CCC")
        assert r.code == 200, r
        session = c.sock.session
        c.sock = c.sock.unwrap()  # both close_notify alerts exchanged
        # Commands go on in clear.
        c.send("NOOP")
        raw = c.sock.recv(4096)
        assert raw.startswith(b"200 "), raw
        assert c.cmd("PWD").code == 257
        # Data protection is unchanged: PROT P transfers, each resuming the session.
        for path, want in (("hello.txt", HELLO), ("sub/inner.txt", INNER)):
            r = c.cmd("EPSV")
            port = int(re.search(r"\(\|\|\|(\d+)\|\)", r.text).group(1))
            data = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
            r = c.cmd("RETR " + path)
            assert r.code == 150, r
            ds = tls.wrap_socket(data, server_hostname="127.0.0.1", session=session)
            got = b""
            while True:
                chunk = ds.recv(65536)
                if not chunk:
                    break
                got += chunk
            assert ds.session_reused
            ds.close()
            assert c.reply().code == 226
            assert got == want
        # PROT C is still refused (data-tls = required): the level did not go.
        assert c.cmd("PROT C").code == 200
        c.cmd("EPSV")
        assert c.cmd("RETR hello.txt").code == 521
        assert c.cmd("QUIT").code == 221


def test_ccc_off_is_534_and_not_in_feat(server, tls):
    srv = server(ccc="off")
    c = tls_control(srv, tls)
    with c:
        assert "CCC" not in feat_words(c)
        c.login()
        assert c.cmd("CCC").code == 534
        assert c.cmd("NOOP").code == 200  # still TLS, still working


def test_ccc_without_tls_is_533(server):
    srv = server(ccc="on", control_tls="optional", data_tls="optional")
    with Control(srv.port) as c:
        c.reply()
        assert "CCC" in feat_words(c)
        c.login()
        assert c.cmd("CCC").code == 533


def test_ccc_before_login_is_refused(server, tls):
    """ftpsd.conf(5): "Whether a logged-in client may send CCC". Clearing before login
    would send USER and PASS in clear under control-tls = required."""
    srv = server(ccc="on", control_tls="required")
    c = tls_control(srv, tls)
    with c:
        r = c.cmd("CCC")
        assert r.code != 200, r
        assert c.cmd("NOOP").code == 200  # the session is still protected and usable
        c.login()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_ccc_with_curl_active_mode(server, version):
    """curl sends its close_notify after the 200 (active mode), then goes on in clear.
    With TLS 1.2 it resumes the session on two data connections after CCC; with TLS 1.3
    OpenSSL uses a ticket once, and after CCC no new ticket can reach it, so only one
    Private transfer is asked of it."""
    srv = server(ccc="on", data_tls="required", data_tls_reuse="required")
    urls = [url(srv, "hello.txt")] + ([url(srv, "sub/inner.txt")] if version == "1.2" else [])
    r = ok(curl("-v", "--ssl-reqd", "--tlsv" + version, "--tls-max", version, "--cacert",
                srv.cafile, "--ftp-ssl-ccc", "--ftp-ssl-ccc-mode", "active", *urls))
    assert r.stdout == (HELLO + INNER if version == "1.2" else HELLO)
    err = r.stderr.decode(errors="replace")
    assert "> CCC" in err and "< 200" in err, err[-3000:]
    # Every command after CCC was understood.
    after = err.split("> CCC", 1)[1]
    assert not re.search(r"^< 5\d\d", after, re.M), after[-3000:]
    assert "control connection cleared (CCC)" in srv.log


def test_curl_ccc_against_ccc_off_keeps_tls(server):
    srv = server(ccc="off")
    r = ok(curl("-v", "--ssl-reqd", "--cacert", srv.cafile, "--ftp-ssl-ccc",
                "--ftp-ssl-ccc-mode", "active", url(srv, "hello.txt")))
    assert r.stdout == HELLO
    assert b"< 534" in r.stderr, r.stderr[-3000:]
    assert "control connection cleared" not in srv.log


# ======================================================= 8. --check-config, --print-config

def write_conf(srv, text, name="check.conf"):
    path = os.path.join(srv.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def base_conf(srv):
    lines = ["tls-certificate = %s" % srv.pki.cert, "tls-key = %s" % srv.pki.key,
             "users-file = %s" % srv.users_path, "empty-dir = %s" % srv.pki.empty]
    if srv.accounts.unprivileged_user:
        lines.append("unprivileged-user = %s" % srv.accounts.unprivileged_user)
    return "\n".join(lines) + "\n"


def ftpsd(binary, *args):
    return subprocess.run([binary] + list(args), capture_output=True, text=True,
                          timeout=IO_TIMEOUT)


POLICY_DEFAULTS = {
    "control-tls": "required", "data-tls": "required", "data-tls-listings": "required",
    "data-tls-reuse": "required", "ccc": "off", "tls-client-certificate": "off",
    "tls-client-certificate-invalid": "close", "anonymous": "off", "anonymous-user": "ftp",
    "anonymous-write": "off", "anonymous-tls": "optional",
}


def printed(binary, path):
    r = ftpsd(binary, "--config", path, "--print-config")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout, lib.config_values(r.stdout)


def test_print_config_shows_the_policy_defaults(server, ftpsd_bin):
    srv = server(start=False)
    out, values = printed(ftpsd_bin, write_conf(srv, base_conf(srv)))
    for k, v in POLICY_DEFAULTS.items():
        assert values.get(k) == v, (k, values.get(k), out)
    for k in ("allow-before-tls", "tls-client-ca", "anonymous-root"):
        assert "# %s is not set" % k in out, out


@pytest.mark.parametrize("extra,want", [
    ("data-tls = optional\n", {"data-tls": "optional", "data-tls-listings": "optional"}),
    ("data-tls = optional\ndata-tls-listings = off\n",
     {"data-tls": "optional", "data-tls-listings": "off"}),
    ("data-tls-listings = optional\n", {"data-tls": "required", "data-tls-listings": "optional"}),
    ("allow-before-tls = SITE,HELP\nccc = on\n", {"allow-before-tls": "SITE,HELP", "ccc": "on"}),
])
def test_print_config_effective_values(server, ftpsd_bin, extra, want):
    srv = server(start=False)
    out, values = printed(ftpsd_bin, write_conf(srv, base_conf(srv) + extra))
    for k, v in want.items():
        assert values.get(k) == v, (k, out)


BAD_VALUES = [
    "control-tls = sometimes", "data-tls = maybe", "data-tls-listings = yes",
    "data-tls-reuse = optional", "ccc = yes", "tls-client-certificate = demand",
    "tls-client-certificate-invalid = ignore", "anonymous = yes", "anonymous-write = rw",
    "anonymous-tls = always", "allow-before-tls = SITE;HELP", "allow-before-tls = SITE HELP",
    "anonymous-root = srv/ftp", "tls-client-ca = client-ca.pem",
]


@pytest.mark.parametrize("line", BAD_VALUES)
def test_check_config_rejects_bad_policy_values_with_file_and_line(server, ftpsd_bin, line):
    srv = server(start=False)
    text = base_conf(srv)
    lineno = text.count("\n") + 1
    path = write_conf(srv, text + line + "\n")
    r = ftpsd(ftpsd_bin, "--config", path, "--check-config")
    assert r.returncode != 0, r.stdout + r.stderr
    key = line.split("=")[0].strip()
    assert re.search(r"%s:%d: .*%s" % (re.escape(path), lineno, re.escape(key)),
                     r.stdout + r.stderr), r.stdout + r.stderr


@pytest.mark.parametrize("extra,mention", [
    ("tls-client-certificate = request\n", "tls-client-ca"),
    ("anonymous = on\n", "anonymous-root"),
    ("control-tls = off\n", "data-tls"),
    ("control-tls = off\ndata-tls = off\ndata-tls-listings = required\n", "data-tls"),
])
def test_check_config_rejects_inconsistent_policies(server, ftpsd_bin, extra, mention):
    srv = server(start=False)
    path = write_conf(srv, base_conf(srv) + extra)
    r = ftpsd(ftpsd_bin, "--config", path, "--check-config")
    assert r.returncode != 0, r.stdout + r.stderr
    assert mention in r.stdout + r.stderr and path + ":" in r.stdout + r.stderr


def test_check_config_accepts_every_policy_key(server, ftpsd_bin, cpki, anon_account):
    srv = server(start=False)
    anon = os.path.join(srv.dir, "anon-ok")
    os.mkdir(anon)
    os.chmod(anon, 0o755)
    text = base_conf(srv) + "\n".join([
        "control-tls = optional", "allow-before-tls = SITE,HELP,SYST", "data-tls = optional",
        "data-tls-listings = off", "data-tls-reuse = off", "ccc = on",
        "tls-client-certificate = request", "tls-client-ca = %s" % cpki.ca[0],
        "tls-client-certificate-invalid = refuse", "anonymous = on", "anonymous-root = %s" % anon,
        "anonymous-user = %s" % anon_account.pw_name, "anonymous-write = on",
        "anonymous-tls = forbidden"]) + "\n"
    path = write_conf(srv, text)
    r = ftpsd(ftpsd_bin, "--config", path, "--check-config")
    assert r.returncode == 0, r.stdout + r.stderr
    # ... and without a certificate at all when TLS is off everywhere.
    text = "\n".join(l for l in base_conf(srv).splitlines() if not l.startswith("tls-")) + \
        "\ncontrol-tls = off\ndata-tls = off\n"
    r = ftpsd(ftpsd_bin, "--config", write_conf(srv, text, "off.conf"), "--check-config")
    assert r.returncode == 0, r.stdout + r.stderr


# ===================================================== 9. the example policies

EXAMPLES = ["strict", "compatible", "public"]

# What --print-config must show for each example: the promises in its comments.
EXAMPLE_PROMISES = {
    "strict": {"tls-priority": "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519:"
                               "+GROUP-EC-ALL:+GROUP-DH-ALL:%SERVER_PRECEDENCE",
               "control-tls": "required", "data-tls": "required",
               "data-tls-listings": "required", "data-tls-reuse": "required",
               "tls-client-certificate": "require", "tls-client-certificate-invalid": "close",
               "anonymous": "off", "ccc": "off"},
    "compatible": {"control-tls": "optional", "data-tls": "optional",
                   "data-tls-listings": "optional", "data-tls-reuse": "off",
                   "tls-client-certificate": "off", "anonymous": "off"},
    "public": {"control-tls": "optional", "data-tls": "optional",
               "data-tls-listings": "optional", "anonymous": "on", "anonymous-write": "off",
               "anonymous-user": "ftp", "tls-client-certificate": "off"},
}

PATH_KEYS = ("tls-certificate", "tls-key", "users-file", "tls-client-ca", "anonymous-root",
             "xferlog", "empty-dir")


def example_text(name):
    with open(os.path.join(POLICY_DIR, name + ".conf")) as f:
        return f.read()


def example_server(server, cpki, name, anon_account, start=True):
    """A server running policy/NAME.conf with its paths pointed at this test's files
    (and the suite's passive ports and unprivileged user)."""
    text = example_text(name)
    srv = server(start=False)
    values = lib.config_values(text)
    paths = {"tls-certificate": srv.pki.cert, "tls-key": srv.pki.key,
             "users-file": srv.users_path, "tls-client-ca": cpki.ca[0],
             "empty-dir": srv.pki.empty, "xferlog": os.path.join(srv.dir, "xferlog")}
    if "anonymous-root" in values:
        paths["anonymous-root"] = make_anon_root(srv, anon_account)
        srv.anon_root = paths["anonymous-root"]
    new = {k: v for k, v in paths.items() if k in values or k == "empty-dir"}
    new["pasv-ports"] = lib.PASV_PORTS
    if srv.accounts.unprivileged_user:
        new["unprivileged-user"] = srv.accounts.unprivileged_user
    text = lib.rewrite_config(text, new)
    for k, v in lib.config_values(text).items():
        if k in PATH_KEYS:
            assert v.startswith(srv.dir) or v.startswith(srv.pki.dir) or \
                v.startswith(cpki.dir), (k, v)
    with open(srv.config_path, "w") as f:
        f.write(text)
    srv.config_text = text
    srv.xferlog = paths["xferlog"]
    add_cert_users(srv, cpki)
    lib.add_users(srv, [user_line(srv, "maint", srv.pki.hash, "tls=required")])
    if start:
        srv.start()
    return srv


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_uses_absolute_example_paths_and_is_commented(name):
    text = example_text(name)
    values = lib.config_values(text)
    lines = text.splitlines()
    for k, v in values.items():
        if k in PATH_KEYS:
            assert v.startswith("/"), (k, v)
    assert values.get("tls-certificate", "").startswith("/etc/ftpsd/")
    # Each setting is explained by a comment right above it (possibly shared by a
    # group of settings) and the file is mostly explanation.
    for i, line in enumerate(lines):
        s = line.strip()
        if s and not s.startswith("#"):
            j = i - 1
            while j >= 0 and lines[j].strip() and not lines[j].strip().startswith("#"):
                j -= 1
            assert j >= 0 and lines[j].strip().startswith("#") and lines[j].strip() != "#", \
                "%s.conf:%d: %s has no comment above it" % (name, i + 1, s)
    comments = sum(1 for l in lines if l.strip().startswith("#"))
    assert comments > 3 * len(values), (comments, len(values))


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_check_config_passes_and_prints_its_promises(server, ftpsd_bin, cpki,
                                                            anon_account, name):
    srv = example_server(server, cpki, name, anon_account, start=False)
    r = ftpsd(ftpsd_bin, "--config", srv.config_path, "--check-config")
    assert r.returncode == 0, r.stdout + r.stderr
    out, values = printed(ftpsd_bin, srv.config_path)
    for k, v in EXAMPLE_PROMISES[name].items():
        assert values.get(k) == v, (name, k, values.get(k))
    # The example itself (unrewritten) has no syntax error: only missing files.
    r = ftpsd(ftpsd_bin, "--config", os.path.join(POLICY_DIR, name + ".conf"), "--check-config")
    for line in (r.stdout + r.stderr).splitlines():
        assert re.search(r"No such file|Error while reading|cannot|not a directory|"
                         r"no usable|does not exist", line), line


# ---- strict

def test_strict_example_tls12_client_is_refused(server, cpki, anon_account):
    srv = example_server(server, cpki, "strict", anon_account)
    c = Control(srv.port)
    with c:
        c.reply()
        assert c.cmd("AUTH TLS").code == 234
        with pytest.raises(TLS_FAILURES):
            c.starttls(cert_ctx(srv, cpki.carol, maximum_version=ssl.TLSVersion.TLSv1_2))
            c.cmd("USER carol")
    r = failed(curl("--ssl-reqd", "--tls-max", "1.2", "--cacert", srv.cafile, "--cert",
                    cpki.carol[0], "--key", cpki.carol[1],
                    url(srv, "hello.txt", user="carol", password=None)))
    assert r.stdout == b""
    rc, out, err = gnutls_cli(srv, ["USER carol"], cert=cpki.carol,
                              priority="NORMAL:-VERS-ALL:+VERS-TLS1.2")
    assert "Handshake was completed" not in out, out + err


def test_strict_example_certificate_login_everything_private(server, cpki, anon_account):
    srv = example_server(server, cpki, "strict", anon_account)
    with Control(srv.port) as c:
        c.reply()
        r = c.cmd("USER carol")
        assert r.code == 530 and "AUTH TLS" in r.text, r
    ftp = tls_ftp(srv, cert_ctx(srv, cpki.carol))
    assert ftp.sock.version() == "TLSv1.3"
    assert ftp.sendcmd("USER carol").startswith("232")
    ftp.sendcmd("PBSZ 0")
    ftp.sendcmd("PROT C")
    assert refused_before_1xx(ftp, "NLST") == 521
    assert refused_before_1xx(ftp, "RETR hello.txt") == 521
    ftp.prot_p()
    assert "hello.txt" in ftp.nlst()
    assert lib.retr_bytes(ftp, "hello.txt") == HELLO
    ftp.storbinary("STOR strict.txt", io.BytesIO(b"strict upload\n"))
    assert all(ftp.data_resumed)
    assert code_of(ftp.sendcmd, "CCC") == 534
    ftp.quit()
    assert open(os.path.join(srv.root, "strict.txt"), "rb").read() == b"strict upload\n"
    # Unresumed data connections are refused (data-tls-reuse = required).
    ftp = tls_ftp(srv, cert_ctx(srv, cpki.carol), cls=StockFTP_TLS)
    ftp.sendcmd("USER carol")
    ftp.prot_p()
    out = attempt(ftp, "RETR hello.txt")
    assert out.code == 522 and out.data == b"", out
    ftp.quit()
    # curl with the certificate.
    r = ok(curl("--ssl-reqd", "--cacert", srv.cafile, "--cert", cpki.carol[0], "--key",
                cpki.carol[1], url(srv, "sub/inner.txt", user="carol", password=None)))
    assert r.stdout == INNER


def test_strict_example_no_login_without_a_valid_certificate(server, cpki, anon_account):
    srv = example_server(server, cpki, "strict", anon_account)
    # No certificate: no session at all.
    c = Control(srv.port)
    with c:
        c.reply()
        assert c.cmd("AUTH TLS").code == 234
        with pytest.raises(TLS_FAILURES):
            c.starttls(lib.client_context(srv.cafile))
            c.cmd("USER " + USER)
    failed(curl("--ssl-reqd", "--cacert", srv.cafile, url(srv, "hello.txt")))
    # A certificate from another CA: 421 and close.
    c = tls_control(srv, cert_ctx(srv, cpki.mallory))
    with c:
        assert c.reply().code == 421
        c.wait_closed()
    # A valid certificate that is not carol's: carol's password is disabled.
    c = tls_control(srv, cert_ctx(srv, cpki.dave))
    with c:
        assert c.cmd("USER carol").code == 331
        assert c.cmd("PASS " + PASSWORD).code == 530
    # No anonymous access.
    c = tls_control(srv, cert_ctx(srv, cpki.dave))
    with c:
        r = c.cmd("USER anonymous")
        if r.code == 331:
            r = c.cmd("PASS guest@example.org")
        assert r.code == 530, r
    assert "login: user" not in srv.log
    assert "anonymous login" not in srv.log


# ---- compatible

def test_compatible_example_old_and_new_clients(server, cpki, anon_account, tmp_path):
    srv = example_server(server, cpki, "compatible", anon_account)
    # No TLS at all: login, listing and transfers in clear.
    ftp = plain_ftp(srv)
    ftp.login(USER, PASSWORD)
    assert "hello.txt" in ftp.nlst()
    assert lib.retr_bytes(ftp, "hello.txt") == HELLO
    ftp.quit()
    assert ok(curl(url(srv, "hello.txt"))).stdout == HELLO
    r = ok(lftp(srv, ["ls", "cat sub/inner.txt"], tmp_path, user=USER, password=PASSWORD))
    assert b"hello.txt" in r.stdout and INNER in r.stdout
    # A client that cannot resume the session (stock ftplib), PROT P, TLS 1.2 and 1.3.
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = lib.client_context(srv.cafile, minimum_version=v, maximum_version=v)
        ftp = tls_ftp(srv, ctx, cls=StockFTP_TLS)
        ftp.login(USER, PASSWORD)
        ftp.prot_p()
        assert lib.retr_bytes(ftp, "hello.txt") == HELLO
        assert "hello.txt" in ftp.nlst()
        ftp.prot_c()
        assert lib.retr_bytes(ftp, "sub/inner.txt") == INNER
        ftp.quit()
    # curl with TLS 1.2 and TLS, Clear data; CCC for firewalls.
    assert ok(curl("--ssl-reqd", "--tls-max", "1.2", "--cacert", srv.cafile,
                   url(srv, "hello.txt"))).stdout == HELLO
    assert ok(curl("--ftp-ssl-control", "--cacert", srv.cafile,
                   url(srv, "hello.txt"))).stdout == HELLO
    assert ok(curl("--ssl-reqd", "--cacert", srv.cafile, "--ftp-ssl-ccc", "--ftp-ssl-ccc-mode",
                   "active", url(srv, "hello.txt"))).stdout == HELLO
    # A user kept to TLS by the users file stays kept to it.
    failed(curl(url(srv, "hello.txt", user="maint")))
    assert ok(curl("--ssl-reqd", "--cacert", srv.cafile,
                   url(srv, "hello.txt", user="maint"))).stdout == HELLO


# ---- public

def test_public_example_anonymous_downloads_and_lists_but_cannot_change(server, cpki,
                                                                        anon_account, tmp_path):
    srv = example_server(server, cpki, "public", anon_account)
    # Clear: curl and lftp as anonymous.
    assert ok(curl(url(srv, "pub/file.txt", user=None))).stdout == ANON_FILE
    assert b"file.txt" in ok(curl("--list-only", url(srv, "pub/", user=None))).stdout
    r = ok(lftp(srv, ["ls pub", "get pub/file.txt -o %s" % (tmp_path / "got.txt")], tmp_path))
    assert b"file.txt" in r.stdout
    assert (tmp_path / "got.txt").read_bytes() == ANON_FILE
    # TLS with Clear listings and Private files, and all Clear.
    ftp = tls_ftp(srv)
    assert ftp.login("anonymous", "mirror@example.org").startswith("230")
    ftp.sendcmd("PBSZ 0")
    ftp.prot_c()
    assert "file.txt" in basenames(ftp.nlst("pub"))
    assert lib.retr_bytes(ftp, "pub/file.txt") == ANON_FILE
    ftp.prot_p()
    assert lib.retr_bytes(ftp, "pub/file.txt") == ANON_FILE
    assert "file.txt" in basenames(ftp.nlst("pub"))
    # Read-only.
    out = attempt(ftp, "STOR pub/new.txt", upload=b"x")
    assert out.before_1xx and out.code == 550, out
    assert code_of(ftp.sendcmd, "MKD pub/new") == 550
    assert code_of(ftp.sendcmd, "DELE pub/file.txt") == 550
    ftp.quit()
    src = tmp_path / "up.txt"
    src.write_bytes(b"upload\n")
    failed(curl("-T", str(src), url(srv, "pub/up.txt", user=None)))
    failed(lftp(srv, ["put %s -o pub/up2.txt" % src], tmp_path))
    assert os.listdir(os.path.join(srv.anon_root, "pub")) == ["file.txt"]
    # The maintainer cannot log in in clear, and can over TLS.
    with Control(srv.port) as c:
        c.reply()
        assert c.cmd("USER maint").code == 530
    ftp = tls_ftp(srv)
    assert ftp.login("maint", PASSWORD).startswith("230")
    ftp.quit()
    # Passwords of anonymous logins and the downloads are logged.
    assert 'password "mirror@example.org"' in srv.log
    xfer = lib.wait_for(lambda: os.path.exists(srv.xferlog) and open(srv.xferlog).read())
    assert xfer and "file.txt" in xfer, xfer
