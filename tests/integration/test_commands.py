"""The FTP command set (issue 4), one conversation per command group, with Python's
ftplib and raw control connections: reply codes, and the effect of each command checked
on disk.

Groups: login and session (USER PASS ACCT REIN HOST QUIT SYST STAT HELP NOOP), FEAT
(every line it lists is exercised), directories (PWD CWD CDUP MKD RMD and the X*
variants, RFC 959 quoting), files (RETR STOR APPE STOU ALLO REST), rename and delete
(RNFR RNTO DELE), transfer modes (TYPE STRU MODE, TYPE A conversion both ways, binary
byte-exactness), extensions (SIZE MDTM MFMT MLST MLSD HASH OPTS SITE), errors (500,
501, 502, 503, 504, 553), read-only users, active mode (PORT EPRT EPSV ALL, IPv6),
transfers while the control channel stays live (ABOR, STAT, NOOP during RETR/STOR,
an upload cut off mid-way), and LIST/NLST (options, globs, single files, odd names).

Every session is AUTH TLS + PROT P with ReusingFTP_TLS (resumes the control session on
data connections) unless a test says otherwise.
"""

import calendar
import ftplib
import hashlib
import io
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import time

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import (HELLO, INNER, IO_TIMEOUT, PASSWORD, RO_PASSWORD, RO_USER, USER,
                           ConnectionClosed, Control, ReusingFTP_TLS, client_context, ftp_login,
                           retr_bytes, retr_sha256, secured, sha256_file, start_ipv6)

MIB = 1 << 20


# ------------------------------------------------------------------- helpers

quit_ = lib.quit_quietly


def own(srv, path):
    """Give a file or directory made by the test to the served user (as the fixture does)."""
    os.lchown(path, srv.accounts.uid, srv.accounts.gid)


def mkfile(srv, rel, data, mode=0o644):
    path = os.path.join(os.fsencode(srv.root), os.fsencode(rel))
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    own(srv, path)
    return path


def mkdir(srv, rel):
    path = os.path.join(os.fsencode(srv.root), os.fsencode(rel))
    os.makedirs(path)
    os.chmod(path, 0o755)
    own(srv, path)
    return path


def on_disk(srv, rel):
    with open(os.path.join(os.fsencode(srv.root), os.fsencode(rel)), "rb") as f:
        return f.read()


def code(ftp, cmd):
    """Reply code of a command, whether it succeeded or not."""
    try:
        return int(ftp.sendcmd(cmd)[:3])
    except ftplib.Error as e:
        return int(str(e)[:3])


def reply(ftp, cmd):
    """Whole reply text of a command, whether it succeeded or not."""
    try:
        return ftp.sendcmd(cmd)
    except ftplib.Error as e:
        return str(e)


def open_data(ftp, cmd):
    """EPSV, connect, send `cmd`, then (PROT P) the TLS handshake resuming the control
    session. Returns (data socket, the preliminary 1xx reply text), which ftplib's
    ntransfercmd does not keep (STOU's 150 names the file)."""
    host, port = ftp.makepasv()
    sock = socket.create_connection((host, port), IO_TIMEOUT)
    try:
        resp = ftp.sendcmd(cmd)
    except BaseException:
        sock.close()
        raise
    assert resp[:1] == "1", resp
    if ftp._prot_p:
        sock = ftp.context.wrap_socket(sock, server_hostname=ftp.host, session=ftp.sock.session)
    return sock, resp


def recv_all(conn):
    chunks = []
    while True:
        b = conn.recv(1 << 16)
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def send_and_close(conn, data):
    conn.sendall(data)
    if isinstance(conn, ssl.SSLSocket):
        conn.unwrap()
    conn.close()


def data_get(ftp, cmd):
    """A transfer command whose data the test reads raw (no ftplib TYPE change)."""
    conn, _ = open_data(ftp, cmd)
    data = recv_all(conn)
    conn.close()
    assert ftp.voidresp().startswith("226")
    return data


def data_put(ftp, cmd, data):
    conn, prelim = open_data(ftp, cmd)
    send_and_close(conn, data)
    final = ftp.voidresp()
    assert final.startswith("226"), final
    return prelim, final


def listing(ftp, cmd):
    """Lines of a TYPE A transfer (as ftplib's retrlines, but names that are not UTF-8
    come out with U+FFFD instead of breaking the decoder)."""
    ftp.voidcmd("TYPE A")
    text = data_get(ftp, cmd).decode("utf-8", "replace")
    lines = text.split("\r\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def multiline_body(resp):
    """The lines between the first and the last line of a multi-line reply."""
    return resp.split("\n")[1:-1]


def raw_reply(c):
    """One reply as raw bytes lines (Control.reply decodes as UTF-8 with replacement)."""
    def line():
        while b"\n" not in c.buf:
            data = c._recv()
            if not data:
                raise AssertionError("connection closed; unterminated %r" % c.buf)
            c.buf += data
        ln, _, c.buf = c.buf.partition(b"\n")
        return ln.rstrip(b"\r")
    first = line()
    lines = [first]
    if first[3:4] == b"-":
        while True:
            ln = line()
            lines.append(ln)
            if ln.startswith(first[:3] + b" "):
                break
    return lines


def utc(ts):
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(ts))


def mlst_facts(resp):
    """{fact: value}, name from a 250 MLST reply."""
    lines = multiline_body(resp)
    assert len(lines) == 1, resp
    line = lines[0]
    assert line.startswith(" ") and not line.startswith("  "), repr(line)
    return parse_facts(line[1:])


def parse_facts(entry):
    facts, _, name = entry.partition(" ")
    out = {}
    for f in facts.split(";"):
        if f:
            k, _, v = f.partition("=")
            out[k.lower()] = v
    return out, name


@pytest.fixture
def session(server):
    srv = server()
    ftp = ftp_login(srv)
    yield srv, ftp
    quit_(ftp)


# ---------------------------------------------------------- login and session

def test_login_and_session_conversation(server, tls):
    """HOST, REIN before login, USER/PASS, ACCT, REIN after login, SYST, NOOP, STAT, QUIT."""
    srv = server()
    c = Control(srv.port)
    assert c.reply().code == 220
    # RFC 7151: HOST before USER, even before AUTH; a missing or malformed one is 501.
    assert c.cmd("HOST 127.0.0.1").code == 220
    assert c.cmd("HOST").code == 501
    assert c.cmd("HOST two words").code == 501
    assert c.cmd("HOST localhost").code == 220
    assert c.cmd("AUTH TLS").code == 234
    c.starttls(tls)
    assert c.cmd("PWD").code == 530                        # not logged in
    assert c.cmd("PASS " + PASSWORD).code == 503           # PASS needs USER first
    assert c.cmd("USER " + USER).code == 331
    assert c.cmd("HOST localhost").code == 503             # HOST after USER
    # REIN before login: 220, the USER is forgotten.
    assert c.cmd("REIN").code == 220
    assert c.cmd("PASS " + PASSWORD).code == 503
    assert c.cmd("USER " + USER).code == 331
    r = c.cmd("PASS wrong-password")
    assert r.code == 530, r
    assert c.cmd("PWD").code == 530
    c.login()
    assert c.cmd("USER " + USER).code == 503               # already logged in
    assert c.cmd("PASS " + PASSWORD).code == 503
    assert c.cmd("HOST localhost").code == 503
    assert c.cmd("ACCT billing").code == 502
    # REIN after login is refused (502) and the session stays logged in.
    assert c.cmd("REIN").code == 502
    r = c.cmd("PWD")
    assert r.code == 257 and r.text.startswith('"/"'), r
    r = c.cmd("SYST")
    assert r.code == 215 and r.text.startswith("UNIX Type: L8"), r
    assert c.cmd("NOOP").code == 200
    r = c.cmd("STAT")
    assert r.code == 211 and len(r.lines) >= 3, r
    body = "\n".join(r.body)
    assert "127.0.0.1" in body and USER in body, r
    r = c.cmd("QUIT")
    assert r.code == 221
    c.wait_closed()


HELP_MUST_LIST = """USER PASS ACCT CWD XCWD CDUP XCUP QUIT REIN PORT PASV TYPE STRU MODE RETR STOR
STOU APPE ALLO REST RNFR RNTO ABOR DELE RMD XRMD MKD XMKD PWD XPWD LIST NLST SITE SYST STAT
HELP NOOP FEAT OPTS SIZE MDTM MFMT MLST MLSD EPRT EPSV HOST HASH AUTH PBSZ PROT""".split()

# Verbs not swept with a bare command: they open or need a data connection, end the
# session, or are checked in their own tests.
NOT_SWEPT = {"QUIT", "LIST", "NLST", "MLSD", "RETR", "STOR", "STOU", "APPE", "PASV", "EPSV",
             "ABOR", "AUTH", "REIN"}


def test_help_lists_every_command_and_each_listed_verb_is_known(session):
    srv, ftp = session
    resp = ftp.sendcmd("HELP")
    assert resp.startswith("214"), resp
    verbs = set(" ".join(multiline_body(resp)).split())
    missing = set(HELP_MUST_LIST) - verbs
    assert not missing, "HELP does not list %s:\n%s" % (sorted(missing), resp)
    for verb in sorted(verbs - NOT_SWEPT):
        r = reply(ftp, verb)
        assert not r.startswith("500"), "%s is in HELP but answered %r" % (verb, r)
    assert reply(ftp, "XYZW").startswith("500")
    assert code(ftp, "NOOP") == 200


def test_unimplemented_rfc959_command_is_502(session):
    """Issue 4: unknown commands get 500, unimplemented ones 502. SMNT is an RFC 959
    command this server does not implement (RFC 959 allows 202 or 502 for it)."""
    srv, ftp = session
    r = reply(ftp, "SMNT /")
    assert r[:3] in ("502", "202"), r
    assert reply(ftp, "FOOBAR x")[:3] == "500"


# ------------------------------------------------------------------------ FEAT

FEAT_EXPECTED = {"AUTH TLS", "AUTH SSL", "PBSZ", "PROT", "EPRT", "EPSV", "HASH", "HOST", "MDTM",
                 "MFMT", "MLST", "PASV", "REST STREAM", "SIZE", "TVFS", "UTF8"}
MLST_FACTS = {"type", "size", "modify", "perm", "unix.mode", "unique"}
HASH_ALGOS = {"SHA-256": hashlib.sha256, "SHA-1": hashlib.sha1, "MD5": hashlib.md5}


def feat(ftp):
    resp = ftp.sendcmd("FEAT")
    lines = resp.split("\n")
    assert lines[0].startswith("211-") and lines[-1].startswith("211 "), resp
    out = {}
    for line in lines[1:-1]:
        assert line.startswith(" ") and not line.startswith("  "), "FEAT line %r" % line
        name = line[1:]
        key = name.split(" ")[0] if name.split(" ")[0] in ("HASH", "MLST") else name
        out[key] = name
    return out


def test_feat_lists_exactly_the_implemented_features(session):
    """The set is exact: a new FEAT line needs a test here that uses it."""
    srv, ftp = session
    f = feat(ftp)
    assert set(f) == FEAT_EXPECTED, f
    algos = f["HASH"].split(" ", 1)[1].split(";")
    assert {a.rstrip("*") for a in algos} == set(HASH_ALGOS), f["HASH"]
    assert [a for a in algos if a.endswith("*")] == ["SHA-256*"], f["HASH"]
    facts = [x for x in f["MLST"].split(" ", 1)[1].split(";") if x]
    assert {x.rstrip("*") for x in facts} == MLST_FACTS, f["MLST"]
    assert all(x.endswith("*") for x in facts), f["MLST"]  # all enabled by default


def test_feat_auth_ssl_pbsz_prot(server, tls):
    """AUTH SSL (what curl sends) works as well as AUTH TLS; PBSZ and PROT P protect data."""
    srv = server()
    ftp = ReusingFTP_TLS(context=tls, timeout=IO_TIMEOUT)
    ftp.connect("127.0.0.1", srv.port)
    assert ftp.auth_mech("SSL").startswith("234")
    ftp.login(USER, PASSWORD)
    assert ftp.sendcmd("PBSZ 0") == "200 PBSZ=0"
    assert ftp.sendcmd("PROT P").startswith("200")
    ftp._prot_p = True
    assert retr_bytes(ftp, "hello.txt") == HELLO
    assert ftp.data_resumed == [True]
    quit_(ftp)


def test_feat_epsv_pasv_eprt(server):
    """EPSV, PASV and EPRT each carry a transfer."""
    srv = server()
    ftp = ftp_login(srv, passive="EPSV")
    assert retr_bytes(ftp, "hello.txt") == HELLO
    ftp.passive_cmd = "PASV"
    assert retr_bytes(ftp, "hello.txt") == HELLO
    use_eprt(ftp)
    assert retr_bytes(ftp, "sub/inner.txt") == INNER
    ftp.storbinary("STOR eprt.bin", io.BytesIO(b"via EPRT\n"))
    assert on_disk(srv, "eprt.bin") == b"via EPRT\n"
    assert ftp.data_resumed == [True] * 4
    quit_(ftp)


def test_feat_hash_every_algorithm(session):
    """HASH (draft-bryan-ftpext-hash): 213 ALGO START-END HEX NAME, for each algorithm of
    OPTS HASH; SHA-256 by default; unknown algorithm 501."""
    srv, ftp = session
    data = os.urandom(MIB + 123)
    mkfile(srv, "h a.bin", data)
    assert ftp.sendcmd("OPTS HASH") == "200 SHA-256"
    r = ftp.sendcmd("HASH h a.bin")
    assert r == "213 SHA-256 0-%d %s h a.bin" % (len(data), hashlib.sha256(data).hexdigest()), r
    for name, fn in HASH_ALGOS.items():
        assert ftp.sendcmd("OPTS HASH " + name) == "200 " + name
        assert ftp.sendcmd("OPTS HASH") == "200 " + name
        r = ftp.sendcmd("HASH h a.bin")
        assert r == "213 %s 0-%d %s h a.bin" % (name, len(data), fn(data).hexdigest()), r
    assert code(ftp, "OPTS HASH CRC32") == 501
    assert ftp.sendcmd("OPTS HASH") == "200 MD5"           # unchanged by the refusal
    assert code(ftp, "HASH sub") == 550
    assert code(ftp, "HASH no-such-file") == 550
    assert code(ftp, "HASH") == 501


def test_feat_size_mdtm_mfmt_rest_stream(session):
    srv, ftp = session
    data = os.urandom(5000)
    path = mkfile(srv, "t.bin", data)
    assert ftp.sendcmd("TYPE I").startswith("200")
    assert ftp.sendcmd("SIZE t.bin") == "213 5000"
    assert ftp.sendcmd("MDTM t.bin") == "213 " + utc(os.stat(path).st_mtime)
    # MFMT (draft-somers-ftp-mfxx): UTC time, 213 Modify=...; path, and it is on disk.
    r = ftp.sendcmd("MFMT 20200102030405 t.bin")
    assert r == "213 Modify=20200102030405; t.bin", r
    assert os.stat(path).st_mtime == calendar.timegm((2020, 1, 2, 3, 4, 5))
    assert ftp.sendcmd("MDTM t.bin") == "213 20200102030405"
    for bad in ("MFMT 2020 t.bin", "MFMT 20201301000000 t.bin", "MFMT t.bin", "MFMT"):
        assert code(ftp, bad) == 501, bad
    assert code(ftp, "MFMT 20200102030405 no-such") == 550
    assert code(ftp, "SIZE sub") == 550 and code(ftp, "SIZE no-such") == 550
    assert code(ftp, "MDTM no-such") == 550
    # REST STREAM: the offset applies to the next RETR.
    assert ftp.sendcmd("REST 4000").startswith("350")
    assert data_get(ftp, "RETR t.bin") == data[4000:]
    assert data_get(ftp, "RETR t.bin") == data            # REST is used once


def test_feat_mlst_and_mlsd_facts_match_the_disk(session):
    """MLST (control connection) and MLSD (data) with type, size, modify, perm,
    unix.mode and unique (RFC 3659)."""
    srv, ftp = session
    fpath = mkfile(srv, "sub/m file.txt", b"x" * 777, mode=0o640)
    dpath = os.path.join(srv.root, "sub", "deeper")
    facts, name = mlst_facts(ftp.sendcmd("MLST sub/m file.txt"))
    st = os.stat(fpath)
    assert name.endswith("m file.txt"), name
    assert facts["type"] == "file"
    assert facts["size"] == "777"
    assert facts["modify"] == utc(st.st_mtime)
    assert facts["unix.mode"] == "0640"
    assert set("rawdf") <= set(facts["perm"]), facts
    dfacts, _ = mlst_facts(ftp.sendcmd("MLST sub/deeper"))
    assert dfacts["type"] == "dir" and dfacts["unix.mode"] == "0755"
    assert set("elcmp") <= set(dfacts["perm"]), dfacts
    assert dfacts["modify"] == utc(os.stat(dpath).st_mtime)
    cfacts, _ = mlst_facts(ftp.sendcmd("MLST"))            # no argument: the cwd
    assert cfacts["type"] in ("dir", "cdir")
    entries = {}
    for line in listing(ftp, "MLSD sub"):
        f, n = parse_facts(line)
        entries[n] = f
    assert set(entries) >= {"m file.txt", "inner.txt", "deeper"}, entries
    assert set(entries) <= {"m file.txt", "inner.txt", "deeper", "up-link", ".", ".."}, entries
    assert entries["m file.txt"]["size"] == "777"
    assert entries["m file.txt"]["unique"] == facts["unique"]
    assert entries["deeper"]["type"] == "dir"
    assert entries["inner.txt"]["unique"] != facts["unique"]
    assert entries["m file.txt"]["modify"] == facts["modify"]
    assert code(ftp, "MLST no-such") == 550


def test_mlst_names_the_object_by_its_path(session):
    """RFC 3659 7.2/7.7: the MLST entry carries the pathname as given (or absolute, with
    TVFS), not only the last component; the examples answer `MLst tmp` with `/tmp`."""
    srv, ftp = session
    _, name = mlst_facts(ftp.sendcmd("MLST sub/inner.txt"))
    assert name in ("sub/inner.txt", "/sub/inner.txt"), name
    ftp.cwd("sub")
    _, name = mlst_facts(ftp.sendcmd("MLST deeper"))
    assert name in ("deeper", "/sub/deeper"), name


def test_opts_mlst_selects_the_facts(session):
    """RFC 3659 7.9: OPTS MLST names the facts to return; the 200 reply lists those
    selected, and MLST/MLSD then return only them (lftp sends OPTS MLST at login)."""
    srv, ftp = session
    r = ftp.sendcmd("OPTS MLST type;size;")
    assert r == "200 MLST OPTS type;size;", r
    facts, _ = mlst_facts(ftp.sendcmd("MLST hello.txt"))
    assert set(facts) == {"type", "size"}, facts
    r = ftp.sendcmd("OPTS MLST type;size;modify;perm;unix.mode;unique;")
    assert r == "200 MLST OPTS type;size;modify;perm;unix.mode;unique;", r
    facts, _ = mlst_facts(ftp.sendcmd("MLST hello.txt"))
    assert set(facts) == MLST_FACTS, facts


def test_feat_utf8_and_tvfs(session):
    """OPTS UTF8 ON; UTF-8 names stored, listed and read back; TVFS: absolute paths
    from any directory."""
    srv, ftp = session
    assert ftp.sendcmd("OPTS UTF8 ON").startswith("200")
    r = ftp.sendcmd("MKD dír ü")
    assert r.startswith('257 "/dír ü"'), r
    assert os.path.isdir(os.path.join(srv.root, "dír ü"))
    ftp.storbinary("STOR dír ü/fïlé €.txt", io.BytesIO(b"utf8\n"))
    assert os.listdir(os.path.join(os.fsencode(srv.root), "dír ü".encode())) == [
        "fïlé €.txt".encode()]
    assert ftp.nlst("dír ü")[0].endswith("fïlé €.txt")
    ftp.cwd("/sub/deeper")
    assert retr_bytes(ftp, "/dír ü/fïlé €.txt") == b"utf8\n"
    assert retr_bytes(ftp, "/sub/inner.txt") == INNER
    assert ftp.sendcmd("SIZE /hello.txt") == "213 %d" % len(HELLO)
    ftp.cwd("/dír ü")
    assert ftp.pwd() == "/dír ü"


def test_feat_host_before_login(server, tls):
    srv = server()
    with secured(srv, tls, login=False) as c:
        r = c.cmd("HOST ftp.example.org")
        assert r.code == 220, r
        c.login()
        assert c.cmd("HOST ftp.example.org").code == 503


def test_feat_without_active_mode_does_not_list_eprt(server):
    """active-mode = off: PORT and EPRT are 502, so FEAT must not announce EPRT."""
    srv = server(active_mode="off")
    ftp = ftp_login(srv)
    assert code(ftp, "PORT 127,0,0,1,200,1") == 502
    assert code(ftp, "EPRT |1|127.0.0.1|51201|") == 502
    assert "EPRT" not in feat(ftp), ftp.sendcmd("FEAT")
    assert retr_bytes(ftp, "hello.txt") == HELLO       # passive still works
    quit_(ftp)


# ------------------------------------------------------------------ directories

def test_directories_conversation(session):
    srv, ftp = session
    root = srv.root
    assert ftp.sendcmd("PWD") == '257 "/" is the current directory.'
    assert ftp.sendcmd("MKD newdir").startswith('257 "/newdir"')
    assert os.path.isdir(os.path.join(root, "newdir"))
    assert ftp.sendcmd("XMKD newdir/x").startswith('257 "/newdir/x"')
    assert os.path.isdir(os.path.join(root, "newdir", "x"))
    assert code(ftp, "MKD newdir") == 550                 # exists
    assert code(ftp, "MKD no/such/parent") == 550
    assert ftp.sendcmd("CWD newdir").startswith("250")
    assert ftp.sendcmd("PWD").startswith('257 "/newdir"')
    assert ftp.sendcmd("MKD rel").startswith('257 "/newdir/rel"')  # relative to the cwd
    assert os.path.isdir(os.path.join(root, "newdir", "rel"))
    assert ftp.sendcmd("XCWD x").startswith("250")
    assert ftp.sendcmd("XPWD").startswith('257 "/newdir/x"')
    assert ftp.sendcmd("CDUP").startswith("250")
    assert ftp.sendcmd("PWD").startswith('257 "/newdir"')
    assert ftp.sendcmd("XCUP").startswith("2")
    assert ftp.sendcmd("PWD").startswith('257 "/"')
    assert ftp.sendcmd("CDUP").startswith("2")          # at the root: stays there
    assert ftp.sendcmd("PWD").startswith('257 "/"')
    assert code(ftp, "CWD no-such") == 550
    assert code(ftp, "CWD hello.txt") == 550
    assert ftp.sendcmd("PWD").startswith('257 "/"')     # failed CWD changes nothing
    assert code(ftp, "RMD newdir") == 550                 # not empty
    assert code(ftp, "RMD hello.txt") == 550              # not a directory
    assert code(ftp, "RMD no-such") == 550
    assert ftp.sendcmd("RMD newdir/x").startswith("250")
    assert ftp.sendcmd("XRMD newdir/rel").startswith("250")
    assert ftp.sendcmd("RMD newdir").startswith("250")
    assert not os.path.exists(os.path.join(root, "newdir"))
    assert os.path.isfile(os.path.join(root, "hello.txt"))


def unquote_257(resp):
    """The path of a 257 reply: between the first quote and the closing one, with ""
    standing for " (RFC 959 appendix II)."""
    assert resp.startswith('257 "'), resp
    s = resp[5:]
    out = []
    i = 0
    while True:
        ch = s[i]
        if ch == '"':
            if s[i + 1:i + 2] == '"':
                out.append('"')
                i += 2
                continue
            return "".join(out)
        out.append(ch)
        i += 1


def test_quotes_in_mkd_and_pwd_are_doubled(session):
    """RFC 959: a " inside a path in a 257 reply is doubled."""
    srv, ftp = session
    r = ftp.sendcmd('MKD a"b')
    assert r.startswith('257 "/a""b" '), r
    assert unquote_257(r) == '/a"b'
    assert os.path.isdir(os.path.join(srv.root, 'a"b'))
    r = ftp.sendcmd('MKD q"')
    assert r.startswith('257 "/q""" '), r
    assert unquote_257(r) == '/q"'
    ftp.cwd('a"b')
    r = ftp.sendcmd("PWD")
    assert r.startswith('257 "/a""b" '), r
    r = ftp.sendcmd('MKD "in"side')
    assert r.startswith('257 "/a""b/""in""side" '), r
    assert unquote_257(r) == '/a"b/"in"side'
    assert os.path.isdir(os.path.join(srv.root, 'a"b', '"in"side'))
    ftp.cwd('"in"side')
    assert unquote_257(ftp.sendcmd("XPWD")) == '/a"b/"in"side'


# ------------------------------------------------------------------------ files

def test_files_conversation(session):
    """STOR, RETR, APPE, REST+RETR, REST+STOR, REST beyond EOF, ALLO, DELE."""
    srv, ftp = session
    data = os.urandom(200000)
    ftp.voidcmd("TYPE I")
    assert ftp.sendcmd("ALLO 200000").startswith("202")
    ftp.storbinary("STOR f.bin", io.BytesIO(data))
    assert on_disk(srv, "f.bin") == data
    assert retr_bytes(ftp, "f.bin") == data
    # APPE appends (and creates a missing file).
    ftp.storbinary("APPE f.bin", io.BytesIO(b"tail"))
    assert on_disk(srv, "f.bin") == data + b"tail"
    ftp.storbinary("APPE new-by-appe.bin", io.BytesIO(b"first"))
    assert on_disk(srv, "new-by-appe.bin") == b"first"
    # REST + RETR resumes a download at the offset.
    assert ftp.sendcmd("REST 123456").startswith("350")
    assert data_get(ftp, "RETR f.bin") == data[123456:] + b"tail"
    # REST + STOR resumes an upload: bytes before the offset kept, the rest replaced.
    mkfile(srv, "part.bin", data[:50000] + b"garbage that will be overwritten")
    assert ftp.sendcmd("REST 50000").startswith("350")
    data_put(ftp, "STOR part.bin", data[50000:])
    assert on_disk(srv, "part.bin") == data
    # REST beyond the end of the file: RETR refused, the file untouched.
    assert ftp.sendcmd("REST 300000").startswith("350")
    with pytest.raises(ftplib.error_perm, match="^554"):
        open_data(ftp, "RETR f.bin")
    assert retr_bytes(ftp, "hello.txt") == HELLO          # the refused REST is gone
    assert code(ftp, "REST x") == 501
    assert code(ftp, "REST -1") == 501
    # DELE
    assert ftp.sendcmd("DELE f.bin").startswith("250")
    assert not os.path.exists(os.path.join(srv.root, "f.bin"))
    assert code(ftp, "DELE f.bin") == 550
    with pytest.raises(ftplib.error_perm, match="^550"):
        open_data(ftp, "RETR f.bin")


def test_stou_picks_a_unique_name_and_says_it(session):
    srv, ftp = session
    ftp.voidcmd("TYPE I")
    mkfile(srv, "report.txt", b"original")
    names = []
    for i in range(3):
        prelim, final = data_put(ftp, "STOU report.txt", b"copy %d" % i)
        m = re.match(r"^150 FILE: (.+)$", prelim)
        assert m, prelim
        names.append(m.group(1))
    assert names == ["report.txt.1", "report.txt.2", "report.txt.3"], names
    assert on_disk(srv, "report.txt") == b"original"
    for i, n in enumerate(names):
        assert on_disk(srv, n) == b"copy %d" % i
    prelim, _ = data_put(ftp, "STOU", b"no name given")
    m = re.match(r"^150 FILE: (.+)$", prelim)
    assert m, prelim
    assert on_disk(srv, m.group(1)) == b"no name given"
    prelim, _ = data_put(ftp, "STOU fresh.txt", b"fresh")
    assert prelim == "150 FILE: fresh.txt", prelim
    assert on_disk(srv, "fresh.txt") == b"fresh"


# ------------------------------------------------------------- rename and delete

def test_rename_and_delete_conversation(session):
    srv, ftp = session
    root = srv.root
    assert code(ftp, "RNTO x") == 503                     # no RNFR
    assert ftp.sendcmd("RNFR hello.txt").startswith("350")
    assert ftp.sendcmd("RNTO renamed.txt").startswith("250")
    assert not os.path.exists(os.path.join(root, "hello.txt"))
    assert on_disk(srv, "renamed.txt") == HELLO
    assert code(ftp, "RNTO again.txt") == 503             # RNFR is used once
    # into another directory, and a directory itself
    ftp.sendcmd("RNFR renamed.txt")
    ftp.sendcmd("RNTO sub/deeper/moved.txt")
    assert on_disk(srv, "sub/deeper/moved.txt") == HELLO
    ftp.sendcmd("RNFR sub")
    assert ftp.sendcmd("RNTO sub2").startswith("250")
    assert on_disk(srv, "sub2/deeper/moved.txt") == HELLO
    assert code(ftp, "RNFR no-such") == 550
    assert code(ftp, "RNTO whatever") == 503
    # DELE of a directory, RMD of a file
    assert code(ftp, "DELE sub2") == 550
    assert code(ftp, "RMD sub2/inner.txt") == 550
    assert ftp.sendcmd("DELE sub2/inner.txt").startswith("250")
    assert not os.path.exists(os.path.join(root, "sub2", "inner.txt"))


def test_rnto_must_immediately_follow_rnfr(session):
    """RFC 959 4.1.3: RNTO must immediately follow RNFR; another command in between
    cancels the rename (503), and nothing is renamed."""
    srv, ftp = session
    assert ftp.sendcmd("RNFR hello.txt").startswith("350")
    assert ftp.sendcmd("NOOP").startswith("200")
    assert code(ftp, "RNTO renamed.txt") == 503
    assert os.path.exists(os.path.join(srv.root, "hello.txt"))
    assert not os.path.exists(os.path.join(srv.root, "renamed.txt"))


# --------------------------------------------------------------- transfer modes

def test_type_stru_mode_replies(session):
    srv, ftp = session
    for arg in ("A", "A N", "I", "L 8", "a", "i"):
        assert code(ftp, "TYPE " + arg) == 200, arg
    for arg in ("E", "X", "A T", "L 7"):
        assert code(ftp, "TYPE " + arg) == 504, arg
    assert code(ftp, "TYPE") == 501
    assert code(ftp, "STRU F") == 200
    assert code(ftp, "STRU R") == 504 and code(ftp, "STRU P") == 504
    assert code(ftp, "MODE S") == 200
    assert code(ftp, "MODE B") == 504 and code(ftp, "MODE C") == 504


def test_type_a_retr_converts_lf_to_crlf(session):
    srv, ftp = session
    # Lines long enough that line ends fall on every buffer and record boundary.
    text = b"".join(b"line %d %s\n" % (i, b"x" * (i % 97)) for i in range(20000)) + b"\n\nend"
    mkfile(srv, "unix.txt", text)
    mkfile(srv, "dos.txt", b"one\r\ntwo\nthree\r\n")
    ftp.voidcmd("TYPE A")
    got = data_get(ftp, "RETR unix.txt")
    assert got == text.replace(b"\n", b"\r\n"), (len(got), len(text))
    # A CRLF already in the file is not doubled.
    assert data_get(ftp, "RETR dos.txt") == b"one\r\ntwo\r\nthree\r\n"
    # ftplib's retrlines uses TYPE A itself.
    assert listing(ftp, "RETR unix.txt")[:3] == ["line 0 ", "line 1 x", "line 2 xx"]
    ftp.voidcmd("TYPE I")
    assert data_get(ftp, "RETR unix.txt") == text


def test_type_a_stor_converts_crlf_to_lf(session):
    srv, ftp = session
    ftp.voidcmd("TYPE A")
    data_put(ftp, "STOR up.txt", b"a\r\nb\r\n\r\nc")
    assert on_disk(srv, "up.txt") == b"a\nb\n\nc"
    # A CR not followed by LF is data; a CRLF split across two TLS records is one line end.
    conn, _ = open_data(ftp, "STOR split.txt")
    conn.sendall(b"x\ry\r")
    time.sleep(0.2)
    conn.sendall(b"\nz\r")
    conn.unwrap()
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert on_disk(srv, "split.txt") == b"x\ry\nz\r"
    # A large upload: every CRLF becomes LF, nothing else changes.
    lines = [b"%d %s" % (i, b"y" * (i % 89)) for i in range(30000)]
    data_put(ftp, "STOR big.txt", b"\r\n".join(lines) + b"\r\n")
    assert on_disk(srv, "big.txt") == b"\n".join(lines) + b"\n"
    # ftplib's storlines: TYPE A, CRLF line ends on the wire, LF on disk.
    ftp.storlines("STOR lines.txt", io.BytesIO(b"one\ntwo\nthree\n"))
    assert on_disk(srv, "lines.txt") == b"one\ntwo\nthree\n"
    assert listing(ftp, "RETR lines.txt") == ["one", "two", "three"]


def test_binary_is_byte_exact_both_ways(session):
    srv, ftp = session
    data = (bytes(range(256)) * 512 + b"\r\n\n\r\r\n\x00\xff" * 4096 + os.urandom(MIB)
            + b"\r")
    ftp.storbinary("STOR bin.dat", io.BytesIO(data))   # storbinary sends TYPE I
    assert on_disk(srv, "bin.dat") == data
    assert retr_bytes(ftp, "bin.dat") == data
    ftp.voidcmd("TYPE L 8")
    assert data_get(ftp, "RETR bin.dat") == data
    data_put(ftp, "STOR bin2.dat", data)
    assert on_disk(srv, "bin2.dat") == data


def test_size_in_ascii_mode_counts_what_would_be_sent(session):
    """RFC 3659 4: SIZE is the number of octets a transfer would send with the current
    TYPE. In TYPE A each LF goes out as CRLF, so SIZE must count them, or refuse (550)."""
    srv, ftp = session
    mkfile(srv, "three.txt", b"a\nb\nc\n")                # 6 bytes, 9 in TYPE A
    ftp.voidcmd("TYPE I")
    assert ftp.sendcmd("SIZE three.txt") == "213 6"
    ftp.voidcmd("TYPE A")
    r = reply(ftp, "SIZE three.txt")
    assert r == "213 9" or r.startswith("550"), r


# ------------------------------------------------------------------ extensions

def test_site_commands(session):
    srv, ftp = session
    path = os.path.join(srv.root, "hello.txt")
    r = ftp.sendcmd("SITE HELP")
    assert r.startswith("214") and "CHMOD" in r, r
    assert ftp.sendcmd("SITE CHMOD 600 hello.txt").startswith("200")
    assert os.stat(path).st_mode & 0o7777 == 0o600
    assert ftp.sendcmd("SITE CHMOD 0755 sub").startswith("200")
    assert os.stat(os.path.join(srv.root, "sub")).st_mode & 0o7777 == 0o755
    assert code(ftp, "SITE CHMOD 999 hello.txt") == 501
    assert code(ftp, "SITE CHMOD abc hello.txt") == 501
    assert code(ftp, "SITE CHMOD 644 no-such") == 550
    assert os.stat(path).st_mode & 0o7777 == 0o600
    assert code(ftp, "SITE FROBNICATE") == 504


def test_site_chmod_without_arguments_is_501(session):
    """A known SITE command missing its arguments is a syntax error (501), like
    `SITE CHMOD 644`, not an unknown SITE command (504)."""
    srv, ftp = session
    assert code(ftp, "SITE CHMOD 644") == 501
    r = reply(ftp, "SITE CHMOD")
    assert r.startswith("501"), r


# ----------------------------------------------------------------------- errors

def test_error_replies_conversation(server, tls):
    srv = server()
    ftp = ftp_login(srv)
    # 500: unknown verb
    for cmd in ("FOO", "XYZW bar", "RETRX hello.txt"):
        assert code(ftp, cmd) == 500, cmd
    # 501: missing or malformed argument
    for cmd in ("CWD", "MKD", "RMD", "DELE", "RETR", "STOR", "APPE", "RNFR", "SIZE", "MDTM",
                "TYPE", "STRU", "MODE", "PORT", "EPRT", "OPTS", "REST", "MFMT",
                "PORT 1,2,3", "PORT 127,0,0,1,300,1", "REST 12ab", "OPTS NOSUCH", "PBSZ x"):
        assert code(ftp, cmd) == 501, cmd
    # 503: bad sequence
    assert code(ftp, "RNTO x") == 503
    assert code(ftp, "PASS x") == 503
    assert code(ftp, "USER alice") == 503
    # 504 (bad parameter) and the protocol-specific refusals
    assert code(ftp, "TYPE E") == 504
    assert code(ftp, "MODE B") == 504
    assert code(ftp, "PROT X") == 504
    assert code(ftp, "PROT S") == 536
    assert code(ftp, "EPSV 2") == 522                      # IPv6 on an IPv4 connection
    assert code(ftp, "EPRT |3|x|1|") == 522
    assert code(ftp, "PORT 127,0,0,1,0,21") == 504        # below 1024
    assert code(ftp, "PORT 10,1,2,3,200,1") == 504        # not the client's address
    # the session is intact after all of that
    assert code(ftp, "NOOP") == 200
    assert retr_bytes(ftp, "hello.txt") == HELLO
    quit_(ftp)


def test_paths_with_cr_or_nul_are_refused(server, tls):
    """A CR in a path is refused with 553 (names with CR could not be listed safely);
    a NUL must not cut the path short (MKD new<NUL>dir must not create `new`)."""
    srv = server()
    with secured(srv, tls) as c:
        for raw in (b"MKD new\rdir", b"STOR a\rb", b"RETR hello.txt\r.x", b"SIZE x\ry",
                    b"DELE hello.txt\rz"):
            c.sock.sendall(raw + b"\r\n")
            r = c.reply()
            assert r.code == 553, (raw, r)
        c.sock.sendall(b"RNFR hello.txt\r\n")
        assert c.reply().code == 350
        c.sock.sendall(b"RNTO x\ry\r\n")
        assert c.reply().code == 553
        c.sock.sendall(b"MKD new\x00dir\r\n")
        r = c.reply()
        assert r.code in (500, 501, 553), r
        assert c.cmd("NOOP").code == 200
    names = os.listdir(srv.root)
    assert "new" not in names and not [n for n in names if "\r" in n], names
    assert os.path.isfile(os.path.join(srv.root, "hello.txt"))


def test_read_only_user_gets_550_on_every_change(server):
    srv = server()
    before = sorted(os.listdir(srv.root))
    hello = os.path.join(srv.root, "hello.txt")
    mtime = os.stat(hello).st_mtime
    ftp = ftp_login(srv, user=RO_USER, password=RO_PASSWORD)
    for cmd in ("MKD newdir", "XMKD newdir", "RMD sub/deeper", "XRMD sub/deeper",
                "DELE hello.txt", "SITE CHMOD 600 hello.txt",
                "MFMT 20200101000000 hello.txt"):
        assert code(ftp, cmd) == 550, cmd
    r = reply(ftp, "RNFR hello.txt")
    if r.startswith("350"):
        assert code(ftp, "RNTO renamed.txt") == 550
    else:
        assert r.startswith("550"), r
    for cmd in ("STOR new.txt", "STOR hello.txt", "APPE hello.txt", "STOU", "STOU hello.txt"):
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.storbinary(cmd, io.BytesIO(b"x"))
    # what a reader may do still works, and the facts say what it may do
    assert retr_bytes(ftp, "hello.txt") == HELLO
    assert "hello.txt" in ftp.nlst()
    facts, _ = mlst_facts(ftp.sendcmd("MLST hello.txt"))
    assert facts["perm"] == "r", facts
    dfacts, _ = mlst_facts(ftp.sendcmd("MLST sub"))
    assert set(dfacts["perm"]) == set("el"), dfacts
    quit_(ftp)
    assert sorted(os.listdir(srv.root)) == before
    assert on_disk(srv, "hello.txt") == HELLO
    assert os.stat(hello).st_mode & 0o777 == 0o644 and os.stat(hello).st_mtime == mtime
    assert os.path.isdir(os.path.join(srv.root, "sub", "deeper"))


# ------------------------------------------------------------------ active mode

def use_eprt(ftp, family=1, host="127.0.0.1"):
    """Make ftplib open its data connections with EPRT (it only does for IPv6)."""
    def makeport():
        sock = socket.create_server((host, 0), family=socket.AF_INET6 if family == 2
                                    else socket.AF_INET, backlog=1)
        sock.settimeout(IO_TIMEOUT)
        ftp.voidcmd("EPRT |%d|%s|%d|" % (family, host, sock.getsockname()[1]))
        return sock
    ftp.makeport = makeport
    ftp.set_pasv(False)


def test_active_mode_port_and_eprt_with_prot_p(server):
    srv = server()
    ftp = ftp_login(srv)
    ftp.set_pasv(False)                                   # ftplib sends PORT
    data = os.urandom(3 * MIB + 1)
    ftp.storbinary("STOR act.bin", io.BytesIO(data))
    assert on_disk(srv, "act.bin") == data
    assert retr_bytes(ftp, "act.bin") == data
    assert "act.bin" in ftp.nlst()
    use_eprt(ftp)
    assert retr_sha256(ftp, "act.bin") == (hashlib.sha256(data).hexdigest(), len(data))
    assert ftp.data_resumed == [True] * 4
    quit_(ftp)


def test_epsv_all_refuses_pasv_port_and_eprt(server):
    srv = server()
    ftp = ftp_login(srv)
    assert ftp.sendcmd("EPSV ALL").startswith("200")
    assert code(ftp, "PASV") == 503
    assert code(ftp, "PORT 127,0,0,1,200,1") == 503
    assert code(ftp, "EPRT |1|127.0.0.1|51201|") == 503
    assert retr_bytes(ftp, "hello.txt") == HELLO          # EPSV still works
    assert code(ftp, "PORT 127,0,0,1,200,1") == 503       # and EPSV ALL stays in force
    quit_(ftp)


def test_ipv6_epsv_and_eprt(server):
    """RFC 2428 over IPv6: EPSV (protocol 2), EPRT |2|::1|port|; IPv4 targets refused."""
    srv = server(start=False)
    start_ipv6(srv)
    ctx = client_context(srv.cafile)
    ctx.check_hostname = False                             # the certificate names 127.0.0.1
    ftp = ReusingFTP_TLS(context=ctx, timeout=IO_TIMEOUT)
    ftp.connect("::1", srv.port)
    ftp.auth()
    ftp.login(USER, PASSWORD)
    ftp.prot_p()
    assert retr_bytes(ftp, "hello.txt") == HELLO          # EPSV
    r = ftp.sendcmd("EPSV 2")
    assert r.startswith("229 ") and "(|||" in r, r
    assert code(ftp, "EPSV 1") == 522
    assert code(ftp, "EPRT |1|127.0.0.1|51201|") == 504
    use_eprt(ftp, family=2, host="::1")
    data = os.urandom(100000)
    ftp.storbinary("STOR six.bin", io.BytesIO(data))
    assert on_disk(srv, "six.bin") == data
    assert retr_bytes(ftp, "six.bin") == data
    assert ftp.data_resumed == [True] * 3
    quit_(ftp)


# ------------------------------------- transfers while the control channel is live

@pytest.fixture
def big_session(server, big_file):
    yield from _big_session(server(), big_file)


@pytest.fixture
def big_session_in_place(server, big_file):
    """upload-mode = in-place: what arrived of an upload stays under its name."""
    yield from _big_session(server(upload_mode="in-place"), big_file)


def _big_session(srv, big_file):
    shutil.copyfile(big_file, os.path.join(srv.root, "big.bin"))
    own(srv, os.path.join(srv.root, "big.bin"))
    ftp = ftp_login(srv)
    ftp.voidcmd("TYPE I")
    yield srv, ftp
    quit_(ftp)


def read_at_least(conn, n):
    got = 0
    while got < n:
        b = conn.recv(1 << 16)
        assert b, "data connection closed after %d bytes" % got
        got += len(b)
    return got


def stat_numbers(resp):
    return [int(x) for x in re.findall(r"\d+", resp[4:])]


def test_abor_during_large_retr(big_session):
    srv, ftp = big_session
    conn, _ = open_data(ftp, "RETR big.bin")
    read_at_least(conn, MIB)
    ftp.putcmd("ABOR")
    first = ftp.getmultiline()
    second = ftp.getmultiline()
    assert first.startswith("426"), (first, second)
    assert second.startswith("226"), (first, second)
    try:
        conn.close()
    except OSError:
        pass
    # the session goes on
    assert ftp.sendcmd("NOOP").startswith("200")
    assert "big.bin" in ftp.nlst()
    assert retr_bytes(ftp, "hello.txt") == HELLO
    m = re.search(r"/big\.bin ended with 426 after (\d+) bytes", srv.log)
    assert m and MIB <= int(m.group(1)) < 64 * MIB, srv.log


def test_abor_during_large_stor_keeps_the_received_bytes(big_session_in_place, big_file):
    srv, ftp = big_session_in_place
    with open(big_file, "rb") as f:
        head = f.read(3 * MIB)
    conn, _ = open_data(ftp, "STOR up.bin")
    conn.sendall(head)
    # STAT during the upload: wait until the server has all 3 MiB.
    deadline = time.monotonic() + IO_TIMEOUT
    while True:
        r = ftp.sendcmd("STAT")
        assert r.startswith("213"), r
        if stat_numbers(r) and stat_numbers(r)[0] == len(head):
            break
        assert time.monotonic() < deadline, r
        time.sleep(0.05)
    ftp.putcmd("ABOR")
    first = ftp.getmultiline()
    second = ftp.getmultiline()
    assert first.startswith("426") and second.startswith("226"), (first, second)
    try:
        conn.close()
    except OSError:
        pass
    assert ftp.sendcmd("NOOP").startswith("200")
    assert "up.bin" in ftp.nlst()
    assert on_disk(srv, "up.bin") == head                 # every received byte is kept
    assert re.search(r"upload of /up\.bin aborted after %d bytes.*incomplete" % len(head),
                     srv.log), srv.log


def test_upload_cut_off_midway_keeps_bytes_and_logs_incomplete(big_session_in_place, big_file):
    """The client's data connection is reset (RST) mid-upload: 426, the bytes that arrived
    stay on disk (upload-mode = in-place), the log says the file is incomplete, the session
    goes on."""
    srv, ftp = big_session_in_place
    with open(big_file, "rb") as f:
        head = f.read(2 * MIB)
    conn, _ = open_data(ftp, "STOR cut.bin")
    conn.sendall(head)
    deadline = time.monotonic() + IO_TIMEOUT
    while stat_numbers(ftp.sendcmd("STAT"))[:1] != [len(head)]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    final = ftp.getmultiline()
    assert final[:3] in ("426", "451"), final
    assert on_disk(srv, "cut.bin") == head
    assert re.search(r"cut\.bin.*incomplete", srv.log), srv.log
    assert ftp.sendcmd("NOOP").startswith("200")


def test_stat_and_noop_during_retr(big_session, big_file):
    """STAT reports progress (213) and NOOP is answered while a RETR runs; the transfer
    then completes byte for byte."""
    srv, ftp = big_session
    conn, _ = open_data(ftp, "RETR big.bin")
    h = hashlib.sha256()
    got = 0

    def read(n):
        nonlocal got
        while got < n:
            b = conn.recv(1 << 16)
            assert b
            h.update(b)
            got += len(b)

    read(MIB)
    r1 = ftp.sendcmd("STAT")
    assert r1.startswith("213") and str(64 * MIB) in r1, r1
    n1 = stat_numbers(r1)[0]
    assert MIB <= n1 < 64 * MIB, r1
    assert ftp.sendcmd("NOOP").startswith("200")
    read(got + 16 * MIB)
    r2 = ftp.sendcmd("STAT")
    n2 = stat_numbers(r2)[0]
    assert r2.startswith("213") and n1 + 15 * MIB <= n2 <= 64 * MIB, (r1, r2)
    while True:
        b = conn.recv(1 << 16)
        if not b:
            break
        h.update(b)
        got += len(b)
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert got == 64 * MIB and h.hexdigest() == sha256_file(big_file)


def test_slow_reader_gets_every_byte_in_order(big_session, big_file):
    """A PROT P reader that takes 16 KiB at a time with pauses, on a small receive buffer:
    the server's socket fills again and again while it holds records back for one send
    (ctls.c), and the stream still arrives whole and in order, then 226."""
    srv, ftp = big_session
    host, port = ftp.makepasv()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(IO_TIMEOUT)
    sock.connect((host, port))
    resp = ftp.sendcmd("RETR big.bin")
    assert resp.startswith("150"), resp
    conn = ftp.context.wrap_socket(sock, server_hostname=ftp.host, session=ftp.sock.session)
    h = hashlib.sha256()
    got = 0
    while True:
        b = conn.recv(16384)
        if not b:
            break
        h.update(b)
        got += len(b)
        if got % (1 << 20) < 16384:
            time.sleep(0.02)
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert got == 64 * MIB and h.hexdigest() == sha256_file(big_file)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs (root only)")
def test_disk_full_mid_upload_is_552_never_226(session):
    """Issue 4: a transfer ending in a local error gets an error with the reason,
    never a 226; a full disk is 552 (issue 16), and the session goes on. The
    upload goes to a 1 MiB tmpfs."""
    srv, ftp = session
    small = os.path.join(srv.root, "small")
    os.mkdir(small)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", small],
                   check=True, timeout=IO_TIMEOUT)
    try:
        own(srv, small)
        ftp.voidcmd("TYPE I")
        conn, _ = open_data(ftp, "STOR small/full.bin")
        try:
            conn.sendall(os.urandom(3 * MIB))
            conn.unwrap()
        except OSError:
            pass                                           # the server may close first
        finally:
            conn.close()
        final = ftp.getmultiline()
        assert final[:3] == "552", final
        assert "space" in final.lower(), final
        assert ftp.sendcmd("NOOP").startswith("200")
        # Atomic uploads: nothing of it is left, and its space is free again.
        assert os.listdir(small) == []
        st = os.statvfs(small)
        assert st.f_bfree * st.f_frsize >= 900 * 1024, st
    finally:
        subprocess.run(["umount", "-l", small], timeout=IO_TIMEOUT)


def test_abor_when_idle_or_after_the_transfer_ended(session):
    srv, ftp = session
    assert ftp.sendcmd("ABOR").startswith("225")
    ftp.voidcmd("TYPE I")
    conn, _ = open_data(ftp, "RETR hello.txt")
    assert recv_all(conn) == HELLO
    time.sleep(0.2)                                        # the transfer is over
    ftp.putcmd("ABOR")
    first = ftp.getmultiline()
    assert first.startswith("226"), first                  # the transfer's own reply
    second = ftp.getmultiline()
    assert second[:3] in ("225", "226"), second            # nothing left to abort
    conn.close()
    assert ftp.sendcmd("NOOP").startswith("200")
    assert retr_bytes(ftp, "hello.txt") == HELLO


# ------------------------------------------------------------------- LIST / NLST

@pytest.fixture
def tree(session):
    srv, ftp = session
    mkdir(srv, "d")
    for n in (b"a b.txt", b"x.txt", b"y.txt", b".hidden", b"notes.md", b"caf\xc3\xa9.txt",
              b"bad\xff.bin", b"nl\nname"):
        mkfile(srv, b"d/" + n, b"content of " + n)
    mkdir(srv, "d/inner dir")
    return srv, ftp


VISIBLE = {"a b.txt", "x.txt", "y.txt", "notes.md", "café.txt", "inner dir"}


def names_of_long_listing(lines):
    return {re.split(r"\s+", ln, maxsplit=8)[8] for ln in lines}


def test_list_options(tree):
    srv, ftp = tree
    plain = listing(ftp, "LIST d")
    assert names_of_long_listing(plain) == VISIBLE | {"bad\ufffd.bin"}, plain
    for opt in ("-l", "-a", "-la", "-al"):
        got = names_of_long_listing(listing(ftp, "LIST %s d" % opt))
        want = VISIBLE | {"bad\ufffd.bin"} | ({".hidden"} if "a" in opt else set())
        assert got - {".", ".."} == want, (opt, got)
    assert all(ln[0] in "-dl" for ln in plain), plain
    dirline = [ln for ln in plain if ln.endswith("inner dir")][0]
    assert dirline.startswith("d"), dirline
    ftp.cwd("d")
    assert names_of_long_listing(listing(ftp, "LIST -la")) - {".", ".."} == (
        VISIBLE | {"bad\ufffd.bin", ".hidden"})


def test_nlst_options_and_names_usable_for_retr(tree):
    """NLST names are for programs (RFC 959: e.g. a multiple get): each name it returns
    for a directory or a glob must work in RETR/SIZE from the same directory, as with
    vsftpd, which prefixes the directory given."""
    srv, ftp = tree
    names = nlst_bytes(ftp, "NLST d")
    bases = {os.path.basename(n) for n in names}
    assert bases == {n.encode() for n in VISIBLE} | {b"bad\xff.bin"}, names
    with_a = {os.path.basename(n) for n in nlst_bytes(ftp, "NLST -a d")}
    assert with_a - {b".", b".."} == bases | {b".hidden"}, with_a
    globbed = nlst_bytes(ftp, "NLST d/*.txt")
    for n in [n for n in names if not n.endswith((b".bin", b"dir"))] + globbed:
        r = reply(ftp, "SIZE " + n.decode())
        assert r.startswith("213 "), (n, r, names, globbed)


def nlst_bytes(ftp, cmd):
    conn, _ = open_data(ftp, cmd)
    data = recv_all(conn)
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert data == b"" or data.endswith(b"\r\n"), data
    return [ln for ln in data.split(b"\r\n") if ln]


def test_list_and_nlst_globs_and_single_files(tree):
    srv, ftp = tree
    got = nlst_bytes(ftp, "NLST d/*.txt")
    assert {os.path.basename(n) for n in got} == {b"a b.txt", b"x.txt", b"y.txt",
                                                  "café.txt".encode()}, got
    long_ = listing(ftp, "LIST d/*.txt")
    assert names_of_long_listing(long_) == {"a b.txt", "x.txt", "y.txt", "café.txt"}, long_
    try:
        assert nlst_bytes(ftp, "NLST d/*.none") == []
    except ftplib.error_perm as e:                         # or 550: nothing matches
        assert str(e).startswith("550"), e
    # a single file
    one = nlst_bytes(ftp, "NLST d/x.txt")
    assert len(one) == 1 and one[0].endswith(b"x.txt"), one
    assert reply(ftp, "SIZE " + one[0].decode()) == "213 %d" % len(b"content of x.txt")
    line = listing(ftp, "LIST d/a b.txt")
    assert len(line) == 1 and line[0].endswith(" a b.txt") and line[0][0] == "-", line
    assert str(len(b"content of a b.txt")) in line[0].split()
    # STAT with a path: the same listing over the control connection
    r = ftp.sendcmd("STAT d/x.txt")
    assert r.startswith("213-") and len(multiline_body(r)) == 1, r
    assert multiline_body(r)[0].endswith("x.txt")
    r = ftp.sendcmd("STAT sub")
    assert {ln.split()[-1] for ln in multiline_body(r)} == {"inner.txt", "deeper", "up-link"}, r
    # names with spaces work in every command
    assert retr_bytes(ftp, "d/a b.txt") == b"content of a b.txt"
    with pytest.raises(ftplib.error_perm, match="^550"):
        listing(ftp, "LIST no-such-dir")
    with pytest.raises(ftplib.error_perm, match="^550"):
        listing(ftp, "NLST no-such-dir")


def test_newline_in_a_name_does_not_break_listings(tree, tls):
    """A name with a newline could forge a listing line: it is left out of LIST, NLST,
    MLSD and STAT, and every other entry is intact."""
    srv, ftp = tree
    for cmd in ("LIST -a d", "MLSD d"):
        lines = listing(ftp, cmd)
        assert not [ln for ln in lines if ln.endswith(("name", "nl"))], (cmd, lines)
        assert len([ln for ln in lines if not ln.endswith((" .", " .."))]) == len(VISIBLE) + 2, (
            cmd, lines)
    got = nlst_bytes(ftp, "NLST -a d")
    assert not [n for n in got if n.endswith((b"name", b"nl"))], got
    assert len([n for n in got if os.path.basename(n) not in (b".", b"..")]) == len(VISIBLE) + 2
    with secured(srv, tls) as c:                         # the reply is not UTF-8: raw
        body = c.cmd("STAT d").body
    assert not [ln for ln in body if ln.strip().endswith(("name", "nl"))], body
    assert len(body) == len(VISIBLE) + 1, body


def test_non_utf8_names_pass_through(tree, tls):
    """A name with byte 0xff: NLST sends the same bytes; the client sends 0xff in a
    command as Telnet IAC IAC (RFC 854), and RETR of that name works."""
    srv, ftp = tree
    got = nlst_bytes(ftp, "NLST d")
    assert [n for n in got if os.path.basename(n) == b"bad\xff.bin"], got
    lines = listing(ftp, "MLSD d")
    assert len([ln for ln in lines if ln.endswith(" bad\ufffd.bin")]) == 1, lines
    with secured(srv, tls) as c:
        c.sock.sendall(b"SIZE d/bad\xff\xff.bin\r\n")
        r = raw_reply(c)
        assert r == [b"213 %d" % len(b"content of bad\xff.bin")], r
        c.sock.sendall(b"RNFR d/bad\xff\xff.bin\r\n")
        assert raw_reply(c)[0].startswith(b"350")
        c.sock.sendall(b"RNTO d/b\xff\xffd2.bin\r\n")
        assert raw_reply(c)[0].startswith(b"250")
    assert on_disk(srv, b"d/b\xffd2.bin") == b"content of bad\xff.bin"
    ftp2 = ReusingFTP_TLS(context=tls, timeout=IO_TIMEOUT, encoding="latin-1")
    ftp2.connect("127.0.0.1", srv.port)
    ftp2.auth()
    ftp2.login(USER, PASSWORD)
    ftp2.prot_p()
    assert retr_bytes(ftp2, "d/b\xff\xffd2.bin") == b"content of bad\xff.bin"
    quit_(ftp2)


def test_control_replies_double_iac_in_names(tree, tls):
    """The control connection is Telnet (RFC 959, RFC 854): a 0xff byte of a name in a
    reply must go out as IAC IAC, or a Telnet-aware client (lftp) drops it and the next
    byte."""
    srv, ftp = tree
    with secured(srv, tls) as c:
        c.sock.sendall(b"MLST d/bad\xff\xff.bin\r\n")
        r = raw_reply(c)
        assert r[0].startswith(b"250"), r
        assert r[1].endswith(b"bad\xff\xff.bin"), r
        c.sock.sendall(b"MKD q\xff\xffdir\r\n")
        r = raw_reply(c)
        assert r[0].startswith(b'257 "/q\xff\xffdir"'), r
    assert os.path.isdir(os.path.join(os.fsencode(srv.root), b"q\xffdir"))


# ------------------------------------------------ dates a listing cannot write

FAR_FUTURE = 67768036191676800  # gmtime_r fails: the year overflows an int
YEAR_10000 = 253402300800       # gmtime_r copes; YYYYMMDDHHMMSS cannot say it
ORDINARY = 1700000000           # 2023-11-14 22:13:20 UTC


@pytest.fixture
def far_dates(session):
    """Files dated beyond what a listing can write, on a real tmpfs (which keeps any
    64-bit mtime; ext4 would clamp it)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    srv, ftp = session
    d = os.path.join(srv.root, "far")
    os.mkdir(d)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", d],
                   check=True, timeout=IO_TIMEOUT)
    try:
        own(srv, d)
        for name, t in (("far.txt", FAR_FUTURE), ("y10k.txt", YEAR_10000),
                        ("ok.txt", ORDINARY)):
            path = mkfile(srv, "far/" + name, b"x")
            os.utime(path, ns=(0, t * 10**9))
            assert os.stat(path).st_mtime_ns == t * 10**9, name
        yield srv, ftp
    finally:
        subprocess.run(["umount", "-l", d], timeout=IO_TIMEOUT)


def what_a_client_sees_of_dates(ftp):
    names = ("far.txt", "y10k.txt", "ok.txt")
    return {
        "LIST": sorted(listing(ftp, "LIST far")),
        "MLSD": sorted(listing(ftp, "MLSD far")),
        "STAT": reply(ftp, "STAT far"),
        "MLST": [reply(ftp, "MLST far/" + n) for n in names],
        "MDTM": [reply(ftp, "MDTM far/" + n) for n in names],
    }


def test_dates_out_of_range_are_fixed_or_left_out_never_garbage(far_dates):
    """Issue 13: a date gmtime_r rejects (or one past year 9999) printed whatever the
    stack held. LIST shows the epoch, MLSD/MLST leave the modify fact out, MDTM is 550;
    the same in two sessions."""
    srv, ftp = far_dates
    first = what_a_client_sees_of_dates(ftp)
    ftp2 = ftp_login(srv)
    second = what_a_client_sees_of_dates(ftp2)
    quit_(ftp2)
    assert first == second

    lines = {ln.split()[-1]: ln for ln in first["LIST"]}
    for name in ("far.txt", "y10k.txt"):
        assert lines[name].endswith(" Jan  1  1970 " + name), lines[name]
    assert lines["ok.txt"].endswith(" Nov 14  2023 ok.txt"), lines["ok.txt"]
    stat = {ln.split()[-1]: ln.strip() for ln in multiline_body(first["STAT"])}
    assert stat["far.txt"].endswith(" Jan  1  1970 far.txt"), first["STAT"]

    mlsd = dict((name, facts) for facts, name in map(parse_facts, first["MLSD"]))
    assert set(mlsd) == {"far.txt", "y10k.txt", "ok.txt"}, first["MLSD"]
    for name in ("far.txt", "y10k.txt"):
        assert "modify" not in mlsd[name] and mlsd[name]["type"] == "file", mlsd[name]
    assert mlsd["ok.txt"]["modify"] == utc(ORDINARY)
    far, y10k, ok = (mlst_facts(r)[0] for r in first["MLST"])
    assert "modify" not in far and "modify" not in y10k and far["size"] == "1", first["MLST"]
    assert ok["modify"] == utc(ORDINARY)

    assert first["MDTM"][0] == "550 Modification time out of range (years 0 to 9999).", first
    assert first["MDTM"][1] == first["MDTM"][0]
    assert first["MDTM"][2] == "213 " + utc(ORDINARY)


# ------------------------------------------- SITE CHMOD: permission bits only

SPECIAL_MODES = ("4755", "2755", "1777", "6755", "7777", "04644", "1000")


def site_hook(c, what):
    """SITE TESTHOOK (test builds only): None when the session ended instead of a reply."""
    c.send("SITE TESTHOOK " + what)
    try:
        r = c.reply_within(5)
    except ConnectionClosed:
        return None
    if r is not None and r.code == 504:
        pytest.skip("ftpsd built without -Dtest-hooks=true")
    return r


def test_site_chmod_never_sets_setuid_setgid_or_sticky(session, tls):
    """Issue 13: a setuid file made over FTP would run with the user's ids for anyone
    on the host. Every mode with 07000 is refused (550), the mode on disk unchanged;
    the monitor refuses it too when a (taken over) child asks directly."""
    srv, ftp = session
    ftp.storbinary("STOR prog", io.BytesIO(b"#!/bin/sh\nid\n"))
    prog = os.path.join(srv.root, "prog")
    assert ftp.sendcmd("SITE CHMOD 755 prog").startswith("200")
    assert os.stat(prog).st_mode & 0o7777 == 0o755
    sub = os.path.join(srv.root, "sub")
    for mode in SPECIAL_MODES:
        for name, path, before in (("prog", prog, 0o755), ("sub", sub, 0o755)):
            r = reply(ftp, "SITE CHMOD %s %s" % (mode, name))
            assert r == "550 SITE CHMOD cannot set setuid, setgid or sticky bits.", (mode, r)
            assert os.stat(path).st_mode & 0o7777 == before, (mode, name)
    assert ftp.sendcmd("SITE CHMOD 700 prog").startswith("200")
    assert os.stat(prog).st_mode & 0o7777 == 0o700

    # Past the child's check: the monitor takes the request for a forged one and ends
    # the session; the file keeps its mode.
    with secured(srv, tls) as c:
        assert site_hook(c, "CHMOD 755 /prog").text == "monitor answered 0"
        assert os.stat(prog).st_mode & 0o7777 == 0o755
        r = site_hook(c, "CHMOD 4755 /prog")
        assert r is None or r.code == 421, r
        c.wait_closed()
    assert os.stat(prog).st_mode & 0o7777 == 0o755
    assert "malformed message of type 11 from the child" in srv.log


def site_help(c):
    r = c.cmd("SITE HELP")
    assert r.code == 214, r
    return r.text


def test_chmod_off_refuses_site_chmod(server, tls):
    srv = server(chmod="off")
    hello = os.path.join(srv.root, "hello.txt")
    with secured(srv, tls, login=False) as c:
        assert "CHMOD" not in site_help(c)                 # before login: the config's
        c.login()
        assert "CHMOD" not in site_help(c)
        for cmd in ("SITE CHMOD 600 hello.txt", "SITE CHMOD", "site chmod 4755 hello.txt"):
            r = c.cmd(cmd)
            assert (r.code, r.text) == (550, "SITE CHMOD is disabled."), (cmd, r)
        # A child that asks anyway is refused by the monitor (EPERM).
        assert site_hook(c, "CHMOD 600 /hello.txt").text == "monitor answered -1"
        assert c.cmd("NOOP").code == 200
    assert os.stat(hello).st_mode & 0o7777 == 0o644
    assert "chmod /hello.txt: Operation not permitted" in srv.log


def test_users_file_chmod_off_refuses_site_chmod_for_that_user(server, tls):
    srv = server()
    lib.add_users(srv, ["carol:%s:%d:%d:%s:chmod=off" % (srv.pki.hash, srv.accounts.uid,
                                                          srv.accounts.gid, srv.root)])
    hello = os.path.join(srv.root, "hello.txt")
    with secured(srv, tls, login=False) as c:
        assert "CHMOD" in site_help(c)                     # the configuration allows it
        c.login("carol", PASSWORD)
        assert "CHMOD" not in site_help(c)
        r = c.cmd("SITE CHMOD 600 hello.txt")
        assert (r.code, r.text) == (550, "SITE CHMOD is disabled."), r
        assert site_hook(c, "CHMOD 600 /hello.txt").text == "monitor answered -1"
    assert os.stat(hello).st_mode & 0o7777 == 0o644
    with secured(srv, tls) as c:                           # alice may
        assert "CHMOD" in site_help(c)
        assert c.cmd("SITE CHMOD 600 hello.txt").code == 200
    assert os.stat(hello).st_mode & 0o7777 == 0o600
