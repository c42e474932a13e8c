#!/usr/bin/python3
"""download-rate and upload-rate, measured: how close transfers come to the
rate, how one user's concurrent sessions share it, and what pacing costs in
CPU per GiB. Prints a table; asserts nothing (numbers, not a test).

    sudo /usr/bin/python3 tests/bench/rate.py [--ftpsd build/ftpsd/ftpsd]
        [--size-mib 20] [--rate 2M] [--cpu-mib 512]

Runs as root on 127.0.0.1 in a temporary directory (removed at the end),
with curl as the client, ftpsd under systemd-socket-activate --accept.
"""

import argparse
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
USER = "ratebench"
PASSWORD = "Rate-bench-1"
MIB = 1 << 20


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600, **kw)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def parse_size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1].upper(), 1)
    return int(s[:-1] if mult > 1 else s) * mult


class Server:
    def __init__(self, args, work, extra, pasv="40000-40999"):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(dir=work)
        os.chmod(self.dir, 0o755)
        conf = os.path.join(self.dir, "ftpsd.conf")
        empty = os.path.join(self.dir, "empty")
        os.mkdir(empty, 0o755)
        with open(conf, "w") as f:
            f.write("tls-certificate = %s\ntls-key = %s\nusers-file = %s\nempty-dir = %s\n"
                    "runtime-dir = %s\ndata-tls = optional\nupload-fsync = off\n"
                    "login-failure-delay = 0s\npasv-ports = %s\n%s"
                    % (args.cert, args.key, args.users, empty, os.path.join(self.dir, "run"),
                       pasv, extra))
        run([args.ftpsd, "--check-config", "--config", conf])
        self.proc = subprocess.Popen(
            ["systemd-socket-activate", "--accept", "-l", "%s:%d" % (HOST, self.port), "--",
             args.ftpsd, "--config", conf],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(100):
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)

    def children_cpu(self):
        """CPU seconds of the sessions the launcher has reaped (cutime + cstime)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        os.killpg(self.proc.pid, 15)
        self.proc.wait(10)


def curl(args, srv, mode, name, out):
    """One transfer; (bytes, seconds from the first byte's request to the end)."""
    url = "ftp://%s:%s@%s:%d/%s" % (USER, PASSWORD, HOST, srv.port, name)
    cmd = ["curl", "-sS", "--cacert", args.cert, "--ssl-reqd", "-w",
           "%{size_download} %{size_upload} %{time_total} %{time_pretransfer}"]
    cmd += ["-T", args.src, url] if mode == "up" else ["-o", out, url]
    r = run(cmd)
    down, up, total, pre = r.stdout.split()
    return int(float(up if mode == "up" else down)), float(total) - float(pre)


def row(what, nbytes, secs, rate):
    got = nbytes / secs
    err = "%+.1f%%" % ((got / rate - 1) * 100) if rate else ""
    print("%-44s %8.1f %10.0f %10s %8s" % (what, secs, got / 1024, "%d" % (rate / 1024) if rate else "-", err))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("--ftpsd", default=os.path.join(here, "..", "..", "build", "ftpsd", "ftpsd"))
    p.add_argument("--size-mib", type=int, default=20)
    p.add_argument("--rate", default="2M")
    p.add_argument("--cpu-mib", type=int, default=512)
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: sessions change to the test user")
    args.ftpsd = os.path.abspath(args.ftpsd)
    rate = parse_size(args.rate)
    for name in ("ftpsd", USER):
        try:
            pwd.getpwnam(name)
        except KeyError:
            run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                 "/nonexistent", "--shell", "/usr/sbin/nologin", name])
    pw = pwd.getpwnam(USER)
    work = tempfile.mkdtemp(prefix="ratebench-")
    os.chmod(work, 0o755)
    servers = []
    try:
        args.key, args.cert = os.path.join(work, "key.pem"), os.path.join(work, "cert.pem")
        run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--no-text", "--outfile", args.key])
        tmpl = os.path.join(work, "cert.cfg")
        with open(tmpl, "w") as f:
            f.write('cn = "localhost"\nip_address = "127.0.0.1"\nexpiration_days = 2\n'
                    'tls_www_server\nsigning_key\nca\n')
        run(["certtool", "--generate-self-signed", "--no-text", "--load-privkey", args.key,
             "--template", tmpl, "--outfile", args.cert])
        os.chmod(args.cert, 0o644)
        root = os.path.join(work, "root")
        os.mkdir(root, 0o755)
        args.src = os.path.join(work, "src.bin")
        with open(args.src, "wb") as f:
            f.write(os.urandom(args.size_mib * MIB))
        shutil.copy(args.src, os.path.join(root, "file.bin"))
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.truncate(args.cpu_mib * MIB)
        for dirpath, dirs, files in os.walk(root):
            for n in dirs + files + [""]:
                os.chown(os.path.join(dirpath, n), pw.pw_uid, pw.pw_gid)
        h = run([args.ftpsd, "--hash-password"], input=PASSWORD + "\n").stdout.strip()
        args.users = os.path.join(work, "users")
        with open(args.users, "w") as f:
            f.write("%s:%s:%d:%d:%s\n" % (USER, h, pw.pw_uid, pw.pw_gid, root))
        os.chmod(args.users, 0o600)
        out = os.path.join(work, "out.bin")

        print("ftpsd %s; curl, PROT P; %d MiB at %s/s" % (args.ftpsd, args.size_mib, args.rate))
        print()
        print("%-44s %8s %10s %10s %8s" % ("transfer", "seconds", "KiB/s", "rate KiB/s", "error"))
        limited = Server(args, work, "download-rate = %s\nupload-rate = %s\n" % (args.rate, args.rate))
        servers.append(limited)
        n, s = curl(args, limited, "down", "file.bin", out)
        row("RETR, download-rate", n, s, rate)
        n, s = curl(args, limited, "up", "up.bin", out)
        row("STOR, upload-rate", n, s, rate)
        # Two sessions of the user at once: they share the rate.
        results = []

        def one(i):
            results.append(curl(args, limited, "down", "file.bin", out + str(i)))
        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        for i, (n, s) in enumerate(results):
            row("RETR, 2 sessions of one user: session %d" % (i + 1), n, s, rate / 2)
        row("RETR, 2 sessions of one user: together", sum(n for n, _ in results), wall, rate)

        print()
        print("CPU of the sessions per GiB (RETR of %d MiB, PROT P, 3 runs each)" % args.cpu_mib)
        print("%-44s %12s" % ("configuration", "CPU s/GiB"))
        for what, extra in (("unset (no pacing)", ""),
                            ("download-rate = 64G (paced, never waits)", "download-rate = 64G\n")):
            srv = Server(args, work, extra)
            servers.append(srv)
            before = srv.children_cpu()
            for _ in range(3):
                curl(args, srv, "down", "big.bin", "/dev/null")
            time.sleep(0.5)
            cpu = srv.children_cpu() - before
            print("%-44s %12.3f" % (what, cpu / (3 * args.cpu_mib / 1024)))
    finally:
        for srv in servers:
            try:
                srv.stop()
            except Exception:
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
