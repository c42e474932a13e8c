"""Helpers shared by the ftpsd integration tests.

Everything here is plain code (no fixtures): the raw control-channel
conversation class, the ftplib subclass that resumes the control TLS session
on data connections, the launcher wrapper for one ftpsd instance behind
`systemd-socket-activate --accept`, and /proc readers for the process tests.
Every network operation is bounded by IO_TIMEOUT.
"""

import contextlib
import ftplib
import hashlib
import os
import pwd
import re
import signal
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import time

IO_TIMEOUT = 10  # seconds, every socket operation and client subprocess
START_TIMEOUT = 5

USER = "alice"
PASSWORD = "Wonderland-42"
RO_USER = "reader"
RO_PASSWORD = "Looking-Glass-7"

ROOT = os.geteuid() == 0

HELLO = b"Hello from ftpsd's served root\n"
INNER = b"inner file in sub/\n"

PASV_PORTS = "61000-61999"  # above Linux's ephemeral range (32768-60999)


# --------------------------------------------------------------- control channel

class Reply:
    """One FTP reply: numeric code and its text lines (code stripped from the first/last)."""

    def __init__(self, lines):
        self.lines = lines
        self.code = int(lines[0][:3])
        self.text = lines[0][4:]

    @property
    def first(self):
        return self.lines[0]

    @property
    def body(self):
        """The lines between the first and the last of a multi-line reply."""
        return self.lines[1:-1]

    def __repr__(self):
        return "Reply(%r)" % ("\n".join(self.lines),)


class ConnectionClosed(Exception):
    pass


class Control:
    """A raw FTP control connection, one command and reply at a time.

    c = Control(port); c.reply() -> 220; c.cmd("AUTH TLS") -> 234; c.starttls(ctx); ...
    """

    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT, implicit_context=None,
                 source=None):
        self.host = host
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""
        if implicit_context is not None:
            self.starttls(implicit_context)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv(self):
        try:
            return self.sock.recv(65536)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError):
            return b""

    def read_line(self):
        while b"\n" not in self.buf:
            data = self._recv()
            if not data:
                raise ConnectionClosed("connection closed; unterminated data %r" % (self.buf,))
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """Read one (possibly multi-line) reply."""
        first = self.read_line()
        if not re.match(r"^\d{3}[ -]", first):
            raise AssertionError("malformed reply line %r" % first)
        lines = [first]
        if first[3] == "-":
            end = first[:3] + " "
            while True:
                line = self.read_line()
                lines.append(line)
                if line.startswith(end):
                    break
        return Reply(lines)

    def send(self, line):
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def cmd(self, line):
        self.send(line)
        return self.reply()

    def starttls(self, context):
        assert not self.buf, "unread data before TLS handshake: %r" % self.buf
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host)
        return self.sock

    def login(self, user=USER, password=PASSWORD):
        r = self.cmd("USER " + user)
        assert r.code == 331, r
        r = self.cmd("PASS " + password)
        assert r.code == 230, r
        return r

    def reply_within(self, seconds):
        """A reply if one arrives within `seconds`, else None (connection left usable)."""
        old = self.sock.gettimeout()
        self.sock.settimeout(seconds)
        try:
            return self.reply()
        except (socket.timeout, TimeoutError):
            return None
        finally:
            try:
                self.sock.settimeout(old)
            except OSError:
                pass

    def wait_closed(self, timeout=IO_TIMEOUT):
        """Read until the peer closes; returns what was read. Fails if still open at `timeout`."""
        deadline = time.monotonic() + timeout
        data = self.buf
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("connection still open after %ss (read %r)" % (timeout, data))
            self.sock.settimeout(left)
            try:
                chunk = self._recv()
            except (socket.timeout, TimeoutError):
                raise AssertionError("connection still open after %ss (read %r)" % (timeout, data))
            except (ssl.SSLError, OSError):
                return data
            if not chunk:
                return data
            data += chunk


def secured(srv, tls, login=True, user=USER, password=PASSWORD):
    """A raw Control after 220 and AUTH TLS with the client context `tls` (and a login)."""
    c = Control(srv.port)
    assert c.reply().code == 220
    assert c.cmd("AUTH TLS").code == 234
    c.starttls(tls)
    if login:
        c.login(user, password)
    return c


def client_context(cafile, maximum_version=None, minimum_version=None, no_ticket=False):
    """A client SSLContext that trusts the suite's self-signed certificate (CN=localhost, IP 127.0.0.1)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    if maximum_version is not None:
        ctx.maximum_version = maximum_version
    if minimum_version is not None:
        ctx.minimum_version = minimum_version
    if no_ticket:
        ctx.options |= ssl.OP_NO_TICKET
    return ctx


# ------------------------------------------------------------------------- ftplib

class ReusingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS that resumes the control connection's TLS session on data connections.

    CPython's FTP_TLS never does (CPython issue 63699); servers that require reuse
    refuse it. `passive_cmd` picks EPSV or PASV; `data_resumed` records, per data
    connection, whether the handshake resumed; `session_override` lets a test offer
    some other session (e.g. another control connection's).
    """

    passive_cmd = "EPSV"
    session_override = None

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.data_resumed = []
        self.passive_replies = []

    def makepasv(self):
        if self.passive_cmd == "EPSV":
            resp = self.sendcmd("EPSV")
            self.passive_replies.append(resp)
            return ftplib.parse229(resp, self.sock.getpeername())
        resp = self.sendcmd("PASV")
        self.passive_replies.append(resp)
        return ftplib.parse227(resp)  # use the announced address on purpose

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            session = self.session_override or self.sock.session
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
            self.data_resumed.append(conn.session_reused)
        return conn, size

    def auth_mech(self, mech):
        """AUTH <mech> and the handshake (FTP_TLS.auth only knows TLS/SSL by ssl_version)."""
        if isinstance(self.sock, ssl.SSLSocket):
            raise ValueError("Already using TLS")
        resp = self.voidcmd("AUTH " + mech)
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)
        self.file = self.sock.makefile(mode="r", encoding=self.encoding)
        return resp


class ImplicitFTP_TLS(ReusingFTP_TLS):
    """Implicit FTPS: the TLS handshake comes first, before the 220 greeting."""

    def connect(self, host="", port=0, timeout=-999, source_address=None):
        self.host, self.port = host, port
        sock = socket.create_connection((host, port), self.timeout)
        self.af = sock.family
        self.sock = self.context.wrap_socket(sock, server_hostname=host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


class StockFTP_TLS(ftplib.FTP_TLS):
    """CPython's FTP_TLS unchanged, except that EPSV can be chosen (same as ReusingFTP_TLS)."""

    passive_cmd = "EPSV"

    def makepasv(self):
        if self.passive_cmd == "EPSV":
            return ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
        return ftplib.FTP_TLS.makepasv(self)


def ftp_login(server, cls=ReusingFTP_TLS, context=None, user=USER, password=PASSWORD,
              prot_p=True, passive="EPSV"):
    """Connect, AUTH TLS, log in, PBSZ 0 + PROT P (unless prot_p=False)."""
    ftp = cls(context=context or client_context(server.cafile), timeout=IO_TIMEOUT)
    ftp.passive_cmd = passive
    ftp.connect("127.0.0.1", server.port)
    ftp.auth()
    ftp.login(user, password)
    if prot_p:
        ftp.prot_p()
    return ftp


def quit_quietly(ftp):
    """QUIT, or just close when the session is already gone."""
    try:
        ftp.quit()
    except (ftplib.Error, OSError, EOFError):
        ftp.close()


HIDDEN_UPLOAD = ".ftpsd-upload-"


def tree_usage(root):
    """(bytes, files) as the server counts a tree for quotas: regular files and
    directories below the root, symlinks not followed, hidden upload files left out."""
    nbytes = nfiles = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, n))
            if stat.S_ISDIR(st.st_mode):
                nfiles += 1
            elif stat.S_ISREG(st.st_mode) and not n.startswith(HIDDEN_UPLOAD):
                nfiles += 1
                nbytes += st.st_size
    return nbytes, nfiles


def retr_bytes(ftp, path, blocksize=1 << 20):
    chunks = []
    ftp.retrbinary("RETR " + path, chunks.append, blocksize=blocksize)
    return b"".join(chunks)


def retr_sha256(ftp, path):
    h = hashlib.sha256()
    n = [0]

    def cb(b):
        h.update(b)
        n[0] += len(b)

    ftp.retrbinary("RETR " + path, cb, blocksize=1 << 20)
    return h.hexdigest(), n[0]


def transfer_outcome(ftp, cmd):
    """Run a data command tolerating any data-channel failure.

    Returns (bytes received, final reply line or error text). Used where the test
    is about the server's verdict on the data connection, not ftplib's behaviour.
    """
    data = b""
    try:
        conn = ftp.transfercmd(cmd)
    except ftplib.Error as e:
        return data, str(e)  # refused before any 1xx
    except (ssl.SSLError, OSError):
        conn = None  # 1xx was read, then the data handshake failed
    if conn is not None:
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ssl.SSLError, OSError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass
    try:
        return data, ftp.voidresp()
    except ftplib.Error as e:
        return data, str(e)


def assert_resuming_refused(ftp, session):
    """A data connection of ftp that resumes session (someone else's) is refused: 522,
    no data; ftp's own session still transfers afterwards."""
    ftp.session_override = session
    data, final = transfer_outcome(ftp, "RETR hello.txt")
    assert final.startswith("522"), (final, data)
    assert data == b""
    ftp.session_override = None
    assert retr_bytes(ftp, "hello.txt") == HELLO


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


# ------------------------------------------------------------------------- /proc

def proc_stat(pid):
    """(comm, state, ppid) from /proc/PID/stat, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    return comm, rest[0], int(rest[1])


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children(pid):
    out = []
    for p in all_pids():
        st = proc_stat(p)
        if st and st[2] == pid:
            out.append(p)
    return out


def descendants(pid):
    out = []
    todo = [pid]
    while todo:
        for c in children(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def alive(pid):
    """Running (not gone, not a zombie)."""
    st = proc_stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def proc_comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().rstrip("\n")


def proc_args(pid):
    """The title as `ps -o args` shows it."""
    r = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True,
                       timeout=IO_TIMEOUT)
    return r.stdout.strip()


def wait_for(predicate, timeout=3.0, interval=0.05):
    """Poll `predicate` until truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ------------------------------------------------------------------------ launcher

def tcp_listening(port, ipv6=False):
    """Is 127.0.0.1:port (or [::1]:port) in LISTEN state, checked in /proc/net/tcp(6)
    without connecting: with --accept every probe connection would spawn a session."""
    want = ("00000000000000000000000001000000:%04X" if ipv6 else "0100007F:%04X") % port
    try:
        with open("/proc/net/tcp6" if ipv6 else "/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def free_port(ipv6=False):
    s = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET)
    s.bind(("::1" if ipv6 else "127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def interact(argv, input, timeout=IO_TIMEOUT):
    """Run a client, feed it `input` and keep its stdin open until it exits by itself
    or `timeout` passes. Returns (rc, stdout, stderr) as text."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdin.write(input)
        p.stdin.flush()
    except BrokenPipeError:
        pass
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        out, err = p.communicate(timeout=5)
    except (subprocess.TimeoutExpired, BrokenPipeError, ValueError):
        p.kill()
        out, err = p.communicate()
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def stop_launcher(proc):
    """Stop a launcher (systemd-socket-activate, xinetd) and the sessions it started."""
    pids = descendants(proc.pid) if proc.poll() is None else []
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)
    # Sessions still running after their launcher went away: end them by pid.
    for p in pids:
        if alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Server:
    """One ftpsd behind `systemd-socket-activate --accept -l 127.0.0.1:PORT`.

    Attributes: port, root (served dir), dir, config_path, log_path, cafile, proc.
    `log` is the launcher's and ftpsd's stderr so far.
    """

    def __init__(self, binary, dir, config_path, root, cafile, implicit=False):
        self.binary = binary
        self.dir = dir
        self.config_path = config_path
        self.root = root
        self.cafile = cafile
        self.implicit = implicit
        self.log_path = os.path.join(dir, "ftpsd.log")
        self.proc = None
        self.port = None
        self._logf = None

    @property
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def argv(self):
        a = [self.binary, "--config", self.config_path]
        if self.implicit:
            a.append("--implicit-tls")
        return a

    def start(self, ipv6=False):
        """Launch on a free loopback port, 127.0.0.1 or (ipv6) [::1]."""
        last = None
        for _ in range(3):  # the free port may be taken between probe and bind
            self.port = free_port(ipv6)
            where = ("[::1]:%d" if ipv6 else "127.0.0.1:%d") % self.port
            self._logf = open(self.log_path, "ab")
            env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
            # The launcher passes on only what it is told to: test builds' switches.
            pass_on = [a for k in env if k.startswith("FTPSD_TEST_") for a in ("-E", k)]
            self.proc = subprocess.Popen(
                ["systemd-socket-activate", "--accept"] + pass_on + ["-l", where, "--"]
                + self.argv(),
                stdin=subprocess.DEVNULL, stdout=self._logf, stderr=self._logf,
                start_new_session=True, env=env)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if tcp_listening(self.port, ipv6) and "Listening on" in self.log:
                    return self
                time.sleep(0.02)
            last = self.log
            self.stop()
        raise RuntimeError("systemd-socket-activate did not start listening on %s:\n%s"
                           % (where, last or ""))

    def sessions(self):
        """Pids of the ftpsd processes under the launcher (monitors and children)."""
        if self.proc is None:
            return []
        out = []
        for p in descendants(self.proc.pid):
            st = proc_stat(p)
            if st and st[1] not in ("Z", "X") and st[0] == "ftpsd":
                out.append(p)
        return out

    def monitors(self):
        return [p for p in children(self.proc.pid) if alive(p)]

    def stop(self):
        if self.proc is None:
            return
        stop_launcher(self.proc)
        if self._logf:
            self._logf.close()
            self._logf = None
        self.proc = None


# ------------------------------------------- sandbox and attack tests (shared)

def lftp_command(srv, commands, tmp_path, settings=()):
    """argv and environment for one `lftp -c` session as USER over explicit TLS with
    protected data, its settings and home under tmp_path (the caller runs it)."""
    script = "; ".join([
        "set cmd:fail-exit yes",
        "set net:max-retries 1",
        "set net:timeout %d" % IO_TIMEOUT,
        "set net:reconnect-interval-base 1",
        "set xfer:clobber yes",
        "set ftp:ssl-force true",
        "set ftp:ssl-protect-data true",
        "set ssl:verify-certificate no",
    ] + list(settings) + [
        "open -u %s,%s -p %d 127.0.0.1" % (USER, PASSWORD, srv.port),
    ] + list(commands))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home), LFTP_HOME=str(home / ".lftp"), LC_ALL="C.UTF-8")
    return ["lftp", "-c", script], env


def session_pids(srv, timeout=3):
    """(monitor, child) of the single session running under the launcher."""
    def find():
        monitors = srv.monitors()
        if len(monitors) != 1:
            return None
        kids = [p for p in children(monitors[0]) if alive(p)]
        if len(kids) != 1:
            return None
        return monitors[0], kids[0]

    found = wait_for(find, timeout=timeout)
    assert found, "expected one monitor with one child under pid %d; ftpsd processes: %s" % (
        srv.proc.pid, srv.sessions())
    return found


def proc_limits(pid):
    """{'Max open files': (soft, hard), ...} from /proc/PID/limits ('unlimited' -> None)."""
    out = {}
    with open("/proc/%d/limits" % pid) as f:
        lines = f.read().splitlines()
    for line in lines[1:]:
        name = line[:26].strip()
        fields = line[26:].split()
        vals = [None if v == "unlimited" else int(v) for v in fields[:2]]
        out[name] = tuple(vals)
    return out


def ecdsa_secret(keyfile):
    """The ECDSA private scalar of a PEM key, big-endian, without leading zero bytes."""
    r = subprocess.run(["certtool", "-k", "--infile", keyfile], capture_output=True, text=True,
                       timeout=IO_TIMEOUT, check=True)
    lines = r.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "private key:")
    hexs = ""
    for line in lines[start + 1:]:
        if not line.strip():
            break
        hexs += line.strip().replace(":", "")
    secret = bytes.fromhex(hexs).lstrip(b"\0")
    assert len(secret) >= 24, hexs
    return secret


MEMORY_REGION_LIMIT = 256 << 20


def memory_find(pid, needles):
    """Which of `needles` (bytes) occur in the readable memory of process `pid` (root only:
    /proc/PID/mem of another uid's or a non-dumpable process). Returns (found set, bytes read).
    Regions over MEMORY_REGION_LIMIT (AddressSanitizer's reserved shadow, terabytes of
    untouched pages) are skipped; no region of a normal build comes near that size."""
    found = set()
    total = 0
    overlap = max(len(n) for n in needles)
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    fd = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
    try:
        for line in maps:
            fields = line.split()
            if fields[1][0] != "r" or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if hi - lo > MEMORY_REGION_LIMIT:
                continue
            tail = b""
            pos = lo
            while pos < hi:
                try:
                    chunk = os.pread(fd, min(hi - pos, 8 << 20), pos)
                except OSError:
                    break
                if not chunk:
                    break
                total += len(chunk)
                window = tail + chunk
                for n in needles:
                    if n in window:
                        found.add(n)
                tail = window[-overlap:]
                pos += len(chunk)
    finally:
        os.close(fd)
    return found, total


# ------------------------------------------- command tests (shared): IPv6 launcher

def start_ipv6(srv):
    """Launch `srv` (made with server(start=False)) on [::1] instead of 127.0.0.1."""
    return srv.start(ipv6=True)


# ------------------------------------------- deployment tests (shared): units/, install

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UNITS_SRC = os.path.join(REPO, "units")


def meson_build_dir():
    """The meson build directory $FTPSD_BIN was built in (BUILD/ftpsd/ftpsd), or None
    (e.g. FTPSD_BIN is an installed binary)."""
    binary = os.environ.get("FTPSD_BIN", os.path.join(REPO, "build", "ftpsd", "ftpsd"))
    d = os.path.dirname(os.path.dirname(os.path.abspath(binary)))
    if os.path.isfile(os.path.join(d, "meson-private", "coredata.dat")):
        return d
    return None


def shipped_unit(name):
    """Text of a shipped file from units/: as meson generated it in the build directory
    (ftpsd@.service, xinetd.ftpsd, ... from their .in templates) or the source file."""
    build = meson_build_dir()
    if build is not None and os.path.exists(os.path.join(build, "units", name)):
        path = os.path.join(build, "units", name)
    elif os.path.exists(os.path.join(UNITS_SRC, name)):
        path = os.path.join(UNITS_SRC, name)
    else:
        raise AssertionError("units/%s: neither in the source tree nor generated in %s/units "
                             "(reconfigure the build)" % (name, build))
    with open(path) as f:
        text = f.read()
    assert not re.search(r"@[A-Za-z_]+@", text), "unsubstituted template variable in " + path
    return text


# ------------------------------------------- policy tests (shared): PKI, accounts, configs

def ensure_system_user(name):
    """The passwd entry of system account `name`, created (useradd --system) if missing.
    Only root can create one; otherwise a missing account raises KeyError."""
    import pwd
    try:
        return pwd.getpwnam(name)
    except KeyError:
        if not ROOT:
            raise
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", name], check=True, capture_output=True,
                       timeout=IO_TIMEOUT)
        return pwd.getpwnam(name)


def _certtool(args):
    subprocess.run(["certtool"] + args, check=True, capture_output=True, timeout=30)


def certtool_key(path, key_type="ecdsa"):
    """A private key: ECDSA P-256 by default, or key_type "rsa" (2048 bits) or "ed25519"."""
    args = {"ecdsa": ["--key-type=ecdsa", "--curve=secp256r1"],
            "rsa": ["--key-type=rsa", "--bits=2048"],
            "ed25519": ["--key-type=ed25519"]}[key_type]
    _certtool(["--generate-privkey"] + args + ["--outfile", path])
    os.chmod(path, 0o600)
    return path


def certtool_ca(dir, name, cn):
    """A self-signed CA (ca + cert_signing_key): (cert.pem, key.pem)."""
    key = certtool_key(os.path.join(dir, name + ".key"))
    tmpl = os.path.join(dir, name + ".tmpl")
    with open(tmpl, "w") as f:
        f.write('cn = "%s"\nca\ncert_signing_key\nexpiration_days = 30\n' % cn)
    cert = os.path.join(dir, name + ".pem")
    _certtool(["--generate-self-signed", "--load-privkey", key, "--template", tmpl,
               "--outfile", cert])
    return cert, key


def certtool_cert(dir, name, cn, ca, purpose="tls_www_client", key_type="ecdsa"):
    """A leaf certificate for `cn` signed by ca=(cert, key), with the given key purpose
    (tls_www_client for a TLS client) and key type: (cert.pem, key.pem)."""
    key = certtool_key(os.path.join(dir, name + ".key"), key_type)
    tmpl = os.path.join(dir, name + ".tmpl")
    with open(tmpl, "w") as f:
        f.write('cn = "%s"\n%s\nsigning_key\nexpiration_days = 30\n' % (cn, purpose))
    cert = os.path.join(dir, name + ".pem")
    _certtool(["--generate-certificate", "--load-privkey", key, "--load-ca-certificate", ca[0],
               "--load-ca-privkey", ca[1], "--template", tmpl, "--outfile", cert])
    return cert, key


def cert_sha256(pem_path, colons=False):
    """SHA-256 of the certificate's DER, in hex (AB:CD:... with colons=True), as a
    users-file cert=sha256: pin takes it."""
    with open(pem_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    h = hashlib.sha256(der).hexdigest()
    if colons:
        return ":".join(h[i:i + 2] for i in range(0, len(h), 2)).upper()
    return h


def client_cert_context(cafile, cert=None, key=None, **kw):
    """client_context() that also presents a client certificate (when cert is given)."""
    ctx = client_context(cafile, **kw)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def add_users(srv, lines):
    """Append users-file lines (name:hash:uid:gid:root[:options]) to a server's users file."""
    with open(srv.users_path, "a") as f:
        for line in lines:
            f.write(line + "\n")


def config_values(text):
    """{key: value} of the key = value lines of a configuration text (comments skipped)."""
    out = {}
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#") or "=" not in s:
            continue
        k, _, v = s.partition("=")
        out[k.strip()] = v.strip()
    return out


def rewrite_config(text, values):
    """The configuration text with the keys in `values` set: a key already in the text
    keeps its line and gets the new value, others are appended. Comments stay."""
    out = []
    done = set()
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#") and "=" in s:
            k = s.partition("=")[0].strip()
            if k in values:
                done.add(k)
                out.append("%s = %s" % (k, values[k]))
                continue
        out.append(line)
    for k, v in values.items():
        if k not in done:
            out.append("%s = %s" % (k, v))
    return "\n".join(out) + "\n"


def landlock_abi():
    """The Landlock ABI of this kernel (x86_64), or -1."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syscall(444, None, 0, 1)  # landlock_create_ruleset, VERSION (x86_64)
    except Exception:
        return -1


@contextlib.contextmanager
def pam_system_user(session_dir, tag, pam_text, files, home_base=None):
    """A system user with a random password and a home of its own (files: name -> bytes,
    owned by the user), below session_dir or home_base (e.g. /home), and
    /etc/pam.d/ftpsd-<tag>-<pid> holding pam_text. Yields (name, password, service,
    home); all are removed afterwards."""
    name = "ftpsd-%s%d" % (tag, os.getpid())
    service = "ftpsd-%s-test-%d" % (tag, os.getpid())
    password = "Pam-%s" % os.urandom(6).hex()
    # traversable by the user
    base = tempfile.mkdtemp(prefix="ftpsd-pam-", dir=home_base or session_dir)
    os.chmod(base, 0o755)
    home = os.path.join(base, "home")
    subprocess.run(["userdel", "-f", name], capture_output=True, timeout=IO_TIMEOUT)
    subprocess.run(["useradd", "-m", "-d", home, "-s", "/bin/sh", name], check=True,
                   capture_output=True, timeout=IO_TIMEOUT)
    pam_file = "/etc/pam.d/" + service
    try:
        subprocess.run(["chpasswd"], input="%s:%s\n" % (name, password), text=True, check=True,
                       capture_output=True, timeout=IO_TIMEOUT)
        with open(pam_file, "w") as f:
            f.write(pam_text)
        pw = pwd.getpwnam(name)
        for fname, data in files.items():
            path = os.path.join(home, fname)
            with open(path, "wb") as f:
                f.write(data)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o755)
        yield name, password, service, home
    finally:
        try:
            os.unlink(pam_file)
        except FileNotFoundError:
            pass
        subprocess.run(["userdel", "-f", name], capture_output=True, timeout=IO_TIMEOUT)
        if home_base is not None:
            shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------- how data connections end (close_notify)

def strict_eof_context(cafile, **kw):
    """client_context() that tells the peer's close_notify from a bare TCP close.

    Debian 12's Python 3.11 sets ssl.OP_IGNORE_UNEXPECTED_EOF in every new SSLContext:
    OpenSSL then takes a TCP FIN without close_notify for a clean end (recv() returns
    b"", unwrap() succeeds), so a missing close_notify is never noticed. Without the
    option a bare FIN raises ssl.SSLError with reason UNEXPECTED_EOF_WHILE_READING
    (Python 3.11.2; newer Pythons raise its subclass ssl.SSLEOFError); see
    is_unexpected_eof(). Wrap data sockets with suppress_ragged_eofs=False as well
    (CloseNotifyFTP_TLS does), or recv() turns that error into b"" again."""
    ctx = client_context(cafile, **kw)
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    return ctx


def is_unexpected_eof(exc):
    """Is `exc` OpenSSL's "the peer closed TCP without close_notify"?"""
    return isinstance(exc, ssl.SSLEOFError) or (
        isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None) == "UNEXPECTED_EOF_WHILE_READING")


def _ending(exc):
    if is_unexpected_eof(exc):
        return "eof"  # TCP closed without close_notify
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    return "error: %s: %s" % (type(exc).__name__, exc)


def tls_read_to_end(conn):
    """Read a TLS socket (from strict_eof_context, suppress_ragged_eofs=False) to its end.
    Returns (data, ending): ending is "close_notify" (the peer's close_notify came),
    "eof" (TCP closed without it), "timeout", "reset" or "error: ..."."""
    data = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except (ssl.SSLError, OSError) as e:
            return data, _ending(e)
        if not chunk:
            return data, "close_notify"  # OpenSSL's SSL_ERROR_ZERO_RETURN, as b""
        data += chunk


def tls_unwrap_outcome(conn):
    """Send our close_notify and wait for the peer's (ssl's unwrap()): "close_notify",
    "eof" (the peer closed TCP without one), "timeout", "reset" or "error: ..."."""
    try:
        conn.unwrap()
    except (ssl.SSLError, OSError) as e:
        return _ending(e)
    return "close_notify"


class CloseNotifyFTP_TLS(ReusingFTP_TLS):
    """ReusingFTP_TLS whose data sockets report a missing close_notify (suppress_ragged_eofs
    off); give it a strict_eof_context(). Read them with tls_read_to_end() or end them with
    tls_unwrap_outcome(), not with ftplib's retrbinary/storbinary."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            session = self.session_override or self.sock.session
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session,
                                            suppress_ragged_eofs=False)
            self.data_resumed.append(conn.session_reused)
        return conn, size


# ------------------------------------------- tests/tools/ftps_probe (a GnuTLS client)

FTPS_PROBE = os.environ.get("FTPSD_FTPS_PROBE")  # meson's integration test sets it

PROBE_PRIORITY = {
    "TLSv1.3": "NORMAL:-VERS-ALL:+VERS-TLS1.3",
    "TLSv1.2": "NORMAL:-VERS-ALL:+VERS-TLS1.2",
}


class ProbeResult:
    """What ftps_probe printed: `values` (key -> last value), `prelims` (the 1xx replies),
    `reply` (the final reply line), rc, out, err."""

    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err
        self.values = {}
        self.prelims = []
        for line in out.splitlines():
            k, sep, v = line.partition("=")
            if not sep:
                continue
            if k == "prelim":
                self.prelims.append(v)
            self.values[k] = v
        self.reply = self.values.get("reply", "")

    def get(self, key, default=None):
        return self.values.get(key, default)

    def __getitem__(self, key):
        return self.values[key]

    def __repr__(self):
        return "ProbeResult(rc=%r)\n--- stdout\n%s--- stderr\n%s" % (self.rc, self.out, self.err)


def run_ftps_probe(srv, mode, version="TLSv1.3", user=USER, password=PASSWORD, name=None,
                   input=None, nbytes=None, after=None, bind=None, pasv=False, timeout=5):
    """Run $FTPSD_FTPS_PROBE against `srv` in `mode` (see tests/tools/ftps_probe.c);
    `input` is bytes for the upload modes. The probe bounds each step by `timeout`
    seconds and kills itself at 4 x timeout + 5; this bounds it once more."""
    assert FTPS_PROBE, "FTPSD_FTPS_PROBE is not set"
    argv = [FTPS_PROBE, "--port", str(srv.port), "--cafile", srv.cafile, "--user", user,
            "--password", password, "--priority", PROBE_PRIORITY[version],
            "--timeout", str(timeout)]
    if name is not None:
        argv += ["--name", name]
    if nbytes is not None:
        argv += ["--bytes", str(nbytes)]
    if after is not None:
        argv += ["--after", str(after)]
    if bind is not None:
        argv += ["--bind", bind]
    if pasv:
        argv.append("--pasv")
    argv.append(mode)
    r = subprocess.run(argv, input=input if input is not None else b"", capture_output=True,
                       timeout=4 * timeout + 15)
    return ProbeResult(r.returncode, r.stdout.decode(errors="replace"),
                       r.stderr.decode(errors="replace"))
