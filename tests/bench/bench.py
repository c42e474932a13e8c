#!/usr/bin/python3
"""Side-by-side performance benchmark: ftpsd against vsftpd and ProFTPD.

Run through tests/bench/run.sh, which installs the peers and builds ftpsd
(release). Everything runs on 127.0.0.1, as root, in a temporary directory
that is removed at the end (also on Ctrl-C):

  * one ECDSA P-256 certificate (certtool) for all three servers;
  * one system user (ftpbench) whose password hash is copied from /etc/shadow
    into ftpsd's users file, so every server pays the same crypt(3) cost;
  * the same TLS version for every server and client (1.3, or 1.2 when a
    server cannot do 1.3), the same clients (curl, lftp, Python ftplib);
  * each server in its own cgroup (v2 cpu.stat, else v1 cpuacct, else a
    /proc walk), so server CPU includes session processes that have exited.

Measurements (median of --runs runs, interleaved across servers):
RETR of a big file under PROT P and PROT C and STOR under PROT P (curl), the
two downloads again with curl reading at about 2 Gbit/s (--limit-rate),
sessions per second with 1 and 4 concurrent ftplib clients, 1,000 small
files over one lftp session (mirror), the PSS of an idle logged-in
session, and the PSS per session with 8 idle sessions at once (what each
further session costs). --tests scale (not in the default set) measures many
sessions at once: the marginal PSS per idle logged-in session ((PSS of all
the server's processes with N sessions - with none) / N, N = 32 and 256);
1,000 idle logged-in sessions at once (how many answer NOOP, the server's
total PSS, the seconds to log them all in from 16 client threads; the
servers' session limits are raised for it); and 32 concurrent curl RETRs of
a 64 MiB file under PROT P (aggregate MiB/s over the batch's wall time,
server CPU s/GiB). The marginal rows' floor is tests/bench/floor_session.c (built
here with cc against the libraries ftpsd links), started as ftpsd is (one exec per
connection by systemd-socket-activate --accept): it forks a child, makes one GnuTLS
handshake, answers the login with fixed replies and idles, so its marginal PSS is what
this design cannot go below on this machine; the same program as a long-lived
listener that forks (no exec) per connection, as vsftpd does, gives the rows
"forking listener (floor)": what that other design would cost. --detail adds a per-mapping breakdown (/proc/PID/smaps) of
one idle ftpsd session's monitor and child. A 'floor' column does the same work with minimal
programs in the same run (a sendfile() loop, a recv()+pwrite() loop without
TLS, gnutls-serv after one handshake): what that work costs on this machine
by itself, so a missed goal can be told from a machine that cannot meet it.
The table goes to stdout and to a CSV file.

Usage: bench.py [--quick] [--runs N] [--servers ftpsd,vsftpd,proftpd]
                [--tests transfers,sessions,memory,small,scale] [--detail] [--cipher aes128|aes256|default]
                [--crypt SHA512|YESCRYPT] [--small-dirs N] [--ftpsd PATH]
                [--proftpd-root DIR] [--csv PATH] [--no-floor] [--perf] [--serve] [--keep] [-v]
(--serve starts the servers as the benchmark would and waits, for profiling by hand;
tests/bench/memwhere.py reads its JSON line and shows where N idle sessions' memory goes.)
"""

import argparse
import csv
import ftplib
import json
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_USER = "ftpbench"
HOST = "127.0.0.1"
GIB = 1 << 30
MIB = 1 << 20

# Passive port ranges: above Linux's ephemeral range (32768-60999) and away
# from the integration tests' 61000-61999.
PASV = {
    "ftpsd": (62000, 62499), "ftpsd-protc": (62500, 62999),
    "vsftpd": (63000, 63499), "vsftpd-protc": (63500, 63999),
    "proftpd": (64000, 64499), "proftpd-protc": (64500, 64999),
}

VERBOSE = False
ALL_TESTS = "transfers,sessions,memory,small"
MANY_IDLE = 8
# The same downloads with curl reading at about 2 Gbit/s: on loopback a sender that is
# never held back by a link spends CPU (pacing timers, wakeups) that it would not spend
# on a real network.
LIMIT_RATE = "250M"
LIMITED = "at 2 Gbit/s"
MANY_IDLE_METRIC = "PSS per session, %d idle sessions MiB" % MANY_IDLE
# --tests scale (not in the default set: it holds 1,000 sessions per server)
SCALE_SESSIONS = 1000
SCALE_MARGINAL = (32, 256)
SCALE_RETR = 32
SCALE_RETR_MIB = 64
SCALE_METRICS = ["marginal PSS per idle session, %d sessions MiB" % n for n in SCALE_MARGINAL] + [
    "marginal PSS per idle session, %d sessions, forking listener (floor) MiB" % n for n in SCALE_MARGINAL] + [
    "%d idle sessions: logged in and answering NOOP" % SCALE_SESSIONS,
    "%d idle sessions: total PSS MiB" % SCALE_SESSIONS,
    "%d idle sessions: s to establish" % SCALE_SESSIONS,
    "%d x RETR PROT P %d MiB: aggregate MiB/s" % (SCALE_RETR, SCALE_RETR_MIB),
    "%d x RETR PROT P %d MiB: server CPU s/GiB" % (SCALE_RETR, SCALE_RETR_MIB),
]


def say(msg):
    print("==> " + msg, file=sys.stderr, flush=True)


def debug(msg):
    if VERBOSE:
        print("    " + msg, file=sys.stderr, flush=True)


class Interrupted(Exception):
    pass


def _on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


def run(cmd, timeout, check=True, **kw):
    """subprocess.run with a time bound and captured text output."""
    debug("$ " + " ".join(cmd))
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError("%s: no result after %ss" % (cmd[0], timeout)) from e
    if check and r.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (os.path.basename(cmd[0]), r.returncode,
                                                  (r.stderr or r.stdout).strip()[-300:]))
    return r


# ===================================================================== CPU accounting

def _mounts():
    with open("/proc/mounts") as f:
        return [line.split() for line in f]


class CpuMeter:
    """Server CPU time (user+sys) of one server and every process it starts.

    Preferably a cgroup: the server's launcher joins it before exec (so every
    session process is born in it) and usage includes processes that have
    already exited. Without cgroups, a /proc walk sums the launcher's own and
    reaped children's times plus every live descendant's.
    """

    method = None  # "cgroup2 <path>", "cgroup1 cpuacct <path>" or "proc"
    base = None

    @classmethod
    def detect(cls):
        v2 = v1 = None
        for m in _mounts():
            if m[2] == "cgroup2" and v2 is None:
                v2 = m[1]
            if m[2] == "cgroup" and "cpuacct" in m[3].split(","):
                v1 = m[1]
        for kind, base in (("cgroup2", v2), ("cgroup1", v1)):
            if base is None:
                continue
            probe = os.path.join(base, "ftpbench-probe-%d" % os.getpid())
            try:
                os.mkdir(probe)
                ok = os.path.exists(os.path.join(probe, "cpu.stat" if kind == "cgroup2" else "cpuacct.usage"))
                os.rmdir(probe)
            except OSError:
                ok = False
            if ok:
                cls.method, cls.base = kind, base
                return "%s (%s/ftpbench-NAME)" % (kind, base)
        cls.method = "proc"
        return "no cgroup could be created: summing /proc/PID/stat over each server's process tree (launcher's cutime/cstime counts reaped sessions)"

    def __init__(self, name):
        self.name = name
        self.pid = None
        self.path = None
        if self.method in ("cgroup2", "cgroup1"):
            self.path = os.path.join(self.base, "ftpbench-" + name)
            if os.path.isdir(self.path):
                self._kill_all()
                self._rmdir()
            os.mkdir(self.path)

    def join_self(self):
        """preexec_fn: move the calling (forked, not yet exec'd) process into the cgroup."""
        if self.path is not None:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    def usage(self):
        """Seconds of CPU so far."""
        if self.method == "cgroup2":
            with open(os.path.join(self.path, "cpu.stat")) as f:
                for line in f:
                    k, v = line.split()
                    if k == "usage_usec":
                        return int(v) / 1e6
            raise RuntimeError("no usage_usec in cpu.stat")
        if self.method == "cgroup1":
            with open(os.path.join(self.path, "cpuacct.usage")) as f:
                return int(f.read()) / 1e9
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for i, pid in enumerate([self.pid] + descendants(self.pid)):
            st = proc_stat(pid)
            if st is None:
                continue
            # utime stime cutime cstime (fields 14-17)
            total += sum(int(x) for x in st[11:15])
        return total / tick

    def pids(self):
        if self.path is not None:
            try:
                with open(os.path.join(self.path, "cgroup.procs")) as f:
                    return [int(x) for x in f.read().split()]
            except OSError:
                return []
        if self.pid is None:
            return []
        return [self.pid] + descendants(self.pid)

    def session_pids(self):
        return [p for p in self.pids() if p != self.pid]

    def wait_idle(self, timeout=15):
        """Wait until only the launcher is left (the sessions have exited)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.session_pids():
                return True
            time.sleep(0.02)
        debug("%s: session processes still alive after %ss: %s" % (self.name, timeout, self.session_pids()))
        return False

    def _kill_all(self):
        if self.path is None:
            return
        kill = os.path.join(self.path, "cgroup.kill")
        if os.path.exists(kill):
            try:
                with open(kill, "w") as f:
                    f.write("1")
            except OSError:
                pass
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)

    def _rmdir(self):
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)

    def destroy(self):
        if self.path is not None:
            self._kill_all()
            self._rmdir()
            self.path = None


def proc_stat(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()  # fields from "state" on


def descendants(pid):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if st is not None:
            children.setdefault(int(st[1]), []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def smaps(pid):
    """(Pss, Private) in bytes from /proc/PID/smaps_rollup."""
    pss = priv = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, rest = line.partition(":")
                if k == "Pss":
                    pss = int(rest.split()[0]) * 1024
                elif k in ("Private_Clean", "Private_Dirty"):
                    priv += int(rest.split()[0]) * 1024
    except OSError:
        return None
    return pss, priv


def smaps_by_mapping(pid):
    """{mapping name: [Pss, Private_Dirty, Private_Clean, Shared_Clean+Shared_Dirty]} in KiB
    from /proc/PID/smaps; a library's mappings (text, data, bss) under its file name,
    anonymous mappings as [anon], and [heap], [stack] as the kernel names them."""
    out = {}
    cur = None
    keys = {"Pss": 0, "Private_Dirty": 1, "Private_Clean": 2, "Shared_Clean": 3, "Shared_Dirty": 3}
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) > 5 else "[anon]"
                if name.startswith("/"):
                    name = os.path.basename(name)
                cur = out.setdefault(name, [0, 0, 0, 0])
                continue
            k = first.rstrip(":")
            if k in keys and cur is not None:
                cur[keys[k]] += int(line.split()[1])
    return out


# ===================================================================== servers

def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def clean_env():
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C"}
    return env


class Server:
    """One server instance (name, e.g. "vsftpd" or "vsftpd-protc") in its own cgroup."""

    kind = None

    def __init__(self, ctx, name, clear_data):
        self.ctx = ctx
        self.name = name
        self.clear_data = clear_data  # this instance allows PROT C
        self.dir = os.path.join(ctx.work, name)
        os.makedirs(self.dir, mode=0o755)
        self.port = free_port()
        self.pasv = PASV[name]
        self.proc = None
        self.cpu = None
        self.log = os.path.join(self.dir, "server.log")

    def command(self):
        raise NotImplementedError

    def start(self):
        self.write_config()
        self.cpu = CpuMeter(self.name)
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     cwd=self.dir, env=clean_env(), start_new_session=True,
                                     preexec_fn=self.cpu.join_self)
        logf.close()
        self.cpu.pid = self.proc.pid
        deadline = time.monotonic() + 10
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection((HOST, self.port), timeout=5) as s:
                    s.settimeout(5)
                    data = b""
                    while b"\n" not in data:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    if data.startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        try:
                            s.recv(4096)
                        except OSError:
                            pass
                        self.cpu.wait_idle(5)
                        return
                    last = data
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise RuntimeError("%s did not greet on port %d (%r); log: %s" % (self.name, self.port, last, self.tail_log()))

    def tail_log(self, n=600):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace").strip()
        except OSError:
            return ""

    # systemd-socket-activate's own lines, except a session that died of a signal
    # ("died with code 31" is SIGSYS: a seccomp filter killed it)
    LAUNCHER_LINES = re.compile(r"^(Communication attempt|Connection from|Spawned|Execing|Child \d+ died with code 0$)")

    def last_log_line(self):
        """The server's own last log line (not systemd-socket-activate's)."""
        logs = [self.log] + [os.path.join(self.dir, n) for n in ("vsftpd.log", "proftpd.log")]
        newest = max((p for p in logs if os.path.exists(p)), key=os.path.getmtime, default=None)
        if newest is None:
            return ""
        try:
            with open(newest, "rb") as f:
                f.seek(max(0, os.path.getsize(newest) - 8192))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            if line.strip() and not self.LAUNCHER_LINES.match(line):
                return line.strip()[:200]
        return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        if self.cpu is not None:
            if self.cpu.method == "proc" and self.cpu.pid:
                for p in descendants(self.cpu.pid):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
            self.cpu.destroy()


class Ftpsd(Server):
    kind = "ftpsd"

    def write_config(self):
        c = self.ctx
        users = os.path.join(self.dir, "users")
        fd = os.open(users, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("%s:%s:%d:%d:%s\n" % (BENCH_USER, c.user_hash, c.uid, c.gid, c.data))
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty, mode=0o755, exist_ok=True)
        self.conf = os.path.join(self.dir, "ftpsd.conf")
        with open(self.conf, "w") as f:
            f.write("# written by tests/bench/bench.py\n")
            f.write("tls-certificate = %s\n" % c.cert)
            f.write("tls-key = %s\n" % c.key)
            f.write("users-file = %s\n" % users)
            f.write("empty-dir = %s\n" % empty)
            f.write("pasv-ports = %d-%d\n" % self.pasv)
            f.write("data-tls = %s\n" % ("optional" if self.clear_data else "required"))
            f.write("data-tls-reuse = required\n")
            f.write("upload-fsync = off\n")  # the peers do not fsync uploads either
            f.write("login-failure-delay = 0s\n")
            # the scale test holds SCALE_SESSIONS sessions from one address at once
            f.write("max-sessions = %d\n" % (SCALE_SESSIONS + 100))
            f.write("max-sessions-per-address = %d\n" % (SCALE_SESSIONS + 100))
        run([c.ftpsd, "--check-config", "--config", self.conf], timeout=10)

    def command(self):
        return ["systemd-socket-activate", "--accept", "-l", "%s:%d" % (HOST, self.port),
                "--", self.ctx.ftpsd, "--config", self.conf]


class Vsftpd(Server):
    kind = "vsftpd"

    def write_config(self):
        c = self.ctx
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty, mode=0o755, exist_ok=True)
        self.conf = os.path.join(self.dir, "vsftpd.conf")
        opts = [
            ("listen", "YES"), ("listen_ipv6", "NO"), ("listen_address", HOST),
            ("listen_port", str(self.port)), ("background", "NO"),
            ("anonymous_enable", "NO"), ("local_enable", "YES"), ("write_enable", "YES"),
            ("local_umask", "022"), ("chroot_local_user", "YES"), ("secure_chroot_dir", empty),
            ("pam_service_name", "vsftpd"), ("seccomp_sandbox", "NO"),
            ("dirmessage_enable", "NO"), ("connect_from_port_20", "NO"), ("use_localtime", "YES"),
            ("xferlog_enable", "YES"), ("vsftpd_log_file", os.path.join(self.dir, "vsftpd.log")),
            ("pasv_enable", "YES"), ("pasv_min_port", str(self.pasv[0])),
            ("pasv_max_port", str(self.pasv[1])),
            ("ssl_enable", "YES"), ("allow_anon_ssl", "NO"),
            ("force_local_logins_ssl", "YES"),
            ("force_local_data_ssl", "NO" if self.clear_data else "YES"),
            ("require_ssl_reuse", "YES"), ("ssl_sslv2", "NO"), ("ssl_sslv3", "NO"),
            ("ssl_tlsv1", "YES"), ("ssl_request_cert", "NO"), ("ssl_ciphers", "HIGH"),
            ("rsa_cert_file", c.cert), ("rsa_private_key_file", c.key),
            ("max_clients", str(SCALE_SESSIONS + 100)), ("max_per_ip", str(SCALE_SESSIONS + 100)),
        ]
        with open(self.conf, "w") as f:
            for k, v in opts:
                f.write("%s=%s\n" % (k, v))
        os.chmod(self.conf, 0o600)

    def command(self):
        return [self.ctx.vsftpd, self.conf]


class Proftpd(Server):
    kind = "proftpd"

    def write_config(self):
        c = self.ctx
        self.conf = os.path.join(self.dir, "proftpd.conf")
        d = self.dir
        lines = [
            "ServerType standalone",
            'ServerName "proftpd bench"',
            "DefaultServer on",
            "DefaultAddress %s" % HOST,
            "SocketBindTight on",
            "UseIPv6 off",
            "Port %d" % self.port,
            "User nobody",
            "Group nogroup",
            "Umask 022",
            "PidFile %s/proftpd.pid" % d,
            "ScoreboardFile %s/proftpd.scoreboard" % d,
            "DelayTable %s/proftpd.delay" % d,
            "SystemLog %s/proftpd.log" % d,
            "TransferLog %s/xferlog" % d,
            "WtmpLog off",
            "UseReverseDNS off",
            "AuthPAM off",
            "AuthOrder mod_auth_unix.c",
            "DefaultRoot ~",
            "AllowOverwrite on",
            "PassivePorts %d %d" % self.pasv,
            "MaxInstances %d" % (SCALE_SESSIONS + 100),
            "ModulePath %s" % c.proftpd_modules,
            "LoadModule mod_tls.c",
            "<IfModule mod_tls.c>",
            "  TLSEngine on",
            "  TLSLog %s/tls.log" % d,
            "  TLSProtocol TLSv1.2 TLSv1.3",
            "  TLSRequired %s" % ("ctrl" if self.clear_data else "on"),
            "  TLSECCertificateFile %s" % c.cert,
            "  TLSECCertificateKeyFile %s" % c.key,
            "  TLSVerifyClient off",
            "</IfModule>",
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.conf, 0o600)
        r = run([c.proftpd, "-t", "-c", self.conf], timeout=20, check=False, env=clean_env())
        if r.returncode != 0:
            raise RuntimeError("proftpd -t: " + (r.stderr + r.stdout).strip()[-600:])

    def command(self):
        return [self.ctx.proftpd, "-n", "-c", self.conf]


class FloorSession(Server):
    """tests/bench/floor_session.c, the scale rows' floor: one process exec'd per
    connection by systemd-socket-activate --accept, as ftpsd is, that forks a child,
    makes one GnuTLS handshake, answers the login with fixed replies and idles.
    With listener=True the same program is a long-lived listener that forks (no
    exec) a session per connection, as vsftpd does: another design's floor."""

    kind = "floor"

    def __init__(self, ctx, name, listener):
        self.listener = listener
        self.ctx = ctx
        self.name = name
        self.clear_data = False
        self.dir = os.path.join(ctx.work, name)
        os.makedirs(self.dir, mode=0o755)
        self.port = free_port()
        self.pasv = None
        self.proc = None
        self.cpu = None
        self.log = os.path.join(self.dir, "server.log")

    def write_config(self):
        self.binary = self.ctx.build_floor_session()

    def command(self):
        c = self.ctx
        if self.listener:
            return [self.binary, c.cert, c.key, HOST, str(self.port)]
        return ["systemd-socket-activate", "--accept", "-l", "%s:%d" % (HOST, self.port), "--",
                self.binary, c.cert, c.key]


# ===================================================================== clients

CIPHERS = {
    # name: (curl --tls13-ciphers, curl --ciphers (TLS 1.2), GnuTLS priority for lftp)
    "aes128": ("TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", "-CIPHER-ALL:+AES-128-GCM"),
    "aes256": ("TLS_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", "-CIPHER-ALL:+AES-256-GCM"),
    "default": (None, None, ""),
}
CIPHER = "aes128"


def tls_flags(ver):
    """curl: this TLS version only, and the benchmark's cipher suite (the same for every server)."""
    out = ["--tlsv%s" % ver, "--tls-max", ver]
    c13, c12, _ = CIPHERS[CIPHER]
    if c13:
        out += ["--tls13-ciphers", c13] if ver == "1.3" else ["--ciphers", c12]
    return out


def lftp_priority(ver):
    extra = CIPHERS[CIPHER][2]
    return "NORMAL:-VERS-ALL:+VERS-TLS%s%s" % (ver, ":" + extra if extra else "")


def ftp_url(srv, path):
    return "ftp://%s:%s@%s:%d/%s" % (BENCH_USER, srv.ctx.password, HOST, srv.port, path)


def curl_transfer(srv, mode, timeout, limit=None):
    """One curl session: RETR big.bin (mode "retr-p"/"retr-c") or STOR (mode "stor-p"/"stor-c").
    limit: curl's --limit-rate (the reader's pace, as on a slower link).
    Returns (bytes, transfer seconds)."""
    c = srv.ctx
    cmd = ["curl", "-sS", "-k", "--max-time", str(timeout), "--connect-timeout", "10"] + tls_flags(c.tls)
    if limit:
        cmd += ["--limit-rate", limit]
    cmd += ["--ftp-ssl-control"] if mode in ("retr-c", "stor-c") else ["--ssl-reqd"]
    fmt = "%{size_download} %{size_upload} %{time_total} %{time_pretransfer} %{time_starttransfer}"
    if mode.startswith("stor"):
        target = "up/stor-%d.bin" % time.monotonic_ns()
        cmd += ["-T", c.big, "-w", fmt, ftp_url(srv, target)]
    else:
        target = None
        cmd += ["-o", "/dev/null", "-w", fmt, ftp_url(srv, "big.bin")]
    r = run(cmd, timeout=timeout + 15)
    down, up, total, pre, _start = r.stdout.split()
    nbytes = int(float(up if mode.startswith("stor") else down))
    if nbytes != c.big_size:
        raise RuntimeError("%s: %d bytes moved, expected %d" % (mode, nbytes, c.big_size))
    if target is not None:
        path = os.path.join(c.data, target)
        # the server may still be closing the file when curl has its 226
        for _ in range(100):
            if os.path.exists(path) and os.path.getsize(path) == c.big_size:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("upload %s has %s bytes" % (path, os.path.getsize(path) if os.path.exists(path) else "no"))
    secs = float(total) - float(pre)
    return nbytes, secs, target


def lftp_mirror(srv, dest, timeout):
    c = srv.ctx
    script = "; ".join([
        "set cmd:fail-exit true",
        "set net:max-retries 1",
        "set net:reconnect-interval-base 1",
        "set net:timeout 30",
        "set ftp:ssl-force true",
        "set ftp:ssl-protect-data true",
        "set ssl:verify-certificate no",
        'set ssl:priority "%s"' % lftp_priority(c.tls),
        "open -u %s,%s -p %d %s" % (BENCH_USER, c.password, srv.port, HOST),
        "mirror small %s" % dest,
    ])
    run(["lftp", "-c", script], timeout=timeout, env=dict(clean_env(), HOME=c.work))
    n = sum(len(files) for _, _, files in os.walk(dest))
    if n != c.nsmall:
        raise RuntimeError("lftp mirror fetched %d files, expected %d" % (n, c.nsmall))


def client_context(cafile, tls):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    v = ssl.TLSVersion.TLSv1_3 if tls == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ctx.maximum_version = v
    return ctx


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS that resumes the control session on data connections (CPython
    issue 63699) and always uses EPSV."""

    def makepasv(self):
        host, port = ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
        return self.host, port

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


def one_session(ctx, port, user, password, lines=None):
    ftp = ReusingFTP_TLS(context=ctx, timeout=30)
    try:
        ftp.connect(HOST, port)
        ftp.auth()
        ftp.login(user, password)
        ftp.prot_p()
        out = []
        ftp.retrlines("LIST list", out.append)
        if len(out) < 10:
            raise RuntimeError("LIST gave %d lines" % len(out))
        ftp.quit()
    finally:
        ftp.close()


def worker_main(spec):
    """--worker: run spec["count"] sessions after "go" on stdin; print a JSON result."""
    ctx = client_context(spec["cafile"], spec["tls"])
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    ok = fail = 0
    errors = []
    for _ in range(spec["count"]):
        try:
            one_session(ctx, spec["port"], spec["user"], spec["password"])
            ok += 1
        except Exception as e:  # noqa: BLE001 (reported, counted)
            fail += 1
            if len(errors) < 3:
                errors.append("%s: %s" % (type(e).__name__, e))
    print(json.dumps({"ok": ok, "fail": fail, "errors": errors}), flush=True)


# ===================================================================== the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.runs = args.runs if args.runs else (1 if args.quick else 3)
        self.big_size = (args.size_mib if args.size_mib else (128 if args.quick else 1024)) * MIB
        self.nsmall = args.small_files if args.small_files else (200 if args.quick else 1000)
        self.nsessions = args.sessions if args.sessions else (40 if args.quick else 200)
        self.ftpsd = os.path.abspath(args.ftpsd)
        self.vsftpd = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
        self.proftpd_root = args.proftpd_root
        self.proftpd = os.path.join(self.proftpd_root, "usr/sbin/proftpd") if self.proftpd_root else None
        self.proftpd_modules = os.path.join(self.proftpd_root, "usr/lib/proftpd") if self.proftpd_root else None
        self.tls = "1.3"
        self.work = None
        self.created_user = False
        self.servers = {}  # name -> Server (strict instances)
        self.clear = {}    # name -> Server (PROT C instances)
        self.floors = {}   # name -> FloorSession (the scale rows' floor)
        self.failed = {}   # kind -> reason
        self.notes = []
        self.failures = {}  # (what, kind) -> [count, first error]
        self.results = {}  # (metric, kind) -> [values]

    # ------------------------------------------------------------------ setup
    def setup(self):
        self.work = tempfile.mkdtemp(prefix="ftpbench-", dir=self.args.tmpdir)
        os.chmod(self.work, 0o755)
        say("work directory %s" % self.work)
        self.make_cert()
        self.make_user()
        self.make_data()

    def make_cert(self):
        self.key = os.path.join(self.work, "key.pem")
        self.cert = os.path.join(self.work, "cert.pem")
        tmpl = os.path.join(self.work, "cert.cfg")
        old = os.umask(0o077)
        try:
            run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--curve=secp256r1", "--no-text",
                 "--outfile", self.key], timeout=30)
        finally:
            os.umask(old)
        with open(tmpl, "w") as f:
            f.write('cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\n'
                    'expiration_days = 30\ntls_www_server\nsigning_key\n')
        run(["certtool", "--generate-self-signed", "--no-text", "--load-privkey", self.key,
             "--template", tmpl, "--outfile", self.cert], timeout=30)
        os.chmod(self.cert, 0o644)

    def make_user(self):
        self.data = os.path.join(self.work, "data")
        os.mkdir(self.data, 0o755)
        for name, comment in (("ftpsd", "ftpsd unprivileged protocol child"),):
            try:
                pwd.getpwnam(name)
            except KeyError:
                run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                     "--shell", "/usr/sbin/nologin", "--comment", comment, name], timeout=30)
        try:
            pwd.getpwnam(BENCH_USER)
            run(["usermod", "--home", self.data, "--shell", "/bin/sh", BENCH_USER], timeout=30)
        except KeyError:
            run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", self.data,
                 "--shell", "/bin/sh", "--comment", "ftpsd benchmark (tests/bench)", BENCH_USER], timeout=30)
        self.created_user = True
        self.password = "B" + os.urandom(12).hex()
        cmd = ["chpasswd"] + (["-c", self.args.crypt] if self.args.crypt else [])
        run(cmd, timeout=30, input="%s:%s\n" % (BENCH_USER, self.password))
        pw = pwd.getpwnam(BENCH_USER)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.user_hash = None
        with open("/etc/shadow") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if fields[0] == BENCH_USER:
                    self.user_hash = fields[1]
        if not self.user_hash or self.user_hash[0] in "!*":
            raise RuntimeError("no usable hash for %s in /etc/shadow" % BENCH_USER)
        m = re.match(r"^\$([^$]+)\$(?:([^$]*)\$)?", self.user_hash)
        scheme = {"y": "yescrypt", "6": "sha512crypt", "5": "sha256crypt", "2b": "bcrypt",
                  "gy": "gost-yescrypt"}.get(m.group(1) if m else "", "?")
        self.hash_desc = "%s (%s)" % (scheme, self.user_hash[:self.user_hash.rfind("$") + 1] + "...")

    def make_data(self):
        d = self.data
        say("writing test data: %d MiB file, %d x 4 KiB files" % (self.big_size // MIB, self.nsmall))
        self.big = os.path.join(d, "big.bin")
        block = os.urandom(16 * MIB)
        with open(self.big, "wb") as f:
            left = self.big_size
            while left > 0:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n
        os.chmod(self.big, 0o644)
        for sub in ("list", "small", "up"):
            os.mkdir(os.path.join(d, sub), 0o755)
        for i in range(12):
            with open(os.path.join(d, "list", "file-%02d.txt" % i), "wb") as f:
                f.write(b"x" * (100 * i + 1))
        blob = os.urandom(4096 * 16)
        ndirs = max(1, self.args.small_dirs)
        for j in range(ndirs if ndirs > 1 else 0):
            os.mkdir(os.path.join(d, "small", "d%02d" % j), 0o755)
        for i in range(self.nsmall):
            sub = "d%02d" % (i % ndirs) if ndirs > 1 else ""
            with open(os.path.join(d, "small", sub, "f%04d.bin" % i), "wb") as f:
                f.write(blob[(i % 16) * 4096:(i % 16 + 1) * 4096])
        os.chown(os.path.join(d, "up"), self.uid, self.gid)
        # every server reads the big file from the page cache
        with open(self.big, "rb") as f:
            while f.read(8 * MIB):
                pass
        self.client_dir = os.path.join(self.work, "client")
        os.mkdir(self.client_dir, 0o700)

    # ------------------------------------------------------------------ servers
    def server_classes(self):
        out = []
        for kind in self.args.servers.split(","):
            kind = kind.strip()
            cls = {"ftpsd": Ftpsd, "vsftpd": Vsftpd, "proftpd": Proftpd}.get(kind)
            if cls is None:
                raise SystemExit("unknown server %r" % kind)
            if kind == "vsftpd" and not os.path.exists(self.vsftpd):
                self.failed[kind] = "vsftpd is not installed"
                continue
            if kind == "proftpd" and not (self.proftpd and os.path.exists(self.proftpd)):
                self.failed[kind] = "no unpacked ProFTPD (--proftpd-root)"
                continue
            if kind == "ftpsd" and not os.access(self.ftpsd, os.X_OK):
                self.failed[kind] = "%s not built" % self.ftpsd
                continue
            out.append((kind, cls))
        return out

    def start_servers(self):
        for kind, cls in self.server_classes():
            for clear, table in ((False, self.servers), (True, self.clear)):
                name = kind + ("-protc" if clear else "")
                srv = cls(self, name, clear)
                try:
                    srv.start()
                except Exception as e:  # noqa: BLE001
                    srv.stop()
                    self.failed.setdefault(kind, "%s did not start: %s" % (name, e))
                    say("%s: %s" % (name, e))
                    continue
                table[kind] = srv
                say("%s on %s:%d (pid %d)" % (name, HOST, srv.port, srv.proc.pid))
        for kind in list(self.servers):
            if kind in self.failed:
                self.drop(kind, self.failed[kind])

    def drop(self, kind, reason):
        self.failed.setdefault(kind, reason)
        for table in (self.servers, self.clear):
            srv = table.pop(kind, None)
            if srv is not None:
                srv.stop()

    def stop_servers(self):
        for table in (self.servers, self.clear, self.floors):
            for srv in table.values():
                srv.stop()

    def build_floor_session(self):
        """Compile tests/bench/floor_session.c as ftpsd is linked (PIE, -z relro -z now,
        -O2) against the libraries ftpsd links; once per run of the benchmark."""
        out = os.path.join(self.work, "floor_session")
        if not os.path.exists(out):
            flags = run(["pkg-config", "--cflags", "--libs", "gnutls"], timeout=30).stdout.split()
            run(["cc", "-O2", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong", "-fPIE", "-pie",
                 "-Wl,-z,relro", "-Wl,-z,now", "-o", out,
                 os.path.join(REPO, "tests", "bench", "floor_session.c")] + flags +
                ["-Wl,--no-as-needed", "-lseccomp", "-lcrypt", "-lpam"], timeout=120)
        return out

    def floor_server(self, name, listener):
        """A started FloorSession ("floor-exec" or "floor-listener"), or None."""
        if name not in self.floors:
            srv = FloorSession(self, name, listener)
            try:
                srv.start()
            except Exception as e:  # noqa: BLE001
                srv.stop()
                self.notes.append("%s did not start: %s" % (name, str(e)[:300]))
                return None
            self.floors[name] = srv
        return self.floors[name]

    # ------------------------------------------------------------------ probes
    def curl_probe(self, srv, tls, clear=False):
        cmd = ["curl", "-sS", "-v", "-k", "--max-time", "20"] + tls_flags(tls)
        cmd += ["--ftp-ssl-control"] if clear else ["--ssl-reqd"]
        cmd += [ftp_url(srv, "list/")]
        r = run(cmd, timeout=30, check=False)
        if r.returncode != 0:
            return None, "curl exit %d: %s" % (r.returncode, r.stderr.strip().splitlines()[-1:] if r.stderr else "")
        m = re.search(r"SSL connection using (\S+) / (\S+)", r.stderr)
        if len(r.stdout.splitlines()) < 10:
            return None, "curl listed %d lines" % len(r.stdout.splitlines())
        prot = re.findall(r"^> (PROT \w)", r.stderr, re.M)
        return (m.group(1), m.group(2), prot), None

    def probe(self):
        """Check every server with every client; pick TLS 1.3 unless a server needs 1.2."""
        choices = ["1.3", "1.2"] if self.args.tls == "auto" else [self.args.tls]
        for tls in choices:
            ok, bad = {}, {}
            for kind, srv in self.servers.items():
                info, err = self.curl_probe(srv, tls)
                if err:
                    bad[kind] = err
                else:
                    ok[kind] = info
            if not bad or tls == choices[-1]:
                break
            say("TLS %s failed with %s; trying the next version" % (tls, ", ".join("%s (%s)" % kv for kv in bad.items())))
        self.tls = tls
        self.negotiated = {}
        for kind, err in bad.items():
            self.drop(kind, "curl with TLS %s failed: %s" % (tls, err))
        for kind, info in ok.items():
            self.negotiated[kind] = "%s %s" % (info[0], info[1])
        if len(set(self.negotiated.values())) > 1:
            self.notes.append("the servers negotiated different TLS parameters with curl: see Setup")
        # the other clients, and the PROT C instances
        for kind in list(self.servers):
            srv = self.servers[kind]
            try:
                one_session(client_context(self.cert, self.tls), srv.port, BENCH_USER, self.password)
            except Exception as e:  # noqa: BLE001
                self.drop(kind, "ftplib session failed: %s: %s" % (type(e).__name__, e))
                continue
            try:
                r = run(["lftp", "-c", "; ".join([
                    "set cmd:fail-exit true", "set net:max-retries 1", "set net:timeout 10",
                    "set ftp:ssl-force true", "set ftp:ssl-protect-data true", "set ssl:verify-certificate no",
                    'set ssl:priority "%s"' % lftp_priority(self.tls),
                    "open -u %s,%s -p %d %s" % (BENCH_USER, self.password, srv.port, HOST), "cls -1 list"])],
                    timeout=30, env=dict(clean_env(), HOME=self.work))
                if len(r.stdout.split()) < 10:
                    raise RuntimeError("listed %r" % r.stdout)
            except Exception as e:  # noqa: BLE001
                self.drop(kind, "lftp failed: %s" % e)
                continue
            csrv = self.clear.get(kind)
            if csrv is not None:
                info, err = self.curl_probe(csrv, self.tls, clear=True)
                if err or info[2] != ["PROT C"]:
                    self.notes.append("%s: PROT C instance unusable (%s)" % (kind, err or info[2]))
                    csrv.stop()
                    del self.clear[kind]
        self.wait_all_idle()

    def wait_all_idle(self):
        for kind in self.servers:
            self.servers[kind].cpu.wait_idle()
            if kind in self.clear:
                self.clear[kind].cpu.wait_idle()

    # ------------------------------------------------------------------ measurements
    def record(self, metric, kind, value):
        self.results.setdefault((metric, kind), []).append(value)

    def measured(self, srv, fn):
        """Run fn() and return (its result, server CPU seconds, wall seconds)."""
        srv.cpu.wait_idle()
        c0 = srv.cpu.usage()
        t0 = time.monotonic()
        res = fn()
        t1 = time.monotonic()
        srv.cpu.wait_idle()
        c1 = srv.cpu.usage()
        return res, c1 - c0, t1 - t0

    def attempt(self, what, kind, fn):
        try:
            return fn()
        except Interrupted:
            raise
        except Exception as e:  # noqa: BLE001
            srv = self.servers.get(kind)
            hint = srv.last_log_line() if srv is not None else ""
            err = str(e)[:300] + ("; last line of the server's log: " + hint if hint else "")
            say("%s on %s failed: %s" % (what, kind, err))
            key = (what, kind)
            if key not in self.failures:
                self.failures[key] = [0, err]
            self.failures[key][0] += 1
            return None

    def bench_transfers(self, run_no):
        gib = self.big_size / GIB
        timeout = max(60, int(self.big_size / MIB / 10))  # at least 10 MiB/s
        for mode, label, limit in (("retr-p", "RETR PROT P", None), ("retr-c", "RETR PROT C", None),
                                   ("stor-p", "STOR PROT P", None),
                                   ("retr-p", "RETR PROT P " + LIMITED, LIMIT_RATE),
                                   ("retr-c", "RETR PROT C " + LIMITED, LIMIT_RATE)):
            kinds = self.order(run_no)
            if mode != "retr-p" and limit is None and self.args.floor:
                kinds.insert(run_no % (len(kinds) + 1), "floor")
            for kind in kinds:
                if kind == "floor":
                    self.bench_floor_transfer(mode, label, run_no, timeout)
                    continue
                srv = (self.clear if mode == "retr-c" else self.servers).get(kind)
                if srv is None:
                    continue

                def go(srv=srv, mode=mode, limit=limit):
                    (nbytes, secs, target), cpu, _wall = self.measured(
                        srv, lambda: curl_transfer(srv, mode, timeout, limit))
                    if target:
                        os.unlink(os.path.join(self.data, target))
                    return nbytes, secs, cpu
                r = self.attempt(label, kind, go)
                if r is None:
                    continue
                nbytes, secs, cpu = r
                self.record(label + " MiB/s", kind, nbytes / MIB / secs)
                self.record(label + " server CPU s/GiB", kind, cpu / gib)
                say("run %d %-7s %-11s %7.1f MiB/s  %.3f CPU s/GiB" % (run_no + 1, kind, label, nbytes / MIB / secs, cpu / gib))

    def bench_floor_transfer(self, mode, label, run_no, timeout):
        """The same transfer done by a minimal program (floor_transfer): the 'floor' column."""
        self.wait_all_idle()
        modes = (mode, "retr-c-cork") if mode == "retr-c" else ("stor-c",)
        for m in modes:
            r = self.attempt("floor " + m, "floor", lambda m=m: floor_transfer(self, m, timeout))
            if r is None:
                continue
            nbytes, secs, cpu = r
            if m == "retr-c-cork":
                self.record(label + " server CPU s/GiB, TCP_CORK", "floor", cpu / (nbytes / GIB))
                self.record(label + " MiB/s, TCP_CORK", "floor", nbytes / MIB / secs)
                continue
            self.record(label + " MiB/s", "floor", nbytes / MIB / secs)
            self.record(label + " server CPU s/GiB", "floor", cpu / (nbytes / GIB))
            say("run %d %-7s %-11s %7.1f MiB/s  %.3f CPU s/GiB" % (run_no + 1, "floor", label, nbytes / MIB / secs,
                                                                 cpu / (nbytes / GIB)))

    def sessions(self, srv, clients, total):
        spec = {"port": srv.port, "user": BENCH_USER, "password": self.password, "cafile": self.cert,
                "tls": self.tls}
        per = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
        procs = []
        try:
            for n in per:
                s = dict(spec, count=n)
                p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(s)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                procs.append(p)
            for p in procs:
                if readline_before(p.stdout, time.monotonic() + 30).strip() != "ready":
                    raise RuntimeError("session worker did not start")
            srv.cpu.wait_idle()
            c0 = srv.cpu.usage()
            t0 = time.monotonic()
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()
            results = []
            deadline = t0 + self.args.session_timeout
            for p in procs:
                line = readline_before(p.stdout, deadline)
                if not line:
                    raise RuntimeError("no result from a session worker within %ss" % self.args.session_timeout)
                p.wait(max(1, deadline - time.monotonic()))
                results.append(json.loads(line) if line.strip() else {"ok": 0, "fail": 0, "errors": ["no result"]})
            t1 = time.monotonic()
            srv.cpu.wait_idle()
            c1 = srv.cpu.usage()
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        ok = sum(r["ok"] for r in results)
        fail = sum(r["fail"] for r in results)
        if fail:
            errs = [e for r in results for e in r["errors"]]
            raise RuntimeError("%d of %d sessions failed: %s" % (fail, ok + fail, "; ".join(errs[:3])))
        return ok, t1 - t0, c1 - c0

    def bench_sessions(self, run_no):
        for clients in (1, 4):
            for kind in self.order(run_no):
                srv = self.servers.get(kind)
                if srv is None:
                    continue
                r = self.attempt("sessions x%d" % clients, kind, lambda: self.sessions(srv, clients, self.nsessions))
                if r is None:
                    continue
                ok, secs, cpu = r
                self.record("sessions/s, %d client%s" % (clients, "s" if clients > 1 else ""), kind, ok / secs)
                self.record("server CPU ms/session, %d client%s" % (clients, "s" if clients > 1 else ""), kind,
                            cpu * 1000 / ok)
                say("run %d %-7s sessions x%d  %6.1f sessions/s  %.1f CPU ms/session" % (run_no + 1, kind, clients, ok / secs, cpu * 1000 / ok))

    def bench_small(self, run_no):
        for kind in self.order(run_no):
            srv = self.servers.get(kind)
            if srv is None:
                continue
            dest = os.path.join(self.client_dir, "mirror-%s-%d" % (kind, run_no))

            def go(srv=srv, dest=dest):
                try:
                    _, cpu, wall = self.measured(srv, lambda: lftp_mirror(srv, dest, self.args.small_timeout))
                finally:
                    shutil.rmtree(dest, ignore_errors=True)
                return cpu, wall
            r = self.attempt("lftp mirror", kind, go)
            if r is None:
                continue
            cpu, wall = r
            label = self.small_label()
            self.record(label + " s", kind, wall)
            self.record("small files/s", kind, self.nsmall / wall)
            self.record("server CPU ms/small file", kind, cpu * 1000 / self.nsmall)
            say("run %d %-7s %d small files  %.2f s  %.1f files/s  %.2f CPU ms/file" % (run_no + 1, kind, self.nsmall, wall, self.nsmall / wall, cpu * 1000 / self.nsmall))

    def small_label(self):
        return "%d x 4 KiB files (lftp mirror%s)" % (
            self.nsmall, ", %d dirs" % self.args.small_dirs if self.args.small_dirs > 1 else "")

    def idle_pss(self, srv, sessions=1):
        """Sum of PSS and of private memory over the processes of `sessions` logged-in
        idle sessions (one by default, as the goal defines it), and their process count."""
        ctx = client_context(self.cert, self.tls)
        ftps = []
        try:
            srv.cpu.wait_idle()
            for _ in range(sessions):
                ftp = ReusingFTP_TLS(context=ctx, timeout=30)
                ftps.append(ftp)
                ftp.connect(HOST, srv.port)
                ftp.auth()
                ftp.login(BENCH_USER, self.password)
                ftp.prot_p()
                ftp.voidcmd("NOOP")
            time.sleep(1.0)
            for ftp in ftps:
                ftp.voidcmd("NOOP")
            time.sleep(0.5)
            pids = srv.cpu.session_pids()
            if not pids:
                raise RuntimeError("no session process found")
            pss = priv = 0
            for p in pids:
                if VERBOSE and sessions == 1:
                    try:
                        with open("/proc/%d/smaps_rollup" % p) as f:
                            debug("%s pid %d %s: %s" % (srv.name, p, open("/proc/%d/comm" % p).read().strip(),
                                  " ".join(l.split()[0] + l.split()[1] for l in f if l.split()[0] in
                                           ("Rss:", "Pss:", "Pss_Anon:", "Pss_File:", "Private_Clean:", "Private_Dirty:"))))
                    except OSError:
                        pass
                m = smaps(p)
                if m is not None:
                    pss += m[0]
                    priv += m[1]
            for ftp in ftps:
                ftp.quit()
        finally:
            for ftp in ftps:
                ftp.close()
        return pss, priv, len(pids)

    def bench_memory(self, run_no):
        for kind in self.order(run_no):
            srv = self.servers.get(kind)
            if srv is None:
                continue
            r = self.attempt("idle session PSS", kind, lambda: self.idle_pss(srv))
            if r is None:
                continue
            pss, priv, n = r
            self.record("PSS of an idle session MiB", kind, pss / MIB)
            self.record("private memory of an idle session MiB", kind, priv / MIB)
            self.record("processes per idle session", kind, n)
            # The same with several sessions at once: what each further session costs a
            # machine that serves many (shared library pages divide among them).
            r = self.attempt("PSS of %d idle sessions" % MANY_IDLE, kind,
                             lambda: self.idle_pss(srv, MANY_IDLE))
            if r is not None:
                self.record(MANY_IDLE_METRIC, kind, r[0] / MIB / MANY_IDLE)
        if self.args.floor:
            self.wait_all_idle()
            r = self.attempt("floor PSS (gnutls-serv)", "floor",
                             lambda: floor_pss(self.cert, self.key, lftp_priority(self.tls)))
            if r is not None:
                self.record("PSS of an idle session MiB", "floor", r / MIB)

    # ------------------------------------------------------------------ scale (--tests scale)
    def scale_login(self, srv, ctx):
        """One logged-in idle session (AUTH TLS, USER/PASS, PBSZ/PROT P, NOOP), kept open."""
        ftp = ReusingFTP_TLS(context=ctx, timeout=120)
        try:
            ftp.connect(HOST, srv.port)
            ftp.auth()
            ftp.login(BENCH_USER, self.password)
            ftp.prot_p()
            ftp.voidcmd("NOOP")
        except BaseException:
            ftp.close()
            raise
        return ftp

    def scale_open(self, srv, n, workers=16):
        """n logged-in idle sessions at once, logged in by `workers` threads.
        Returns (sessions, seconds to establish them all, errors)."""
        import concurrent.futures
        ctx = client_context(self.cert, self.tls)
        ftps, errors = [], []
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as ex:
            futs = [ex.submit(self.scale_login, srv, ctx) for _ in range(n)]
            for fu in concurrent.futures.as_completed(futs):
                try:
                    ftps.append(fu.result())
                except Exception as e:  # noqa: BLE001 (counted, the first reported)
                    errors.append("%s: %s" % (type(e).__name__, e))
        return ftps, time.monotonic() - t0, errors

    def scale_close(self, srv, ftps):
        for ftp in ftps:
            try:
                ftp.sock.sendall(b"QUIT\r\n")
            except (OSError, AttributeError):
                pass
        for ftp in ftps:
            ftp.close()
        srv.cpu.wait_idle(timeout=120)

    @staticmethod
    def scale_noop(ftps):
        """How many of the sessions answer NOOP (sent to all first, then read)."""
        ok = 0
        live = []
        for ftp in ftps:
            try:
                ftp.putcmd("NOOP")
                live.append(ftp)
            except OSError:
                pass
        for ftp in live:
            try:
                if ftp.getresp().startswith("200"):
                    ok += 1
            except (OSError, ftplib.Error, EOFError):
                pass
        return ok

    @staticmethod
    def pss_of(pids):
        total = 0
        for p in pids:
            m = smaps(p)
            if m is not None:
                total += m[0]
        return total

    def scale_marginal(self, srv, n):
        """(PSS of all the server's processes with n idle sessions - with none) / n."""
        srv.cpu.wait_idle(timeout=60)
        base = self.pss_of(srv.cpu.pids())
        ftps, _secs, errors = self.scale_open(srv, n)
        try:
            if errors:
                raise RuntimeError("%d of %d sessions failed: %s" % (len(errors), n, errors[0]))
            time.sleep(0.5)
            if self.scale_noop(ftps) != n:
                raise RuntimeError("not every session answered NOOP")
            full = self.pss_of(srv.cpu.pids())
        finally:
            self.scale_close(srv, ftps)
        return (full - base) / n

    def scale_many(self, srv, n):
        """n idle logged-in sessions at once: (answering NOOP, total PSS of the server, s to establish)."""
        srv.cpu.wait_idle(timeout=60)
        ftps, secs, errors = self.scale_open(srv, n)
        try:
            time.sleep(1.0)
            ok = self.scale_noop(ftps)
            pss = self.pss_of(srv.cpu.pids())
            nproc = len(srv.cpu.pids())
        finally:
            self.scale_close(srv, ftps)
        if errors:
            self.notes.append("%s: %d of %d sessions failed to log in (first: %s)" % (
                srv.name, len(errors), n, errors[0][:200]))
        return ok, pss, secs, nproc

    def scale_retr(self, srv, timeout=300):
        """SCALE_RETR curl downloads of scale.bin under PROT P at once.
        Returns (aggregate MiB/s over the wall time of the whole batch, server CPU s)."""
        c = self
        cmd = ["curl", "-sS", "-k", "--max-time", str(timeout), "--connect-timeout", "30"] + tls_flags(c.tls)
        cmd += ["--ssl-reqd", "-o", "/dev/null", "-w", "%{size_download}", ftp_url(srv, "scale.bin")]

        def batch():
            procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(SCALE_RETR)]
            bad = []
            for pr in procs:
                out, err = pr.communicate(timeout=timeout + 30)
                if pr.returncode != 0 or int(float(out.strip() or 0)) != SCALE_RETR_MIB * MIB:
                    bad.append("curl exit %d, %s bytes: %s" % (pr.returncode, out.strip(), err.strip()[-200:]))
            if bad:
                raise RuntimeError("%d of %d downloads failed: %s" % (len(bad), SCALE_RETR, bad[0]))
        _, cpu, wall = self.measured(srv, batch)
        return SCALE_RETR * SCALE_RETR_MIB / wall, cpu

    def bench_scale(self, run_no):
        path = os.path.join(self.data, "scale.bin")
        if not os.path.exists(path):
            with open(self.big, "rb") as src, open(path, "wb") as f:
                left = SCALE_RETR_MIB * MIB
                block = src.read(16 * MIB) or os.urandom(16 * MIB)
                while left > 0:
                    n = min(left, len(block))
                    f.write(block[:n])
                    left -= n
            os.chmod(path, 0o644)
        for kind in self.order(run_no):
            srv = self.servers.get(kind)
            if srv is None:
                continue
            for n in SCALE_MARGINAL:
                r = self.attempt("marginal PSS, %d sessions" % n, kind, lambda n=n: self.scale_marginal(srv, n))
                if r is not None:
                    self.record("marginal PSS per idle session, %d sessions MiB" % n, kind, r / MIB)
                    say("run %d %-7s marginal PSS per idle session, %d sessions: %.2f MiB" % (
                        run_no + 1, kind, n, r / MIB))
            self.scale_floor(run_no, kind)
            r = self.attempt("%d idle sessions" % SCALE_SESSIONS, kind, lambda: self.scale_many(srv, SCALE_SESSIONS))
            if r is not None:
                ok, pss, secs, nproc = r
                self.record("%d idle sessions: logged in and answering NOOP" % SCALE_SESSIONS, kind, ok)
                self.record("%d idle sessions: total PSS MiB" % SCALE_SESSIONS, kind, pss / MIB)
                self.record("%d idle sessions: s to establish" % SCALE_SESSIONS, kind, secs)
                say("run %d %-7s %d sessions: %d answer NOOP, %d processes, PSS %.0f MiB, %.1f s to establish" % (
                    run_no + 1, kind, SCALE_SESSIONS, ok, nproc, pss / MIB, secs))
            r = self.attempt("%d x RETR PROT P" % SCALE_RETR, kind, lambda: self.scale_retr(srv))
            if r is not None:
                rate, cpu = r
                gib = SCALE_RETR * SCALE_RETR_MIB * MIB / GIB
                self.record("%d x RETR PROT P %d MiB: aggregate MiB/s" % (SCALE_RETR, SCALE_RETR_MIB), kind, rate)
                self.record("%d x RETR PROT P %d MiB: server CPU s/GiB" % (SCALE_RETR, SCALE_RETR_MIB), kind, cpu / gib)
                say("run %d %-7s %d x RETR PROT P: %.0f MiB/s, %.3f CPU s/GiB" % (
                    run_no + 1, kind, SCALE_RETR, rate, cpu / gib))

    def scale_floor(self, run_no, kind):
        """The marginal PSS rows' floor, measured right after ftpsd's (kind): the same
        sessions against floor_session exec'd per connection, and against it as a
        forking listener."""
        if not self.args.floor or kind != "ftpsd":
            return
        for name, listener in (("floor-exec", False), ("floor-listener", True)):
            srv = self.floor_server(name, listener)
            if srv is None:
                continue
            for n in SCALE_MARGINAL:
                r = self.attempt("marginal PSS, %d sessions" % n, name, lambda n=n: self.scale_marginal(srv, n))
                if r is None:
                    continue
                metric = "marginal PSS per idle session, %d sessions%s MiB" % (
                    n, ", forking listener (floor)" if listener else "")
                self.record(metric, "floor", r / MIB)
                say("run %d %-7s marginal PSS per idle session, %d sessions: %.2f MiB" % (
                    run_no + 1, name, n, r / MIB))

    def scale_detail(self):
        """--detail: /proc/PID/smaps of one idle ftpsd session's processes, per mapping."""
        srv = self.servers.get("ftpsd")
        if srv is None:
            return "Detail: ftpsd is not running"
        srv.cpu.wait_idle(timeout=60)
        ftps, _secs, errors = self.scale_open(srv, 1)
        out = []
        try:
            if errors:
                return "Detail: the session failed: " + errors[0]
            time.sleep(0.5)
            self.scale_noop(ftps)
            pids = sorted(srv.cpu.session_pids())
            out.append("Detail: one idle logged-in ftpsd session, /proc/PID/smaps per mapping (KiB)")
            for pid in pids:
                try:
                    comm = open("/proc/%d/comm" % pid).read().strip()
                    ppid = int(proc_stat(pid)[1])
                except (OSError, TypeError):
                    continue
                role = "child" if ppid in pids else "monitor"
                groups = smaps_by_mapping(pid)
                tot = [sum(g[i] for g in groups.values()) for i in range(4)]
                out.append("")
                out.append("%s pid %d (%s): Pss %d, Private_Dirty %d, Private_Clean %d, Shared %d" % (
                    role, pid, comm, tot[0], tot[1], tot[2], tot[3]))
                out.append("  %-40s %8s %8s %8s %8s" % ("mapping", "Pss", "PrivDirty", "PrivClean", "Shared"))
                for name, g in sorted(groups.items(), key=lambda kv: (-kv[1][1], -kv[1][0]))[:20]:
                    out.append("  %-40s %8d %8d %8d %8d" % (name[-40:], g[0], g[1], g[2], g[3]))
        finally:
            self.scale_close(srv, ftps)
        return "\n".join(out)

    def order(self, run_no):
        kinds = [k for k in ("ftpsd", "vsftpd", "proftpd") if k in self.servers]
        k = run_no % len(kinds) if kinds else 0
        return kinds[k:] + kinds[:k]  # rotate, so nobody always goes first

    # ------------------------------------------------------------------ machine limits
    def limits(self):
        out = []
        try:
            p = subprocess.Popen(["gnutls-cli", "--benchmark-ciphers"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, start_new_session=True)
            line = None
            deadline = time.monotonic() + 60
            try:
                while time.monotonic() < deadline:
                    s = readline_before(p.stdout, deadline)
                    if not s:
                        break
                    if "AES-128-GCM" in s:
                        line = " ".join(s.split())
                        break
            finally:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            out.append(("GnuTLS AES-128-GCM, one core (gnutls-cli --benchmark-ciphers)", line or "n/a"))
        except OSError as e:
            out.append(("GnuTLS AES-128-GCM (gnutls-cli --benchmark-ciphers)", "n/a: %s" % e))
        try:
            alg = "aes-256-gcm" if CIPHER == "aes256" else "aes-128-gcm"
            r = run(["openssl", "speed", "-evp", alg, "-bytes", "16384", "-seconds", "2"], timeout=60)
            m = re.search(r"^%s\s+([\d.]+)k" % alg.upper(), r.stdout, re.M)
            if m:
                out.append(("OpenSSL %s, one core, 16 KiB records (openssl speed)" % alg.upper(),
                            "%.2f GB/s" % (float(m.group(1)) * 1000 / 1e9)))
        except (OSError, RuntimeError):
            pass
        out.append(("loopback TCP, one connection (Python sockets, 2 processes, 256 KiB send/recv_into)",
                    "%.2f GB/s" % (loopback_throughput() / 1e9)))
        return out

    # ------------------------------------------------------------------ perf
    def perf_profile(self):
        srv = self.servers.get("ftpsd")
        if srv is None or not shutil.which("perf"):
            self.notes.append("perf profile skipped (no perf or no ftpsd)")
            return None
        data = os.path.join(self.work, "perf.data")
        report = []
        for mode in ("retr-p", "stor-p"):
            timeout = 120
            r = run(["perf", "record", "-a", "-g", "-o", data, "--", "curl", "-sS", "-k", "--ssl-reqd"] +
                    tls_flags(self.tls) + (["-o", "/dev/null", ftp_url(srv, "big.bin")] if mode == "retr-p"
                                           else ["-T", self.big, ftp_url(srv, "up/perf.bin")]),
                    timeout=timeout, check=False)
            if r.returncode != 0:
                self.notes.append("perf record failed: %s" % r.stderr.strip()[-300:])
                return None
            try:
                os.unlink(os.path.join(self.data, "up", "perf.bin"))
            except OSError:
                pass
            lines = []
            # where the time goes, by process and library (GnuTLS has no symbols), then hot symbols
            for sort, limit in (("comm,dso", "1"), ("dso,sym", "1")):
                rep = run(["perf", "report", "-i", data, "--no-children", "--sort", sort, "--stdio", "-g", "none",
                           "--percent-limit", limit] + (["--comm", "ftpsd"] if sort == "dso,sym" else []),
                          timeout=120, check=False)
                lines += [ln for ln in rep.stdout.splitlines() if ln.strip() and not ln.startswith("#")][:15]
                lines.append("")
            report.append("perf record -a during one ftpsd %s (%% of all samples):\n  " % mode + "\n  ".join(lines))
        return "\n".join(report)

    # ------------------------------------------------------------------ output
    METRICS = [
        # metric, unit/direction, goal for ftpsd (text, check)
        ("RETR PROT P MiB/s", "higher is better", None),
        ("RETR PROT P server CPU s/GiB", "lower is better", ("<= 0.8", lambda f, v, p: f <= 0.8)),
        ("RETR PROT C MiB/s", "higher is better", None),
        ("RETR PROT C server CPU s/GiB", "lower is better", ("<= 0.3", lambda f, v, p: f <= 0.3)),
        ("STOR PROT P MiB/s", "higher is better", None),
        ("STOR PROT P server CPU s/GiB", "lower is better", ("<= 1.0", lambda f, v, p: f <= 1.0)),
        ("RETR PROT P %s server CPU s/GiB" % LIMITED, "lower is better", None),
        ("RETR PROT C %s server CPU s/GiB" % LIMITED, "lower is better", None),
        ("sessions/s, 1 client", "higher is better", (">= 2x vsftpd", lambda f, v, p: v is not None and f >= 2 * v)),
        ("server CPU ms/session, 1 client", "lower is better", None),
        ("sessions/s, 4 clients", "higher is better", (">= 2x vsftpd", lambda f, v, p: v is not None and f >= 2 * v)),
        ("server CPU ms/session, 4 clients", "lower is better", None),
        ("SMALL s", "lower is better", None),
        ("small files/s", "higher is better", (">= 3x vsftpd", lambda f, v, p: v is not None and f >= 3 * v)),
        ("server CPU ms/small file", "lower is better", None),
        ("PSS of an idle session MiB", "lower is better", ("<= 3 MiB", lambda f, v, p: f <= 3.0)),
        ("private memory of an idle session MiB", "lower is better", None),
        (MANY_IDLE_METRIC, "lower is better", None),
        ("processes per idle session", "", None),
    ] + [(m, "", None) for m in SCALE_METRICS]

    def table(self):
        kinds = ("ftpsd", "vsftpd", "proftpd", "floor")
        header = ["metric", "ftpsd", "vsftpd", "proftpd", "ftpsd/vsftpd", "ftpsd/proftpd", "floor", "ftpsd goal"]
        rows = []
        for metric, _direction, goal in self.METRICS:
            if metric == "SMALL s":
                metric = self.small_label() + " s"
            med = {}
            for k in kinds:
                vals = self.results.get((metric, k))
                med[k] = statistics.median(vals) if vals else None
            f, v, p, fl = med["ftpsd"], med["vsftpd"], med["proftpd"], med["floor"]
            if f is None and v is None and p is None and fl is None and (
                    self.args.tests != ALL_TESTS or metric in SCALE_METRICS):
                continue  # a measurement that was not asked for

            def ratio(a, b):
                return None if a is None or b is None or b == 0 else a / b
            g = ""
            if goal is not None:
                met = f is not None and goal[1](f, v, p)
                g = goal[0] + (("  " + ("met" if met else "MISSED")) if f is not None else "")
                if f is not None and fl is not None and not goal[1](fl, v, p):
                    g += " (the floor does not meet it)" if met else " (so does the floor)"
            rows.append([metric, f, v, p, ratio(f, v), ratio(f, p), fl, g])
        return header, rows

    def print_table(self, header, rows, limits):
        def fmt(x):
            if x is None:
                return "n/a"
            if isinstance(x, str):
                return x
            if x == 0:
                return "0"
            if abs(x) >= 100:
                return "%.0f" % x
            if abs(x) >= 10:
                return "%.1f" % x
            if abs(x) >= 1:
                return "%.2f" % x
            return "%.3f" % x
        cells = [header] + [[fmt(c) for c in r] for r in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        lines = []
        for j, r in enumerate(cells):
            lines.append("  ".join(c.ljust(widths[i]) if i == 0 or i == len(r) - 1 else c.rjust(widths[i])
                                   for i, c in enumerate(r)).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        print()
        print("ftpsd benchmark: median of %d run%s, %s; big file %d MiB" % (
            self.runs, "s" if self.runs > 1 else "", "QUICK (not comparable)" if self.quick else "full run",
            self.big_size // MIB))
        print("\n".join(lines))
        print()
        print("Setup: loopback %s, TLS %s (negotiated: %s); ECDSA P-256 certificate (certtool);" % (
            HOST, self.tls, ", ".join("%s %s" % kv for kv in sorted(self.negotiated.items())) or "n/a"))
        print("  password hash %s, the same /etc/shadow entry for all three;" % self.hash_desc)
        print("  ftpsd %s under systemd-socket-activate --accept, data-tls-reuse = required, upload-fsync = off" % self.ftpsd)
        print("  (the peers do not fsync uploads either); vsftpd %s standalone (require_ssl_reuse=YES," % self.vsftpd_version())
        print("  seccomp_sandbox=NO, chroot); ProFTPD %s -n with mod_tls (reuse required, TLSRequired on)." % self.proftpd_version())
        print("  PROT C rows use a second instance of each server that allows clear data.")
        print("  Cipher suite asked for by curl and lftp: %s." % (CIPHERS[CIPHER][0] or "the clients' defaults"))
        print("  Clients: curl (transfers), Python ftplib resuming FTP_TLS (sessions: AUTH TLS, login,")
        print("  PBSZ/PROT P, EPSV, LIST of 12 files, QUIT; %d sessions a run), lftp mirror (small files)." % self.nsessions)
        print("  MiB/s counts the transfer only (curl time_total - time_pretransfer); CPU is the whole session.")
        print("  '%s' rows: the same downloads with curl --limit-rate %s (the reader's pace, as on a" % (LIMITED, LIMIT_RATE))
        print("  2 Gbit/s link); on loopback an unhindered sender pays pacing timers and wakeups per byte.")
        print("  Server CPU: %s." % self.cpu_desc)
        print("  PSS: sum over the idle session's processes (vsftpd: 3, ftpsd: monitor+child, ProFTPD: 1);")
        print("  shared library pages are split among every process on the machine that maps them (a")
        print("  forking daemon's listener shares its pages with its sessions), so PSS moves with what")
        print("  else runs; 'private memory' (Private_Clean+Private_Dirty) is what each session adds.")
        if "scale" in self.args.tests.split(","):
            print("  Scale rows: sessions held by Python ftplib (AUTH TLS, login, PBSZ/PROT P, NOOP) from")
            print("  16 threads of one client process; PSS summed over every process of the server's cgroup")
            print("  (launcher/listener included); limits raised: ftpsd max-sessions(-per-address), vsftpd")
            print("  max_clients/max_per_ip, ProFTPD MaxInstances = %d. %d x RETR: curl processes at once," % (
                SCALE_SESSIONS + 100, SCALE_RETR))
            print("  MiB/s over the whole batch's wall time (logins included); the clients share the machine's cores.")
        if self.args.floor:
            print("  floor: the same work done in the same run by a minimal program, what this machine")
            print("  needs at least: for RETR PROT C and STOR, a bare FTP responder that curl talks to")
            print("  (TLS on control, clear data; RETR with one blocking sendfile() loop, STOR with recv()")
            print("  into 256 KiB and pwrite(), so without the decryption of PROT P); for PSS, gnutls-serv")
            print("  --echo after one TLS handshake with the same certificate (one freshly started process).")
            if "scale" in self.args.tests.split(","):
                print("  Marginal PSS floor: tests/bench/floor_session.c (cc -O2 -pie -z relro -z now, linked with")
                print("  GnuTLS, libseccomp, libcrypt, PAM as ftpsd is), exec'd per connection by systemd-socket-")
                print("  activate --accept: forks a child, one GnuTLS handshake (key kept by the parent), fixed")
                print("  replies to USER/PASS/PBSZ/PROT/NOOP, malloc_trim, idle. 'forking listener (floor)': the")
                print("  same program as one long-lived listener forking (no exec) a session per connection.")
            cork = self.results.get(("RETR PROT C server CPU s/GiB, TCP_CORK", "floor"))
            corkrate = self.results.get(("RETR PROT C MiB/s, TCP_CORK", "floor"))
            if cork and corkrate:
                print("  The RETR PROT C floor with TCP_CORK on the socket (as ProFTPD sends): %.3f CPU s/GiB, %.0f MiB/s."
                      % (statistics.median(cork), statistics.median(corkrate)))
        for name, value in limits:
            print("Limit: %s: %s" % (name, value))
        for kind, reason in sorted(self.failed.items()):
            print("Not measured: %s: %s" % (kind, reason))
        for n in self.notes:
            print("Note: " + n)
        for (what, kind), (count, err) in self.failures.items():
            print("Failed: %s on %s, %d of %d run%s: %s" % (what, kind, count, self.runs,
                                                           "s" if self.runs > 1 else "", err))

    def vsftpd_version(self):
        try:
            # vsftpd -v writes its version to standard input
            r = subprocess.run(["sh", "-c", '"$0" -v 0>&1', self.vsftpd], capture_output=True, text=True, timeout=5)
            m = re.search(r"version (\S+)", r.stdout + r.stderr)
            return m.group(1) if m else "?"
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    def proftpd_version(self):
        if not self.proftpd:
            return "?"
        try:
            r = subprocess.run([self.proftpd, "-v"], capture_output=True, text=True, timeout=5)
            m = re.search(r"ProFTPD Version (\S+)", r.stdout + r.stderr)
            return m.group(1) if m else "?"
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    def write_csv(self, header, rows, path):
        """The table, and beside it (-runs.csv) every run's value."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for r in rows:
                w.writerow(["" if c is None else ("%.6g" % c if isinstance(c, float) else c) for c in r])
        raw = os.path.splitext(path)[0] + "-runs.csv"
        with open(raw, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["metric", "server", "run values"])
            for (metric, kind), vals in sorted(self.results.items()):
                w.writerow([metric, kind] + ["%.6g" % v for v in vals])
        return raw

    # ------------------------------------------------------------------ main
    def main(self):
        if "scale" in self.args.tests.split(","):
            # the client holds SCALE_SESSIONS sockets (and a launcher may hold one a session)
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            want = 4 * SCALE_SESSIONS + 1024
            if soft != resource.RLIM_INFINITY and soft < want:
                new_hard = hard if hard == resource.RLIM_INFINITY or hard >= want else want
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, new_hard))
                say("RLIMIT_NOFILE raised to %d" % want)
        self.cpu_desc = CpuMeter.detect()
        say("server CPU from " + self.cpu_desc)
        self.setup()
        say("machine limits")
        limits = self.limits()
        for name, value in limits:
            say("  %s: %s" % (name, value))
        self.start_servers()
        if not self.servers:
            raise RuntimeError("no server could be started: %s" % self.failed)
        self.probe()
        say("TLS %s; servers: %s" % (self.tls, ", ".join(self.servers)))
        if self.args.serve:
            self.serve()
            return
        t0 = time.monotonic()
        tests = self.args.tests.split(",")
        for i in range(self.runs):
            if "transfers" in tests:
                self.bench_transfers(i)
            if "sessions" in tests:
                self.bench_sessions(i)
            if "memory" in tests:
                self.bench_memory(i)
            if "small" in tests:
                self.bench_small(i)
            if "scale" in tests:
                self.bench_scale(i)
            say("run %d done after %.0f s" % (i + 1, time.monotonic() - t0))
        detail = self.scale_detail() if self.args.detail else None
        profile = self.perf_profile() if self.args.perf else None
        header, rows = self.table()
        self.print_table(header, rows, limits)
        if profile:
            print()
            print(profile)
        if detail:
            print()
            print(detail)
        raw = self.write_csv(header, rows, self.args.csv)
        print()
        print("CSV: %s (every run: %s)" % (os.path.abspath(self.args.csv), os.path.abspath(raw)))

    def serve(self):
        """--serve: leave the servers running for manual profiling until a signal (with
        --tests scale and the floor, floor_session's two forms too: floor-exec, floor-listener)."""
        if self.args.floor and "scale" in self.args.tests.split(","):
            for name, listener in (("floor-exec", False), ("floor-listener", True)):
                srv = self.floor_server(name, listener)
                if srv is not None:
                    self.servers[name] = srv
        info = {"user": BENCH_USER, "password": self.password, "cafile": self.cert, "work": self.work,
                "tls": self.tls, "ports": {k: s.port for k, s in self.servers.items()},
                "protc_ports": {k: s.port for k, s in self.clear.items()},
                "cgroups": {k: s.cpu.path for k, s in self.servers.items()}}
        print(json.dumps(info), flush=True)
        say("serving until Ctrl-C / SIGTERM")
        while True:
            time.sleep(3600)

    def cleanup(self):
        self.stop_servers()
        if self.created_user:
            subprocess.run(["userdel", BENCH_USER], capture_output=True, timeout=30)
        if self.work and not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        elif self.work:
            say("kept %s" % self.work)


def readline_before(f, deadline):
    """One line from a child's pipe, or "" at EOF or when the deadline passes."""
    import select
    fd = f.fileno()  # unbuffered reads: never let a buffer hide a line from select()
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return ""
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            return ""
        c = os.read(fd, 1)
        if not c:
            break
        line += c
    return line.decode("utf-8", "replace")


def _rusage_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def floor_transfer(bench, mode, timeout):
    """The kernel's share of a transfer, measured with the benchmark's own client: a
    minimal FTP responder (a measuring device, not a server: it answers curl's commands
    and checks nothing) runs in a forked process, explicit TLS on the control connection
    and clear data. RETR (mode "retr-c") sends the file with blocking sendfile() calls;
    "retr-c-cork" also sets TCP_CORK, as ProFTPD does. STOR (mode "stor-c") receives
    into a 256 KiB buffer and writes it with pwrite(): no decryption, so below any PROT P
    upload. On loopback part of one end's TCP work runs in the other end's process, so
    the floor must have the same client as the servers. Returns (bytes, transfer seconds
    as curl saw them, CPU seconds (user+sys) of the forked process during the data loop
    only; Python adds a few microseconds per 256 KiB)."""
    ctl = socket.socket()
    ctl.bind((HOST, 0))
    ctl.listen(1)
    dat = socket.socket()
    dat.bind((HOST, 0))
    dat.listen(1)
    port = ctl.getsockname()[1]
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(rfd)
            res = _floor_responder(bench, mode, ctl, dat, timeout)
            os.write(wfd, json.dumps(res).encode())
            code = 0
        except BaseException as e:  # noqa: BLE001 (reported through the pipe)
            try:
                os.write(wfd, json.dumps({"error": "%s: %s" % (type(e).__name__, e)}).encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(wfd)
    ctl.close()
    dat.close()

    class FloorSrv:
        pass
    srv = FloorSrv()
    srv.ctx, srv.port = bench, port
    try:
        nbytes, secs, target = curl_transfer(srv, "stor-c" if mode == "stor-c" else "retr-c", timeout)
        if target:
            os.unlink(os.path.join(bench.data, target))
    finally:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        with os.fdopen(rfd, "rb") as r:
            out = r.read()
    res = json.loads(out or b'{"error": "no result"}')
    if "error" in res:
        raise RuntimeError("floor %s: %s" % (mode, res["error"]))
    if res["bytes"] != nbytes:
        raise RuntimeError("floor %s: moved %d bytes, curl saw %d" % (mode, res["bytes"], nbytes))
    return nbytes, secs, res["cpu"]


def _floor_responder(bench, mode, ctl, dat, timeout):
    """floor_transfer's forked half: one control connection, one transfer, then QUIT."""
    ctl.settimeout(timeout)
    dat.settimeout(timeout)
    c, _ = ctl.accept()
    c.settimeout(timeout)
    f = c.makefile("rb")

    def reply(text):
        c.sendall((text + "\r\n").encode())
    reply("220 floor")
    cwd = bench.data
    result = None
    while True:
        line = f.readline(1024)
        if not line:
            break
        verb, _, arg = line.decode("utf-8", "replace").strip().partition(" ")
        verb = verb.upper()
        if verb in ("AUTH",):
            reply("234 go")
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(bench.cert, bench.key)
            if bench.tls == "1.3":
                tls.minimum_version = ssl.TLSVersion.TLSv1_3
            c = tls.wrap_socket(c, server_side=True)
            f = c.makefile("rb")
        elif verb == "USER":
            reply("331 password")
        elif verb == "PASS":
            reply("230 in")
        elif verb == "PWD":
            reply('257 "/"')
        elif verb == "CWD":
            cwd = os.path.join(bench.data, os.path.basename(arg))
            reply("250 ok")
        elif verb == "EPSV":
            reply("229 passive (|||%d|)" % dat.getsockname()[1])
        elif verb == "SIZE":
            reply("213 %d" % os.path.getsize(os.path.join(cwd, os.path.basename(arg))))
        elif verb in ("RETR", "STOR"):
            d, _ = dat.accept()
            reply("150 data")
            result = _floor_data(mode, d, os.path.join(cwd, os.path.basename(arg)), timeout)
            d.close()
            reply("226 done")
        elif verb == "QUIT":
            reply("221 bye")
            break
        else:  # PBSZ, PROT, TYPE and whatever else curl says
            reply("200 ok")
    if result is None:
        raise RuntimeError("no transfer")
    return result


def _floor_data(mode, d, path, timeout):
    moved = 0
    if mode.startswith("retr-c"):
        d.settimeout(None)  # blocking: os.sendfile() on the descriptor
        fd = os.open(path, os.O_RDONLY)
        size = os.fstat(fd).st_size
        if mode == "retr-c-cork":
            d.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        c0 = _rusage_cpu()
        while moved < size:
            n = os.sendfile(d.fileno(), fd, moved, size - moved)
            if n == 0:
                break
            moved += n
        if mode == "retr-c-cork":
            d.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        c1 = _rusage_cpu()
        os.close(fd)
    else:
        d.settimeout(timeout)
        chunk = 256 * 1024
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        view = memoryview(bytearray(chunk))
        c0 = _rusage_cpu()
        eof = False
        while not eof:
            have = 0
            while have < chunk:
                n = d.recv_into(view[have:])
                if n == 0:
                    eof = True
                    break
                have += n
            if have:
                os.pwrite(fd, view[:have], moved)
                moved += have
        os.close(fd)
        c1 = _rusage_cpu()
    return {"bytes": moved, "cpu": c1 - c0}


def floor_pss(cert, key, priority, timeout=30):
    """PSS of gnutls-serv --echo (one process) after one TLS handshake with the benchmark's
    certificate, idle: what a freshly started process with GnuTLS maps for one session,
    before any FTP. Its client is Python's ssl (OpenSSL), so no GnuTLS page is shared."""
    probe = socket.socket()
    probe.bind((HOST, 0))
    port = probe.getsockname()[1]
    probe.close()
    p = subprocess.Popen(["gnutls-serv", "--echo", "-p", str(port), "--x509certfile", cert,
                          "--x509keyfile", key, "--priority", priority],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = socket.create_connection((HOST, port), timeout=timeout)
                break
            except OSError:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise RuntimeError("gnutls-serv did not start")
                time.sleep(0.1)
        with ctx.wrap_socket(raw) as c:
            c.sendall(b"hello\n")
            if not c.recv(16):
                raise RuntimeError("gnutls-serv did not echo")
            time.sleep(1.0)
            m = smaps(p.pid)
            if m is None:
                raise RuntimeError("no smaps for gnutls-serv")
            return m[0]
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def loopback_throughput(total=2 * GIB, chunk=256 * 1024):
    srv = socket.socket()
    srv.bind((HOST, 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        try:
            srv.close()
            c = socket.create_connection((HOST, port), timeout=30)
            buf = bytearray(chunk)
            sent = 0
            while sent < total:
                c.sendall(buf)
                sent += chunk
            c.close()
        finally:
            os._exit(0)
    srv.settimeout(30)
    conn, _ = srv.accept()
    conn.settimeout(30)
    buf = bytearray(chunk)
    got = 0
    t0 = time.monotonic()
    try:
        while got < total:
            n = conn.recv_into(buf)
            if n == 0:
                break
            got += n
    finally:
        t1 = time.monotonic()
        conn.close()
        srv.close()
        os.waitpid(pid, 0)
    return got / (t1 - t0)


def main():
    global VERBOSE, CIPHER
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="128 MiB file, 200 small files, 40 sessions, 1 run")
    ap.add_argument("--runs", type=int, help="runs per measurement (default 3, --quick 1)")
    ap.add_argument("--servers", default="ftpsd,vsftpd,proftpd")
    ap.add_argument("--ftpsd", default=os.path.join(REPO, "build-bench", "ftpsd", "ftpsd"))
    ap.add_argument("--proftpd-root", default=os.path.join(REPO, "build-bench", "proftpd-root"),
                    help="directory with proftpd-core and proftpd-mod-crypto unpacked (dpkg -x)")
    ap.add_argument("--csv", default=os.path.join(REPO, "build-bench", "bench-results.csv"))
    ap.add_argument("--tls", choices=("auto", "1.3", "1.2"), default="auto")
    ap.add_argument("--cipher", choices=sorted(CIPHERS), default="aes128",
                    help="cipher suite every client asks for (default aes128: AES-128-GCM; "
                         "Python ftplib sessions keep OpenSSL's default list)")
    ap.add_argument("--crypt", help="chpasswd -c METHOD (e.g. SHA512, YESCRYPT); default: the system's (PAM)")
    ap.add_argument("--size-mib", type=int, help="size of the big file (default 1024, --quick 128)")
    ap.add_argument("--small-files", type=int, help="number of 4 KiB files (default 1000, --quick 200)")
    ap.add_argument("--tests", default=ALL_TESTS,
                    help="which measurements (comma separated; default all)")
    ap.add_argument("--small-dirs", type=int, default=1,
                    help="spread the small files over N subdirectories (default 1: one directory)")
    ap.add_argument("--sessions", type=int, help="sessions per sessions/s run (default 200, --quick 40)")
    ap.add_argument("--session-timeout", type=int, default=300, help="bound on one sessions/s run (s)")
    ap.add_argument("--small-timeout", type=int, default=240, help="bound on one lftp mirror (s)")
    ap.add_argument("--no-floor", dest="floor", action="store_false",
                    help="skip the 'floor' column (the same transfers and PSS by minimal programs)")
    ap.add_argument("--perf", action="store_true", help="also profile ftpsd RETR/STOR with perf record")
    ap.add_argument("--serve", action="store_true",
                    help="set up and start the servers, print how to reach them (JSON), wait for Ctrl-C")
    ap.add_argument("--tmpdir", default=None, help="parent of the temporary work directory")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    ap.add_argument("--detail", action="store_true",
                    help="also print a per-mapping breakdown (/proc/PID/smaps) of one idle ftpsd session")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(json.loads(args.worker))
        return 0
    VERBOSE = args.verbose
    CIPHER = args.cipher
    if os.geteuid() != 0:
        print("bench.py must run as root (servers, users, cgroups)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    bench = Bench(args)
    try:
        bench.main()
    except (KeyboardInterrupt, Interrupted):
        say("interrupted: cleaning up")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
