"""Real FTPS clients that people deploy, against ftpsd at its default settings
(data-tls-reuse = required, TLS 1.3), each listing, downloading and uploading with
the bytes compared against the served root:

  rclone      Debian's rclone (Go crypto/tls via jlaffaye/ftp): explicit and implicit
              TLS, lsf / copy down / copy up / check --download, and the acceptance
              run of issue "real clients": sync, copy and check of 200 files at
              rclone's default concurrency (several connections), five runs.
  wget        GnuTLS; explicit and implicit (--ftps-implicit). wget cannot upload:
              listing, one file, and a recursive download.
  PHP         ext/ftp in php-cli (ftp_ssl_connect, OpenSSL): any warning or notice
              fails the test (clients/ftps_client.php).
  basic-ftp   the npm package on Node's tls, installed once per build directory
              (<build>/npm-clients), explicit and implicit (clients/basic_ftp_client.js).
  commons-net Apache commons-net FTPSClient on the JDK (clients/FtpsCommonsNet.java,
              compiled once per session): the JDK cannot resume a session on another
              socket, so it runs with data-tls-reuse = off, over TLS 1.3 and 1.2; with
              the default (required) the server must refuse it promptly with 522.

Each client runs as a subprocess with a timeout; every client's version is printed
and recorded as a property of the junit test suite ("client NAME"). A client that is
not installed is skipped (tests/run.sh installs them all on Debian 12).
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import PASSWORD, ROOT, USER, sha256_file

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(HERE, "clients")
CLIENT_TIMEOUT = 40       # one client process; the suite's watchdog is 60 s per test
KIB = 1024

BASIC_FTP_VERSION = os.environ.get("FTPSD_BASIC_FTP_VERSION", "6.2.6")
COMMONS_NET_JAR = "/usr/share/java/commons-net.jar"


def run(argv, env=None, timeout=CLIENT_TIMEOUT, cwd=None):
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, timeout=timeout, env=env, cwd=cwd)
    r.seconds = time.monotonic() - t0
    r.out = r.stdout.decode("utf-8", "replace")
    r.err = r.stderr.decode("utf-8", "replace")
    print("$ %s\n  (%.2f s, rc=%d)" % (" ".join(str(a) for a in argv), r.seconds, r.returncode))
    return r


def ok(r, what=""):
    assert r.returncode == 0, "%s rc=%d\nstdout:\n%s\nstderr:\n%s" % (
        what, r.returncode, r.out[-4000:], r.err[-6000:])
    return r


_recorded_versions = set()


def client_version(record_testsuite_property, name, version):
    """Print the version of a client and record it, once, as a property of the test
    suite in the junit XML (meson-logs/integration.xml): "client NAME" = version."""
    print("client version: %s %s" % (name, version))
    if (name, version) not in _recorded_versions:
        _recorded_versions.add((name, version))
        record_testsuite_property("client " + name, version)


def needs(*programs):
    missing = [p for p in programs if shutil.which(p) is None]
    return pytest.mark.skipif(bool(missing), reason="not installed: %s" % ", ".join(missing))


# ------------------------------------------------------------------- trees

def owned(srv, path):
    """Give a path under the served root to the served user (as root)."""
    if ROOT:
        os.chown(path, srv.accounts.uid, srv.accounts.gid)


def serve_tree(srv, rel, files):
    """Write files ({relative name: bytes}) under srv.root/rel, owned by the user."""
    top = os.path.join(srv.root, rel)
    for name, data in files.items():
        path = os.path.join(top, name)
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
    for dirpath, dirnames, filenames in os.walk(top):
        os.chmod(dirpath, 0o755)
        owned(srv, dirpath)
        for n in filenames:
            owned(srv, os.path.join(dirpath, n))
    return top


def local_tree(top, files):
    for name, data in files.items():
        path = os.path.join(str(top), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return str(top)


def tree_digests(top):
    """{relative path: sha256} of every regular file under top."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for n in filenames:
            path = os.path.join(dirpath, n)
            out[os.path.relpath(path, str(top))] = sha256_file(path)
    return out


def assert_same_tree(got, expected):
    g, e = tree_digests(got), tree_digests(expected)
    assert sorted(g) == sorted(e), "files differ: only in %s: %s; only in %s: %s" % (
        got, sorted(set(g) - set(e))[:20], expected, sorted(set(e) - set(g))[:20])
    bad = sorted(n for n in g if g[n] != e[n])
    assert not bad, "contents differ: %s" % bad[:20]


def small_files(count, prefix="", dirs=1, large=()):
    """`count` files of 1-8 KiB of random bytes spread over `dirs` directories, plus
    files of the sizes in `large`."""
    files = {}
    for i in range(count):
        d = "d%d/" % (i % dirs) if dirs > 1 else ""
        files["%s%sf%03d.bin" % (prefix, d, i)] = os.urandom(KIB + (i * 977) % (7 * KIB))
    for i, size in enumerate(large):
        files["%slarge%d.bin" % (prefix, i)] = os.urandom(size)
    return files


def basic_files():
    """What the per-client tests serve: small files, one in a subdirectory, one of 1 MiB."""
    return {
        "one.bin": os.urandom(5 * KIB + 3),
        "two.txt": b"two\r\nlines\n",
        "big.bin": os.urandom(1 << 20),
        "sub/three.bin": os.urandom(3 * KIB),
    }


# ------------------------------------------------------------------ rclone

class Rclone:
    """rclone with an ftp remote `ftpsd:` in a config file of its own.

    The certificate is verified: rclone 1.60's FTP backend ignores --ca-cert and uses
    the system roots, which Go's crypto/x509 takes from SSL_CERT_FILE."""

    def __init__(self, srv, tmp_path, implicit=False, flags=()):
        home = tmp_path / "rclone-home"
        home.mkdir(exist_ok=True)
        self.env = dict(os.environ, HOME=str(home), SSL_CERT_FILE=srv.cafile,
                        XDG_CONFIG_HOME=str(home), XDG_CACHE_HOME=str(home))
        obscured = ok(run(["rclone", "obscure", PASSWORD], env=self.env)).out.strip()
        self.config = str(tmp_path / "rclone.conf")
        with open(self.config, "w") as f:
            f.write("[ftpsd]\ntype = ftp\nhost = 127.0.0.1\nport = %d\nuser = %s\npass = %s\n%s\n"
                    % (srv.port, USER, obscured,
                       "tls = true" if implicit else "explicit_tls = true"))
        self.flags = list(flags)

    def __call__(self, *args, timeout=CLIENT_TIMEOUT):
        r = run(["rclone", "--config", self.config, "--contimeout", "10s", "--timeout", "20s"]
                + self.flags + list(args), env=self.env, timeout=timeout)
        lines = r.err.splitlines()
        # `check` without --download logs "ERROR : No common hash found" (FTP has no
        # hashes; it compares sizes): not an error of the transfer.
        errors = [line for line in lines if " ERROR " in line and "No common hash" not in line]
        causes = sorted(set(line.strip() for line in lines if line.startswith("\t* ")))
        assert r.returncode == 0 and not errors, "rclone %s: rc=%d\n%s\ncauses: %s" % (
            " ".join(args), r.returncode, "\n".join(errors[:20]) or r.err[-4000:], causes)
        return r


# rclone's defaults open up to 4 transfers + 8 checkers, each its own FTP
# connection: hence max-sessions-per-address's default 16 (behind the shipped
# socket unit's old MaxConnectionsPerSource=8 the ninth was closed without a
# word). The tests run with that default.


def rclone_version():
    r = run(["rclone", "version"])
    return r.out.splitlines()[0].split()[-1] if r.returncode == 0 and r.out else "unknown"


def rclone_round_trip(srv, tmp_path, rc):
    files = basic_files()
    served = serve_tree(srv, "data", files)
    # list
    r = rc("lsf", "-R", "ftpsd:data")
    assert sorted(r.out.split()) == sorted(list(files) + ["sub/"]), r.out
    # download
    down = tmp_path / "down"
    rc("copy", "ftpsd:data", str(down))
    assert_same_tree(down, served)
    # upload
    up = local_tree(tmp_path / "up", small_files(12, large=[300 * KIB], dirs=3))
    rc("copy", up, "ftpsd:up")
    assert_same_tree(os.path.join(srv.root, "up"), up)
    # and rclone's own byte comparison (FTP has no hashes: --download reads both sides)
    r = rc("check", "--download", up, "ftpsd:up")
    assert "0 differences found" in r.err, r.err


@needs("rclone")
@pytest.mark.parametrize("flags", [(), ("--ftp-concurrency", "1")],
                         ids=["defaults", "one-connection"])
def test_rclone_explicit(server, tmp_path, record_testsuite_property, flags):
    """lsf, copy down, copy up and check --download over explicit TLS. `defaults` is
    rclone's defaults (4 transfers and 8 checkers, each on its own FTP connection);
    `one-connection` (--ftp-concurrency 1) shows whether only several connections fail."""
    client_version(record_testsuite_property, "rclone", rclone_version())
    srv = server()
    rclone_round_trip(srv, tmp_path, Rclone(srv, tmp_path, flags=flags))


@needs("rclone")
def test_rclone_implicit(server, tmp_path, record_testsuite_property):
    """Implicit TLS: every client waits for the 220 after the handshake, and GnuTLS
    clients (wget --ftps-implicit) take the session they resume right then, so each
    control connection gets a ticket before login, under its own process's key (the
    README's client table). rclone shares one session cache among its connections, so
    with implicit TLS it needs --ftp-concurrency 1 (with explicit TLS, its usual mode,
    the defaults work: test_rclone_explicit, test_rclone_200_files)."""
    client_version(record_testsuite_property, "rclone", rclone_version())
    srv = server(implicit=True)
    rclone_round_trip(srv, tmp_path, Rclone(srv, tmp_path, implicit=True,
                                            flags=["--ftp-concurrency", "1"]))


@needs("rclone")
@pytest.mark.parametrize("run_no", range(1, 6), ids=lambda n: "run%d" % n)
def test_rclone_200_files(server, tmp_path, record_testsuite_property, run_no):
    """The issue's acceptance test: rclone sync, copy and check of 200 files with
    rclone's default settings (several parallel FTP connections), five runs, no error.
    Debian 12's rclone 1.60 keeps one TLS session cache for all its connections to a
    host (one entry, keyed by the host name), so a data connection offers the ticket
    that whichever connection handshook last received (rclone issue 7234, fixed in
    rclone 1.64 with a cache per connection)."""
    client_version(record_testsuite_property, "rclone", rclone_version())
    srv = server()
    rc = Rclone(srv, tmp_path)
    src = local_tree(tmp_path / "src", small_files(197, dirs=4,
                                                   large=[256 * KIB, 512 * KIB, 1 << 20]))
    t0 = time.monotonic()
    rc("sync", src, "ftpsd:tree")
    assert_same_tree(os.path.join(srv.root, "tree"), src)
    down = tmp_path / "down"
    rc("copy", "ftpsd:tree", str(down))
    assert_same_tree(down, src)
    # sizes (FTP gives no hashes); the bytes were compared above
    r = rc("check", src, "ftpsd:tree")
    assert "0 differences found" in r.err and "200 matching files" in r.err, r.err
    print("run %d: sync + copy + check of 200 files in %.1f s"
          % (run_no, time.monotonic() - t0))


# -------------------------------------------------------------------- wget

def wget(srv, *args, tmp_path):
    home = tmp_path / "wget-home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home))
    return run(["wget", "-nv", "--tries=1", "--timeout=10", "--ca-certificate=" + srv.cafile]
               + list(args), env=env, cwd=str(tmp_path))


def wget_url(srv, path):
    return "ftps://%s:%s@127.0.0.1:%d/%s" % (USER, PASSWORD, srv.port, path)


def wget_version():
    r = run(["wget", "--version"])
    m = re.match(r"GNU Wget (\S+)", r.out)
    return m.group(1) if m else "unknown"


@needs("wget")
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_wget(server, tmp_path, record_testsuite_property, implicit):
    """wget's ftps:// is explicit TLS unless --ftps-implicit. wget cannot upload: the
    listing (an HTML index), one file and a recursive download are compared."""
    client_version(record_testsuite_property, "wget", wget_version())
    srv = server(implicit=implicit)
    files = basic_files()
    served = serve_tree(srv, "data", files)
    extra = ["--ftps-implicit"] if implicit else []

    r = ok(wget(srv, *extra, "-O", "index.html", wget_url(srv, "data/"), tmp_path=tmp_path),
           "listing")
    index = (tmp_path / "index.html").read_text(errors="replace")
    for name in ("one.bin", "two.txt", "big.bin", "sub"):
        assert name in index, index

    r = ok(wget(srv, *extra, "-O", "big.bin", wget_url(srv, "data/big.bin"), tmp_path=tmp_path),
           "download")
    assert sha256_file(tmp_path / "big.bin") == sha256_file(os.path.join(served, "big.bin"))
    print(r.err)

    out = tmp_path / "mirror"
    ok(wget(srv, *extra, "-r", "-nH", "-np", "-P", str(out), wget_url(srv, "data/"),
            tmp_path=tmp_path), "recursive download")
    assert_same_tree(out / "data", served)


# --------------------------------------------------------------------- PHP

def php_version():
    r = run(["php", "-r", 'echo PHP_VERSION, " (", OPENSSL_VERSION_TEXT, ")";'])
    return r.out.strip() if r.returncode == 0 else "unknown"


@needs("php")
def test_php_ftp_ssl(server, tmp_path, record_testsuite_property):
    """PHP's ext/ftp: ftp_ssl_connect, ftp_login, ftp_pasv, ftp_nlist, ftp_rawlist,
    ftp_get, ftp_put. Any PHP warning or notice fails the test (with OpenSSL 3 a data
    connection closed without close_notify gives "SSL_read on shutdown: ... unexpected
    eof while reading")."""
    r = run(["php", "-m"])
    if "ftp" not in r.out.split():
        pytest.skip("PHP has no ftp extension (Debian: php-cli ships it in php8.2-common)")
    client_version(record_testsuite_property, "php", php_version())
    srv = server()
    files = basic_files()
    served = serve_tree(srv, "data", files)
    got = tmp_path / "got.bin"
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(700 * KIB + 11))

    r = run(["php", "-d", "display_errors=stderr", "-d", "display_startup_errors=1",
             "-d", "error_reporting=-1", os.path.join(CLIENTS, "ftps_client.php"),
             str(srv.port), USER, PASSWORD, "data", "data/big.bin", str(got), str(upload),
             "data/php-upload.bin"])
    print(r.out)
    print(r.err)
    assert "DONE" in r.out, "the PHP client did not finish: rc=%d\n%s\n%s" % (
        r.returncode, r.out, r.err)
    nlist = [json.loads(line[6:]) for line in r.out.splitlines() if line.startswith("NLIST ")]
    assert {os.path.basename(n) for n in nlist[0]} == {"one.bin", "two.txt", "big.bin", "sub"}
    assert "php-upload.bin" in {os.path.basename(n) for n in nlist[1]}
    assert sha256_file(got) == sha256_file(os.path.join(served, "big.bin"))
    assert sha256_file(os.path.join(served, "php-upload.bin")) == sha256_file(upload)
    failures = [line for line in r.err.splitlines() if line.startswith("FAILED")]
    assert not failures, "\n".join(failures)
    # the handler's lines, and PHP's own for anything raised outside it
    php_own = re.compile(r"^(PHP )?(Warning|Notice|Deprecated|Fatal error)")
    diagnostics = [line for line in (r.out + r.err).splitlines()
                   if "PHP DIAGNOSTIC" in line or php_own.match(line)]
    assert not diagnostics, "PHP raised:\n" + "\n".join(diagnostics)
    assert r.returncode == 0, r.err


# --------------------------------------------------------------- basic-ftp

def npm_cache_dir(session_dir):
    """Where basic-ftp is installed: <build>/npm-clients for the build of $FTPSD_BIN
    (kept between runs), else a directory of this session."""
    build = os.environ.get("FTPSD_BUILD_DIR") or lib.meson_build_dir()
    if build:
        return os.path.join(build, "npm-clients")
    return os.path.join(session_dir, "npm-clients")


NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT",
                  "ENETUNREACH", "EHOSTUNREACH", "network", "fetch failed", "socket hang up")


@pytest.fixture(scope="session")
def basic_ftp(session_dir):
    """NODE_PATH and version of basic-ftp@BASIC_FTP_VERSION, installed with npm once
    into npm_cache_dir(). Skipped only if the npm registry cannot be reached."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node or npm not installed (Debian: nodejs npm)")
    prefix = npm_cache_dir(session_dir)
    modules = os.path.join(prefix, "node_modules")
    pkg = os.path.join(modules, "basic-ftp", "package.json")

    def installed():
        try:
            with open(pkg) as f:
                return json.load(f).get("version")
        except (OSError, ValueError):
            return None

    if installed() != BASIC_FTP_VERSION:
        os.makedirs(prefix, exist_ok=True)
        argv = ["npm", "install", "--prefix", prefix, "--cache", os.path.join(prefix, "cache"),
                "--no-audit", "--no-fund", "--no-save", "--no-package-lock",
                "--no-update-notifier", "--fetch-retries=1", "--fetch-timeout=15000",
                "basic-ftp@" + BASIC_FTP_VERSION]
        try:
            r = run(argv, env=dict(os.environ, HOME=prefix), timeout=45)
        except subprocess.TimeoutExpired:
            pytest.skip("npm install basic-ftp@%s took over 45 s: registry unreachable?"
                        % BASIC_FTP_VERSION)
        if r.returncode != 0:
            text = r.out + r.err
            if any(e in text for e in NETWORK_ERRORS):
                pytest.skip("npm registry unreachable: npm install basic-ftp@%s: %s"
                            % (BASIC_FTP_VERSION, text.strip()[-500:]))
            pytest.fail("npm install basic-ftp@%s failed: %s" % (BASIC_FTP_VERSION, text[-2000:]))
    version = installed()
    assert version == BASIC_FTP_VERSION, "%s has version %r" % (pkg, version)
    return modules, version


@pytest.mark.parametrize("mode", ["explicit", "implicit"])
def test_node_basic_ftp(server, tmp_path, record_testsuite_property, basic_ftp, mode):
    """basic-ftp with secure: true (AUTH TLS) or "implicit", CA pinned to the suite's
    certificate; it resumes the control session on data connections."""
    modules, version = basic_ftp
    node = run(["node", "--version"]).out.strip()
    client_version(record_testsuite_property, "basic-ftp", "%s (node %s)" % (version, node))
    srv = server(implicit=(mode == "implicit"))
    files = basic_files()
    served = serve_tree(srv, "data", files)
    got = tmp_path / "got.bin"
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(700 * KIB + 11))

    r = run(["node", os.path.join(CLIENTS, "basic_ftp_client.js"), str(srv.port), srv.cafile,
             USER, PASSWORD, mode, "data", "data/big.bin", str(got), str(upload),
             "data/node-upload.bin"], env=dict(os.environ, NODE_PATH=modules))
    steps = []
    for line in r.out.splitlines():
        try:
            steps.append(json.loads(line))
        except ValueError:
            pass
    log = [s for s in steps if s.get("step") == "log"]
    if log:
        print("\n".join(log[0]["lines"]))
    ok(r, "basic-ftp")
    lists = [dict(s["names"]) for s in steps if s.get("step") == "list"]
    assert set(lists[0]) == {"one.bin", "two.txt", "big.bin", "sub"}, lists[0]
    assert lists[0]["big.bin"] == 1 << 20
    assert lists[1].get("node-upload.bin") == upload.stat().st_size, lists[1]
    assert sha256_file(got) == sha256_file(os.path.join(served, "big.bin"))
    assert sha256_file(os.path.join(served, "node-upload.bin")) == sha256_file(upload)


# ------------------------------------------------------------- commons-net

@pytest.fixture(scope="session")
def commons_net(session_dir):
    """The class path of clients/FtpsCommonsNet.java, compiled once per session."""
    for prog, pkg in (("java", "default-jre-headless"), ("javac", "default-jdk-headless")):
        if shutil.which(prog) is None:
            pytest.skip("%s not installed (Debian: %s)" % (prog, pkg))
    if not os.path.exists(COMMONS_NET_JAR):
        pytest.skip("%s missing (Debian: libcommons-net-java)" % COMMONS_NET_JAR)
    classes = os.path.join(session_dir, "java-classes")
    os.makedirs(classes, exist_ok=True)
    ok(run(["javac", "-nowarn", "-cp", COMMONS_NET_JAR, "-d", classes,
            os.path.join(CLIENTS, "FtpsCommonsNet.java")], timeout=50), "javac")
    return COMMONS_NET_JAR + os.pathsep + classes


JAVA_TLS = {"tls1.3": "TLSv1.3", "tls1.2": "TLSv1.2"}


def java_client(classpath, srv, tls, ops, timeout=CLIENT_TIMEOUT):
    argv = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
            "-Djdk.tls.client.protocols=" + JAVA_TLS[tls],
            "-cp", classpath, "FtpsCommonsNet", str(srv.port), srv.cafile, USER, PASSWORD] + ops
    r = run(argv, timeout=timeout)
    print(r.out)
    print(r.err[-4000:])
    m = re.search(r"^VERSION java=(\S+) commons-net=(\S+)", r.out, re.M)
    version = "%s (JDK %s)" % (m.group(2), m.group(1)) if m else "unknown"
    results = [line for line in r.out.splitlines() if line.startswith("OP ")]
    return r, version, results


@pytest.mark.parametrize("tls", ["tls1.3", "tls1.2"])
def test_java_commons_net(server, tmp_path, record_testsuite_property, commons_net, tls):
    """commons-net FTPSClient (explicit TLS, PBSZ 0, PROT P, passive) with
    data-tls-reuse = off, as the README says for Java: listFiles, retrieveFile and
    storeFile, each with a 226. At the end of a TLS 1.3 upload the JDK sends the alerts
    user_canceled and close_notify; the upload must still be complete."""
    srv = server(data_tls_reuse="off")
    files = basic_files()
    served = serve_tree(srv, "data", files)
    got = tmp_path / "got.bin"
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(700 * KIB + 11))
    ops = ["list:/data", "get:data/big.bin:%s" % got, "put:%s:data/java-upload.bin" % upload,
           "list:/data"]
    r, version, out = java_client(commons_net, srv, tls, ops)
    client_version(record_testsuite_property, "commons-net", version)
    assert re.search(r"^CONTROL %s$" % JAVA_TLS[tls], r.out, re.M), r.out
    assert [line.split()[1] for line in out] == ops, "results:\n%s\n%s" % (r.out, r.err[-3000:])
    names = dict(n.split("=", 1) for n in re.search(r" names=(\S*)", out[0]).group(1).split(","))
    assert set(names) == {"one.bin", "two.txt", "big.bin", "sub"}, names
    assert " ok=true " in out[1] and " reply=226 " in out[1], out[1]
    assert sha256_file(got) == sha256_file(os.path.join(served, "big.bin"))
    assert " ok=true " in out[2] and " reply=226 " in out[2], out[2]
    assert sha256_file(os.path.join(served, "java-upload.bin")) == sha256_file(upload)
    assert "java-upload.bin=%d" % upload.stat().st_size in out[3], out[3]
    ok(r, "commons-net")


@pytest.mark.parametrize("tls", ["tls1.3", "tls1.2"])
def test_java_commons_net_refused_when_reuse_required(server, record_testsuite_property,
                                                       commons_net, tls):
    """With the default data-tls-reuse = required the JDK's data connection (a full
    handshake) must be refused at once and explicitly: retrieveFile returns or throws
    within seconds, and the server's reply is 522, not a hang until a timeout."""
    srv = server()
    serve_tree(srv, "data", {"one.bin": os.urandom(5 * KIB)})
    r, version, out = java_client(commons_net, srv, tls, ["refused:data/one.bin"], timeout=30)
    client_version(record_testsuite_property, "commons-net", version)
    m = re.search(r"^REFUSED returned=(\S+) ms=(\d+) thrown=(.*) reply=(.*)$", r.out, re.M)
    assert m, "no verdict from the client:\n%s\n%s" % (r.out, r.err[-3000:])
    returned, ms, thrown, reply = m.group(1), int(m.group(2)), m.group(3), m.group(4)
    assert returned == "false", "the transfer succeeded without resumption: " + r.out
    assert ms < 5000, "the refusal took %d ms (thrown: %s)" % (ms, thrown)
    assert reply.startswith("522 "), "reply %r (thrown: %s)" % (reply, thrown)
