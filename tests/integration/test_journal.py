"""Under systemd ftpsd writes native journal entries with fields. journald is
not running here, so the test binds the journal's socket itself and reads the
datagrams ftpsd's journal client (common/log.c) sends, in the native protocol."""

import ftplib
import io
import os
import socket
import struct
import threading
import time
import subprocess

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import ftp_login, wait_for

JOURNAL_SOCKET = "/run/systemd/journal/socket"


def parse_native(datagram):
    """KEY=value lines, or KEY\\n<64-bit little-endian length><value>\\n."""
    fields, i = {}, 0
    while i < len(datagram):
        nl = datagram.index(b"\n", i)
        line = datagram[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", datagram[nl + 1:nl + 9])
            v = datagram[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        fields[k.decode()] = v.decode("utf-8", "replace")
    return fields


@pytest.fixture
def journal():
    if not lib.ROOT:
        pytest.skip("binding the journal socket needs root")
    if os.path.exists(JOURNAL_SOCKET):
        pytest.skip("a real journald is running here")
    os.makedirs(os.path.dirname(JOURNAL_SOCKET), exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(JOURNAL_SOCKET)
    os.chmod(JOURNAL_SOCKET, 0o666)  # as journald's: the monitor writes as the user
    s.settimeout(0.2)
    got, stop = [], threading.Event()

    # Drain as the entries come: a datagram socket queues only a few
    # (net.unix.max_dgram_qlen), and the journal client drops the rest.
    def reader():
        while not stop.is_set():
            try:
                got.append(parse_native(s.recv(1 << 16)))
            except socket.timeout:
                pass

    t = threading.Thread(target=reader, daemon=True)
    t.start()

    def entries():
        time.sleep(0.3)
        return list(got)
    yield entries
    stop.set()
    t.join(timeout=2)
    s.close()
    os.unlink(JOURNAL_SOCKET)


@pytest.fixture
def journal_server(server):
    """A server whose stderr is "the journal stream", as systemd sets it up:
    JOURNAL_STREAM names stderr's device and inode (systemd-socket-activate
    passes it on with -E)."""
    srv = server(start=False)
    srv.port = lib.free_port()
    logf = open(srv.log_path, "ab")
    st = os.fstat(logf.fileno())
    env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    proc = subprocess.Popen(
        ["systemd-socket-activate", "--accept", "-E", "JOURNAL_STREAM",
         "-l", "127.0.0.1:%d" % srv.port, "--"] + srv.argv(),
        stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env, start_new_session=True)
    srv.proc = proc
    assert wait_for(lambda: lib.tcp_listening(srv.port), timeout=5)
    yield srv
    srv.stop()
    logf.close()


def test_journal_entries_with_fields(journal_server, journal):
    srv = journal_server

    bad = ftplib.FTP_TLS(context=lib.client_context(srv.cafile), timeout=lib.IO_TIMEOUT)
    bad.connect("127.0.0.1", srv.port)
    bad.auth()
    with pytest.raises(ftplib.error_perm):
        bad.login(lib.USER, "wrong")
    bad.close()

    ftp = ftp_login(srv)
    data = bytearray()
    ftp.retrbinary("RETR hello.txt", data.extend)
    ftp.quit()
    assert wait_for(lambda: srv.sessions() == [], timeout=5)

    got = journal()
    assert got, "no journal entries arrived"
    for e in got:
        assert e["SYSLOG_IDENTIFIER"] == "ftpsd"
        assert e["REMOTE_ADDR"] == "127.0.0.1"
        assert e["FTPSD_SESSION"].startswith("127.0.0.1:")
        assert "PRIORITY" in e and "MESSAGE" in e

    def find(pred):
        return [e for e in got if pred(e)]

    assert find(lambda e: e.get("FTPSD_EVENT") == "session-start")
    failed = find(lambda e: e.get("FTPSD_EVENT") == "login-failed")
    assert failed and failed[0]["FTPSD_USER"] == lib.USER
    assert "login failed for user alice from 127.0.0.1" in failed[0]["MESSAGE"]
    login = find(lambda e: e.get("FTPSD_EVENT") == "login")
    assert login and login[-1]["FTPSD_USER"] == lib.USER
    assert login[-1]["TLS_VERSION"].startswith("TLS1.")
    assert login[-1]["TLS_CIPHER"]
    xfer = find(lambda e: "FTPSD_FILE" in e)
    assert xfer, got
    assert xfer[0]["FTPSD_FILE"] == "/hello.txt"
    assert xfer[0]["FTPSD_BYTES"] == str(len(lib.HELLO))
    assert xfer[0]["FTPSD_DIRECTION"] == "sent"
    assert xfer[0]["FTPSD_USER"] == lib.USER
    assert find(lambda e: "session ended" in e["MESSAGE"])
    # Nothing went to stderr: the journal got it all.
    assert "login failed" not in srv.log


def test_xferlog(server):
    srv = server(start=False)
    xferlog = os.path.join(srv.dir, "xferlog")
    srv = server(xferlog=xferlog)
    ftp = ftp_login(srv)
    data = bytearray()
    ftp.retrbinary("RETR hello.txt", data.extend)
    import io
    ftp.storbinary("STOR up load.bin", io.BytesIO(b"x" * 1000))
    ftp.quit()
    assert wait_for(lambda: srv.sessions() == [], timeout=5)
    lines = open(xferlog).read().splitlines()
    assert len(lines) == 2, lines
    # wu-ftpd: time(5 fields) secs host size file type flag dir mode user service auth id status
    f = lines[0].split()
    assert len(f) == 18, f
    assert f[6] == "127.0.0.1" and f[7] == str(len(lib.HELLO))
    assert f[8] == os.path.join(srv.root, "hello.txt")
    assert f[9:] == ["b", "_", "o", "r", lib.USER, "ftp", "0", "*", "c"]
    g = lines[1].split()
    assert g[7] == "1000" and g[8].endswith("/up_load.bin") and g[11] == "i" and g[17] == "c"


# Issue 13: a name with U+009B (CSI on terminals that read C1 controls), DEL and a byte
# that is not UTF-8 (0xff, sent as Telnet IAC IAC). Raw, each would reach the log as is.
EVIL_NAME = b"evil\xc2\x9b31m\x7f\xff.txt"
EVIL_ESCAPED = b"evil\\xc2\\x9b31m\\x7f\\xff.txt"


def upload_and_delete_evil_name(srv):
    ftp = lib.ReusingFTP_TLS(context=lib.client_context(srv.cafile), timeout=lib.IO_TIMEOUT,
                             encoding="latin-1")          # one character per byte
    ftp.connect("127.0.0.1", srv.port)
    ftp.auth()
    ftp.login(lib.USER, lib.PASSWORD)
    ftp.prot_p()
    name = EVIL_NAME.replace(b"\xff", b"\xff\xff").decode("latin-1")
    ftp.storbinary("STOR " + name, io.BytesIO(b"x" * 100))
    assert os.path.exists(os.path.join(os.fsencode(srv.root), EVIL_NAME))
    assert ftp.sendcmd("DELE " + name).startswith("250")
    assert not os.path.exists(os.path.join(os.fsencode(srv.root), EVIL_NAME))
    ftp.quit()
    assert wait_for(lambda: srv.sessions() == [], timeout=5)


def assert_clean(text, what=""):
    """Valid UTF-8 with no C0 (but the newline between lines), DEL or C1 control."""
    s = text.decode("utf-8")                               # strict: raises on a bad byte
    bad = [c for c in s if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
    assert not bad, (what, bad, s)


def test_log_lines_escape_controls_and_bad_utf8(server):
    srv = server()
    upload_and_delete_evil_name(srv)
    with open(srv.log_path, "rb") as f:
        log = f.read()
    assert b"received /" + EVIL_ESCAPED + b": 100 bytes" in log, log
    assert b"delete /" + EVIL_ESCAPED + b": ok" in log, log
    assert_clean(log)


def test_journal_fields_escape_controls_and_bad_utf8(journal_server, journal):
    srv = journal_server
    upload_and_delete_evil_name(srv)
    got = journal()
    xfer = [e for e in got if "FTPSD_FILE" in e]
    assert xfer, got
    assert xfer[0]["FTPSD_FILE"] == "/" + EVIL_ESCAPED.decode(), xfer[0]
    assert ("received /" + EVIL_ESCAPED.decode()) in xfer[0]["MESSAGE"], xfer[0]
    assert [e for e in got if ("delete /" + EVIL_ESCAPED.decode() + ": ok") in e["MESSAGE"]], got
    for e in got:
        for k, v in e.items():
            # parse_native decodes with replacement: U+FFFD is a byte that was not UTF-8.
            assert "\ufffd" not in v, (k, v)
            assert_clean(v.encode(), k)
