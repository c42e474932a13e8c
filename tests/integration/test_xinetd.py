"""ftpsd behind a real xinetd, with the shipped entries (units/xinetd.ftpsd.in and
units/xinetd.ftpsd-implicit.in as meson generated them).

The test starts its own xinetd (-dontfork, its own configuration file, loopback
only) with the entries adapted in nothing but the port, the paths (server = the
built binary, --config the test's configuration) and `bind = 127.0.0.1`.
xinetd hands each connection to ftpsd on fd 0 (and 1 and 2); ftpsd then logs
to syslog, which may not exist here, so nothing below reads ftpsd's log.
"""

import os
import re
import shutil
import subprocess
import types

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import IO_TIMEOUT

pytestmark = [
    pytest.mark.skipif(shutil.which("xinetd") is None, reason="xinetd missing (Debian: xinetd)"),
    pytest.mark.skipif(not lib.ROOT, reason="the shipped entries run ftpsd as root"),
]

ENTRIES = {"explicit": "xinetd.ftpsd", "implicit": "xinetd.ftpsd-implicit"}


def adapt(entry, port, binary, config):
    """The shipped entry with only port, paths and the loopback bind changed."""
    out, seen = [], set()
    for line in entry.splitlines():
        m = re.match(r"^(\s*)(\w+)(\s*)(\+?=)(\s*)(.*)$", line)
        if m:
            key = m.group(2)
            if key == "port":
                line = m.expand(r"\1\2\3\4\5") + str(port)
            elif key == "server":
                line = m.expand(r"\1\2\3\4\5") + binary
            elif key == "server_args":
                args = re.sub(r"--config\s+\S+", "--config " + config, m.group(6))
                assert "--config " + config in args, m.group(6)
                line = m.expand(r"\1\2\3\4\5") + args
            seen.add(key)
        elif line.strip() == "}":
            out.append("\tbind\t\t= 127.0.0.1")
        out.append(line)
    assert {"port", "server", "server_args", "instances", "per_source"} <= seen, entry
    return "\n".join(out) + "\n"


class Xinetd:
    def __init__(self, dir, entries):
        self.dir = dir
        self.conf = os.path.join(dir, "xinetd.conf")
        self.log_path = os.path.join(dir, "xinetd.log")
        with open(self.conf, "w") as f:
            f.write("defaults\n{\n\tlog_type\t= FILE %s\n}\n\n" % self.log_path)
            f.write("\n".join(entries))
        self.proc = None

    @property
    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self, ports):
        self.proc = subprocess.Popen(
            ["xinetd", "-dontfork", "-f", self.conf, "-filelog", self.log_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        ok = lib.wait_for(lambda: self.proc.poll() is not None
                          or all(lib.tcp_listening(p) for p in ports), timeout=lib.START_TIMEOUT)
        if not ok or self.proc.poll() is not None:
            raise AssertionError("xinetd did not listen on %s:\n%s" % (ports, self.log))

    def ftpsd_pids(self):
        return [p for p in lib.descendants(self.proc.pid)
                if lib.alive(p) and lib.proc_stat(p)[0] == "ftpsd"]

    def stop(self):
        if self.proc is None:
            return
        lib.stop_launcher(self.proc)
        self.proc = None


@pytest.fixture
def xinetd(server, ftpsd_bin):
    """xinetd serving the test configuration: .explicit and .implicit ports, .srv (root,
    config, cafile)."""
    srv = server(start=False)
    launchers = []
    for attempt in range(3):  # a free port may be taken before xinetd binds it
        ports = {"explicit": lib.free_port(), "implicit": lib.free_port()}
        if ports["explicit"] == ports["implicit"]:
            continue
        entries = [adapt(lib.shipped_unit(ENTRIES[m]), ports[m], ftpsd_bin, srv.config_path)
                   for m in ("explicit", "implicit")]
        x = Xinetd(srv.dir, entries)
        launchers.append(x)
        try:
            x.start(ports.values())
        except AssertionError:
            x.stop()
            if attempt == 2:
                raise
            continue
        x.srv, x.explicit, x.implicit = srv, ports["explicit"], ports["implicit"]
        break
    yield x
    for x in launchers:
        x.stop()
    print("----- xinetd log -----\n" + launchers[-1].log)


def curl(url, cafile, *extra):
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--ssl-reqd", "-k", "--max-time", str(IO_TIMEOUT),
         "--user", "%s:%s" % (lib.USER, lib.PASSWORD)] + list(extra) + [url],
        capture_output=True, timeout=IO_TIMEOUT + 5)


def test_adapt_changes_only_port_paths_and_bind():
    entry = lib.shipped_unit("xinetd.ftpsd")
    new = adapt(entry, 2121, "/x/ftpsd", "/y/ftpsd.conf")
    removed = set(entry.splitlines()) - set(new.splitlines())
    added = set(new.splitlines()) - set(entry.splitlines())
    assert {re.split(r"\s", line.strip())[0] for line in removed} == {"port", "server",
                                                                       "server_args"}
    assert {re.split(r"\s", line.strip())[0] for line in added} == {"port", "server",
                                                                     "server_args", "bind"}


def test_explicit_session_through_xinetd(xinetd):
    r = curl("ftp://127.0.0.1:%d/hello.txt" % xinetd.explicit, xinetd.srv.cafile)
    assert r.returncode == 0 and r.stdout == lib.HELLO, r.stderr
    ftp = lib.ftp_login(types.SimpleNamespace(port=xinetd.explicit, cafile=xinetd.srv.cafile))
    lines = []
    ftp.retrlines("LIST", lines.append)
    assert any(line.endswith(" hello.txt") for line in lines), lines
    assert all(ftp.data_resumed), ftp.data_resumed
    ftp.quit()


def test_implicit_session_through_xinetd(xinetd):
    r = curl("ftps://127.0.0.1:%d/hello.txt" % xinetd.implicit, xinetd.srv.cafile)
    assert r.returncode == 0 and r.stdout == lib.HELLO, r.stderr
    ftp = lib.ImplicitFTP_TLS(context=lib.client_context(xinetd.srv.cafile), timeout=IO_TIMEOUT)
    ftp.connect("127.0.0.1", xinetd.implicit)
    ftp.login(lib.USER, lib.PASSWORD)
    ftp.prot_p()
    assert "hello.txt" in ftp.nlst()
    ftp.quit()
    # An explicit client on the implicit port gets no greeting in clear.
    with lib.Control(xinetd.implicit) as c:
        assert c.reply_within(1) is None


def test_the_session_is_ftpsd_started_by_xinetd(xinetd):
    """ftpsd itself serves the connection: its monitor is xinetd's child (inetd launch,
    the connection on fd 0), and it put /dev/null on 0-2 so that nothing it logs can
    reach the client's socket."""
    with lib.Control(xinetd.explicit) as c:
        assert c.reply().code == 220
        found = lib.wait_for(lambda: [p for p in lib.children(xinetd.proc.pid)
                                      if lib.alive(p) and lib.proc_stat(p)[0] == "ftpsd"])
        assert len(found) == 1, found
        monitor = found[0]
        assert lib.proc_args(monitor).startswith("ftpsd: monitor 127.0.0.1"), \
            lib.proc_args(monitor)
        for fd in (0, 1, 2):
            assert os.readlink("/proc/%d/fd/%d" % (monitor, fd)) == "/dev/null"
        kids = lib.wait_for(lambda: [p for p in lib.children(monitor) if lib.alive(p)])
        assert len(kids) == 1, kids
        assert c.cmd("QUIT").code == 221


def test_per_source_limit_of_the_entry(xinetd):
    """The entry's per_source = 24 is above ftpsd's max-sessions-per-address (16):
    a seventeenth session gets ftpsd's 421 that names the limit. Without ftpsd's
    limit, 24 are served and a 25th connection from the same address is closed
    by xinetd without a word."""
    per_source = int(re.search(r"per_source\s*=\s*(\d+)",
                               lib.shipped_unit("xinetd.ftpsd")).group(1))
    assert per_source == 24
    open_ = []
    try:
        for _ in range(16):
            c = lib.Control(xinetd.explicit)
            open_.append(c)
            assert c.reply().code == 220
        c = lib.Control(xinetd.explicit)
        open_.append(c)
        assert c.reply().lines[0] == ("421 Too many sessions from your address "
                                      "(max-sessions-per-address 16), try again later.")
        c.wait_closed(timeout=5)
        # Each connection reads the configuration anew.
        with open(xinetd.srv.config_path) as f:
            text = f.read()
        with open(xinetd.srv.config_path, "w") as f:
            f.write(lib.rewrite_config(text, {"max-sessions-per-address": "0"}))
        for _ in range(per_source - 16):
            c = lib.Control(xinetd.explicit)
            open_.append(c)
            assert c.reply().code == 220
        extra = lib.Control(xinetd.explicit)
        open_.append(extra)
        data = extra.wait_closed(timeout=5)
        assert data == b"", data
    finally:
        for c in open_:
            c.close()
    # Once they are gone, a new session is served again.
    lib.wait_for(lambda: not xinetd.ftpsd_pids(), timeout=5)
    r = curl("ftp://127.0.0.1:%d/hello.txt" % xinetd.explicit, xinetd.srv.cafile)
    assert r.returncode == 0 and r.stdout == lib.HELLO, r.stderr
