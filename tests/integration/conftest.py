"""Fixtures for the ftpsd integration suite (pytest + real clients + a real launcher).

Run:    /usr/bin/python3 -m pytest tests/integration
Binary: $FTPSD_BIN, default <repo>/build/ftpsd/ftpsd.
As root (CI) the server really drops privileges and the root-only assertions run;
as a normal user (development) those are skipped.

Fixtures
  pki       (session) temp dir with an ECDSA P-256 self-signed certificate and key made
            by certtool (CN=localhost, dns_name localhost, ip_address 127.0.0.1), the
            `empty` dir for the child's chroot (root-owned 0755 when root) and the
            password hashes (`openssl passwd -6`).
  accounts  (session) uid/gid the served files belong to and the unprivileged user.
            As root: system users `ftpsd` (unprivileged-user) and `ftpsd-test` (owner
            of the served roots) are created if missing. Otherwise: the caller's ids.
  big_file  (session) 64 MiB of random bytes.
  server    (function) factory: server(implicit=False, start=True, extra="",
            config_text=None, **overrides) -> ftpsd_testlib.Server. Writes a fresh served
            root, a users file (alice, and reader with read-only), a config
            (overrides: data_tls_reuse="off" sets `data-tls-reuse = off`, None drops a
            key), launches `systemd-socket-activate --accept -l 127.0.0.1:PORT -- ftpsd
            --config CONF [--implicit-tls]` on a free port, waits until it listens, and
            stops it at teardown. Server.log is the captured stderr; it is printed at
            teardown so a failing test shows it.
  tls       a client ssl.SSLContext trusting the generated certificate.

A watchdog (SIGALRM) fails any test that runs longer than TEST_TIMEOUT seconds.
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True

import pytest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ftpsd_testlib as lib  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FTPSD_BIN = os.environ.get("FTPSD_BIN", os.path.join(REPO, "build", "ftpsd", "ftpsd"))
TEST_TIMEOUT = 60

CERT_TEMPLATE = """\
cn = "localhost"
dns_name = "localhost"
ip_address = "127.0.0.1"
expiration_days = 30
tls_www_server
signing_key
"""


def run(argv, **kw):
    kw.setdefault("timeout", 30)
    return subprocess.run(argv, check=True, capture_output=True, **kw)


# ------------------------------------------------------------------- watchdog

class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _watchdog():
    def fire(signum, frame):
        raise TestTimeout("test exceeded %ss" % TEST_TIMEOUT)

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(TEST_TIMEOUT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------ session fixtures

@pytest.fixture(scope="session")
def ftpsd_bin(session_dir):
    """A private copy of $FTPSD_BIN: one run tests one binary, even if it is rebuilt
    meanwhile (a relink in progress would otherwise make some launches fail)."""
    if not os.access(FTPSD_BIN, os.X_OK):
        pytest.fail("ftpsd binary not found at %s (set FTPSD_BIN or build it)" % FTPSD_BIN)
    copy = os.path.join(session_dir, "ftpsd")
    for _ in range(50):
        shutil.copy2(FTPSD_BIN, copy)
        os.chmod(copy, 0o755)
        try:
            r = subprocess.run([copy, "--version"], capture_output=True, timeout=10)
            if r.returncode == 0:
                return copy
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("%s --version does not run" % FTPSD_BIN)


@pytest.fixture(scope="session")
def session_dir():
    d = tempfile.mkdtemp(prefix="ftpsd-it-")
    os.chmod(d, 0o755)  # the monitor opens the served roots after becoming the user
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _ensure_system_user(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
        return pwd.getpwnam(name)


class Accounts:
    def __init__(self):
        if lib.ROOT:
            unpriv = _ensure_system_user("ftpsd")
            owner = _ensure_system_user("ftpsd-test")
            self.unprivileged_user = "ftpsd"
            self.unpriv_uid, self.unpriv_gid = unpriv.pw_uid, unpriv.pw_gid
            self.uid, self.gid = owner.pw_uid, owner.pw_gid
        else:
            self.unprivileged_user = None
            self.unpriv_uid = self.unpriv_gid = None
            self.uid, self.gid = os.getuid(), os.getgid()


@pytest.fixture(scope="session")
def accounts():
    return Accounts()


class PKI:
    pass


@pytest.fixture(scope="session")
def pki(session_dir):
    p = PKI()
    p.dir = session_dir
    p.key = os.path.join(session_dir, "key.pem")
    p.cert = os.path.join(session_dir, "cert.pem")
    tmpl = os.path.join(session_dir, "cert.tmpl")
    with open(tmpl, "w") as f:
        f.write(CERT_TEMPLATE)
    run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--curve=secp256r1",
         "--outfile", p.key])
    os.chmod(p.key, 0o600)
    run(["certtool", "--generate-self-signed", "--load-privkey", p.key, "--template", tmpl,
         "--outfile", p.cert])
    p.empty = os.path.join(session_dir, "empty")
    os.mkdir(p.empty)
    os.chmod(p.empty, 0o755)
    if lib.ROOT:
        os.chown(p.empty, 0, 0)
    p.hash = run(["openssl", "passwd", "-6", lib.PASSWORD], text=True).stdout.strip()
    p.ro_hash = run(["openssl", "passwd", "-6", lib.RO_PASSWORD], text=True).stdout.strip()
    return p


@pytest.fixture(scope="session")
def big_file(session_dir):
    path = os.path.join(session_dir, "big.bin")
    with open(path, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    os.chmod(path, 0o644)
    return path


@pytest.fixture
def tls(pki):
    return lib.client_context(pki.cert)


# ------------------------------------------------------------- server factory

DEFAULTS = {
    "control-tls": "required",
    "data-tls": "required",
    "data-tls-reuse": "required",
    "pasv-ports": lib.PASV_PORTS,
    "login-failure-delay": "100ms",
    "max-login-failures": "3",
    "login-timeout": "20s",
    "idle-timeout": "30s",
    "banner": "ftpsd integration test",
}


def populate_root(d, root, accounts):
    """The served tree, and a marker outside it that no path may reach."""
    os.makedirs(os.path.join(root, "sub", "deeper"))
    with open(os.path.join(root, "hello.txt"), "wb") as f:
        f.write(lib.HELLO)
    with open(os.path.join(root, "sub", "inner.txt"), "wb") as f:
        f.write(lib.INNER)
    outside = os.path.join(d, "outside")
    os.mkdir(outside)
    secret = os.path.join(outside, "secret.txt")
    with open(secret, "wb") as f:
        f.write(b"OUTSIDE-THE-ROOT-SECRET\n")
    os.chmod(secret, 0o644)  # readable by anyone: only the path resolution may protect it
    os.symlink("/etc", os.path.join(root, "etc-link"))
    os.symlink("/etc/passwd", os.path.join(root, "passwd-link"))
    os.symlink(secret, os.path.join(root, "secret-abs-link"))
    os.symlink("../outside/secret.txt", os.path.join(root, "secret-rel-link"))
    os.symlink("../..", os.path.join(root, "sub", "up-link"))
    # For write attempts: a link out of the root that lands in this temp dir, never in
    # /etc (a broken server running as root must not be able to damage the host).
    os.symlink(outside, os.path.join(root, "outside-abs-link"))
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p) and os.path.isfile(p):
                os.chmod(p, 0o644)
    if lib.ROOT:
        for dirpath, dirnames, filenames in os.walk(root):
            os.lchown(dirpath, accounts.uid, accounts.gid)
            for n in dirnames + filenames:
                os.lchown(os.path.join(dirpath, n), accounts.uid, accounts.gid)


def _own_runtime_dir(text, path):
    """The server's own runtime-dir in a given configuration, without moving any line
    (tests read errors by line number): it takes the place of the first comment or blank
    line before any [host]; else it goes at the end of a text without sections, or
    before the first one."""
    if re.search(r"^\s*runtime-dir\s*=", text, re.M):
        return text
    lines = text.split("\n")
    line = "runtime-dir = %s" % path
    for i, l in enumerate(lines):
        s = l.strip()
        if s.startswith("["):
            break
        if (s == "" or s.startswith("#")) and i < len(lines) - 1:
            lines[i] = line
            return "\n".join(lines)
    for i, l in enumerate(lines):
        if l.strip().startswith("["):
            lines.insert(i, line)
            return "\n".join(lines)
    return text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"


@pytest.fixture
def server(request, ftpsd_bin, session_dir, pki, accounts):
    started = []
    counter = [0]

    def make(implicit=False, start=True, extra="", config_text=None, **overrides):
        counter[0] += 1
        d = tempfile.mkdtemp(prefix="srv-", dir=session_dir)
        os.chmod(d, 0o755)
        root = os.path.join(d, "root")
        os.mkdir(root)
        populate_root(d, root, accounts)
        users = os.path.join(d, "users")
        with open(users, "w") as f:
            f.write("%s:%s:%d:%d:%s\n" % (lib.USER, pki.hash, accounts.uid, accounts.gid, root))
            f.write("%s:%s:%d:%d:%s:read-only\n"
                    % (lib.RO_USER, pki.ro_hash, accounts.uid, accounts.gid, root))
        conf = os.path.join(d, "ftpsd.conf")
        if config_text is None:
            values = {
                "tls-certificate": pki.cert,
                "tls-key": pki.key,
                "users-file": users,
                "empty-dir": pki.empty,
                # Made by the first session (0600), like /run/ftpsd/ticket-secret.
                "tls-ticket-secret": os.path.join(d, "ticket-secret"),
                # Its own session limits and records: parallel tests share none.
                "runtime-dir": os.path.join(d, "run"),
            }
            if accounts.unprivileged_user:
                values["unprivileged-user"] = accounts.unprivileged_user
            values.update(DEFAULTS)
            for k, v in overrides.items():
                values[k.replace("_", "-")] = v
            config_text = "# written by tests/integration/conftest.py\n"
            config_text += "".join("%s = %s\n" % (k, v) for k, v in values.items()
                                   if v is not None)
            config_text += extra
        else:
            config_text = config_text.format(cert=pki.cert, key=pki.key, users=users,
                                             empty=pki.empty, root=root)
            config_text = _own_runtime_dir(config_text, os.path.join(d, "run"))
        with open(conf, "w") as f:
            f.write(config_text)
        srv = lib.Server(ftpsd_bin, d, conf, root, pki.cert, implicit=implicit)
        srv.users_path = users
        srv.config_text = config_text
        srv.accounts = accounts
        srv.pki = pki
        started.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    reports = []
    for srv in started:
        srv.stop()
        log = srv.log
        if log:
            print("----- server log (%s, port %s) -----\n%s" % (srv.config_path, srv.port, log))
        # A sanitizer report (ASan/UBSan builds) fails the test that caused it,
        # whatever the client saw.
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                reports.append("%s in the log of %s" % (marker, srv.config_path))
    if reports:
        pytest.fail("; ".join(reports))
