#!/usr/bin/env python3
"""Container lifecycle latency of OCI runtimes, driven the way the shim does.

For each runtime, per iteration: `create --pid-file` (stdio to /dev/null),
`start`, wait for the init process to exit (this script is a child
subreaper, like the shim), `delete`. Runtimes are interleaved so that load
from other processes hits them alike. Prints medians per phase, the CPU time
of the runtime and container processes, and the best total.

    sudo bench/lifecycle.py [-n 50] RUNTIME [RUNTIME...]
    e.g. bench/lifecycle.py /path/to/berth-runtime /usr/sbin/runc

The bundle is a busybox rootfs (Debian's busybox-static) running `true`
with a Docker-like config: pid/net/ipc/uts/mount namespaces, Docker's
mounts, capabilities, masked and read-only paths, device rules, memory,
pids and cpu limits, and cgroupsPath /berth-bench/bench.
"""

import argparse
import ctypes
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time

CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
        "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def make_bundle(path):
    rootfs = os.path.join(path, "rootfs")
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
    os.symlink("busybox", os.path.join(rootfs, "bin/true"))
    dev = lambda t, ma, mi: {"allow": True, "type": t, "major": ma, "minor": mi, "access": "rwm"}
    config = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
        ],
        "linux": {
            "cgroupsPath": "/berth-bench/bench",
            "resources": {
                "devices": [{"allow": False, "access": "rwm"}, dev("c", 1, 3), dev("c", 1, 5),
                            dev("c", 1, 8), dev("c", 1, 9), dev("c", 5, 0), dev("c", 5, 2)],
                "memory": {"limit": 134217728}, "pids": {"limit": 200}, "cpu": {"shares": 512},
            },
            "namespaces": [{"type": t} for t in ("mount", "network", "uts", "pid", "ipc")],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list",
                            "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50, help="iterations (plus one warm-up)")
    ap.add_argument("runtimes", nargs="+")
    args = ap.parse_args()

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: inits are re-parented to us
    work = tempfile.mkdtemp(prefix="berth-bench-")
    bundle = os.path.join(work, "bundle")
    os.makedirs(bundle)
    make_bundle(bundle)
    # The container inherits the caller's stdio: never a pipe we would wait on.
    errf = tempfile.TemporaryFile()

    def call(rt, root, *a):
        errf.seek(0)
        errf.truncate()
        r = subprocess.run([rt, "--root", root, *a], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=errf)
        if r.returncode != 0:
            errf.seek(0)
            raise SystemExit(f"{rt} {a[0]} failed: {errf.read().decode()}")

    phases = ("create", "start", "wait", "delete", "total", "cpu")
    res = {rt: {k: [] for k in phases} for rt in args.runtimes}
    try:
        for i in range(args.n + 1):
            for n, rt in enumerate(args.runtimes):
                root = os.path.join(work, f"root{n}")
                pid_file = os.path.join(work, f"pid{n}")
                ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                call(rt, root, "create", "--bundle", bundle, "--pid-file", pid_file, "bench")
                t1 = time.perf_counter()
                with open(pid_file) as f:
                    pid = int(f.read())
                call(rt, root, "start", "bench")
                t2 = time.perf_counter()
                os.waitpid(pid, 0)
                t3 = time.perf_counter()
                call(rt, root, "delete", "bench")
                t4 = time.perf_counter()
                ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                if i == 0:
                    continue
                cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
                for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, cpu)):
                    res[rt][k].append(v * 1000)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for rt in args.runtimes:
        r = res[rt]
        cols = " ".join(f"{k}={statistics.median(r[k]):6.2f}" for k in phases)
        print(f"{os.path.basename(rt):20s} {cols}  best total={min(r['total']):.2f}"
              f"  (ms, median of {args.n})")


if __name__ == "__main__":
    main()
