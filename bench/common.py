"""Shared helpers of the side-by-side benchmarks (run on demand, never by
the tests): start a server as a child so that its CPU time (and that of all
the processes it reaps) is read exactly from RUSAGE_CHILDREN, sample the
memory of its process tree, count delivered files."""
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
YZ_BIN = os.environ.get("YZ_BIN", os.path.join(ROOT, "build", "yizhan"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def tree_pids(root_pid):
    """root_pid and all its descendants."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    out, todo = [], [root_pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_pss_kib(pids):
    """Proportional set size of a set of processes (shared pages counted once)."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class MemSampler(threading.Thread):
    """Peak PSS of a process tree, sampled every interval seconds."""

    def __init__(self, pid_fn, interval=0.2):
        super().__init__(daemon=True)
        self.pid_fn, self.interval, self.peak, self.stop_flag = pid_fn, interval, 0, False

    def run(self):
        while not self.stop_flag:
            pids = self.pid_fn()
            if pids:
                self.peak = max(self.peak, tree_pss_kib(pids))
            time.sleep(self.interval)

    def stop(self):
        self.stop_flag = True
        self.join()
        return self.peak


def count_files(dirs):
    n = 0
    for d in dirs:
        try:
            n += len(os.listdir(d))
        except FileNotFoundError:
            pass
    return n


def wait_files(dirs, want, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_files(dirs) >= want:
            return True
        time.sleep(0.02)
    return False


def table(rows, headers):
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


SETTLE_STAMP = "/var/tmp/yizhan-bench.last-cleanup"
SETTLE_SECONDS = 65


def settle():
    """Wait until SETTLE_SECONDS have passed since the last bench removed its
    work directory. On ext4 without a journal (this kind of VM), creating a
    file skips every inode freed in the last 60-300 s one by one
    (recently_deleted() in the inode allocator), so a run right after
    another one's clean-up pays for those thousands of freed inodes and
    measures the previous run, not the server."""
    try:
        last = os.stat(SETTLE_STAMP).st_mtime
    except OSError:
        return
    wait = last + SETTLE_SECONDS - time.time()
    if wait > 0:
        print("waiting %.0f s for the file system to settle after the last bench's clean-up"
              % wait, flush=True)
        time.sleep(wait)


def cleanup(work):
    """Remove a bench work directory and remember when (see settle())."""
    shutil.rmtree(work, ignore_errors=True)
    try:
        with open(SETTLE_STAMP, "w"):
            pass
        os.utime(SETTLE_STAMP)
    except OSError:
        pass


def fresh_fs_mount(size):
    """A fresh ext4 without a journal (what this kind of VM runs on) in a
    sparse image under /var/tmp, loop-mounted on a new directory; returns
    {"img", "mnt"}. Both servers then start from the same clean file system,
    whatever was deleted on the root file system before."""
    fd, img = tempfile.mkstemp(prefix="yz-bench-fs-", suffix=".img", dir="/var/tmp")
    os.close(fd)
    mnt = tempfile.mkdtemp(prefix="yz-bench-mnt-")
    subprocess.run(["truncate", "-s", size, img], check=True)
    # Inode tables initialised now, not by ext4lazyinit in the background
    # while the servers run.
    subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-E",
                    "lazy_itable_init=0,lazy_journal_init=0", img], check=True)
    subprocess.run(["mount", "-o", "loop", img, mnt], check=True)
    os.chmod(mnt, 0o755)
    # mkfs's writes reach the disk now, not during the measurement.
    os.sync()
    return {"img": img, "mnt": mnt}


def fresh_fs_unmount(fs):
    """Unmount and remove what fresh_fs_mount() made."""
    for _ in range(50):  # the servers' last processes may still be exiting
        if subprocess.run(["umount", fs["mnt"]], stderr=subprocess.DEVNULL).returncode == 0:
            break
        time.sleep(0.2)
    else:
        subprocess.run(["umount", "-l", fs["mnt"]], check=False)
    os.rmdir(fs["mnt"])
    os.unlink(fs["img"])


def become_subreaper():
    """Make the bench the reaper of its servers' orphans (PR_SET_CHILD_SUBREAPER):
    a server process whose parent exits before waiting for it (Postfix's
    master does this to some of its children at stop) would otherwise be
    reaped by init, and its CPU would be missing from RUSAGE_CHILDREN."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("warning: cannot become a subreaper: orphans' CPU is not counted", file=sys.stderr)


def reap_orphans(timeout=10.0):
    """Wait for every remaining descendant (orphans re-parented to us) so
    that their CPU lands in RUSAGE_CHILDREN; returns how many."""
    n = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return n
        if pid == 0:
            time.sleep(0.05)
            continue
        n += 1
    return n
