#!/usr/bin/python3
"""Where the memory of N idle logged-in sessions goes, per mapping kind.

Against servers started by `tests/bench/bench.py --serve` (give its JSON line
with --info, or a file holding it): for each server, the sum over every
process of its cgroup of /proc/PID/smaps (Pss, Private_Dirty, Shared_Dirty,
Private_Clean, Shared_Clean) per mapping, with N sessions open minus with
none, divided by N: KiB per session. Also the same per process role (the
launcher, and for ftpsd the monitors and the children) and the page tables
(VmPTE, not in PSS).

  tests/bench/memwhere.py --info /tmp/serve.json [--servers ftpsd,vsftpd] [-n 32] [--runs 3]

Medians over --runs. Sessions are held as bench.py's scale rows hold them
(Python ftplib: AUTH TLS, USER/PASS, PBSZ/PROT P, NOOP).
"""

import argparse
import concurrent.futures
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

FIELDS = ("Pss", "Pss_Dirty", "Private_Dirty", "Shared_Dirty", "Private_Clean", "Shared_Clean")


def kind_of(name):
    if name.startswith("/"):
        base = os.path.basename(name)
        # libgnutls.so.30.34.3 -> libgnutls
        return base.split(".so")[0] if ".so" in base else base
    return name or "[anon]"


def smaps_kinds(pid):
    """{kind: [Pss, Private_Dirty, Shared_Dirty, Private_Clean, Shared_Clean]} in KiB."""
    out = {}
    cur = None
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                first = line.split(None, 1)[0]
                if "-" in first and not first.endswith(":"):
                    parts = line.split(None, 5)
                    cur = out.setdefault(kind_of(parts[5].strip() if len(parts) > 5 else ""), [0] * 6)
                    continue
                k = first.rstrip(":")
                if k in FIELDS and cur is not None:
                    cur[FIELDS.index(k)] += int(line.split()[1])
    except OSError:
        return None
    return out


def vm_pte(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmPTE:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def role_of(pid, pids, launcher):
    if pid == launcher:
        return "launcher"
    st = bench.proc_stat(pid)
    if st is None:
        return "?"
    ppid = int(st[1])
    if ppid == launcher:
        return "process"  # ftpsd: monitor; vsftpd: a session's first process
    if ppid in pids:
        return "child"
    return "other"


def snapshot(cgroup, launcher):
    with open(os.path.join(cgroup, "cgroup.procs")) as f:
        pids = [int(x) for x in f.read().split()]
    by_kind, by_role, pte = {}, {}, 0
    for p in pids:
        m = smaps_kinds(p)
        if m is None:
            continue
        role = role_of(p, pids, launcher)
        r = by_role.setdefault(role, [0] * 7)
        for k, v in m.items():
            acc = by_kind.setdefault(k, [0] * 6)
            for i in range(6):
                acc[i] += v[i]
                r[i] += v[i]
        r[6] += 1
        pte += vm_pte(p)
    return by_kind, by_role, pte


def login(info, port, ctx):
    ftp = bench.ReusingFTP_TLS(context=ctx, timeout=120)
    ftp.connect(bench.HOST, port)
    ftp.auth()
    ftp.login(info["user"], info["password"])
    ftp.prot_p()
    ftp.voidcmd("NOOP")
    return ftp


def wait_idle(cgroup, launcher, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(os.path.join(cgroup, "cgroup.procs")) as f:
            if [int(x) for x in f.read().split() if int(x) != launcher] == []:
                return
        time.sleep(0.05)


def launcher_of(cgroup):
    with open(os.path.join(cgroup, "cgroup.procs")) as f:
        pids = [int(x) for x in f.read().split()]
    for p in pids:
        st = bench.proc_stat(p)
        if st is not None and int(st[1]) not in pids:
            return p
    raise RuntimeError("no launcher in " + cgroup)


def measure(info, name, n, settle):
    cgroup = info["cgroups"][name]
    launcher = launcher_of(cgroup)
    wait_idle(cgroup, launcher)
    base = snapshot(cgroup, launcher)
    ctx = bench.client_context(info["cafile"], info["tls"])
    ftps = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
        for fu in [ex.submit(login, info, info["ports"][name], ctx) for _ in range(n)]:
            ftps.append(fu.result())
    time.sleep(settle)
    for ftp in ftps:
        ftp.voidcmd("NOOP")
    full = snapshot(cgroup, launcher)
    for ftp in ftps:
        try:
            ftp.sock.sendall(b"QUIT\r\n")
        except OSError:
            pass
        ftp.close()
    wait_idle(cgroup, launcher)
    kinds = {}
    for k in set(base[0]) | set(full[0]):
        b, f = base[0].get(k, [0] * 6), full[0].get(k, [0] * 6)
        kinds[k] = [(f[i] - b[i]) / n for i in range(6)]
    roles = {}
    for r in set(base[1]) | set(full[1]):
        b, f = base[1].get(r, [0] * 7), full[1].get(r, [0] * 7)
        roles[r] = [(f[i] - b[i]) / n for i in range(6)] + [f[6] - b[6]]
    return kinds, roles, (full[2] - base[2]) / n


def median_tables(results, width):
    keys = set()
    for r in results:
        keys |= set(r)
    return {k: [statistics.median(r.get(k, [0] * width)[i] for r in results) for i in range(width)]
            for k in keys}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--info", required=True, help="bench.py --serve's JSON line, or a file holding it")
    ap.add_argument("--servers", default="ftpsd,vsftpd")
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--settle", type=float, default=0.5, help="seconds between logins and the snapshot")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    text = args.info
    if os.path.exists(text):
        with open(text) as f:
            text = [ln for ln in f if ln.startswith("{")][-1]
    info = json.loads(text)
    for name in args.servers.split(","):
        runs = [measure(info, name, args.n, args.settle) for _ in range(args.runs)]
        kinds = median_tables([r[0] for r in runs], 6)
        roles = median_tables([r[1] for r in runs], 7)
        pte = statistics.median(r[2] for r in runs)
        tot = [sum(v[i] for v in kinds.values()) for i in range(6)]
        print("%s: N=%d, KiB per session (median of %d runs): Pss %.0f (of which dirty %.0f); summed "
              "over processes: Private_Dirty %.0f, Shared_Dirty %.0f, Private_Clean %.0f, Shared_Clean %.0f; "
              "page tables (VmPTE, not in Pss) %.0f" % ((name, args.n, args.runs) + tuple(tot) + (pte,)))
        head = "  %-24s %8s %8s %8s %8s %8s %8s" % ("", "Pss", "PssDirty", "PrivDrt", "ShrDrt", "PrivCln", "ShrCln")
        print(head.replace("  " + " " * 24, "  %-24s" % "role", 1))
        for r, v in sorted(roles.items(), key=lambda kv: -kv[1][0]):
            print("  %-24s %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f  (%d processes)" % ((r,) + tuple(v[:6]) + (v[6],)))
        print(head.replace("  " + " " * 24, "  %-24s" % "mapping", 1))
        for k, v in sorted(kinds.items(), key=lambda kv: -kv[1][0])[:args.top]:
            print("  %-24s %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f" % ((k[-24:],) + tuple(v)))
        print()


if __name__ == "__main__":
    sys.exit(main())
