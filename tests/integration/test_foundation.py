"""Foundation: the master, the roles as separate processes, the CLI, the
configuration, reload/restart/stop, privilege separation when root."""
import json
import os
import signal
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import BIN, Yizhan, wait_for


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return {k: v.strip() for k, v in fields.items()}


def test_status_lists_every_role_as_separate_processes(yz):
    st = yz.status()
    assert st["mode"] == "dev"
    roles = {r["role"]: r for r in st["roles"]}
    assert "directory" in roles
    pids = [r["pid"] for r in st["roles"]]
    assert len(set(pids)) == len(pids), "each role is its own process"
    for r in st["roles"]:
        assert r["state"] == "running"
        assert r["pid"] != st["pid"]
        assert int(proc_status(r["pid"])["PPid"]) == st["pid"], "roles are children of the master"
        with open("/proc/%d/cmdline" % r["pid"], "rb") as f:
            argv = f.read().split(b"\0")
        assert argv[1:3] == [b"role", r["role"].encode()]
    text = yz.cli("status").stdout
    assert "directory" in text and "ROLE" in text


def test_killed_role_is_restarted(yz):
    old = yz.role_pids("directory")[0]
    os.kill(old, signal.SIGKILL)

    def restarted():
        # one status snapshot per poll: the role may be between pids
        st = yz.status()
        if st is None:
            return False
        return any(r["role"] == "directory" and r["state"] == "running"
                   and r["pid"] and r["pid"] != old for r in st["roles"])
    wait_for(restarted, what="directory restarted")
    st = yz.status()
    d = [r for r in st["roles"] if r["role"] == "directory"][0]
    assert d["restarts"] >= 1
    assert "died" in yz.log()


def test_stop_ends_master_and_roles(yz):
    pids = [r["pid"] for r in yz.status()["roles"]]
    master = yz.proc.pid
    r = yz.cli("stop")
    assert r.returncode == 0
    yz.proc.wait(timeout=20)
    for pid in pids + [master]:
        assert not os.path.exists("/proc/%d/status" % pid) or \
            proc_status(pid).get("State", "").startswith("Z")
    assert yz.cli("status", check=False).returncode != 0
    assert not os.path.exists(os.path.join(yz.state, "run", "master.pid"))


def test_second_master_refuses(yz):
    r = subprocess.run(yz.base_args() + ["run"], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "already running" in r.stderr


def test_bad_config_refuses_to_start_with_file_line(yz_unstarted):
    yz = yz_unstarted
    with open(yz.conf_path, "a") as f:
        f.write("smtpd_recipient_limit = lots\n")
    nlines = sum(1 for _ in open(yz.conf_path))
    r = subprocess.run(yz.base_args() + ["run"], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "yizhan.conf:%d" % nlines in r.stderr
    assert "smtpd_recipient_limit" in r.stderr
    r = yz.cli("config", "check", check=False)
    assert r.returncode != 0 and "yizhan.conf:%d" % nlines in r.stderr


def test_unknown_parameter_is_an_error(yz_unstarted):
    yz = yz_unstarted
    with open(yz.conf_path, "a") as f:
        f.write("smtpd_recipent_limit = 10\n")
    r = yz.cli("config", "check", check=False)
    assert r.returncode != 0
    assert "smtpd_recipent_limit" in r.stderr and "yizhan.conf:" in r.stderr


def test_reload_with_bad_config_keeps_running(yz):
    before = yz.role_pids("directory")
    with open(yz.conf_path, "a") as f:
        f.write("message_size_limit = -5\n")
    r = yz.cli("reload", check=False)
    assert r.returncode != 0 and "yizhan.conf:" in r.stderr
    assert yz.role_pids("directory") == before
    assert yz.proc.poll() is None


def test_reload_replaces_roles(yz):
    before = set(yz.role_pids("directory"))
    r = yz.cli("reload")
    assert r.returncode == 0
    wait_for(lambda: yz.roles_running(None) and set(yz.role_pids("directory")) - before,
             what="new directory generation")


def test_sighup_reloads(yz):
    before = set(yz.role_pids("directory"))
    os.kill(yz.proc.pid, signal.SIGHUP)
    wait_for(lambda: set(yz.role_pids("directory")) - before, what="reload on SIGHUP")


def smtp_in_roles(yz):
    return "smtpd" in {r["role"] for r in yz.status()["roles"]}


def test_reload_keeps_connected_client_connected(yz):
    if not smtp_in_roles(yz):
        pytest.skip("no smtpd role in this build")
    s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=20)
    s.ehlo("client.example")
    old = set(yz.role_pids("smtpd"))
    yz.cli("reload")
    wait_for(lambda: set(yz.role_pids("smtpd")) - old and yz.roles_running(None),
             what="new smtpd")
    # The old session goes on, and a new connection is served too.
    assert s.noop()[0] == 250
    assert s.mail("alice@example.test")[0] == 250
    s.rset()
    assert s.quit()[0] == 221
    s2 = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=20)
    assert s2.ehlo("c2")[0] == 250
    s2.quit()


def test_config_prints_like_postconf(yz_unstarted):
    yz = yz_unstarted
    allp = yz.cli("config").stdout.splitlines()
    assert len(allp) > 40
    names = [l.split(" = ")[0] for l in allp]
    assert names == sorted(names)
    assert any(l.startswith("smtpd_recipient_limit = ") for l in allp)
    changed = yz.cli("config", "-n").stdout
    assert "myhostname = mx.example.test" in changed
    assert "smtpd_recipient_limit" not in changed
    one = yz.cli("config", "message_size_limit").stdout.strip()
    assert one.startswith("message_size_limit = ")
    r = yz.cli("config", "no_such_parameter", check=False)
    assert r.returncode != 0
    doc = yz.cli("config", "--doc").stdout
    assert "smtpd_recipient_limit" in doc and doc.startswith("#")


def test_help_for_each_command(yz_unstarted):
    for cmd in ("init", "run", "start", "status", "reload", "stop", "domain", "user",
                "alias", "config"):
        r = yz_unstarted.cli(cmd, "--help")
        assert "usage: yizhan" in r.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_production_mode_drops_privileges():
    yz = Yizhan(dev=False)
    try:
        yz.init()
        yz.start()
        st = yz.status()
        assert st["mode"] == "production"
        assert proc_status(st["pid"])["Uid"].split()[0] == "0"
        for r in st["roles"]:
            uids = proc_status(r["pid"])["Uid"].split()
            assert uids[0] != "0" and len(set(uids)) == 1, (r["role"], uids)
            gids = proc_status(r["pid"])["Gid"].split()
            assert gids[0] != "0", (r["role"], gids)
            assert proc_status(r["pid"])["NoNewPrivs"] == "1"
        # The master holds listening sockets (to hand them to roles across
        # restarts) but never a connection: it reads no network input.
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % st["pid"]):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (st["pid"], fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[9] in inodes:
                        assert cols[3] == "0A", "master holds a TCP socket in state %s" % cols[3]
        # Mail flows, and each file belongs to the role that wrote it.
        s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=20)
        s.sendmail("someone@example.org", ["alice@example.test"], b"Subject: prod\r\n\r\nhi\r\n")
        s.quit()
        new = os.path.join(yz.maildir("alice@example.test"), "new")
        wait_for(lambda: os.path.isdir(new) and os.listdir(new), what="delivery in production mode")
        f = os.path.join(new, os.listdir(new)[0])
        import pwd
        assert os.stat(f).st_uid == pwd.getpwnam("vmail").pw_uid
        yizhan_uid = pwd.getpwnam("yizhan").pw_uid
        for sub in ("incoming", "active", "log"):
            assert os.stat(os.path.join(yz.state, "queue", sub)).st_uid == yizhan_uid
        assert all(os.stat(os.path.join(yz.state, "queue", "log", n)).st_uid == yizhan_uid
                   for n in os.listdir(os.path.join(yz.state, "queue", "log")))
        # The database belongs to the role that serves it.
        db = os.path.join(yz.state, "data", "directory.db")
        assert os.stat(db).st_uid != 0
        yz.cli("user", "add", "carol@example.test", "--password-stdin", input="pw-carol-1\n")
        assert os.stat(db).st_uid != 0
        # A queue made before the segment log (no log/): the roles make it,
        # owned by yizhan although smtpd opens the queue before it drops root.
        yz.stop()
        import shutil
        shutil.rmtree(os.path.join(yz.state, "queue", "log"))
        yz.start()
        s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=20)
        s.sendmail("someone@example.org", ["alice@example.test"], b"Subject: after\r\n\r\nhi\r\n")
        s.quit()
        wait_for(lambda: len(os.listdir(new)) == 2, what="delivery with a new log/")
        assert os.stat(os.path.join(yz.state, "queue", "log")).st_uid == yizhan_uid
    finally:
        yz.cleanup()


def test_start_daemonizes_with_pid_file(yz_unstarted):
    yz = yz_unstarted
    r = yz.cli("start")
    assert r.returncode == 0
    pidfile = os.path.join(yz.state, "run", "master.pid")
    try:
        wait_for(lambda: yz.roles_running(None), what="daemon roles")
        pid = int(open(pidfile).read())
        st = proc_status(pid)
        assert int(st["PPid"]) == 1 or st["PPid"] != str(os.getpid()), "detached from us"
        assert yz.status()["pid"] == pid
    finally:
        yz.cli("stop", check=False)
    assert not os.path.exists(pidfile)
    r = yz.cli("status", check=False)
    assert r.returncode == 3 and "not running" in r.stderr
