"""Virtual hosts: [host NAME] sections chosen by HOST (RFC 7151) or by TLS
SNI, each with its own certificate, users file, root and policy."""

import ftplib
import os
import ssl
import subprocess

import pytest

import ftpsd_testlib as lib


def make_cert(d, name):
    key, pem, tmpl = (os.path.join(d, name + ext) for ext in (".key", ".pem", ".tmpl"))
    with open(tmpl, "w") as f:
        f.write('cn = "%s"\ndns_name = "%s"\ntls_www_server\nsigning_key\nexpiration_days = 30\n'
                % (name, name))
    subprocess.run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", key],
                   check=True, capture_output=True, timeout=30)
    subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", key, "--template",
                    tmpl, "--outfile", pem], check=True, capture_output=True, timeout=30)
    return pem, key


@pytest.fixture
def vhosts(server):
    srv = server(start=False)
    # Under the served tree's parent, which the logged-in monitor can reach.
    d = os.path.join(srv.dir, "vhosts")
    os.mkdir(d)
    os.chmod(d, 0o755)
    acc = srv.accounts
    sections = []
    for name, pw, extra in (("a.test", "pw-a", ""), ("b.test", "pw-b", "control-tls = optional\n")):
        pem, key = make_cert(d, name)
        root = os.path.join(d, "root-" + name)
        os.mkdir(root)
        with open(os.path.join(root, "which.txt"), "w") as f:
            f.write("site %s\n" % name)
        users = os.path.join(d, "users-" + name)
        h = subprocess.run(["openssl", "passwd", "-6", pw], check=True, capture_output=True,
                           text=True, timeout=30).stdout.strip()
        with open(users, "w") as f:
            f.write("bob:%s:%d:%d:%s\n" % (h, acc.uid, acc.gid, root))
        if lib.ROOT:
            for p in (root, os.path.join(root, "which.txt")):
                os.chown(p, acc.uid, acc.gid)
        sections.append("[host %s]\ntls-certificate = %s\ntls-key = %s\nusers-file = %s\n%s"
                        % (name, pem, key, users, extra))
    with open(srv.config_path, "a") as f:
        f.write("\n" + "\n".join(sections))
    srv.start()
    return srv


def context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(srv, sni=None, host_cmd=None):
    ftp = lib.ReusingFTP_TLS(context=context(), timeout=lib.IO_TIMEOUT)
    ftp.connect("127.0.0.1", srv.port)
    if host_cmd:
        assert ftp.sendcmd("HOST " + host_cmd).startswith("220")
    if sni:
        ftp.host = sni  # ssl uses it as server_hostname: the SNI
    ftp.auth()
    return ftp


def fetch(ftp, path):
    data = bytearray()
    ftp.retrbinary("RETR " + path, data.extend)
    return bytes(data)


@pytest.mark.parametrize("how", ["sni", "host"])
@pytest.mark.parametrize("name,pw", [("a.test", "pw-a"), ("b.test", "pw-b")])
def test_each_host_has_its_certificate_users_and_root(vhosts, how, name, pw):
    ftp = connect(vhosts, sni=name if how == "sni" else None, host_cmd=name if how == "host" else None)
    cert = ftp.sock.getpeercert(binary_form=True)
    r = subprocess.run(["certtool", "-i", "--inder"], input=cert, capture_output=True, timeout=30)
    assert ("CN=%s" % name).encode() in r.stdout
    ftp.login("bob", pw)
    ftp.prot_p()
    assert fetch(ftp, "which.txt") == ("site %s\n" % name).encode()
    ftp.quit()


def test_users_of_one_host_are_not_users_of_another(vhosts):
    ftp = connect(vhosts, sni="a.test")
    with pytest.raises(ftplib.error_perm) as e:
        ftp.login("bob", "pw-b")
    assert str(e.value).startswith("530")
    ftp.close()


def test_policy_per_host(vhosts):
    """b.test allows a login in clear (control-tls = optional); the global part does not."""
    c = lib.Control(vhosts.port)
    assert c.reply().code == 220
    assert c.cmd("USER bob").code == 530  # no HOST yet: the global policy
    assert c.cmd("HOST b.test").code == 220
    assert c.cmd("USER bob").code == 331
    assert c.cmd("PASS pw-b").code == 230
    c.close()


def test_unknown_host_is_504(vhosts):
    c = lib.Control(vhosts.port)
    assert c.reply().code == 220
    assert c.cmd("HOST nope.test").code == 504
    assert c.cmd("HOST bad/name").code == 501
    c.close()


def test_host_disagreeing_with_sni_is_refused(vhosts):
    ftp = connect(vhosts, sni="a.test")
    with pytest.raises(ftplib.error_perm) as e:
        ftp.sendcmd("HOST b.test")
    assert str(e.value).startswith("504")
    assert ftp.sendcmd("HOST a.test").startswith("220")
    ftp.close()
    # HOST first, then a handshake naming another host: 421 and closed.
    ftp = lib.ReusingFTP_TLS(context=context(), timeout=lib.IO_TIMEOUT)
    ftp.connect("127.0.0.1", vhosts.port)
    assert ftp.sendcmd("HOST a.test").startswith("220")
    ftp.host = "b.test"
    ftp.auth()
    with pytest.raises((ftplib.error_temp, EOFError, ConnectionError)) as e:
        ftp.sendcmd("NOOP")
    assert "421" in str(e.value) or isinstance(e.value, (EOFError, ConnectionError))


def test_check_config_sections(server, ftpsd_bin):
    srv = server(start=False, extra="\n[host x.test]\nempty-dir = /tmp\n[host bad name]\n")
    r = subprocess.run([ftpsd_bin, "--check-config", "--config", srv.config_path],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "empty-dir cannot be set for a host" in r.stderr
    assert "expected [host NAME]" in r.stderr
