"""`meson install --destdir` of the build $FTPSD_BIN comes from, and the tree it makes.

Where things must land is worked out independently of units/meson.build: the
build's own directory options (meson introspect) and systemd's pkg-config
variables (with ${prefix} set to the build's prefix), as a packager would
expect them. Generated files must carry the build's paths (ExecStart=, xinetd's
server=) and no template variable.
"""

import json
import os
import re
import shutil
import stat
import subprocess

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import IO_TIMEOUT

BUILD = lib.meson_build_dir()

pytestmark = [
    pytest.mark.skipif(BUILD is None, reason="FTPSD_BIN is not in a meson build directory"),
    pytest.mark.skipif(shutil.which("meson") is None, reason="meson missing"),
]


def build_options():
    r = subprocess.run(["meson", "introspect", "--buildoptions", BUILD], capture_output=True,
                       text=True, timeout=60, check=True)
    return {o["name"]: o["value"] for o in json.loads(r.stdout)}


def systemd_dir(var, prefix, fallback):
    if shutil.which("pkg-config") is None:
        return fallback
    r = subprocess.run(["pkg-config", "--define-variable=prefix=" + prefix, "--variable=" + var,
                        "systemd"], capture_output=True, text=True, timeout=IO_TIMEOUT)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else fallback


class Layout:
    def __init__(self):
        o = build_options()
        self.prefix = o["prefix"]
        j = lambda d: os.path.join(self.prefix, d)  # noqa: E731 (absolute d wins)
        self.sbindir = j(o["sbindir"])
        self.sysconfdir = j(o["sysconfdir"])
        self.mandir = j(o["mandir"])
        self.docdir = os.path.join(j(o["datadir"]), "doc", "ftpsd")
        self.unitdir = systemd_dir("systemdsystemunitdir", self.prefix,
                                   j("lib/systemd/system"))
        self.sysusersdir = systemd_dir("sysusersdir", self.prefix, j("lib/sysusers.d"))
        self.tmpfilesdir = systemd_dir("tmpfilesdir", self.prefix, j("lib/tmpfiles.d"))


def meson_install(destdir):
    r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet",
                        "--destdir", str(destdir)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = tmp_path_factory.mktemp("destdir")
    meson_install(dest)
    return dest, Layout()


def at(dest, path):
    return os.path.join(str(dest), path.lstrip("/"))


def read(dest, path):
    with open(at(dest, path)) as f:
        return f.read()


@pytest.mark.parametrize("name", ["ftpsd", "ftpsd-user"])
def test_binary_in_sbindir(installed, name):
    dest, lay = installed
    path = at(dest, os.path.join(lay.sbindir, name))
    assert os.access(path, os.X_OK), path
    r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=IO_TIMEOUT)
    assert r.returncode == 0 and r.stdout.startswith(name + " "), r.stdout + r.stderr


@pytest.mark.parametrize("name", ["ftpsd.socket", "ftpsd@.service", "ftpsd-implicit.socket",
                                  "ftpsd-implicit@.service"])
def test_units_in_systemds_unit_dir(installed, name):
    dest, lay = installed
    text = read(dest, os.path.join(lay.unitdir, name))
    assert not re.search(r"@[A-Za-z_]+@", text), text
    if name.endswith(".service"):
        m = re.search(r"^ExecStart=(\S+) --config (\S+)(.*)$", text, re.M)
        assert m, text
        assert m.group(1) == os.path.join(lay.sbindir, "ftpsd")
        assert m.group(2) == os.path.join(lay.sysconfdir, "ftpsd", "ftpsd.conf")
        assert ("--implicit-tls" in m.group(3)) == name.startswith("ftpsd-implicit")
    else:
        port = "990" if "implicit" in name else "21"
        assert re.search(r"^ListenStream=%s$" % port, text, re.M), text
        assert re.search(r"^Accept=yes$", text, re.M), text


def test_sysusers_and_tmpfiles_entries(installed):
    dest, lay = installed
    sysusers = read(dest, os.path.join(lay.sysusersdir, "ftpsd.conf"))
    assert re.search(r"^u ftpsd ", sysusers, re.M), sysusers
    tmpfiles = read(dest, os.path.join(lay.tmpfilesdir, "ftpsd.conf"))
    assert re.search(r"^d /run/ftpsd/empty 0755 root root", tmpfiles, re.M), tmpfiles
    assert re.search(r"^d /var/lib/ftpsd/quota 0700 root root", tmpfiles, re.M), tmpfiles


def test_configuration_and_pam_in_sysconfdir(installed):
    dest, lay = installed
    conf = os.path.join(lay.sysconfdir, "ftpsd", "ftpsd.conf")
    with open(os.path.join(lib.REPO, "policy", "ftpsd.conf")) as f:
        assert read(dest, conf) == f.read()
    assert stat.S_IMODE(os.stat(at(dest, conf)).st_mode) == 0o644
    pam = read(dest, os.path.join(lay.sysconfdir, "pam.d", "ftpsd"))
    assert "common-auth" in pam, pam
    rotate = read(dest, os.path.join(lay.sysconfdir, "logrotate.d", "ftpsd"))
    assert re.search(r"^/var/log/ftpsd/xferlog \{", rotate, re.M), rotate


def test_man_pages_in_mandir(installed):
    dest, lay = installed
    for page in ("man8/ftpsd.8", "man5/ftpsd.conf.5", "man8/ftpsd-user.8"):
        text = read(dest, os.path.join(lay.mandir, page))
        assert text.startswith((".TH", "'\\\"", ".\\\"")), page


def test_docs_and_examples_in_docdir(installed):
    dest, lay = installed
    for doc in ("README", "NEWS", "examples/ftpsd.conf", "examples/xinetd.d/ftpsd",
                "examples/xinetd.d/ftpsd-implicit", "examples/fail2ban/ftpsd.conf",
                "examples/systemd/pam.conf", "examples/haproxy/haproxy.cfg",
                "examples/systemd/socket-behind-balancer.conf"):
        assert os.path.isfile(at(dest, os.path.join(lay.docdir, doc))), doc
    for entry in ("ftpsd", "ftpsd-implicit"):
        text = read(dest, os.path.join(lay.docdir, "examples/xinetd.d", entry))
        assert re.search(r"^\s*server\s*=\s*%s$" % re.escape(os.path.join(lay.sbindir, "ftpsd")),
                         text, re.M), text
        assert os.path.join(lay.sysconfdir, "ftpsd", "ftpsd.conf") in text
        assert ("--implicit-tls" in text) == (entry == "ftpsd-implicit")
    # Every example policy in policy/ is there.
    for name in os.listdir(os.path.join(lib.REPO, "policy")):
        assert os.path.isfile(at(dest, os.path.join(lay.docdir, "examples", name))), name


def test_reinstall_keeps_an_edited_configuration(tmp_path):
    """`meson install` over a configured system replaces program and units, never
    the administrator's ftpsd.conf or PAM file."""
    lay = Layout()
    conf = at(tmp_path, os.path.join(lay.sysconfdir, "ftpsd", "ftpsd.conf"))
    pam = at(tmp_path, os.path.join(lay.sysconfdir, "pam.d", "ftpsd"))
    for path, text in ((conf, "users-file = /etc/ftpsd/users\n"), (pam, "auth required x\n")):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    meson_install(tmp_path)
    with open(conf) as f:
        assert f.read() == "users-file = /etc/ftpsd/users\n"
    with open(pam) as f:
        assert f.read() == "auth required x\n"
    assert os.path.isfile(at(tmp_path, os.path.join(lay.sbindir, "ftpsd")))
