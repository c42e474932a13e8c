"""Scale-out behind HAProxy, as README "Running many servers" describes it: two
ftpsd backends (two launchers on 127.0.0.1, each its own passive range, one
served tree), one real HAProxy on 127.0.0.5 running the shipped
units/haproxy.cfg.example with only its addresses, ports and check interval
replaced. Clients connect from 127.0.0.3 and only ever to the balancer: curl
(EPSV, its default), curl --disable-epsv, lftp with its defaults and ftplib
with TLS session reuse. data-tls-reuse stays required throughout."""

import ftplib
import os
import re
import shutil
import socket
import struct
import subprocess
import time

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import IO_TIMEOUT, PASSWORD, USER, ReusingFTP_TLS, client_context, wait_for

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

pytestmark = pytest.mark.skipif(not os.path.exists(HAPROXY), reason="haproxy is not installed")

BALANCER = "127.0.0.5"  # where clients connect; what PASV announces
BACKEND = "127.0.0.1"   # both backends' launchers, and where HAProxy connects from
CLIENT = "127.0.0.3"
THIEF = "127.0.0.2"
RANGE = 20              # passive ports per backend

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def example_path():
    return os.path.join(lib.UNITS_SRC, "haproxy.cfg.example")


def listening(addr, port):
    """addr:port in LISTEN state (read from /proc: a probe connection would be
    a session, or a data connection)."""
    want = "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(addr))[0], port)
    with open("/proc/net/tcp") as f:
        return any(l.split()[1] == want and l.split()[3] == "0A" for l in f.readlines()[1:])


def free_range(n, taken=()):
    """n consecutive ports, free on the balancer's and the backends' address."""
    for base in range(62000, 64000, n):
        ports = range(base, base + n)
        if any(p in taken for p in ports):
            continue
        ok = True
        for addr in (BALANCER, BACKEND):
            for p in ports:
                s = socket.socket()
                try:
                    s.bind((addr, p))
                except OSError:
                    ok = False
                finally:
                    s.close()
                if not ok:
                    break
            if not ok:
                break
        if ok:
            return base, base + n - 1
    raise RuntimeError("no free port range")


class Layout:
    pass


@pytest.fixture
def layout(server, tmp_path):
    lay = Layout()
    lay.ranges = [free_range(RANGE)]
    lay.ranges.append(free_range(RANGE, taken=range(lay.ranges[0][0], lay.ranges[0][1] + 1)))
    common = dict(proxy_protocol="on", proxy_protocol_from=BACKEND, pasv_address=BALANCER)
    a = server(pasv_ports="%d-%d" % lay.ranges[0], **common)
    # The second backend serves the first one's tree: the same users file.
    b = server(pasv_ports="%d-%d" % lay.ranges[1], users_file=a.users_path, **common)
    lay.backends = [a, b]
    lay.root = a.root

    text = open(example_path()).read()
    lay.port = lib.free_port()
    subs = [
        ("10.0.0.11:21", "%s:%d" % (BACKEND, a.port)),
        ("10.0.0.12:21", "%s:%d" % (BACKEND, b.port)),
        ("10.0.0.11", BACKEND),
        ("10.0.0.12", BACKEND),
        ("192.0.2.1:21", "%s:%d" % (BALANCER, lay.port)),
        ("50000-50999", "%d-%d" % lay.ranges[0]),
        ("51000-51999", "%d-%d" % lay.ranges[1]),
        ("192.0.2.1", BALANCER),
        ("inter 2s fall 2 rise 2", "inter 300ms fall 2 rise 1"),
        ("log /dev/log local0", "log stderr local0"),
    ]
    for old, new in subs:
        assert old in text, "the example no longer has %r" % old
        text = text.replace(old, new)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    lay.haproxy_log = tmp_path / "haproxy.log"
    logf = open(lay.haproxy_log, "wb")
    check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True,
                           timeout=IO_TIMEOUT)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=logf, stderr=logf)
    try:
        assert wait_for(lambda: listening(BALANCER, lay.port), timeout=5), "haproxy did not start"
        # Both backends answered a health check: they are up.
        assert wait_for(lambda: all(health_checks(s) for s in lay.backends), timeout=10), (
            [s.log for s in lay.backends], lay.haproxy_log.read_text())
        yield lay
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        logf.close()
        print("----- haproxy -----\n%s" % lay.haproxy_log.read_text())


def health_checks(srv):
    return srv.log.count("health check from the balancer")


def client_logins(srv):
    return srv.log.count("login: user %s from %s" % (USER, CLIENT))


def quiet(srv):
    """Nothing in a backend's log that an administrator would read as an error."""
    log = srv.log
    for bad in ("getpeername", "died with code 1", "no valid PROXY", "not in proxy-protocol-from",
                "USER in a session refused", "ERROR", "runtime error"):
        assert bad not in log, "%r in the log:\n%s" % (bad, log)


# ------------------------------------------------------------------ clients

def curl(lay, *args):
    return subprocess.run(
        ["curl", "-sS", "--max-time", str(IO_TIMEOUT * 2), "--connect-timeout", str(IO_TIMEOUT),
         "--interface", CLIENT, "--ssl-reqd", "-k"] + list(args),
        capture_output=True, timeout=IO_TIMEOUT * 3)


def url(lay, path):
    return "ftp://%s:%s@%s:%d/%s" % (USER, PASSWORD, BALANCER, lay.port, path)


def ok(r):
    assert r.returncode == 0, "rc=%d\nstdout=%r\nstderr=%s" % (
        r.returncode, r.stdout[-2000:], r.stderr.decode(errors="replace")[-4000:])
    return r


def lftp(lay, tmp_path, commands):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    script = "; ".join([
        "set cmd:fail-exit yes",
        "set net:max-retries 1",
        "set net:timeout %d" % IO_TIMEOUT,
        "set net:reconnect-interval-base 1",
        "set xfer:clobber yes",
        "set ftp:ssl-force true",
        "set ftp:ssl-protect-data true",
        "set ssl:verify-certificate no",
        "set net:socket-bind-ipv4 %s" % CLIENT,
        "open -u %s,%s -p %d %s" % (USER, PASSWORD, lay.port, BALANCER),
    ] + list(commands))
    env = dict(os.environ, HOME=str(home), LFTP_HOME=str(home / ".lftp"), LC_ALL="C.UTF-8")
    return subprocess.run(["lftp", "-c", script], capture_output=True, env=env,
                          timeout=IO_TIMEOUT * 3)


def balancer_context(cafile):
    """The test CA's chain is checked; the name is not (the test certificate
    is for 127.0.0.1, the balancer here is 127.0.0.5)."""
    ctx = client_context(cafile)
    ctx.check_hostname = False
    return ctx


def ftplib_login(lay, passive_cmd="EPSV"):
    ftp = ReusingFTP_TLS(context=balancer_context(lay.backends[0].cafile), timeout=IO_TIMEOUT,
                         source_address=(CLIENT, 0))
    ftp.passive_cmd = passive_cmd
    ftp.connect(BALANCER, lay.port)
    ftp.auth()
    ftp.login(USER, PASSWORD)
    ftp.prot_p()
    return ftp


def stored(lay, name):
    with open(os.path.join(lay.root, name), "rb") as f:
        return f.read()


# -------------------------------------------------------------------- tests

def test_every_client_with_its_defaults_through_the_balancer(layout, tmp_path):
    lay = layout
    payload = os.urandom(300 * 1024 + 7)
    src = tmp_path / "payload.bin"
    src.write_bytes(payload)

    # curl, EPSV (its default): list, download, upload.
    assert "hello.txt" in ok(curl(lay, "--list-only", url(lay, ""))).stdout.decode()
    assert ok(curl(lay, url(lay, "hello.txt"))).stdout == lib.HELLO
    ok(curl(lay, "-T", str(src), url(lay, "curl-epsv.bin")))
    assert stored(lay, "curl-epsv.bin") == payload

    # curl --disable-epsv: PASV, and the address in the 227 (the balancer's,
    # which curl ignores by default and takes the control connection's).
    assert "hello.txt" in ok(curl(lay, "--disable-epsv", "--list-only",
                                  url(lay, ""))).stdout.decode()
    assert ok(curl(lay, "--disable-epsv", url(lay, "hello.txt"))).stdout == lib.HELLO
    ok(curl(lay, "--disable-epsv", "-T", str(src), url(lay, "curl-pasv.bin")))
    assert stored(lay, "curl-pasv.bin") == payload

    # lftp, its defaults (PASV, fix-pasv-address yes).
    got = tmp_path / "lftp-got.txt"
    r = lftp(lay, tmp_path, ["cls -1", "get hello.txt -o %s" % got,
                             "put %s -o lftp.bin" % src])
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert "hello.txt" in r.stdout.decode()
    assert got.read_bytes() == lib.HELLO
    assert stored(lay, "lftp.bin") == payload

    # ftplib resuming the TLS session, EPSV and PASV.
    for cmd in ("EPSV", "PASV"):
        ftp = ftplib_login(lay, cmd)
        assert "hello.txt" in ftp.nlst()
        assert lib.retr_bytes(ftp, "hello.txt") == lib.HELLO
        ftp.storbinary("STOR ftplib-%s.bin" % cmd, open(src, "rb"))
        assert stored(lay, "ftplib-%s.bin" % cmd) == payload
        assert all(ftp.data_resumed), ftp.data_resumed
        if cmd == "PASV":
            assert all("(127,0,0,5," in r for r in ftp.passive_replies), ftp.passive_replies
        ftp.quit()

    # Sessions landed on both backends, each the client's (the header's) address.
    a, b = lay.backends
    assert client_logins(a) > 0 and client_logins(b) > 0, (client_logins(a), client_logins(b))
    for srv in lay.backends:
        assert "client %s via balancer %s" % (CLIENT, BACKEND) in srv.log
        # Every data connection came through the balancer and was checked.
        assert "refused data connection" not in srv.log, srv.log
        quiet(srv)


def test_a_thief_through_the_balancer_gets_nothing(layout):
    lay = layout
    for cmd in ("EPSV", "PASV"):
        ftp = ftplib_login(lay, cmd)
        if cmd == "EPSV":
            resp = ftp.sendcmd("EPSV")
            port = int(re.search(r"\(\|\|\|(\d+)\|\)", resp).group(1))
        else:
            resp = ftp.sendcmd("PASV")
            h = [int(x) for x in re.search(r"\(([\d,]+)\)", resp).group(1).split(",")]
            assert h[:4] == [127, 0, 0, 5], resp
            port = h[4] * 256 + h[5]
        # The thief races the client to the announced port, through the balancer.
        thief = socket.create_connection((BALANCER, port), timeout=IO_TIMEOUT,
                                         source_address=(THIEF, 0))
        thief.settimeout(5)
        try:
            thief.sendall(b"\x16\x03\x01\x00\x05hello")
            got = thief.recv(100)
        except (socket.timeout, ConnectionResetError, BrokenPipeError):
            got = b""
        thief.close()
        assert got == b""
        assert wait_for(lambda: any(
            "refused data connection from %s via balancer %s" % (THIEF, BACKEND) in s.log
            for s in lay.backends), timeout=5)
        # The listener is still the client's: the transfer goes on that port.
        conn = socket.create_connection((BALANCER, port), timeout=IO_TIMEOUT,
                                        source_address=(CLIENT, 0))
        ftp.sendcmd("TYPE I")
        resp = ftp.sendcmd("RETR hello.txt")
        assert resp.startswith("150"), resp
        tconn = ftp.context.wrap_socket(conn, server_hostname=ftp.host, session=ftp.sock.session)
        assert tconn.session_reused
        data, ending = lib.tls_read_to_end(tconn)
        tconn.close()
        assert data == lib.HELLO and ending == "close_notify", ending
        assert ftp.voidresp().startswith("226")
        ftp.quit()
    for srv in lay.backends:
        quiet(srv)


def test_a_silent_connection_from_the_balancer_cannot_hold_the_port(layout):
    """Connections from the balancer's address that never send their header
    (more of them than there are slots) do not keep the client's own from
    being accepted."""
    lay = layout
    ftp = ftplib_login(lay, "EPSV")
    resp = ftp.sendcmd("EPSV")
    port = int(re.search(r"\(\|\|\|(\d+)\|\)", resp).group(1))
    srv = lay.backends[0] if lay.ranges[0][0] <= port <= lay.ranges[0][1] else lay.backends[1]
    silent = [socket.create_connection((BACKEND, port), timeout=IO_TIMEOUT,
                                       source_address=(BACKEND, 0)) for _ in range(6)]
    # ... and one straight from a stranger, with no balancer in between.
    stranger = socket.create_connection((BACKEND, port), timeout=IO_TIMEOUT,
                                        source_address=(THIEF, 0))
    assert wait_for(lambda: "too many data connections wait" in srv.log, timeout=5), srv.log
    assert wait_for(lambda: "refused data connection from %s (the control" % THIEF in srv.log,
                    timeout=5), srv.log
    conn = socket.create_connection((BALANCER, port), timeout=IO_TIMEOUT,
                                    source_address=(CLIENT, 0))
    ftp.sendcmd("TYPE I")
    assert ftp.sendcmd("RETR hello.txt").startswith("150")
    tconn = ftp.context.wrap_socket(conn, server_hostname=ftp.host, session=ftp.sock.session)
    data = b""
    while True:
        chunk = tconn.recv(65536)
        if not chunk:
            break
        data += chunk
    tconn.close()
    assert data == lib.HELLO
    assert ftp.voidresp().startswith("226")
    # Those still waiting went with the listener: closed, not served.
    for c in silent + [stranger]:
        c.settimeout(5)
        try:
            assert c.recv(100) == b""
        except ConnectionResetError:
            pass
        c.close()
    ftp.quit()


def test_a_header_naming_no_client_or_another_is_refused_on_data(server):
    """Straight to a backend, as the balancer: a LOCAL header, a header with
    another client's address, garbage, a header that never ends."""
    srv = server(proxy_protocol="on", proxy_protocol_from=BACKEND)
    # The session of client 127.0.0.3, as the balancer (a v1 header) would
    # bring it; then on its passive port what HAProxy would never send.
    ftp = ReusingFTP_TLS(context=client_context(srv.cafile), timeout=IO_TIMEOUT)
    sock = socket.create_connection((BACKEND, srv.port), timeout=IO_TIMEOUT)
    sock.sendall(b"PROXY TCP4 127.0.0.3 127.0.0.1 40000 21\r\n")
    ftp.sock = sock
    ftp.af = sock.family
    ftp.file = sock.makefile("r", encoding=ftp.encoding)
    ftp.host = BACKEND
    ftp.welcome = ftp.getresp()
    ftp.auth()
    ftp.login(USER, PASSWORD)
    ftp.prot_p()
    resp = ftp.sendcmd("EPSV")
    port = int(re.search(r"\(\|\|\|(\d+)\|\)", resp).group(1))
    bad = [
        (struct.pack("!12sBBH", V2_SIG, 0x20, 0x00, 0), "names no client"),
        (b"PROXY TCP4 127.0.0.9 127.0.0.1 40000 21\r\n", "from 127.0.0.9 via balancer"),
        (struct.pack("!12sBBH", V2_SIG, 0x21, 0x11, 12) + socket.inet_aton("127.0.0.2")
         + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 1, 2), "from 127.0.0.2 via"),
        (b"GET / HTTP/1.0\r\n\r\n", "no valid PROXY header"),
        (b"PROXY TCP4 127.0.0.3 127.0.0.1 400", "no PROXY header in time"),
    ]
    conns = []
    for data, why in bad:
        c = socket.create_connection((BACKEND, port), timeout=IO_TIMEOUT,
                                     source_address=(BACKEND, 0))
        c.sendall(data)
        conns.append(c)
        assert wait_for(lambda: why in srv.log, timeout=8), (why, srv.log)
    for c in conns:
        c.settimeout(5)
        try:
            assert c.recv(100) == b""
        except ConnectionResetError:
            pass
        c.close()
    # A byte-at-a-time header from the balancer naming the client is taken,
    # and not a byte more: the TLS handshake that follows resumes.
    c = socket.create_connection((BACKEND, port), timeout=IO_TIMEOUT,
                                 source_address=(BACKEND, 0))
    hdr = struct.pack("!12sBBH", V2_SIG, 0x21, 0x11, 12) + socket.inet_aton("127.0.0.3") \
        + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 40001, port)
    for i in range(len(hdr)):
        c.sendall(hdr[i:i + 1])
        time.sleep(0.01)
    ftp.sendcmd("TYPE I")
    assert ftp.sendcmd("RETR hello.txt").startswith("150")
    t = ftp.context.wrap_socket(c, server_hostname=BACKEND, session=ftp.sock.session)
    assert t.session_reused
    data, ending = lib.tls_read_to_end(t)
    t.close()
    assert data == lib.HELLO and ending == "close_notify", ending
    assert ftp.voidresp().startswith("226")
    ftp.quit()


def test_health_checks_are_quiet_and_not_counted(layout):
    lay = layout
    a, b = lay.backends
    # HAProxy's checks (every 300 ms here) came in: PROXY v2 LOCAL, 220, QUIT.
    n = health_checks(a)
    assert wait_for(lambda: health_checks(a) >= n + 3, timeout=5)
    for srv in lay.backends:
        assert "client quit" in srv.log or "session ended" in srv.log
        quiet(srv)
        # No session record of a check outlives it, and no check holds a slot.
        records = os.path.join(srv.dir, "run", "sessions")
        assert wait_for(lambda: not any(os.scandir(records)) if os.path.isdir(records) else True,
                        timeout=3)


def test_a_check_is_no_session_for_the_limits(server):
    """max-sessions = 1 and a client logged in: a LOCAL check still gets its
    220 (a counted session would get 421), cannot log in, and ends with 221."""
    srv = server(proxy_protocol="on", proxy_protocol_from=BACKEND, max_sessions="1",
                 max_sessions_per_address="1")
    # The client's session, through a v1 header.
    sock = socket.create_connection((BACKEND, srv.port), timeout=IO_TIMEOUT)
    sock.sendall(b"PROXY TCP4 127.0.0.3 127.0.0.1 40000 21\r\n")
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220")
    local = struct.pack("!12sBBH", V2_SIG, 0x20, 0x00, 0)
    for _ in range(3):
        c = socket.create_connection((BACKEND, srv.port), timeout=IO_TIMEOUT)
        c.sendall(local)
        cf = c.makefile("rb")
        assert cf.readline().startswith(b"220")
        c.sendall(b"QUIT\r\n")
        assert cf.readline().startswith(b"221")
        cf.close()
        c.close()
    # A check may not log in: 421, and the session ends cleanly.
    ftp = ReusingFTP_TLS(context=client_context(srv.cafile), timeout=IO_TIMEOUT)
    c = socket.create_connection((BACKEND, srv.port), timeout=IO_TIMEOUT)
    c.sendall(local)
    ftp.sock, ftp.af, ftp.host = c, c.family, BACKEND
    ftp.file = c.makefile("r", encoding=ftp.encoding)
    assert ftp.getresp().startswith("220")
    ftp.auth()
    with pytest.raises(ftplib.error_temp, match="421 A health check session cannot log in"):
        ftp.login(USER, PASSWORD)
    ftp.close()
    f.close()
    sock.close()
    assert wait_for(lambda: srv.log.count("died with code") >= 5, timeout=5), srv.log
    log = srv.log
    assert log.count("health check from the balancer") == 4, log
    assert "USER in a health check session: refused" in log, log
    assert "session from 127.0.0.1 refused" not in log, log
    assert "died with code 1" not in log, log
    assert "login: user" not in log, log


def test_a_connect_then_reset_check_is_quiet(server):
    """A plain TCP check (connect, then close, with a reset as HAProxy's
    `check` does, or without), with and without its LOCAL header: exit 0,
    no error."""
    srv = server(proxy_protocol="on", proxy_protocol_from=BACKEND)
    for header in (b"", struct.pack("!12sBBH", V2_SIG, 0x20, 0x00, 0)):
        for reset in (True, False):
            for _ in range(2):
                c = socket.create_connection((BACKEND, srv.port), timeout=IO_TIMEOUT)
                if header:
                    c.sendall(header)
                if reset:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
    assert wait_for(lambda: srv.log.count("died with code") >= 8, timeout=10), srv.log
    log = srv.log
    assert "died with code 1" not in log, log
    assert "getpeername" not in log, log
    assert "no valid PROXY" not in log, log


def test_a_backend_down_sends_new_sessions_to_the_other(layout):
    lay = layout
    a, b = lay.backends
    a.stop()  # its launcher: new connections to it are refused
    before = client_logins(b)
    # At once (option redispatch), and after HAProxy's check has marked it
    # down (fall 2, every 300 ms).
    for i in range(6):
        if i == 3:
            assert wait_for(lambda: "ftpsd/ftp1 is DOWN" in lay.haproxy_log.read_text(),
                            timeout=10), lay.haproxy_log.read_text()
        ftp = ftplib_login(lay)
        assert lib.retr_bytes(ftp, "hello.txt") == lib.HELLO
        assert all(ftp.data_resumed)
        ftp.quit()
    assert client_logins(b) == before + 6, b.log


def test_the_fail2ban_filter_sees_the_clients_address(layout, tmp_path):
    """A wrong password through the balancer is logged with the client's
    address, and the shipped filter picks out that one."""
    lay = layout
    ftp = ReusingFTP_TLS(context=balancer_context(lay.backends[0].cafile), timeout=IO_TIMEOUT,
                         source_address=(CLIENT, 0))
    ftp.connect(BALANCER, lay.port)
    ftp.auth()
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp.login(USER, "wrong")
    ftp.close()
    line = "login failed for user %s from %s (1 of" % (USER, CLIENT)
    assert wait_for(lambda: any(line in s.log for s in lay.backends), timeout=5)
    if shutil.which("fail2ban-regex") is None:
        return
    import test_fail2ban as f2b
    d = tmp_path / "filter.d"
    d.mkdir()
    shutil.copy(f2b.COMMON, d / "common.conf")
    shutil.copy(os.path.join(lib.UNITS_SRC, "fail2ban-ftpsd.conf"), d / "ftpsd.conf")
    lines = [l for s in lay.backends for l in s.log.splitlines() if l.startswith("ftpsd[")]
    log = f2b.write(tmp_path / "backends.log", f2b.syslog_form(lines))
    assert f2b.fail2ban_regex(log, str(d / "ftpsd.conf")) == [(CLIENT, USER)]
