"""Real clients on the command set of issue 4: lftp `mirror` and `mirror -R` of a tree of
300 files in nested directories whose names have spaces and UTF-8, compared by SHA-256
both ways (with the permissions and times lftp carries over with SITE CHMOD and MFMT);
lftp in active mode with PROT P; curl ranges and resume (`-C -`, `--range`, upload
resume with APPE); curl in active mode (`--ftp-port`, TLS on control only: Debian 12's
curl cannot do active mode with a protected data channel, curl bug #10666).

Every client runs as a subprocess with a timeout and `net:max-retries 1`, so a failure
shows as a failure, not as a retry loop.
"""

import hashlib
import os
import re
import subprocess

import pytest

from ftpsd_testlib import IO_TIMEOUT, PASSWORD, USER, lftp_command, sha256_file

CLIENT_TIMEOUT = 55  # below the suite's 60 s watchdog
MIB = 1 << 20

DIRS_A = 6       # top-level directories
DIRS_B = 5       # subdirectories in each
FILES = 10       # files in each subdirectory: 6 * 5 * 10 = 300


def run(argv, env=None, timeout=CLIENT_TIMEOUT):
    return subprocess.run(argv, capture_output=True, timeout=timeout, env=env)


def ok(r):
    assert r.returncode == 0, "rc=%d\nstdout=%r\nstderr=%s" % (
        r.returncode, r.stdout[-2000:], r.stderr.decode(errors="replace")[-4000:])
    return r


def lftp(srv, commands, tmp_path, settings=()):
    argv, env = lftp_command(srv, commands, tmp_path, settings)
    return run(argv, env=env)


def curl(*args):
    return run(["curl", "-sS", "--max-time", str(IO_TIMEOUT * 2), "--connect-timeout",
                str(IO_TIMEOUT)] + list(args))


def ftp_url(srv, path=""):
    return "ftp://%s:%s@127.0.0.1:%d/%s" % (USER, PASSWORD, srv.port, path)


# ----------------------------------------------------------------- the tree

def make_tree(top, owner=None):
    """300 files in 6 x 5 nested directories, names with spaces and UTF-8, sizes from 0
    to a few KiB plus one of 1 MiB, modes 0644/0600/0755 and old mtimes."""
    files = {}
    n = 0
    for a in range(DIRS_A):
        for b in range(DIRS_B):
            rel_dir = os.path.join("dír ü %d" % a, "sub %d €" % b)
            os.makedirs(os.path.join(top, rel_dir))
            for c in range(FILES):
                rel = os.path.join(rel_dir, "fïlé %d.txt" % c)
                size = 0 if n % 37 == 0 else (MIB if n == 123 else 1 + (n * 131) % 5000)
                data = os.urandom(size)
                path = os.path.join(top, rel)
                with open(path, "wb") as f:
                    f.write(data)
                mode = (0o644, 0o600, 0o755)[n % 3]
                os.chmod(path, mode)
                mtime = 1500000000 + n * 3607
                os.utime(path, (mtime, mtime))
                files[rel] = (hashlib.sha256(data).hexdigest(), mode, mtime)
                n += 1
    if owner is not None:
        for dirpath, dirnames, filenames in os.walk(top):
            os.chown(dirpath, *owner)
            for f in filenames:
                os.chown(os.path.join(dirpath, f), *owner)
    assert len(files) == DIRS_A * DIRS_B * FILES
    return files


def tree_of(top):
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for f in filenames:
            path = os.path.join(dirpath, f)
            st = os.stat(path)
            out[os.path.relpath(path, top)] = (sha256_file(path), st.st_mode & 0o777,
                                               int(st.st_mtime))
    return out


def compare(want, got):
    assert set(got) == set(want), "missing %s, extra %s" % (
        sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5])
    bad = [k for k in want if got[k][0] != want[k][0]]
    assert not bad, "content differs: %s" % bad[:5]
    return [k for k in want if got[k][1:] != want[k][1:]]


# ------------------------------------------------------------------ lftp mirror

def test_lftp_mirror_download_300_files(server, tmp_path):
    srv = server()
    want = make_tree(os.path.join(srv.root, "tree"), (srv.accounts.uid, srv.accounts.gid))
    out = tmp_path / "out"
    ok(lftp(srv, ["mirror tree %s" % out], tmp_path))
    got = tree_of(str(out))
    off = compare(want, got)
    # lftp takes the time from MLSD's modify fact, the mode from unix.mode
    assert not off, "mode/mtime differ: %s" % [(k, want[k][1:], got[k][1:]) for k in off[:5]]


def test_lftp_mirror_upload_300_files(server, tmp_path):
    srv = server()
    src = tmp_path / "src"
    want = make_tree(str(src))
    ok(lftp(srv, ["mirror -R %s up" % src], tmp_path))
    got = tree_of(os.path.join(srv.root, "up"))
    off = compare(want, got)
    # lftp sets them with SITE CHMOD and MFMT after each upload
    assert not off, "mode/mtime differ: %s" % [(k, want[k][1:], got[k][1:]) for k in off[:5]]
    if srv.accounts.uid != os.getuid():
        st = os.stat(os.path.join(srv.root, "up", "dír ü 0", "sub 0 €", "fïlé 1.txt"))
        assert (st.st_uid, st.st_gid) == (srv.accounts.uid, srv.accounts.gid)


# ------------------------------------------------------------ lftp active mode

def test_lftp_active_mode_list_get_put_with_prot_p(server, tmp_path):
    srv = server()
    data = os.urandom(3 * MIB + 5)
    path = os.path.join(srv.root, "act.bin")
    with open(path, "wb") as f:
        f.write(data)
    os.chown(path, srv.accounts.uid, srv.accounts.gid)
    src = tmp_path / "src.bin"
    src.write_bytes(data[::-1])
    got = tmp_path / "got.bin"
    r = ok(lftp(srv, ["ls", "get act.bin -o %s" % got, "put %s -o put.bin" % src],
                tmp_path, settings=["set ftp:passive-mode off", "debug 5"]))
    assert b"act.bin" in r.stdout and b"hello.txt" in r.stdout, r.stdout
    assert got.read_bytes() == data
    with open(os.path.join(srv.root, "put.bin"), "rb") as f:
        assert f.read() == data[::-1]
    log = r.stderr.decode(errors="replace")
    sent = re.findall(r"---> (\w+)", log)
    assert "PORT" in sent or "EPRT" in sent, log[-3000:]
    assert "PASV" not in sent and "EPSV" not in sent, log[-3000:]
    assert "PROT" in sent and "---> PROT P" in log


# ------------------------------------------------------------------------- curl

@pytest.fixture
def remote(server):
    srv = server()
    data = os.urandom(300000)
    path = os.path.join(srv.root, "r.bin")
    with open(path, "wb") as f:
        f.write(data)
    os.chown(path, srv.accounts.uid, srv.accounts.gid)
    return srv, data


def test_curl_resumes_a_partial_download(remote, tmp_path):
    srv, data = remote
    out = tmp_path / "partial.bin"
    out.write_bytes(data[:100000])
    ok(curl("--ssl-reqd", "-k", "-C", "-", "-o", str(out), ftp_url(srv, "r.bin")))
    assert out.read_bytes() == data
    assert re.search(r"sent /r\.bin: 200000 bytes", srv.log), srv.log   # only the rest


def test_curl_ranges(remote):
    srv, data = remote
    r = ok(curl("--ssl-reqd", "-k", "--range", "100-199", ftp_url(srv, "r.bin")))
    assert r.stdout == data[100:200]
    r = ok(curl("--ssl-reqd", "-k", "--range", "299990-", ftp_url(srv, "r.bin")))
    assert r.stdout == data[299990:]
    r = ok(curl("--ssl-reqd", "-k", "--range", "0-0", ftp_url(srv, "r.bin")))
    assert r.stdout == data[:1]
    # the control connection survived each early stop: a listing works afterwards
    r = ok(curl("--ssl-reqd", "-k", "--range", "5-9", ftp_url(srv, "r.bin"),
                "--next", "--ssl-reqd", "-k", ftp_url(srv, "")))
    assert r.stdout.startswith(data[5:10]) and b"r.bin" in r.stdout


def test_curl_resumes_an_upload(remote, tmp_path):
    """curl -C - -T asks SIZE, then sends only the rest with APPE."""
    srv, data = remote
    part = os.path.join(srv.root, "u.bin")
    with open(part, "wb") as f:
        f.write(data[:123457])
    os.chown(part, srv.accounts.uid, srv.accounts.gid)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    ok(curl("--ssl-reqd", "-k", "-C", "-", "-T", str(src), ftp_url(srv, "u.bin")))
    with open(part, "rb") as f:
        assert f.read() == data
    assert re.search(r"received /u\.bin: %d bytes" % (len(data) - 123457), srv.log), srv.log
    # and an explicit offset
    with open(part, "wb") as f:
        f.write(data[:1000])
    ok(curl("--ssl-reqd", "-k", "-C", "1000", "-T", str(src), ftp_url(srv, "u.bin")))
    with open(part, "rb") as f:
        assert f.read() == data


def test_curl_active_mode_with_tls_on_control_only(server, tmp_path):
    srv = server(data_tls="optional")
    data = os.urandom(500000)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    common = ["--ftp-ssl-control", "-k", "--ftp-port", "127.0.0.1", "-v"]
    r = ok(curl(*common, "-T", str(src), ftp_url(srv, "act.bin")))
    assert re.search(rb"> (PORT|EPRT) ", r.stderr), r.stderr[-2000:]
    with open(os.path.join(srv.root, "act.bin"), "rb") as f:
        assert f.read() == data
    r = ok(curl(*common, ftp_url(srv, "act.bin")))
    assert r.stdout == data
    r = ok(curl(*common, ftp_url(srv, "")))
    assert b"act.bin" in r.stdout and b"hello.txt" in r.stdout
    assert b"> PROT C" in r.stderr or b"> PROT" not in r.stderr, r.stderr[-2000:]


def test_curl_active_mode_refused_when_off(server):
    srv = server(data_tls="optional", active_mode="off")
    r = curl("--ftp-ssl-control", "-k", "--ftp-port", "127.0.0.1", "-v", ftp_url(srv, "hello.txt"))
    assert r.returncode != 0
    assert re.search(rb"< 502 ", r.stderr), r.stderr[-2000:]
