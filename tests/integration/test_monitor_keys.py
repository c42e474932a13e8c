"""Least privilege in time: the TLS private key is in the monitor only while a signature
can still be needed.

Where data-tls-reuse applies to the user, every data handshake must resume and the
monitor refuses every signature after login, so it drops its keys at login; with
data-tls-reuse = off a data connection may be a full handshake and the key stays. The
check reads the process's memory (memory_find: /proc/PID/mem, root only, the monitor is
not dumpable) for the key's private scalar, in the byte orders a DER field and a bignum's
limbs hold it. Before login, and after it with reuse = off, the scalar must be found:
the check's own control. The child never has it.
"""

import pytest

from ftpsd_testlib import (ROOT, ReusingFTP_TLS, StockFTP_TLS, ecdsa_secret, ftp_login,
                           memory_find, secured, session_pids, wait_for)

needs_root = pytest.mark.skipif(not ROOT, reason="reading a non-dumpable process needs root")


def holds_key(pid, secret):
    found, n = memory_find(pid, [secret, secret[::-1]])
    assert n > 1 << 20, "read only %d bytes of process %d's memory" % (n, pid)
    return bool(found)


@needs_root
@pytest.mark.parametrize("reuse", ["required", "off"])
def test_monitor_drops_the_key_at_login_where_data_resumes(server, tls, reuse):
    srv = server(data_tls_reuse=reuse)
    secret = ecdsa_secret(srv.pki.key)
    with secured(srv, tls, login=False) as c:
        monitor, child = session_pids(srv)
        # Before login the control handshake needed the key: the monitor holds it.
        assert holds_key(monitor, secret)
        assert not holds_key(child, secret)
        c.login()
        assert c.cmd("NOOP").code == 200
        if reuse == "required":
            assert not holds_key(monitor, secret), "the monitor kept the key after login"
            assert wait_for(lambda: "private keys dropped" in srv.log)
        else:
            assert holds_key(monitor, secret), "the key went where full data handshakes need it"
            assert "private keys dropped" not in srv.log
        assert not holds_key(child, secret)


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
