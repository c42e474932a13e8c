"""The systemd units in units/, checked the way systemd reads them.

  * `systemd-analyze verify` accepts every unit without a warning, and
    `systemd-analyze security --offline=yes` rates both services at an exposure
    of 2.5 or lower, 2.6 with the PAM drop-in (CAP_CHOWN, for the session
    records' per-user directories, costs 0.1 there). The units are temp copies of the
    shipped ones (the services as meson generated them from ftpsd@.service.in)
    with only ExecStart's binary replaced by the built one.
  * A real session runs under the service's own process restrictions, read from
    the unit: CapabilityBoundingSet=, NoNewPrivileges=, SystemCallFilter= (groups
    expanded by systemd-analyze, allow and deny lines applied in order, the
    SystemCallErrorNumber= action), RestrictAddressFamilies= and
    SystemCallArchitectures=native, applied by setpriv and libseccomp before the
    exec, as systemd does. (Without systemd as PID 1 the namespace options
    (ProtectSystem=, PrivateTmp=, ...) are not reproduced.) A unit that forgot a
    system call ftpsd needs is caught here; so is one that forgot a capability.
"""

import ftplib
import io
import json
import os
import re
import shutil
import stat
import subprocess

import pytest

import ftpsd_testlib as lib
from ftpsd_testlib import IO_TIMEOUT

SERVICES = ["ftpsd@.service", "ftpsd-implicit@.service"]
SOCKETS = ["ftpsd.socket", "ftpsd-implicit.socket"]
MAX_EXPOSURE = 2.5
# The PAM drop-in adds CAP_AUDIT_WRITE, AF_NETLINK and read-only homes; with
# CAP_CHOWN (runtime-dir/sessions/<uid> is given to the user at login) that
# rounds to 2.6.
MAX_EXPOSURE_PAM = 2.6

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze missing (Debian: systemd)")


def exec_start(text):
    m = re.search(r"^ExecStart=(\S+)(.*)$", text, re.M)
    assert m, "no ExecStart="
    return m.group(1), m.group(2).split()


@pytest.fixture
def unit_dir(ftpsd_bin, tmp_path):
    """Temp copies of the shipped units, ExecStart's binary pointed at the built one."""
    for name in SERVICES:
        text = lib.shipped_unit(name)
        path, _ = exec_start(text)
        assert path.endswith("/ftpsd"), path
        text = re.sub(r"^ExecStart=\S+", "ExecStart=" + ftpsd_bin, text, count=1, flags=re.M)
        (tmp_path / name).write_text(text)
    for name in SOCKETS:
        (tmp_path / name).write_text(lib.shipped_unit(name))
    return tmp_path


def with_pam_dropin(unit_dir, service):
    """The service with units/ftpsd-pam.conf applied (a drop-in's settings come after the
    unit's, so appending them is what systemd reads)."""
    text = (unit_dir / service).read_text() + "\n" + lib.shipped_unit("ftpsd-pam.conf")
    name = service.replace("@.service", "-pam@.service")
    (unit_dir / name).write_text(text)
    return name


def analyze(args, cwd):
    return subprocess.run(["systemd-analyze", "--no-pager"] + args, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


# ----------------------------------------------------------- systemd-analyze

def test_every_unit_passes_verify(unit_dir):
    r = analyze(["verify", "--man=no"] + SOCKETS + SERVICES, unit_dir)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stdout + r.stderr


def test_sockets_with_the_balancer_dropin_pass_verify(unit_dir):
    """units/ftpsd-balancer.conf (README, "Running many servers") applied to
    both sockets: systemd reads it without a word, and its values are the
    ones that count (a drop-in comes after the unit)."""
    dropin = lib.shipped_unit("ftpsd-balancer.conf")
    assert re.search(r"^MaxConnectionsPerSource=0$", dropin, re.M), dropin
    names = []
    for sock in SOCKETS:
        name = sock.replace(".socket", "-balanced.socket")
        (unit_dir / name).write_text((unit_dir / sock).read_text() + "\n" + dropin)
        service = sock.replace(".socket", "@.service")
        (unit_dir / name.replace(".socket", "@.service")).write_text(
            (unit_dir / service).read_text())
        names.append(name)
    r = analyze(["verify", "--man=no"] + names, unit_dir)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stdout + r.stderr
    # ... and a value systemd cannot take is reported: the check can fail.
    bad = unit_dir / "bad-balanced.socket"
    bad.write_text((unit_dir / SOCKETS[0]).read_text() + "\n[Socket]\nMaxConnectionsPerSource=off\n")
    (unit_dir / "bad-balanced@.service").write_text((unit_dir / SERVICES[0]).read_text())
    r = analyze(["verify", "--man=no", "bad-balanced.socket"], unit_dir)
    assert "Failed to parse unsigned value, ignoring: off" in r.stderr, r.stderr


def test_verify_reports_a_bad_directive(unit_dir):
    """The check above can fail: a misspelt directive is reported."""
    bad = unit_dir / "broken@.service"
    bad.write_text((unit_dir / SERVICES[0]).read_text() + "ProtectSytem=strict\n")
    r = analyze(["verify", "--man=no", "broken@.service"], unit_dir)
    assert "ProtectSytem" in r.stderr, r.stderr


def exposure(unit_dir, name, limit=MAX_EXPOSURE):
    r = analyze(["security", "--offline=yes", name], unit_dir)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", r.stdout)
    assert m, r.stdout + r.stderr
    # --threshold is on the 0-100 scale, rounded up: 25 means <= 2.5.
    strict = analyze(["security", "--offline=yes", "--threshold=%d" % round(limit * 10),
                      name], unit_dir)
    return float(m.group(1)), strict.returncode == 0, r.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_service_exposure_at_most_2_5(unit_dir, service):
    score, within, report = exposure(unit_dir, service)
    assert score <= MAX_EXPOSURE and within, report


@pytest.mark.parametrize("service", SERVICES)
def test_service_with_pam_dropin_exposure_at_most_2_6(unit_dir, service):
    score, within, report = exposure(unit_dir, with_pam_dropin(unit_dir, service),
                                     MAX_EXPOSURE_PAM)
    assert score <= MAX_EXPOSURE_PAM and within, report


def test_unhardened_unit_is_rated_worse(unit_dir):
    """The rating is not a constant: the same service without its hardening is exposed."""
    text = (unit_dir / SERVICES[0]).read_text()
    bare = "\n".join(line for line in text.splitlines()
                     if line.startswith(("[", "Description=", "ExecStart=")))
    (unit_dir / "bare@.service").write_text(bare + "\n")
    score, within, report = exposure(unit_dir, "bare@.service")
    assert score > 9 and not within, report


# ------------------------------------------------------ sysusers and tmpfiles

def test_sysusers_entry_makes_the_unprivileged_user(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("passwd", "group", "shadow", "gshadow"):
        (etc / name).write_text("")
    src = tmp_path / "ftpsd.conf"
    src.write_text(lib.shipped_unit("ftpsd.sysusers"))
    r = subprocess.run(["systemd-sysusers", "--root=%s" % tmp_path, str(src)],
                       capture_output=True, text=True, timeout=IO_TIMEOUT)
    assert r.returncode == 0, r.stderr
    entry = (etc / "passwd").read_text().strip().split(":")
    assert entry[0] == "ftpsd" and entry[2] != "0" and entry[3] != "0", entry
    assert entry[5] == "/nonexistent" and entry[6].endswith("/nologin"), entry


def test_tmpfiles_entry_makes_a_root_owned_empty_dir(tmp_path):
    src = tmp_path / "ftpsd.conf"
    src.write_text(lib.shipped_unit("ftpsd.tmpfiles"))
    root = tmp_path / "root"
    root.mkdir()
    r = subprocess.run(["systemd-tmpfiles", "--create", "--root=%s" % root, str(src)],
                       capture_output=True, text=True, timeout=IO_TIMEOUT)
    assert r.returncode == 0, r.stderr
    empty = root / "run" / "ftpsd" / "empty"
    st = os.stat(empty)
    assert stat.S_IMODE(st.st_mode) == 0o755 and os.listdir(empty) == []
    if lib.ROOT:
        assert st.st_uid == 0 and st.st_gid == 0
    # quota-dir's default, root's alone (ftpsd refuses one others may write).
    quota = root / "var" / "lib" / "ftpsd" / "quota"
    st = os.stat(quota)
    assert stat.S_IMODE(st.st_mode) == 0o700 and os.listdir(quota) == []
    if lib.ROOT:
        assert st.st_uid == 0 and st.st_gid == 0


def test_quota_dir_is_writable_under_protect_system(unit_dir):
    """ProtectSystem=strict makes /var/lib read-only: the unit's StateDirectory=
    makes quota-dir's default writable, 0700."""
    for name in ("ftpsd@.service", "ftpsd-implicit@.service"):
        text = (unit_dir / name).read_text()
        assert unit_values(text, "ProtectSystem") == ["strict"], name
        assert unit_values(text, "StateDirectory") == ["ftpsd/quota"], name
        assert unit_values(text, "StateDirectoryMode") == ["0700"], name


# ------------------------------------------- a session under the restrictions

# Runs between setpriv and ftpsd: loads the unit's system call filter (and its
# address family filter, a second filter as systemd makes it), then execs ftpsd
# in the same process, so LISTEN_PID still matches.
LOADER = r"""
import ctypes, json, os, sys
spec = json.load(open(sys.argv[1]))
lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
class Cmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]
lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                       ctypes.c_uint, ctypes.POINTER(Cmp)]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
ALLOW, KILL_PROCESS = 0x7fff0000, 0x80000000
def errno_action(e): return 0x00050000 | (e & 0xffff)
def check(r, what):
    if r < 0: raise SystemExit("loader: %s: %s" % (what, os.strerror(-r)))

if spec["allow"] is not None:
    ctx = lib.seccomp_init(errno_action(spec["errno"]) if spec["errno"] else KILL_PROCESS)
    for name in spec["allow"]:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr != -1:  # not known to this libseccomp
            check(lib.seccomp_rule_add(ctx, ALLOW, nr, 0), name)
    check(lib.seccomp_load(ctx), "load")
if spec["families"] is not None:
    ctx = lib.seccomp_init(ALLOW)
    sock = lib.seccomp_syscall_resolve_name(b"socket")
    EAFNOSUPPORT, EQ, GE, AF_MAX = 97, 4, 5, 64
    for f in range(AF_MAX):
        if f not in spec["families"]:
            c = (Cmp * 1)(Cmp(0, EQ, f, 0))
            check(lib.seccomp_rule_add_array(ctx, errno_action(EAFNOSUPPORT), sock, 1, c), "af")
    c = (Cmp * 1)(Cmp(0, GE, AF_MAX, 0))
    check(lib.seccomp_rule_add_array(ctx, errno_action(EAFNOSUPPORT), sock, 1, c), "af")
    check(lib.seccomp_load(ctx), "load af")
os.environ.update(spec["env"])
os.execv(sys.argv[2], sys.argv[2:])
"""

FAMILIES = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17}
ERRNOS = {"EPERM": 1, "EACCES": 13, "ENOSYS": 38}
# linux/capability.h
CAP_NUMBERS = {"chown": 0, "dac_override": 1, "dac_read_search": 2, "fowner": 3, "kill": 5,
               "setgid": 6, "setuid": 7, "setpcap": 8, "net_bind_service": 10, "sys_chroot": 18,
               "sys_ptrace": 19, "sys_admin": 21, "audit_write": 29}

_groups = {}


def syscall_group(name):
    """The system calls of a systemd group, nested groups expanded."""
    if name not in _groups:
        r = subprocess.run(["systemd-analyze", "--no-pager", "syscall-filter", name],
                           capture_output=True, text=True, timeout=30, check=True)
        out = set()
        for line in r.stdout.splitlines()[1:]:
            item = line.strip()
            if not item or item.startswith("#"):
                continue
            out |= syscall_group(item) if item.startswith("@") else {item}
        assert out, "empty group %s" % name
        _groups[name] = out
    return _groups[name]


def unit_values(text, key):
    return [m.group(1).strip() for m in re.finditer(r"^%s=(.*)$" % re.escape(key), text, re.M)]


def restrictions(text):
    """What systemd would apply to the service's process, from the unit text."""
    caps = set()
    for v in unit_values(text, "CapabilityBoundingSet"):
        assert not v.startswith("~"), "inverted bounding sets are not emulated"
        caps |= {c.lower().replace("cap_", "") for c in v.split()}
    allow = None  # None: no filter; a set: allow-list mode
    for v in unit_values(text, "SystemCallFilter"):
        invert = v.startswith("~")
        names = set()
        for item in v.lstrip("~").split():
            names |= syscall_group(item) if item.startswith("@") else {item}
        if allow is None:
            if invert:
                raise AssertionError("deny-list SystemCallFilter= is not emulated")
            allow = syscall_group("@default") | names  # systemd adds @default to allow lists
        elif invert:
            allow -= names
        else:
            allow |= names
    errno_name = (unit_values(text, "SystemCallErrorNumber") or [None])[-1]
    families = None
    for v in unit_values(text, "RestrictAddressFamilies"):
        assert not v.startswith("~")
        families = (families or set()) | {FAMILIES[f] for f in v.split()}
    nnp = (unit_values(text, "NoNewPrivileges") or ["no"])[-1] == "yes"
    return {"caps": sorted(caps), "allow": None if allow is None else sorted(allow),
            "errno": ERRNOS[errno_name] if errno_name else None,
            "families": None if families is None else sorted(families), "nnp": nnp}


def restricted(srv, spec, tmp_path):
    """Make `srv` start its ftpsd under `spec` (setpriv, then the seccomp loader)."""
    spec_path = tmp_path / ("spec-%d.json" % id(srv))
    # systemd-socket-activate passes no environment: sanitizer builds get their
    # options (no LeakSanitizer, which would ptrace) from the loader.
    env = {k: os.environ[k] for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS") if k in os.environ}
    spec_path.write_text(json.dumps(dict(spec, env=env)))
    loader = tmp_path / "loader.py"
    loader.write_text(LOADER)
    wrapper = ["setpriv", "--bounding-set", ",".join(["-all"] + ["+" + c for c in spec["caps"]]),
               "--inh-caps", "-all", "--ambient-caps", "-all"]
    if spec["nnp"]:
        wrapper.append("--no-new-privs")
    wrapper += ["--", "/usr/bin/python3", "-I", str(loader), str(spec_path)]
    plain = srv.argv
    srv.argv = lambda: wrapper + plain()
    return srv


needs_root = pytest.mark.skipif(not lib.ROOT, reason="the unit's restrictions need root")


def full_session(srv, implicit=False):
    ctx = lib.client_context(srv.cafile)
    if implicit:
        ftp = lib.ImplicitFTP_TLS(context=ctx, timeout=IO_TIMEOUT)
        ftp.connect("127.0.0.1", srv.port)
        ftp.login(lib.USER, lib.PASSWORD)
        ftp.prot_p()
    else:
        ftp = lib.ftp_login(srv)
    names = ftp.nlst()
    assert "hello.txt" in names, names
    assert lib.retr_bytes(ftp, "hello.txt") == lib.HELLO
    ftp.storbinary("STOR up.txt", io.BytesIO(b"uploaded under the unit's filter\n"))
    ftp.quit()
    with open(os.path.join(srv.root, "up.txt"), "rb") as f:
        assert f.read() == b"uploaded under the unit's filter\n"


def assert_clean_log(srv, sessions):
    lib.wait_for(lambda: srv.log.count("session ended") >= sessions, timeout=5)
    log = srv.log
    assert log.count("session ended") == sessions, log
    for bad in ("killed by signal", "Operation not permitted", "loader:", "fatal"):
        assert bad not in log, log


def monitor_status(srv):
    found = lib.wait_for(lambda: srv.monitors(), timeout=5)
    assert found, "no monitor running"
    return lib.proc_status(found[0])


@needs_root
@pytest.mark.parametrize("service", SERVICES)
def test_session_under_the_services_restrictions(server, unit_dir, tmp_path, service):
    text = (unit_dir / service).read_text()
    implicit = "--implicit-tls" in exec_start(text)[1]
    assert implicit == (service == "ftpsd-implicit@.service")
    spec = restrictions(text)
    assert spec["allow"] and spec["families"] and spec["nnp"] and spec["errno"]
    srv = restricted(server(implicit=implicit, start=False), spec, tmp_path)
    srv.start()
    # The restrictions are really on the monitor (and so on its child).
    ctx = lib.client_context(srv.cafile)
    c = lib.Control(srv.port, implicit_context=ctx if implicit else None)
    try:
        assert c.reply().code == 220
        st = monitor_status(srv)
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", st
        bset = int(st["CapBnd"], 16)
        want = sum(1 << CAP_NUMBERS[cap] for cap in spec["caps"])
        assert bset == want, "CapBnd %x, want %x" % (bset, want)
    finally:
        c.close()
    full_session(srv, implicit=implicit)
    assert_clean_log(srv, 2)
    # Landlock's calls pass the unit's filter: both processes restricted themselves.
    if landlock_abi() >= 2:
        assert "sandbox: Landlock ABI" in srv.log and "child sandbox: Landlock ABI" in srv.log, \
            srv.log


def landlock_abi():
    import ctypes
    if os.uname().machine != "x86_64":
        return -1
    return ctypes.CDLL(None, use_errno=True).syscall(444, None, 0, 1)


@needs_root
def test_without_landlock_calls_required_refuses_the_session(server, unit_dir, tmp_path):
    """The unit must let Landlock's calls through: where it does not, landlock = required
    refuses every session (and landlock = on would run without Landlock)."""
    if landlock_abi() < 2:
        pytest.skip("this kernel has no Landlock ABI 2")
    spec = restrictions((unit_dir / SERVICES[0]).read_text())
    assert "landlock_restrict_self" in spec["allow"]
    broken = {**spec, "allow": [s for s in spec["allow"] if not s.startswith("landlock_")]}
    srv = restricted(server(start=False, landlock="required"), broken, tmp_path)
    srv.start()
    with lib.Control(srv.port) as c:
        data = c.wait_closed()
    assert b"421" in data and b"230" not in data, data
    assert lib.wait_for(lambda: "session refused: landlock = required, and no Landlock"
                        in srv.log, timeout=5), srv.log


@needs_root
def test_restrictions_are_enforced_missing_chroot_ends_the_session(server, unit_dir, tmp_path):
    """The emulation can fail: without chroot in the filter the child cannot lock itself
    in, and no session starts; without CAP_SYS_CHROOT likewise."""
    spec = restrictions((unit_dir / SERVICES[0]).read_text())
    for broken in ({**spec, "allow": [s for s in spec["allow"] if s != "chroot"]},
                   {**spec, "caps": [c for c in spec["caps"] if c != "sys_chroot"]}):
        srv = restricted(server(start=False), broken, tmp_path)
        srv.start()
        with lib.Control(srv.port) as c:
            data = c.wait_closed()
        assert b"230" not in data
        assert lib.wait_for(lambda: "chroot" in srv.log, timeout=5), srv.log
        srv.stop()


# --------------------------------------------------------------- PAM users

@pytest.fixture
def shipped_pam_user(session_dir):
    """A system user with a password and a home, and units/ftpsd.pam installed as a PAM
    service of its own (removed afterwards)."""
    home_files = {"mine.txt": b"in the PAM user's home\n"}
    with lib.pam_system_user(session_dir, "u", lib.shipped_unit("ftpsd.pam"), home_files) as u:
        name, password, service, home = u
        yield name, password, service, home


@needs_root
def test_pam_login_with_shipped_pam_file_under_unit_and_dropin(server, unit_dir, tmp_path,
                                                               shipped_pam_user):
    name, password, service, home = shipped_pam_user
    spec = restrictions((unit_dir / with_pam_dropin(unit_dir, SERVICES[0])).read_text())
    assert "audit_write" in spec["caps"] and FAMILIES["AF_NETLINK"] in spec["families"]
    # The home is not below /home, where landlock-writable looks by default.
    srv = restricted(server(start=False, pam_service=service,
                            landlock_writable=os.path.dirname(home)), spec, tmp_path)
    srv.start()
    ftp = lib.ftp_login(srv, user=name, password=password)
    assert ftp.nlst() == ["mine.txt"]
    assert lib.retr_bytes(ftp, "mine.txt") == b"in the PAM user's home\n"
    ftp.quit()
    # A wrong password is refused by the shipped PAM stack, not by an error.
    ftp = lib.ReusingFTP_TLS(context=lib.client_context(srv.cafile), timeout=IO_TIMEOUT)
    ftp.connect("127.0.0.1", srv.port)
    ftp.auth()
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp.login(name, password + "x")
    ftp.close()
    assert_clean_log(srv, 2)
    assert "login failed for user %s" % name in srv.log, srv.log
