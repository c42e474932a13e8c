"""Least privilege in time: the TLS private key is in the monitor only while a signature
can still be needed.

Where data-tls-reuse applies to the user, every data handshake must resume and the
monitor refuses every signature after login, so it drops its keys at login; with
data-tls-reuse = off a data connection may be a full handshake and the key stays. The
check reads the process's memory (/proc/PID/mem, root only: the monitor is not dumpable)
for the key's private scalar, in the byte orders a DER field and a bignum's limbs hold it.
The key = off case is the check's own control: the scalar is found there. The child
never has it, in either case.
"""

import re
import subprocess

import pytest

from ftpsd_testlib import (ROOT, ReusingFTP_TLS, StockFTP_TLS, client_context, ftp_login, secured,
                           session_pids, wait_for)

needs_root = pytest.mark.skipif(not ROOT, reason="reading a non-dumpable process needs root")


def private_scalar(key_path):
    """The private scalar of the suite's ECDSA key, big-endian."""
    out = subprocess.run(["openssl", "pkey", "-in", key_path, "-text", "-noout"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"^priv:\n((?:\s+[0-9a-f:]+\n)+)", out, re.M)
    assert m, out
    d = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
    return d.lstrip(b"\0").rjust(32, b"\0")


def memory_holds(pid, needles):
    """Whether any readable mapping of pid holds one of needles."""
    found = False
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except OSError:
                continue
            found = found or any(n in data for n in needles)
    return found


@needs_root
@pytest.mark.parametrize("reuse", ["required", "off"])
def test_monitor_drops_the_key_at_login_where_data_resumes(server, pki, reuse):
    srv = server(data_tls_reuse=reuse)
    d = private_scalar(pki.key)
    needles = [d, d[::-1]]
    tls = client_context(srv.cafile)
    with secured(srv, tls, login=False) as c:
        monitor, child = session_pids(srv)
        # Before login the control handshake needed the key: the monitor holds it.
        assert memory_holds(monitor, needles)
        assert not memory_holds(child, needles)
        c.login()
        assert c.cmd("NOOP").code == 200
        if reuse == "required":
            assert not memory_holds(monitor, needles)
            assert wait_for(lambda: "private keys dropped" in srv.log)
        else:
            assert memory_holds(monitor, needles)
            assert "private keys dropped" not in srv.log
        assert not memory_holds(child, needles)


def test_transfers_after_login_with_and_without_the_key(server):
    """With the keys gone, a listing over a resumed data connection; with
    data-tls-reuse = off, where they stay, one over a full data handshake (a client that
    never resumes), which the monitor signs for after login."""
    for reuse, cls in (("required", ReusingFTP_TLS), ("off", StockFTP_TLS)):
        srv = server(data_tls_reuse=reuse)
        ftp = ftp_login(srv, cls=cls)
        assert isinstance(ftp.nlst(), list)
        ftp.quit()
        assert ("private keys dropped" in srv.log) == (reuse == "required"), srv.log
