"""Integration fixtures: the real yizhan daemon on loopback, in a temporary
state directory, driven by real clients.

`yz` gives a running dev-mode instance with the domain example.test and the
accounts alice@ and bob@ (passwords in yz.passwords). Ports are picked free
per instance and written into its yizhan.conf, so tests never collide with a
dev instance on the standard dev ports.
"""
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

BIN = os.environ.get("YZ_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "yizhan")
BIN = os.path.abspath(BIN)

PORT_NAMES = ("smtp_port", "submission_port", "submissions_port", "imap_port",
              "imaps_port", "pop3_port", "pop3s_port", "admin_port")


_used_ports = set()


def free_port():
    """A free port below the kernel's ephemeral range, so that no client
    connection of a running test can take it before the daemon binds it."""
    lo, hi = 20000, 32000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            hi = min(hi, int(f.read().split()[0]))
    except (OSError, ValueError):
        pass
    for _ in range(1000):
        port = random.randrange(lo, hi)
        if port in _used_ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port")


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s" % what)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Yizhan:
    """One yizhan instance: state directory, configuration, processes."""

    def __init__(self, dev=True, extra_conf=""):
        self.dev = dev
        self.state = tempfile.mkdtemp(prefix="yz-test-")
        # Production-mode roles run as yizhan/vmail: they must reach the state.
        os.chmod(self.state, 0o755)
        self.ports = {name: free_port() for name in PORT_NAMES}
        self.passwords = {}
        self.proc = None
        self.log_path = os.path.join(self.state, "yizhan.log")
        self.extra_conf = extra_conf
        self.conf_path = os.path.join(self.state, "yizhan.conf")

    # -- command line ------------------------------------------------------
    def base_args(self):
        args = [BIN, "--state-dir", self.state]
        if self.dev:
            args.append("--dev")
        return args

    def cli(self, *args, input=None, check=True, timeout=60):
        r = subprocess.run(self.base_args() + list(args), input=input,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("yizhan %s failed (%d): %s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def write_conf(self, extra=""):
        lines = ["state_directory = %s" % self.state,
                 "myhostname = mx.example.test",
                 "inet_interfaces = 127.0.0.1"]
        lines += ["%s = %d" % (k, v) for k, v in self.ports.items()]
        # Fast argon2 in tests: the hash function is not what is tested here.
        lines += ["auth_argon2_t_cost = 1", "auth_argon2_m_cost = 1024",
                  "master_restart_delay_min = 200ms", "master_restart_delay_max = 2s",
                  "master_shutdown_timeout = 10s"]
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n" + self.extra_conf + "\n" + extra + "\n")

    def init(self):
        self.write_conf()
        r = self.cli("init", "--domain", "example.test", "--user", "alice")
        for line in r.stdout.splitlines():
            if "password:" in line and line.startswith("account "):
                addr = line.split()[1]
                self.passwords[addr] = line.rsplit("password:", 1)[1].strip()
        self.add_user("bob@example.test")
        return r

    def add_user(self, address, password=None, quota=None):
        password = password or ("pw-" + address.split("@")[0] + "-secret")
        args = ["user", "add", address, "--password-stdin"]
        if quota is not None:
            args += ["--quota", str(quota)]
        self.cli(*args, input=password + "\n")
        self.passwords[address] = password
        return password

    # -- daemon --------------------------------------------------------------
    def start(self, wait_roles=None):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.base_args() + ["run"], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        wait_for(lambda: self.proc.poll() is not None or self.roles_running(wait_roles),
                 timeout=20, what="roles running")
        if self.proc.poll() is not None:
            raise AssertionError("yizhan run exited %s:\n%s" % (self.proc.returncode, self.log()))
        return self

    def status(self):
        r = self.cli("status", "--json", check=False)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def roles_running(self, names):
        st = self.status()
        if st is None:
            return False
        running = {r["role"] for r in st["roles"] if r["state"] == "running"}
        if names is None:  # every role the master runs (draining ones aside)
            live = [r for r in st["roles"] if r["state"] != "draining"]
            return bool(live) and all(r["state"] == "running" for r in live)
        return all(n in running for n in names)

    def role_pids(self, name):
        st = self.status() or {"roles": []}
        return [r["pid"] for r in st["roles"] if r["role"] == name and r["pid"]]

    def master_pid(self):
        return self.proc.pid if self.proc else None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.cli("stop", check=False, timeout=60)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        self.proc = None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def maildir(self, address):
        local, domain = address.split("@")
        return os.path.join(self.state, "mail", domain, local)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.state, ignore_errors=True)


@pytest.fixture
def yz_unstarted():
    inst = Yizhan()
    inst.init()
    yield inst
    inst.cleanup()


@pytest.fixture
def yz():
    inst = Yizhan()
    inst.init()
    inst.start()
    yield inst
    if inst.proc is not None and inst.proc.poll() is not None and inst.proc.returncode != 0:
        print(inst.log())
    inst.cleanup()


@pytest.fixture
def yz_with():
    """Start instances with extra configuration lines: yz_with("name = value\n")."""
    made = []

    def make(extra):
        inst = Yizhan(extra_conf=extra)
        inst.init()
        inst.start()
        made.append(inst)
        return inst
    yield make
    for inst in made:
        inst.cleanup()


def delivered(yz, address, qid, timeout=15):
    """The content delivered to address for queue id qid (its Received line)."""
    def find():
        for d in ("new", "cur"):
            for path in glob.glob(os.path.join(yz.maildir(address), d, "*")):
                with open(path, "rb") as f:
                    data = f.read()
                if (" id %s" % qid).encode() in data:
                    return data
        return None
    return wait_for(find, timeout=timeout, what="delivery of %s" % qid)
