"""The control channel, one conversation per reply code of the contract.

Raw sockets (ftpsd_testlib.Control) so that every line on the wire is the test's
own: nothing is sent that the scenario does not show.
"""

import time

from ftpsd_testlib import Control, ConnectionClosed, USER, PASSWORD, wait_for


def greeted(server):
    c = Control(server.port)
    r = c.reply()
    assert r.code == 220, r
    return c


def secured(server, tls, mech="TLS"):
    c = greeted(server)
    r = c.cmd("AUTH " + mech)
    assert r.code == 234, r
    c.starttls(tls)
    return c


# ---------------------------------------------------------------- greeting, AUTH

def test_greeting_is_220_with_banner(server):
    srv = server(banner="Welcome to the test ftpsd")
    with Control(srv.port) as c:
        r = c.reply()
        assert r.code == 220
        assert "Welcome to the test ftpsd" in "\n".join(r.lines)


def test_auth_tls_is_234_then_handshake(server, tls):
    srv = server()
    with greeted(srv) as c:
        assert c.cmd("AUTH TLS").code == 234
        s = c.starttls(tls)
        assert s.version() in ("TLSv1.3", "TLSv1.2")
        assert c.cmd("NOOP").code == 200


def test_tls_priority_is_applied(server, tls):
    srv = server(tls_priority="NORMAL:-VERS-ALL:+VERS-TLS1.2:-RSA")
    with greeted(srv) as c:
        assert c.cmd("AUTH TLS").code == 234
        assert c.starttls(tls).version() == "TLSv1.2"
        assert c.cmd("NOOP").code == 200


def test_auth_tls_c_is_234(server, tls):
    srv = server()
    with greeted(srv) as c:
        assert c.cmd("AUTH TLS-C").code == 234
        c.starttls(tls)
        assert c.cmd("NOOP").code == 200


def test_auth_ssl_is_234(server, tls):
    srv = server()
    with greeted(srv) as c:
        assert c.cmd("AUTH SSL").code == 234
        c.starttls(tls)
        assert c.cmd("NOOP").code == 200


def test_auth_is_case_insensitive(server, tls):
    srv = server()
    with greeted(srv) as c:
        assert c.cmd("auth tls").code == 234
        c.starttls(tls)
        assert c.cmd("noop").code == 200


def test_auth_again_after_tls_is_503(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("AUTH TLS").code == 503
        assert c.cmd("AUTH SSL").code == 503
        assert c.cmd("NOOP").code == 200


def test_auth_after_a_login_in_clear_is_503(server):
    """control-tls = optional: a session that logged in in clear stays so (the login
    settled it; after it the key signs no handshake)."""
    srv = server(control_tls="optional")
    with greeted(srv) as c:
        c.login()
        assert c.cmd("AUTH TLS").code == 503
        assert c.cmd("PWD").code == 257


def test_auth_unknown_mechanism_is_504(server):
    srv = server()
    with greeted(srv) as c:
        assert c.cmd("AUTH XYZ").code == 504
        assert c.cmd("AUTH GSSAPI").code == 504
        assert c.cmd("NOOP").code == 200  # still in clear, still talking


def test_auth_with_control_tls_off_is_534(server):
    srv = server(control_tls="off", data_tls="optional")
    with greeted(srv) as c:
        assert c.cmd("AUTH TLS").code == 534
        c.login()


# ------------------------------------------------------------------- PBSZ, PROT

def test_pbsz_before_auth_is_503(server):
    srv = server(control_tls="optional")
    with greeted(srv) as c:
        assert c.cmd("PBSZ 0").code == 503


def test_pbsz_is_200_pbsz_0(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("PBSZ 0").first == "200 PBSZ=0"
        # any size is answered with the only size TLS has
        assert c.cmd("PBSZ 16384").first == "200 PBSZ=0"


def test_prot_before_pbsz_is_503(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("PROT P").code == 503


def test_prot_c_and_p_are_200(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("PBSZ 0").code == 200
        assert c.cmd("PROT P").code == 200
        assert c.cmd("PROT C").code == 200
        assert c.cmd("PROT P").code == 200  # PROT may change any time


def test_prot_s_and_e_are_536(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("PBSZ 0").code == 200
        assert c.cmd("PROT S").code == 536
        assert c.cmd("PROT E").code == 536


def test_prot_unknown_level_is_504(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("PBSZ 0").code == 200
        assert c.cmd("PROT X").code == 504
        assert c.cmd("NOOP").code == 200


# ----------------------------------------------------- control-tls = required

def test_user_before_auth_is_530_mentioning_auth_tls(server):
    srv = server(control_tls="required")
    with greeted(srv) as c:
        r = c.cmd("USER " + USER)
        assert r.code == 530
        assert "AUTH TLS" in "\n".join(r.lines)


def test_pass_before_auth_is_530(server):
    srv = server(control_tls="required")
    with greeted(srv) as c:
        assert c.cmd("PASS " + PASSWORD).code == 530


def test_other_commands_before_auth_are_530_but_noop_feat_quit_work(server):
    srv = server(control_tls="required")
    with greeted(srv) as c:
        assert c.cmd("PWD").code == 530
        assert c.cmd("SYST").code == 530
        assert c.cmd("NOOP").code == 200
        assert c.cmd("FEAT").code == 211
        assert c.cmd("QUIT").code == 221
        c.wait_closed()


def test_no_password_ever_crosses_in_clear_with_tls_required(server, tls):
    """The 530 comes at USER, and after AUTH the same session logs in fine."""
    srv = server(control_tls="required")
    with greeted(srv) as c:
        assert c.cmd("USER " + USER).code == 530
        assert c.cmd("AUTH TLS").code == 234
        c.starttls(tls)
        c.login()


# ------------------------------------------------------------------------ FEAT

def feat_lines(c):
    r = c.cmd("FEAT")
    assert r.code == 211, r
    assert r.lines[0].startswith("211-") and r.lines[-1].startswith("211 "), r
    return {line.strip().upper() for line in r.body}


def test_feat_lists_auth_tls_pbsz_prot(server):
    srv = server()
    with greeted(srv) as c:
        feats = feat_lines(c)
        assert "AUTH TLS" in feats or any(f.startswith("AUTH ") and "TLS" in f.split()
                                          for f in feats), feats
        assert "PBSZ" in feats
        assert "PROT" in feats


def test_feat_advertises_the_implemented_extensions(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        feats = feat_lines(c)
        for f in ("EPSV", "PASV", "SIZE", "UTF8"):
            assert f in feats, (f, feats)
        assert any(f.startswith("MLST") for f in feats), feats


# ----------------------------------------------------------------------- login

def test_control_tls_optional_allows_clear_login(server):
    srv = server(control_tls="optional")
    with greeted(srv) as c:
        assert c.cmd("USER " + USER).code == 331
        assert c.cmd("PASS " + PASSWORD).code == 230
        assert c.cmd("PWD").code == 257


def test_login_over_tls(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("USER " + USER).code == 331
        assert c.cmd("PASS " + PASSWORD).code == 230


def test_wrong_password_is_530_and_a_retry_works(server, tls):
    srv = server(max_login_failures="3")
    with secured(srv, tls) as c:
        assert c.cmd("USER " + USER).code == 331
        assert c.cmd("PASS not-the-password").code == 530
        assert c.cmd("USER " + USER).code == 331
        assert c.cmd("PASS " + PASSWORD).code == 230


def test_unknown_user_is_530(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        r = c.cmd("USER nosuchuser")
        assert r.code == 331  # no user enumeration at USER
        assert c.cmd("PASS whatever").code == 530


def test_pass_before_user_is_503(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("PASS " + PASSWORD).code == 503


def test_commands_needing_login_before_login_are_530(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("PWD").code == 530
        assert c.cmd("CWD sub").code == 530
        assert c.cmd("EPSV").code == 530
        assert c.cmd("SIZE hello.txt").code == 530


def test_login_failure_delay_is_applied(server, tls):
    srv = server(login_failure_delay="600ms")
    with secured(srv, tls) as c:
        assert c.cmd("USER " + USER).code == 331
        t0 = time.monotonic()
        assert c.cmd("PASS wrong").code == 530
        assert time.monotonic() - t0 >= 0.5
        t0 = time.monotonic()
        assert c.cmd("USER " + USER).code == 331
        assert c.cmd("PASS " + PASSWORD).code == 230
        assert time.monotonic() - t0 < 0.5  # a right password is not delayed


def test_max_login_failures_then_421_and_close(server, tls):
    srv = server(max_login_failures="2")
    with secured(srv, tls) as c:
        assert c.cmd("USER " + USER).code == 331
        assert c.cmd("PASS wrong-1").code == 530
        assert c.cmd("USER " + USER).code == 331
        r = c.cmd("PASS wrong-2")
        # The limit is reached: the server says 421 (in place of, or right after,
        # the second 530, or at the latest as the answer to the next command) and
        # closes. It never checks another password.
        if r.code == 530:
            r = c.reply_within(1.5)
            if r is None:
                r = c.cmd("USER " + USER)
        assert r.code == 421, r
        c.wait_closed(timeout=5)


def test_login_timeout_closes_idle_unauthenticated_session(server):
    srv = server(login_timeout="1s")
    with greeted(srv) as c:
        t0 = time.monotonic()
        data = c.wait_closed(timeout=6)
        assert time.monotonic() - t0 >= 0.8
        assert data == b"" or data.startswith(b"421"), data


def test_idle_timeout_closes_logged_in_session(server, tls):
    """Closed after idle-timeout, not much earlier (nor much later), with a 421."""
    srv = server(idle_timeout="1s")
    with secured(srv, tls) as c:
        c.login()
        t0 = time.monotonic()
        data = c.wait_closed(timeout=6)
        elapsed = time.monotonic() - t0
        assert 0.9 <= elapsed <= 3, "closed after %.2fs" % elapsed
        assert data.startswith(b"421"), data
    assert wait_for(lambda: "idle timeout" in srv.log), srv.log


# ------------------------------------------------------------ misc commands

def test_syst_is_215_unix(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        c.login()
        assert c.cmd("SYST").first == "215 UNIX Type: L8"


def test_noop_is_200(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("NOOP").code == 200
        c.login()
        assert c.cmd("NOOP").code == 200


def test_unknown_command_is_500_and_session_goes_on(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("XYZZY").code == 500
        c.login()
        assert c.cmd("FROBNICATE now").code == 500
        assert c.cmd("SITE" + "X" * 10).code == 500
        assert c.cmd("PWD").code == 257
        assert c.cmd("NOOP").code == 200


def test_unknown_command_in_clear_does_not_end_session(server):
    srv = server(control_tls="optional")
    with greeted(srv) as c:
        assert c.cmd("HELLO").code == 500
        assert c.cmd("NOOP").code == 200


def test_overlong_line_does_not_crash_the_session(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        # Either an answer for the line and the session goes on, or the session
        # is ended; never silence.
        try:
            c.send("NOOP " + "A" * 20000)
            r = c.reply_within(5)
        except (ConnectionClosed, OSError):
            return
        assert r is not None, "no answer to an overlong line"
        assert r.code == 200 or 500 <= r.code < 600, r
        assert c.cmd("NOOP").code == 200


def test_missing_argument_is_501(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        assert c.cmd("USER").code == 501
        c.login()
        assert c.cmd("CWD").code == 501
        assert c.cmd("SIZE").code == 501
        assert c.cmd("RETR").code == 501
        assert c.cmd("NOOP").code == 200


def test_type_and_opts(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        c.login()
        assert c.cmd("TYPE I").code == 200
        assert c.cmd("TYPE A").code == 200
        assert c.cmd("TYPE X").code == 504
        assert c.cmd("OPTS UTF8 ON").code == 200


def test_quit_is_221_and_closes(server, tls):
    srv = server()
    with secured(srv, tls) as c:
        c.login()
        assert c.cmd("QUIT").code == 221
        c.wait_closed(timeout=5)


def test_quit_before_auth_is_221(server):
    srv = server()
    with greeted(srv) as c:
        assert c.cmd("QUIT").code == 221
        c.wait_closed(timeout=5)


# -------------------------------------------------------------- implicit TLS

def test_implicit_tls_handshake_first_then_220(server, tls):
    srv = server(implicit=True)
    with Control(srv.port, implicit_context=tls) as c:
        assert c.reply().code == 220
        assert c.cmd("AUTH TLS").code == 503
        c.login()
        assert c.cmd("PWD").code == 257


def test_implicit_tls_refuses_clear_text_client(server):
    srv = server(implicit=True)
    with Control(srv.port) as c:
        c.send("USER " + USER)
        data = c.wait_closed(timeout=6)
        assert not data.startswith(b"220") and not data.startswith(b"331"), data


# ------------------------------------------------------------ the session's end

def strict_secured(srv, pki):
    """A logged-in Control whose TLS tells close_notify from a bare TCP close."""
    from ftpsd_testlib import strict_eof_context
    c = greeted(srv)
    assert c.cmd("AUTH TLS").code == 234
    c.sock = strict_eof_context(pki.cert).wrap_socket(c.sock, server_hostname=c.host,
                                                      suppress_ragged_eofs=False)
    c.login()
    return c


def test_quit_ends_with_close_notify_and_a_logged_reason(server, pki):
    from ftpsd_testlib import tls_read_to_end
    srv = server()
    with strict_secured(srv, pki) as c:
        assert c.cmd("QUIT").code == 221
        rest, ending = tls_read_to_end(c.sock)
        assert (rest, ending) == (b"", "close_notify")
    assert wait_for(lambda: "client sent QUIT" in srv.log), srv.log[-2000:]


def test_idle_timeout_ends_with_421_close_notify_and_a_logged_reason(server, pki):
    from ftpsd_testlib import tls_read_to_end
    srv = server(idle_timeout="1s")
    with strict_secured(srv, pki) as c:
        c.sock.settimeout(10)
        rest, ending = tls_read_to_end(c.sock)
        assert rest.startswith(b"421 "), rest
        assert ending == "close_notify"
    assert wait_for(lambda: "idle timeout" in srv.log), srv.log[-2000:]
