"""Real clients against ftpsd: curl (OpenSSL), lftp (GnuTLS), gnutls-cli and
openssl s_client STARTTLS handshakes. Each runs as a subprocess with a timeout."""

import os
import subprocess

import pytest

from ftpsd_testlib import HELLO, INNER, USER, PASSWORD, IO_TIMEOUT, interact, lftp_command, sha256_file

CLIENT_TIMEOUT = 30


def run(argv, input=None, env=None, timeout=CLIENT_TIMEOUT):
    return subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=env)


def curl(*args):
    return run(["curl", "-sS", "--max-time", str(IO_TIMEOUT * 2), "--connect-timeout",
                str(IO_TIMEOUT)] + list(args))


def ftp_url(srv, path="", scheme="ftp"):
    return "%s://%s:%s@127.0.0.1:%d/%s" % (scheme, USER, PASSWORD, srv.port, path)


@pytest.fixture
def payload(tmp_path):
    p = tmp_path / "payload.bin"
    p.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return p


def ok(r):
    assert r.returncode == 0, "rc=%d\nstdout=%r\nstderr=%s" % (
        r.returncode, r.stdout[-2000:], r.stderr.decode(errors="replace")[-4000:])
    return r


# ------------------------------------------------------------------------ curl

def test_curl_download(server):
    srv = server()
    r = ok(curl("--ssl-reqd", "-k", ftp_url(srv, "hello.txt")))
    assert r.stdout == HELLO


def test_curl_download_verifies_certificate(server):
    srv = server()
    r = ok(curl("--ssl-reqd", "--cacert", srv.cafile, ftp_url(srv, "sub/inner.txt")))
    assert r.stdout == INNER


def test_curl_download_pasv(server):
    srv = server()
    r = ok(curl("--ssl-reqd", "-k", "--disable-epsv", ftp_url(srv, "hello.txt")))
    assert r.stdout == HELLO


def test_curl_upload_byte_for_byte(server, payload):
    srv = server()
    ok(curl("--ssl-reqd", "-k", "-T", str(payload), ftp_url(srv, "up.bin")))
    assert sha256_file(os.path.join(srv.root, "up.bin")) == sha256_file(payload)


def test_curl_upload_then_download_large(server, payload, tmp_path):
    srv = server()
    ok(curl("--ssl-reqd", "-k", "-T", str(payload), ftp_url(srv, "round.bin")))
    out = tmp_path / "back.bin"
    ok(curl("--ssl-reqd", "-k", "-o", str(out), ftp_url(srv, "round.bin")))
    assert sha256_file(out) == sha256_file(payload)


def test_curl_list_dir(server):
    srv = server()
    r = ok(curl("--ssl-reqd", "-k", ftp_url(srv, "")))
    text = r.stdout.decode()
    assert "hello.txt" in text and "sub" in text, text


def test_curl_list_only(server):
    srv = server()
    r = ok(curl("--ssl-reqd", "-k", "--list-only", ftp_url(srv, "sub/")))
    names = {os.path.basename(n) for n in r.stdout.decode().split()}
    assert "inner.txt" in names, names


def test_curl_several_transfers_on_one_control_connection(server, tmp_path):
    """curl reuses the control connection; each data connection must resume (TLS 1.3 tickets)."""
    srv = server()
    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    r = ok(curl("--ssl-reqd", "-k", "-v",
                ftp_url(srv, "hello.txt"), "-o", str(a),
                ftp_url(srv, "sub/inner.txt"), "-o", str(b),
                ftp_url(srv, "hello.txt"), "-o", str(c)))
    assert a.read_bytes() == HELLO and b.read_bytes() == INNER and c.read_bytes() == HELLO
    assert b"Re-using existing connection" in r.stderr or b"Reusing existing" in r.stderr


def test_curl_wrong_password_fails(server):
    srv = server()
    r = curl("--ssl-reqd", "-k", "ftp://%s:wrong@127.0.0.1:%d/hello.txt" % (USER, srv.port))
    assert r.returncode == 67, r  # CURLE_LOGIN_DENIED


def test_curl_tls_1_2(server):
    srv = server()
    r = ok(curl("--ssl-reqd", "-k", "--tlsv1.2", "--tls-max", "1.2", ftp_url(srv, "hello.txt")))
    assert r.stdout == HELLO


def test_curl_implicit_ftps(server, payload):
    srv = server(implicit=True)
    r = ok(curl("-k", ftp_url(srv, "hello.txt", scheme="ftps")))
    assert r.stdout == HELLO
    ok(curl("-k", "-T", str(payload), ftp_url(srv, "implicit.bin", scheme="ftps")))
    assert sha256_file(os.path.join(srv.root, "implicit.bin")) == sha256_file(payload)
    r = ok(curl("-k", ftp_url(srv, "", scheme="ftps")))
    assert b"hello.txt" in r.stdout


# ------------------------------------------------------------------------ lftp

def lftp(srv, commands, tmp_path, settings=()):
    argv, env = lftp_command(srv, commands, tmp_path, settings)
    return run(argv, env=env)


def test_lftp_ls(server, tmp_path):
    srv = server()
    r = ok(lftp(srv, ["ls"], tmp_path))
    assert b"hello.txt" in r.stdout and b"sub" in r.stdout, r.stdout


def test_lftp_get_byte_for_byte(server, payload, tmp_path):
    srv = server()
    with open(os.path.join(srv.root, "p.bin"), "wb") as f:
        f.write(payload.read_bytes())
    out = tmp_path / "got.bin"
    ok(lftp(srv, ["get p.bin -o %s" % out, "get hello.txt -o %s" % (tmp_path / "h.txt")],
            tmp_path))
    assert sha256_file(out) == sha256_file(payload)
    assert (tmp_path / "h.txt").read_bytes() == HELLO


def test_lftp_put_byte_for_byte(server, payload, tmp_path):
    srv = server()
    ok(lftp(srv, ["put %s -o put.bin" % payload], tmp_path))
    assert sha256_file(os.path.join(srv.root, "put.bin")) == sha256_file(payload)


def test_lftp_mirror_small_files(server, tmp_path):
    """Many small data connections in one session, each resuming."""
    srv = server()
    d = os.path.join(srv.root, "many")
    os.mkdir(d)
    for i in range(20):
        with open(os.path.join(d, "f%02d.txt" % i), "wb") as f:
            f.write(b"file %d\n" % i)
    if srv.accounts.uid != os.getuid():
        for n in [d] + [os.path.join(d, x) for x in os.listdir(d)]:
            os.chown(n, srv.accounts.uid, srv.accounts.gid)
    out = tmp_path / "mirror"
    ok(lftp(srv, ["mirror many %s" % out], tmp_path))
    for i in range(20):
        assert (out / ("f%02d.txt" % i)).read_bytes() == b"file %d\n" % i


# ------------------------------------------------------- STARTTLS handshakes

def test_gnutls_cli_starttls_ftp(server):
    srv = server()
    rc, out, err = interact(["gnutls-cli", "--starttls-proto=ftp", "--insecure",
                             "-p", str(srv.port), "127.0.0.1"], b"NOOP\r\nQUIT\r\n")
    assert "Handshake was completed" in out, out + err
    after = out.split("Handshake was completed", 1)[1]
    assert "200" in after and "221" in after, out + err


def test_gnutls_cli_starttls_ftp_verifies_against_the_certificate(server):
    srv = server()
    r = run(["gnutls-cli", "--starttls-proto=ftp", "--x509cafile", srv.cafile,
             "-p", str(srv.port), "127.0.0.1"], input=b"QUIT\r\n")
    out = r.stdout.decode(errors="replace")
    assert "Handshake was completed" in out, out + r.stderr.decode(errors="replace")
    assert "NOT trusted" not in out


def test_openssl_s_client_starttls_ftp(server):
    srv = server()
    r = run(["openssl", "s_client", "-starttls", "ftp", "-connect", "127.0.0.1:%d" % srv.port,
             "-brief", "-crlf"], input=b"NOOP\nQUIT\n")
    err = r.stderr.decode(errors="replace")
    assert "CONNECTION ESTABLISHED" in err, err + r.stdout.decode(errors="replace")
    assert "Protocol version: TLSv1.3" in err or "Protocol version: TLSv1.2" in err, err


def test_openssl_s_client_tls12_starttls_ftp(server):
    srv = server()
    r = run(["openssl", "s_client", "-starttls", "ftp", "-connect", "127.0.0.1:%d" % srv.port,
             "-brief", "-crlf", "-tls1_2"], input=b"QUIT\n")
    err = r.stderr.decode(errors="replace")
    assert "CONNECTION ESTABLISHED" in err, err
    assert "Protocol version: TLSv1.2" in err, err
