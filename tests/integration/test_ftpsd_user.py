"""ftpsd-user, the administrator's tool for the users file and the live sessions.

Tool: $FTPSD_USER_BIN, default <repo>/build/ftpsd/ftpsd-user.

  * add, passwd, lock, unlock, del, seen by real logins (curl over FTPS with the
    test certificate): a new user logs in and transfers, an old password gets 530;
  * every refusal (duplicate, uid 0, a relative or missing root, an unknown option,
    a symlinked users file) exits non-zero with a message and leaves the file
    unchanged byte for byte; comments and other lines are kept;
  * 20 concurrent adds all land (the lock file works);
  * passwords on a terminal (a pty): never echoed, asked twice, a mismatch refused;
    ftpsd --hash-password the same;
  * check reports FILE:LINE;
  * who reads session records: live ones only (pid, start time, owner), escaped;
  * del and lock send SIGTERM to the user's live sessions, and only to them;
  * quota shows the usage file the monitor keeps, without changing it; --rescan
    counts the tree again (as the user) and the server goes by the new figures.
"""

import ftplib
import io
import json
import os
import pty
import select
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import HELLO, IO_TIMEOUT

FTPSD_USER_BIN = os.environ.get("FTPSD_USER_BIN",
                                os.path.join(lib.REPO, "build", "ftpsd", "ftpsd-user"))
NEW_PW = "Cheshire-Cat-9"

needs_root = pytest.mark.skipif(not lib.ROOT, reason="needs root (uid changes, chown)")


@pytest.fixture(scope="module")
def tool_bin():
    if not os.access(FTPSD_USER_BIN, os.X_OK):
        pytest.fail("ftpsd-user not found at %s (set FTPSD_USER_BIN or build it)"
                    % FTPSD_USER_BIN)
    return FTPSD_USER_BIN


@pytest.fixture
def server(server, tmp_path):
    """conftest's server with a runtime-dir of its own: a lock or del here must never
    reach the sessions of servers that other tests (or other checkouts) run meanwhile
    under the shared /run/ftpsd."""
    run = tmp_path / "private-run"
    run.mkdir(exist_ok=True)
    os.chmod(run, 0o755)

    def make(**kw):
        kw.setdefault("runtime_dir", str(run))
        srv = server(**kw)
        assert "runtime-dir = %s\n" % kw["runtime_dir"] in srv.config_text
        return srv
    return make


def tool(tool_bin, *args, input=None):
    return subprocess.run([tool_bin] + list(args), input=input, capture_output=True, text=True,
                          timeout=IO_TIMEOUT * 3)


def curl(srv, user, password, path="hello.txt", extra=()):
    url = "ftp://%s:%s@127.0.0.1:%d/%s" % (user, password, srv.port, path)
    return subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", srv.cafile, "--max-time",
                           str(IO_TIMEOUT * 2), "--connect-timeout", str(IO_TIMEOUT)]
                          + list(extra) + [url], capture_output=True, timeout=IO_TIMEOUT * 3)


CURL_LOGIN_DENIED = 67  # curl: "the user name, password, or similar was not accepted"


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def proc_start(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    return int(s[s.rindex(")") + 2:].split()[19])


def add(tool_bin, srv, name, password=lib.PASSWORD, *extra):
    return tool(tool_bin, "--config", srv.config_path, "add", name, "--root", srv.root,
                "--password-stdin", *extra, input=password + "\n")


# ---------------------------------------------------------- real logins


def test_added_user_logs_in_and_transfers(server, tool_bin, tmp_path):
    srv = server()
    r = add(tool_bin, srv, "carol", NEW_PW)
    assert r.returncode == 0, r.stderr
    line = [l for l in read_bytes(srv.users_path).decode().splitlines()
            if l.startswith("carol:")]
    assert len(line) == 1 and line[0].split(":")[1].startswith("$y$"), line
    # The ids are the root's owner's.
    assert line[0].split(":")[2:4] == [str(srv.accounts.uid), str(srv.accounts.gid)]
    r = curl(srv, "carol", NEW_PW)
    assert r.returncode == 0 and r.stdout == HELLO, r.stderr
    up = tmp_path / "up.bin"
    up.write_bytes(os.urandom(100000))
    r = curl(srv, "carol", NEW_PW, "up.bin", ["-T", str(up)])
    assert r.returncode == 0, r.stderr
    assert read_bytes(os.path.join(srv.root, "up.bin")) == up.read_bytes()


def test_added_options_reach_the_server(server, tool_bin, tmp_path):
    srv = server()
    r = add(tool_bin, srv, "ro", NEW_PW, "--option", "read-only", "--option", "tls=required")
    assert r.returncode == 0, r.stderr
    assert read_bytes(srv.users_path).decode().splitlines()[-1].endswith(
        ":" + srv.root + ":read-only,tls=required")
    up = tmp_path / "up.bin"
    up.write_bytes(b"x" * 100)
    r = curl(srv, "ro", NEW_PW, "up.bin", ["-T", str(up)])
    assert r.returncode != 0 and not os.path.exists(os.path.join(srv.root, "up.bin"))
    assert curl(srv, "ro", NEW_PW).stdout == HELLO


def test_passwd_changes_the_password(server, tool_bin):
    srv = server()
    r = tool(tool_bin, "--config", srv.config_path, "passwd", lib.USER, "--password-stdin",
             input=NEW_PW + "\n")
    assert r.returncode == 0, r.stderr
    assert curl(srv, lib.USER, lib.PASSWORD).returncode == CURL_LOGIN_DENIED
    r = curl(srv, lib.USER, NEW_PW)
    assert r.returncode == 0 and r.stdout == HELLO, r.stderr


def test_lock_and_unlock(server, tool_bin):
    srv = server()
    before = read_bytes(srv.users_path)
    r = tool(tool_bin, "--config", srv.config_path, "lock", lib.USER)
    assert r.returncode == 0, r.stderr
    assert "0 sessions ended" in r.stdout
    line = read_bytes(srv.users_path).decode().splitlines()[0]
    assert line.startswith(lib.USER + ":!$6$"), line
    assert curl(srv, lib.USER, lib.PASSWORD).returncode == CURL_LOGIN_DENIED
    r = tool(tool_bin, "--config", srv.config_path, "list")
    assert r.returncode == 0
    row = [l for l in r.stdout.splitlines() if l.startswith(lib.USER + " ")]
    assert row and " yes " in row[0], r.stdout
    r = tool(tool_bin, "--config", srv.config_path, "unlock", lib.USER)
    assert r.returncode == 0, r.stderr
    assert read_bytes(srv.users_path) == before
    assert curl(srv, lib.USER, lib.PASSWORD).stdout == HELLO


def test_del_removes_the_user(server, tool_bin):
    srv = server()
    with open(srv.users_path, "r+") as f:
        text = f.read()
        f.seek(0)
        f.write("# the users\n\n" + text + "# trailing comment, no newline")
    before = read_bytes(srv.users_path).decode()
    r = tool(tool_bin, "--config", srv.config_path, "del", lib.USER)
    assert r.returncode == 0, r.stderr
    after = read_bytes(srv.users_path).decode()
    alice = [l for l in before.splitlines(True) if l.startswith(lib.USER + ":")][0]
    assert after == before.replace(alice, "")
    assert curl(srv, lib.USER, lib.PASSWORD).returncode == CURL_LOGIN_DENIED
    assert curl(srv, lib.RO_USER, lib.RO_PASSWORD).stdout == HELLO
    r = tool(tool_bin, "--config", srv.config_path, "show", lib.USER)
    assert r.returncode != 0 and "no user" in r.stderr


# ---------------------------------------------------------- refusals


def refused(tool_bin, srv, args, message, input="pw\n"):
    before = read_bytes(srv.users_path)
    files = sorted(os.listdir(os.path.dirname(srv.users_path)))
    r = tool(tool_bin, "--config", srv.config_path, *args, input=input)
    assert r.returncode != 0, r.stdout
    assert message in r.stderr, r.stderr
    assert read_bytes(srv.users_path) == before
    left = sorted(set(os.listdir(os.path.dirname(srv.users_path))) - {"users.lock"})
    assert left == [f for f in files if f != "users.lock"], left


def test_refusals_leave_the_file_unchanged(server, tool_bin, tmp_path):
    srv = server(start=False)
    with open(srv.users_path, "a") as f:
        f.write("# a comment\n\n")
    root = srv.root
    refused(tool_bin, srv, ["add", lib.USER, "--root", root, "--password-stdin"],
            "already exists")
    refused(tool_bin, srv, ["add", "dave", "--root", root, "--uid", "0", "--password-stdin"],
            "--force")
    refused(tool_bin, srv, ["add", "dave", "--root", "relative/dir", "--password-stdin"],
            "not an absolute path")
    refused(tool_bin, srv, ["add", "dave", "--root", str(tmp_path / "missing"),
                            "--password-stdin"], "No such file or directory")
    refused(tool_bin, srv, ["add", "dave", "--root", root, "--option", "frobnicate",
                            "--password-stdin"], "unknown option or bad value: 'frobnicate'")
    refused(tool_bin, srv, ["add", "dave", "--root", root, "--option", "quota-bytes=lots",
                            "--password-stdin"], "unknown option")
    refused(tool_bin, srv, ["add", "da:ve", "--root", root, "--password-stdin"], "':'")
    refused(tool_bin, srv, ["add", "da\nve", "--root", root, "--password-stdin"], "newline")
    refused(tool_bin, srv, ["add", "", "--root", root, "--password-stdin"], "empty user name")
    refused(tool_bin, srv, ["add", "dave", "--root", root, "--password-stdin"],
            "empty password", input="\n")
    refused(tool_bin, srv, ["add", "dave", "--root", root, "--hash-method", "rot13",
                            "--password-stdin"], "unknown hash method")
    refused(tool_bin, srv, ["lock", "nobody-here"], "no user 'nobody-here'")
    refused(tool_bin, srv, ["add", "dave", "--keep-sessions", "--root", root],
            "--keep-sessions is not an option of add")
    # A root owned by root needs explicit ids.
    rootdir = tmp_path / "rootowned"
    rootdir.mkdir()
    if lib.ROOT:
        refused(tool_bin, srv, ["add", "dave", "--root", str(rootdir), "--password-stdin"],
                "belongs to root")
        # --force allows uid 0 (the server still refuses such a login).
        r = tool(tool_bin, "--config", srv.config_path, "add", "dave", "--root", str(rootdir),
                 "--uid", "0", "--gid", "0", "--force", "--password-stdin", input="pw\n")
        assert r.returncode == 0, r.stderr


@needs_root
def test_symlinked_users_file_is_refused(server, tool_bin, tmp_path):
    srv = server(start=False)
    link = tmp_path / "users-link"
    os.symlink(srv.users_path, link)
    before = read_bytes(srv.users_path)
    r = tool(tool_bin, "--users", str(link), "add", "dave", "--root", srv.root,
             "--password-stdin", input="pw\n")
    assert r.returncode != 0 and "symbolic link" in r.stderr, r.stderr
    assert read_bytes(srv.users_path) == before and os.path.islink(link)


@needs_root
def test_edit_keeps_mode_owner_and_other_lines(server, tool_bin):
    srv = server(start=False)
    text = ("# users of the test\n\n" + read_bytes(srv.users_path).decode()
            + "   \n# odd line below\nbroken-line-without-fields\n")
    with open(srv.users_path, "w") as f:
        f.write(text)
    os.chown(srv.users_path, 0, srv.accounts.gid)
    os.chmod(srv.users_path, 0o640)
    r = add(tool_bin, srv, "erin")
    assert r.returncode == 0, r.stderr
    after = read_bytes(srv.users_path).decode()
    assert after.startswith(text) and after[len(text):].startswith("erin:"), after
    st = os.stat(srv.users_path)
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o640, 0, srv.accounts.gid)


def test_concurrent_adds_all_land(server, tool_bin):
    srv = server(start=False)
    names = ["user%02d" % i for i in range(20)]
    procs = [subprocess.Popen([tool_bin, "--users", srv.users_path, "add", n, "--root",
                               srv.root, "--password-stdin"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in names]
    for p in procs:
        p.stdin.write("pw-" + "x" * 8 + "\n")
        p.stdin.close()
    for p in procs:
        assert p.wait(timeout=IO_TIMEOUT * 5) == 0, p.stderr.read()
    lines = read_bytes(srv.users_path).decode().splitlines()
    got = [l.split(":")[0] for l in lines]
    assert sorted(got) == sorted([lib.USER, lib.RO_USER] + names), got
    r = tool(tool_bin, "--users", srv.users_path, "check")
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------- terminal prompts


def pty_run(argv, answers):
    """Run argv on a new pty; answer each prompt (regex-free: the prompt text) in
    turn. (exit status, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    out = b""
    pending = list(answers)
    deadline = time.time() + IO_TIMEOUT
    try:
        while time.time() < deadline:
            if pending and pending[0][0] in out:
                prompt, answer = pending.pop(0)
                out = out.replace(prompt, b"<" + prompt + b">", 1)
                os.write(fd, answer)
                continue
            ready, _, _ = select.select([fd], [], [], 0.2)
            if fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_password_prompt_on_a_terminal(server, tool_bin):
    srv = server()
    rc, shown = pty_run([tool_bin, "--config", srv.config_path, "add", "frank", "--root",
                         srv.root], [(b"Password: ", NEW_PW.encode() + b"\n"),
                                     (b"Password again: ", NEW_PW.encode() + b"\n")])
    assert rc == 0, shown
    assert "<Password again: >" in shown and NEW_PW not in shown, shown
    assert curl(srv, "frank", NEW_PW).stdout == HELLO


def test_mismatched_confirmation_is_refused(server, tool_bin):
    srv = server(start=False)
    before = read_bytes(srv.users_path)
    rc, shown = pty_run([tool_bin, "--config", srv.config_path, "add", "frank", "--root",
                         srv.root], [(b"Password: ", b"first-one\n"),
                                     (b"Password again: ", b"second-one\n")])
    assert rc != 0 and "do not match" in shown, shown
    assert "first-one" not in shown and "second-one" not in shown, shown
    assert read_bytes(srv.users_path) == before


def test_hash_password_on_a_terminal(ftpsd_bin):
    rc, shown = pty_run([ftpsd_bin, "--hash-password"],
                        [(b"Password: ", NEW_PW.encode() + b"\n"),
                         (b"Password again: ", NEW_PW.encode() + b"\n")])
    assert rc == 0 and NEW_PW not in shown, shown
    hashes = [w for w in shown.split() if w.startswith("$y$")]
    assert len(hashes) == 1, shown
    rc, shown = pty_run([ftpsd_bin, "--hash-password"],
                        [(b"Password: ", b"one\n"), (b"Password again: ", b"two\n")])
    assert rc != 0 and "do not match" in shown and "$y$" not in shown, shown


def test_hash_password_from_a_pipe(ftpsd_bin):
    r = subprocess.run([ftpsd_bin, "--hash-password"], input=NEW_PW + "\n",
                       capture_output=True, text=True, timeout=IO_TIMEOUT)
    assert r.returncode == 0 and r.stdout.startswith("$y$"), r.stderr
    assert "Password" not in r.stderr


# ---------------------------------------------------------- check


def test_check_reports_file_and_line(server, tool_bin):
    srv = server(start=False)
    r = tool(tool_bin, "--config", srv.config_path, "check")
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr
    with open(srv.users_path, "a") as f:
        f.write("# fine\nbad:$6$x:0:1000:/srv\n")
    r = tool(tool_bin, "--config", srv.config_path, "check")
    assert r.returncode == 1, r.stdout
    assert "%s:4: user 'bad': uid 0" % srv.users_path in r.stderr, r.stderr


# ---------------------------------------------------------- session records


def runtime_config(tmp_path, users):
    run = tmp_path / "run"
    (run / "sessions").mkdir(parents=True)
    conf = tmp_path / "ftpsd.conf"
    conf.write_text("tls-certificate = /nonexistent/cert.pem\ntls-key = /nonexistent/key.pem\n"
                    "users-file = %s\nruntime-dir = %s\n" % (users, run))
    return str(conf), run / "sessions"


def write_record(sessions, uid, pid, fields, owner=None):
    d = sessions / str(uid)
    d.mkdir(exist_ok=True)
    if lib.ROOT:
        os.chown(d, uid, uid if owner is None else owner)
    p = d / str(pid)
    p.write_bytes("".join("%s=%s\n" % kv for kv in fields.items()).encode("latin-1"))
    if lib.ROOT:
        os.chown(p, uid if owner is None else owner, 0)
    return p


def record(pid, start, user="", host="", **kw):
    now = int(time.time())
    r = {"pid": pid, "start": start, "user": user, "host": host, "address": "192.0.2.7",
         "since": now - 75, "login": now - 70, "command": "RETR", "path": "/big.iso",
         "bytes": 3 * 1024 * 1024, "size": 10 * 1024 * 1024, "rate": 2048, "updated": now}
    r.update(kw)
    return r


@needs_root
def test_who_shows_live_records_only(server, tool_bin, tmp_path):
    srv = server(start=False)
    conf, sessions = runtime_config(tmp_path, srv.users_path)
    me = os.getpid()
    write_record(sessions, 0, me, record(me, proc_start(me), path="/a\x1b[31mred\"q"))
    # Stale: pid 1 with a start time it does not have.
    write_record(sessions, 0, 1, record(1, proc_start(1) + 12345))
    # Stale: a record whose file name is not its pid.
    write_record(sessions, 0, 999999, record(me, proc_start(me)))
    # Stale: a live process of root claimed from a directory of another uid.
    write_record(sessions, srv.accounts.uid, me, record(me, proc_start(me)))
    r = tool(tool_bin, "--config", conf, "who", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert [s["pid"] for s in got] == [me], got
    s = got[0]
    assert s["start"] == proc_start(me) and s["address"] == "192.0.2.7"
    assert s["path"] == "/a\x1b[31mred\"q" and s["bytes"] == 3 * 1024 * 1024
    assert s["command"] == "RETR" and s["uid"] == 0
    r = tool(tool_bin, "--config", conf, "who")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PID", "USER", "ADDRESS", "HOST", "CONNECTED", "COMMAND",
                                "BYTES", "RATE", "PATH"]
    assert len(lines) == 2 and lines[1].split()[0] == str(me), r.stdout
    assert "\x1b" not in r.stdout and "\\x1b[31mred" in lines[1], lines[1]
    assert "3.0 MiB" in lines[1] and "2.0 KiB/s" in lines[1] and "00:01:1" in lines[1]


def test_who_without_sessions(server, tool_bin, tmp_path):
    srv = server(start=False)
    conf, sessions = runtime_config(tmp_path, srv.users_path)
    r = tool(tool_bin, "--config", conf, "who", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == [], r.stdout + r.stderr


HELPER = ("import signal, sys, time\n"
          "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
          "print('ready', flush=True)\n"
          "time.sleep(%d)\n" % (IO_TIMEOUT * 3))


def helper(uid, gid):
    p = subprocess.Popen([sys.executable, "-c", HELPER], user=uid, group=gid,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


@needs_root
@pytest.mark.parametrize("command", ["lock", "del"])
def test_lock_and_del_end_the_users_sessions(server, tool_bin, tmp_path, command):
    srv = server(start=False)
    uid, gid = srv.accounts.uid, srv.accounts.gid
    conf, sessions = runtime_config(tmp_path, srv.users_path)
    alice, reader, kept = helper(uid, gid), helper(uid, gid), helper(uid, gid)
    try:
        write_record(sessions, uid, alice.pid, record(alice.pid, proc_start(alice.pid),
                                                      user=lib.USER))
        write_record(sessions, uid, reader.pid, record(reader.pid, proc_start(reader.pid),
                                                       user=lib.RO_USER))
        # alice's session on a virtual host: another users file, not this one's.
        write_record(sessions, uid, kept.pid, record(kept.pid, proc_start(kept.pid),
                                                     user=lib.USER, host="other.example"))
        r = tool(tool_bin, "--config", conf, "show", lib.USER)
        assert r.returncode == 0 and "sessions 1" in r.stdout.replace("  ", " "), r.stdout
        r = tool(tool_bin, "--config", conf, command, lib.USER)
        assert r.returncode == 0, r.stderr
        assert "1 session ended" in r.stdout, r.stdout
        assert alice.wait(timeout=IO_TIMEOUT) == 7  # its SIGTERM handler ran
        time.sleep(0.3)
        assert reader.poll() is None and kept.poll() is None
    finally:
        for p in (alice, reader, kept):
            if p.poll() is None:
                p.kill()
            p.wait()


STUBBORN = ("import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(%d)\n" % (IO_TIMEOUT * 3))


@needs_root
def test_a_monitor_that_ignores_sigterm_is_killed(server, tool_bin, tmp_path):
    """A monitor that does not end after SIGTERM (stopped, stuck, taken over) gets
    SIGKILL once the grace time has passed: lock really ends the session."""
    srv = server(start=False)
    uid, gid = srv.accounts.uid, srv.accounts.gid
    conf, sessions = runtime_config(tmp_path, srv.users_path)
    p = subprocess.Popen([sys.executable, "-c", STUBBORN], user=uid, group=gid,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        write_record(sessions, uid, p.pid, record(p.pid, proc_start(p.pid), user=lib.USER))
        t0 = time.monotonic()
        r = tool(tool_bin, "--config", conf, "lock", lib.USER)
        assert r.returncode == 0, r.stderr
        assert p.wait(timeout=IO_TIMEOUT) == -signal.SIGKILL
        assert 7 <= time.monotonic() - t0 < IO_TIMEOUT * 3
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


@needs_root
def test_keep_sessions(server, tool_bin, tmp_path):
    srv = server(start=False)
    uid, gid = srv.accounts.uid, srv.accounts.gid
    conf, sessions = runtime_config(tmp_path, srv.users_path)
    p = helper(uid, gid)
    try:
        write_record(sessions, uid, p.pid, record(p.pid, proc_start(p.pid), user=lib.USER))
        r = tool(tool_bin, "--config", conf, "lock", lib.USER, "--keep-sessions")
        assert r.returncode == 0 and "session" not in r.stdout, r.stdout
        time.sleep(0.3)
        assert p.poll() is None
        r = tool(tool_bin, "--config", conf, "who", "--json")
        assert [s["user"] for s in json.loads(r.stdout)] == [lib.USER]
    finally:
        p.kill()
        p.wait()


@needs_root
def test_record_naming_another_users_process_is_not_signalled(server, tool_bin, tmp_path):
    """A monitor of uid U (compromised) writes a record naming a root process with its
    true start time: lock must not signal it."""
    srv = server(start=False)
    uid, gid = srv.accounts.uid, srv.accounts.gid
    conf, sessions = runtime_config(tmp_path, srv.users_path)
    victim = helper(0, 0)
    try:
        write_record(sessions, uid, victim.pid, record(victim.pid, proc_start(victim.pid),
                                                       user=lib.USER))
        r = tool(tool_bin, "--config", conf, "lock", lib.USER)
        assert r.returncode == 0 and "0 sessions ended" in r.stdout, r.stdout
        time.sleep(0.3)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_help_lists_commands(tool_bin):
    r = tool(tool_bin, "--help")
    assert r.returncode == 0
    for c in ("add", "passwd", "del", "lock", "unlock", "list", "show", "check", "who",
              "quota"):
        assert "\n  %s " % c in r.stdout, c
    r = tool(tool_bin, "--version")
    assert r.returncode == 0 and r.stdout.startswith("ftpsd-user ")
    r = tool(tool_bin, "frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr


@needs_root
def test_host_selects_its_users_file_and_sessions(server, tool_bin, tmp_path):
    srv = server(start=False)
    uid, gid = srv.accounts.uid, srv.accounts.gid
    conf, sessions = runtime_config(tmp_path, srv.users_path)
    host_users = tmp_path / "host-users"
    host_users.write_text("# users of files.example\n")
    with open(conf, "a") as f:
        f.write("\n[host files.example]\ntls-certificate = /nonexistent/h.pem\n"
                "tls-key = /nonexistent/h.key\nusers-file = %s\n" % host_users)
    global_before = read_bytes(srv.users_path)
    r = tool(tool_bin, "--config", conf, "--host", "files.example", "add", lib.USER,
             "--root", srv.root, "--password-stdin", input=NEW_PW + "\n")
    assert r.returncode == 0, r.stderr
    assert host_users.read_text().startswith("# users of files.example\n%s:$y$" % lib.USER)
    assert read_bytes(srv.users_path) == global_before
    r = tool(tool_bin, "--config", conf, "--host", "nowhere.example", "list")
    assert r.returncode != 0 and "no [host nowhere.example]" in r.stderr, r.stderr
    on_host, on_global = helper(uid, gid), helper(uid, gid)
    try:
        write_record(sessions, uid, on_host.pid, record(on_host.pid, proc_start(on_host.pid),
                                                        user=lib.USER, host="files.example"))
        write_record(sessions, uid, on_global.pid,
                     record(on_global.pid, proc_start(on_global.pid), user=lib.USER))
        r = tool(tool_bin, "--config", conf, "--host", "files.example", "lock", lib.USER)
        assert r.returncode == 0 and "1 session ended" in r.stdout, r.stdout + r.stderr
        assert on_host.wait(timeout=IO_TIMEOUT) == 7
        assert host_users.read_text().splitlines()[1].startswith(lib.USER + ":!$y$")
        time.sleep(0.3)
        assert on_global.poll() is None
        assert read_bytes(srv.users_path) == global_before
    finally:
        for p in (on_host, on_global):
            if p.poll() is None:
                p.kill()
            p.wait()


# ---------------------------------------------------------- quota

HIDDEN_UPLOAD = lib.HIDDEN_UPLOAD
tree_usage = lib.tree_usage


def usage_file(path):
    with open(path) as f:
        text = f.read()
    b, n = text.split("\n")[:2]
    return int(b[len("bytes="):]), int(n[len("files="):])


def quota_json(tool_bin, srv, name=lib.USER, *extra):
    r = tool(tool_bin, "--config", srv.config_path, "quota", name, "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def store_final(ftp, name, data):
    """STOR that the server may stop midway: the final reply line."""
    try:
        conn = ftp.transfercmd("STOR " + name)
    except ftplib.Error as e:
        return str(e)
    try:
        conn.sendall(data)
        conn.unwrap()
    except (OSError, ValueError):
        pass
    try:
        conn.close()
    except OSError:
        pass
    try:
        return ftp.voidresp()
    except ftplib.Error as e:
        return str(e)


def put_as_user(srv, rel, data):
    path = os.path.join(srv.root, rel)
    with open(path, "wb") as f:
        f.write(data)
    os.lchown(path, srv.accounts.uid, srv.accounts.gid)
    return path


@needs_root
def test_quota_shows_the_monitors_usage_and_rescan_counts_again(server, tool_bin, tmp_path):
    qdir = str(tmp_path / "quota")
    srv = server(quota_dir=qdir, quota_bytes="1M", quota_files="100")
    path = os.path.join(qdir, lib.USER)
    # Before the first login: nothing is created.
    r = tool(tool_bin, "--config", srv.config_path, "quota", lib.USER)
    assert r.returncode == 0, r.stderr
    assert "does not exist yet" in r.stdout and "first login" in r.stdout, r.stdout
    assert not os.path.exists(qdir)
    j = quota_json(tool_bin, srv)
    assert j["exists"] is False and j["bytes"] is None and j["files"] is None, j
    assert not os.path.exists(qdir)
    # The first login: the monitor scans the tree into the usage file.
    ftp = lib.ftp_login(srv)
    ftp.quit()
    monitor = usage_file(path)
    assert monitor == tree_usage(srv.root)
    j = quota_json(tool_bin, srv)
    assert j == {"user": lib.USER, "file": path, "exists": True, "bytes": monitor[0],
                 "files": monitor[1], "quota_bytes": 1 << 20, "quota_files": 100,
                 "rescanned": False}, j
    r = tool(tool_bin, "--config", srv.config_path, "quota", lib.USER)
    assert r.returncode == 0, r.stderr
    assert path in r.stdout and "1.0 MiB (1048576)" in r.stdout, r.stdout
    assert "%d of 100, " % monitor[1] in r.stdout and "%" in r.stdout, r.stdout
    # Files behind the server's back: quota still shows the old figures.
    os.mkdir(os.path.join(srv.root, "behind"))
    os.lchown(os.path.join(srv.root, "behind"), srv.accounts.uid, srv.accounts.gid)
    put_as_user(srv, "behind/big.bin", b"b" * (900 << 10))
    put_as_user(srv, HIDDEN_UPLOAD + "0123456789abcdef", b"h" * 777)  # left out
    real = tree_usage(srv.root)
    assert real != monitor
    assert quota_json(tool_bin, srv)["bytes"] == monitor[0]
    assert usage_file(path) == monitor
    # --rescan: the real tree, written to the usage file, old and new printed.
    r = tool(tool_bin, "--config", srv.config_path, "quota", lib.USER, "--rescan")
    assert r.returncode == 0, r.stderr
    assert "bytes %d -> %d, files %d -> %d" % (monitor[0], real[0], monitor[1], real[1]) \
        in r.stdout, r.stdout
    assert usage_file(path) == real
    st = os.lstat(path)
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o600 and st.st_nlink == 1
    j = quota_json(tool_bin, srv, lib.USER, "--rescan")
    assert (j["bytes"], j["files"], j["old_bytes"], j["old_files"]) == real + real, j
    assert j["rescanned"] is True
    # The server goes by the rescan: 200 KiB more is past 1 MiB.
    ftp = lib.ftp_login(srv)
    final = store_final(ftp, "more.bin", os.urandom(200 << 10))
    assert final.startswith("552"), final
    try:
        ftp.quit()
    except (ftplib.Error, OSError, EOFError):
        ftp.close()
    assert not os.path.exists(os.path.join(srv.root, "more.bin"))
    assert usage_file(path) == tree_usage(srv.root)


@needs_root
def test_quota_rescan_creates_the_usage_file_as_the_monitor_would(server, tool_bin, tmp_path):
    qdir = str(tmp_path / "quota")
    srv = server(quota_dir=qdir, quota_files="50")
    path = os.path.join(qdir, lib.USER)
    # A directory the user may not read counts itself only, as the monitor sees it.
    closed = os.path.join(srv.root, "closed")
    os.mkdir(closed, 0o700)
    with open(os.path.join(closed, "secret"), "wb") as f:
        f.write(b"s" * 1000)
    r = tool(tool_bin, "--config", srv.config_path, "quota", lib.USER, "--rescan")
    assert r.returncode == 0, r.stderr
    st = os.stat(qdir)
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o700
    st = os.lstat(path)
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o600
    as_user = usage_file(path)
    b, n = tree_usage(srv.root)
    assert as_user == (b - 1000, n - 1), (as_user, b, n)
    # The monitor's own scan of an empty usage file gives the same.
    with open(path, "w"):
        pass
    ftp = lib.ftp_login(srv)
    ftp.quit()
    assert usage_file(path) == as_user
    assert "none" in tool(tool_bin, "--config", srv.config_path, "quota", lib.USER).stdout
    # A usage file the server would refuse (not root's) is reported, not used.
    os.chown(path, srv.accounts.uid, srv.accounts.gid)
    for extra in ((), ("--rescan",)):
        r = tool(tool_bin, "--config", srv.config_path, "quota", lib.USER, *extra)
        assert r.returncode == 1 and "root's own" in r.stderr, r.stderr
    assert os.stat(path).st_uid == srv.accounts.uid and usage_file(path) == as_user


def test_quota_none_and_unknown_user(server, tool_bin, tmp_path):
    srv = server(quota_dir=str(tmp_path / "quota"))
    r = tool(tool_bin, "--config", srv.config_path, "quota", lib.USER)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(l.startswith("bytes") and l.endswith(" of none") for l in lines), r.stdout
    assert any(l.startswith("files") and l.endswith(" of none") for l in lines), r.stdout
    j = quota_json(tool_bin, srv)
    assert j["quota_bytes"] is None and j["quota_files"] is None, j
    assert not os.path.exists(str(tmp_path / "quota"))
    # A users-file option wins over the configuration.
    r = add(tool_bin, srv, "bob", NEW_PW, "--option", "quota-files=7")
    assert r.returncode == 0, r.stderr
    j = quota_json(tool_bin, srv, "bob")
    assert j["quota_files"] == 7 and j["quota_bytes"] is None, j
    r = tool(tool_bin, "--config", srv.config_path, "quota", "nobody-here")
    assert r.returncode != 0 and "no user 'nobody-here'" in r.stderr, r.stderr
    r = tool(tool_bin, "--config", srv.config_path, "quota", "nobody-here", "--json")
    assert r.returncode != 0 and r.stdout == "", r.stdout
    r = tool(tool_bin, "--config", srv.config_path, "quota")
    assert r.returncode == 2 and "needs a user name" in r.stderr
    r = tool(tool_bin, "--config", srv.config_path, "list", "--rescan")
    assert r.returncode == 2 and "--rescan is not an option of list" in r.stderr


def test_quota_of_a_host(tool_bin, tmp_path):
    """--host: that section's quota-dir and quotas, the users-file option first."""
    users = tmp_path / "users"
    users.write_text("alice:*:2001:2001:/nonexistent\n")
    host_users = tmp_path / "host-users"
    host_users.write_text("alice:*:2001:2001:/nonexistent:quota-files=9\n")
    conf = tmp_path / "ftpsd.conf"
    conf.write_text("tls-certificate = /nonexistent/cert.pem\ntls-key = /nonexistent/key.pem\n"
                    "users-file = %s\nquota-dir = %s\nquota-bytes = 1M\n"
                    "\n[host files.example]\ntls-certificate = /nonexistent/h.pem\n"
                    "tls-key = /nonexistent/h.key\nusers-file = %s\nquota-dir = %s\n"
                    "quota-bytes = 2M\n"
                    % (users, tmp_path / "q", host_users, tmp_path / "hq"))
    r = tool(tool_bin, "--config", str(conf), "quota", "alice", "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert (j["quota_bytes"], j["quota_files"], j["file"]) == (1 << 20, None,
                                                              str(tmp_path / "q" / "alice")), j
    r = tool(tool_bin, "--config", str(conf), "--host", "files.example", "quota", "alice",
             "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert (j["quota_bytes"], j["quota_files"], j["file"]) == (2 << 20, 9,
                                                              str(tmp_path / "hq" / "alice")), j
    assert j["exists"] is False and not os.path.exists(tmp_path / "hq")


# ------------------------------------------------- with real sessions


def test_who_shows_a_running_retr_and_lock_ends_it(server, tool_bin):
    """End to end: a real session's record, as the monitor writes it, read by the
    tool: a RETR (slowed down by download-rate) with its path and a growing byte
    count; then `lock` ends that session with a 421 and the next login fails."""
    srv = server(download_rate="256K")
    path = os.path.join(srv.root, "big.bin")
    with open(path, "wb") as f:
        f.write(os.urandom(8 << 20))
    os.chown(path, srv.accounts.uid, srv.accounts.gid)
    ftp = lib.ftp_login(srv)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")
    conn.settimeout(0.2)
    got = [0]
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                b = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not b:
                return
            got[0] += len(b)
    t = threading.Thread(target=reader)
    t.start()
    try:
        def retr_rows():
            r = tool(tool_bin, "--config", srv.config_path, "who", "--json")
            assert r.returncode == 0, r.stderr
            return [s for s in json.loads(r.stdout)
                    if s.get("user") == lib.USER and s.get("command") == "RETR"]
        rows = lib.wait_for(lambda: [s for s in retr_rows() if int(s["bytes"] or 0) > 0],
                            timeout=5)
        assert rows, retr_rows()
        first = rows[0]
        assert first["path"] == "/big.bin", first
        assert first["address"] == "127.0.0.1", first
        later = lib.wait_for(lambda: [s for s in retr_rows()
                                      if int(s["bytes"] or 0) > int(first["bytes"])],
                             timeout=5)
        assert later, retr_rows()
        table = tool(tool_bin, "--config", srv.config_path, "who").stdout
        assert "/big.bin" in table and "RETR" in table, table

        r = tool(tool_bin, "--config", srv.config_path, "lock", lib.USER)
        assert r.returncode == 0, r.stderr
        assert "1 session" in r.stdout, r.stdout
        with pytest.raises(ftplib.error_temp) as e:
            ftp.voidresp()
        assert str(e.value).startswith("421 Session ended by the administrator"), e.value
    finally:
        stop.set()
        t.join()
        conn.close()
        ftp.close()
    assert curl(srv, lib.USER, lib.PASSWORD).returncode == CURL_LOGIN_DENIED
    lib.wait_for(lambda: not retr_rows_or_none(tool_bin, srv), timeout=5)
    assert tool(tool_bin, "--config", srv.config_path, "unlock", lib.USER).returncode == 0
    assert curl(srv, lib.USER, lib.PASSWORD).stdout == HELLO


def retr_rows_or_none(tool_bin, srv):
    r = tool(tool_bin, "--config", srv.config_path, "who", "--json")
    return [s for s in json.loads(r.stdout) if s.get("user") == lib.USER]


def test_a_user_sent_before_lock_does_not_log_in_after_it(server, tool_bin):
    """The monitor keeps the users file it read at USER; a lock (or del) between
    USER and PASS replaces the file, and the PASS is checked against the new one."""
    srv = server()
    c = lib.secured(srv, lib.client_context(srv.cafile), login=False)
    with c:
        assert c.cmd("USER " + lib.USER).code == 331
        r = tool(tool_bin, "--config", srv.config_path, "lock", lib.USER)
        assert r.returncode == 0, r.stderr
        assert c.cmd("PASS " + lib.PASSWORD).code == 530
    assert "login: user %s" % lib.USER not in srv.log
    assert tool(tool_bin, "--config", srv.config_path, "unlock", lib.USER).returncode == 0
    assert curl(srv, lib.USER, lib.PASSWORD).stdout == HELLO
