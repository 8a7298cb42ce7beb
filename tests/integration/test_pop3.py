"""POP3 server integration tests: the real daemon on loopback, driven by
Python's poplib, curl and fetchmail.

Covers every command, CAPA before/after STLS, plaintext-auth refusal, STLS
and implicit TLS (pop3s), SASL PLAIN, wrong passwords ([AUTH]) and the
disconnect after pop3_max_auth_failures, the command line limit just under
and over, IN-USE, DELE semantics across a dropped connection, UIDL
stability across sessions, seen flags for IMAP users, leave-on-server with
fetchmail, one message through SMTP, and the idle timeout.
"""
import base64
import os
import poplib
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import Yizhan, port_open, wait_for

ACCOUNTS = ["carol", "dave", "erin", "frank", "gina", "hank", "ivan", "judy", "kate"]
FAST_AUTH = "auth_failure_delay = 50ms\nauth_failure_delay_max = 100ms\n"


def start_instance(extra=""):
    inst = Yizhan(extra_conf=FAST_AUTH + extra)
    inst.init()
    for name in ACCOUNTS:
        inst.add_user(name + "@example.test")
    inst.start()
    wait_for(lambda: port_open(inst.ports["pop3_port"]) and port_open(inst.ports["pop3s_port"]),
             timeout=20, what="pop3 ports")
    return inst


@pytest.fixture(scope="module")
def pop():
    """The default configuration: no plaintext authentication."""
    inst = start_instance()
    yield inst
    inst.cleanup()


@pytest.fixture(scope="module")
def popplain():
    """pop3_plaintext_auth = yes, and a short idle timeout."""
    inst = start_instance("pop3_plaintext_auth = yes\npop3_idle_timeout = 10s\n")
    yield inst
    inst.cleanup()


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_seq = [0]


def put_msg(yz, addr, body, unique=None):
    """Write a CRLF message file into addr's new/ (as local delivery would)."""
    md = yz.maildir(addr)
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    if isinstance(body, str):
        body = body.encode()
    _seq[0] += 1
    unique = unique or "1700000000.M%dP%d.host" % (_seq[0], os.getpid())
    path = os.path.join(md, "new", "%s,S=%d" % (unique, len(body)))
    with open(path, "wb") as f:
        f.write(body)
    return unique


def msg(subject, lines=("hello",)):
    return ("From: a@example.test\r\nSubject: %s\r\n\r\n" % subject +
            "".join(l + "\r\n" for l in lines))


def files(yz, addr):
    md = yz.maildir(addr)
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(md, sub)
        if os.path.isdir(d):
            out += [(sub, n) for n in os.listdir(d) if not n.startswith(".")]
    return sorted(out)


def pop3s(yz, addr, login=True):
    p = poplib.POP3_SSL("127.0.0.1", yz.ports["pop3s_port"], context=tls_ctx(), timeout=20)
    if login:
        p.user(addr)
        p.pass_(yz.passwords[addr])
    return p


def pop3_stls(yz, addr, login=True):
    p = poplib.POP3("127.0.0.1", yz.ports["pop3_port"], timeout=20)
    p.stls(tls_ctx())
    if login:
        p.user(addr)
        p.pass_(yz.passwords[addr])
    return p


def login_retry(fn, *args, tries=50):
    """Log in, retrying while the previous session's lock is still held."""
    for _ in range(tries):
        try:
            return fn(*args)
        except poplib.error_proto as e:
            if b"IN-USE" not in e.args[0]:
                raise
            time.sleep(0.1)
    raise AssertionError("mailbox stayed in use")


def test_capa_and_plaintext_refused(pop):
    p = poplib.POP3("127.0.0.1", pop.ports["pop3_port"], timeout=20)
    assert p.getwelcome().startswith(b"+OK")
    caps = p.capa()
    assert "STLS" in caps and "UIDL" in caps and "TOP" in caps
    assert "RESP-CODES" in caps and "AUTH-RESP-CODE" in caps and "PIPELINING" in caps
    assert caps.get("IMPLEMENTATION") == ["yizhan"]
    assert "USER" not in caps and "SASL" not in caps
    with pytest.raises(poplib.error_proto) as e:
        p.user("alice@example.test")
    assert b"[AUTH]" in e.value.args[0]
    p.stls(tls_ctx())
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps and caps.get("SASL") == ["PLAIN"]
    p.user("alice@example.test")
    p.pass_(pop.passwords["alice@example.test"])
    p.quit()
    assert "pop3: login: user=<alice@example.test>" in pop.log()


def test_every_command_pop3s(pop):
    addr = "carol@example.test"
    u1 = put_msg(pop, addr, msg("one"))
    u2 = put_msg(pop, addr, msg("two", [".dot line", "..two dots", "x"]))
    u3 = put_msg(pop, addr, "Subject: three\r\n\r\nL1\r\nL2\r\nL3\r\nno final newline")
    p = pop3s(pop, addr)
    count, size = p.stat()
    assert count == 3
    sizes = [os.path.getsize(os.path.join(pop.maildir(addr), s, n)) for s, n in files(pop, addr)]
    assert size == sum(sizes)
    resp, lst, _ = p.list()
    assert resp.startswith(b"+OK") and len(lst) == 3
    assert p.list(2).split()[1] == b"2"
    resp, uidls, _ = p.uidl()
    assert [l.split()[1].decode() for l in uidls] == [u1, u2, u3]
    assert p.uidl(3).split()[2].decode() == u3
    resp, lines, octets = p.retr(2)
    assert b".dot line" in lines and b"..two dots" in lines  # unstuffed by poplib
    assert octets >= int(p.list(2).split()[2])
    resp, lines, _ = p.retr(3)
    assert lines[-1] == b"no final newline"
    resp, lines, _ = p.top(3, 1)
    assert lines == [b"Subject: three", b"", b"L1"]
    resp, lines, _ = p.top(1, 0)
    assert lines[-1] == b""
    assert p.noop().startswith(b"+OK")
    assert p.dele(1).startswith(b"+OK")
    with pytest.raises(poplib.error_proto):
        p.retr(1)
    with pytest.raises(poplib.error_proto):
        p.dele(1)
    assert p.stat()[0] == 2
    assert p.rset().startswith(b"+OK")
    assert p.stat()[0] == 3
    p.dele(1)
    with pytest.raises(poplib.error_proto):
        p.retr(9)
    with pytest.raises(poplib.error_proto):
        p._shortcmd("XTND LIST")
    p.quit()
    # RETR marked 2 and 3 seen: in cur/ with S, as IMAP users expect (the
    # marks are written off the event loop: on disk moments after QUIT's
    # answer, before the next login of the mailbox).
    wait_for(lambda: all(sub == "cur" and ":2," in n and "S" in n.split(":2,")[1]
                         for sub, n in files(pop, addr)), what="seen marks")
    assert len(files(pop, addr)) == 2
    # The log line is written as the session ends, just after QUIT's answer.
    wait_for(lambda: "pop3: disconnect: user=<carol@example.test>, top=2/" in pop.log(),
             what="disconnect log line")
    assert "del=1/3" in pop.log()


def test_dropped_connection_deletes_nothing(pop):
    addr = "dave@example.test"
    for i in range(3):
        put_msg(pop, addr, msg("drop %d" % i))
    p = pop3_stls(pop, addr)
    p.dele(1)
    p.dele(2)
    p.file.close()  # no QUIT: the connection just drops
    p.sock.close()
    p2 = login_retry(pop3s, pop, addr)
    assert p2.stat()[0] == 3
    p2.quit()
    assert len(files(pop, addr)) == 3


def test_uidl_stable_and_in_use(pop):
    addr = "erin@example.test"
    for i in range(4):
        put_msg(pop, addr, msg("uidl %d" % i))
    p = pop3s(pop, addr)
    first = [l.split()[1] for l in p.uidl()[1]]
    # A second session of the same mailbox is refused while p holds it.
    q = pop3s(pop, addr, login=False)
    q.user(addr)
    with pytest.raises(poplib.error_proto) as e:
        q.pass_(pop.passwords[addr])
    assert b"[IN-USE]" in e.value.args[0]
    q.quit()
    p.retr(1)
    p.dele(2)
    p.quit()
    p = pop3s(pop, addr)
    again = [l.split()[1] for l in p.uidl()[1]]
    assert again == [first[0]] + first[2:]
    p.quit()


def test_wrong_password_and_limit(pop):
    p = pop3s(pop, "frank@example.test", login=False)
    for i in range(2):
        p.user("frank@example.test")
        with pytest.raises(poplib.error_proto) as e:
            p.pass_("wrong password %d" % i)
        assert b"[AUTH]" in e.value.args[0]
    p.user("frank@example.test")
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("wrong again")
    assert b"[AUTH]" in e.value.args[0]
    # The third failure (pop3_max_auth_failures) ends the session.
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        p.noop()
        p.noop()


def test_sasl_plain(pop):
    addr = "gina@example.test"
    pw = pop.passwords[addr]
    p = pop3s(pop, addr, login=False)
    with pytest.raises(poplib.error_proto):
        p._shortcmd("AUTH PLAIN " + base64.b64encode(b"\0" + addr.encode() + b"\0bad").decode())
    resp = p._shortcmd("AUTH PLAIN " + base64.b64encode(
        b"\0" + addr.encode() + b"\0" + pw.encode()).decode())
    assert resp.startswith(b"+OK")
    p.quit()
    # Continuation form, and "*" to cancel.
    p = pop3s(pop, addr, login=False)
    p._putcmd("AUTH PLAIN")
    assert p._getline()[0].startswith(b"+")
    with pytest.raises(poplib.error_proto):
        p._shortcmd("*")
    p._putcmd("AUTH PLAIN")
    assert p._getline()[0].startswith(b"+")
    assert p._shortcmd(base64.b64encode(b"\0" + addr.encode() + b"\0" + pw.encode())
                       .decode()).startswith(b"+OK")
    assert p.stat()[0] >= 0
    p.quit()


def test_line_limit(popplain):
    s = socket.create_connection(("127.0.0.1", popplain.ports["pop3_port"]), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    limit = 512
    # "AUTH PLAIN <base64>" of exactly the limit (CRLF included): parsed.
    b64 = "A" * (limit - len("AUTH PLAIN \r\n"))
    s.sendall(("AUTH PLAIN %s\r\n" % b64).encode())
    line = f.readline()
    assert line.startswith(b"-ERR") and b"too long" not in line
    s.sendall(("AUTH PLAIN %sA\r\n" % b64).encode())
    assert f.readline() == b"-ERR Line too long\r\n"
    s.sendall(b"CAPA\r\n")
    assert f.readline().startswith(b"+OK")
    s.close()


def test_plaintext_allowed_and_pipelining(popplain):
    addr = "hank@example.test"
    put_msg(popplain, addr, msg("plain"))
    p = poplib.POP3("127.0.0.1", popplain.ports["pop3_port"], timeout=20)
    caps = p.capa()
    assert "USER" in caps and "STLS" in caps
    # Pipelined: everything in one write, answers in order.
    p.sock.sendall(("USER %s\r\nPASS %s\r\nSTAT\r\nUIDL 1\r\nQUIT\r\n" %
                    (addr, popplain.passwords[addr])).encode())
    answers = [p._getline()[0] for _ in range(5)]
    assert all(a.startswith(b"+OK") for a in answers), answers
    assert answers[2].startswith(b"+OK 1 ")
    p.sock.close()


def test_idle_timeout(popplain):
    addr = "ivan@example.test"
    put_msg(popplain, addr, msg("idle"))
    p = poplib.POP3("127.0.0.1", popplain.ports["pop3_port"], timeout=30)
    p.user(addr)
    p.pass_(popplain.passwords[addr])
    p.dele(1)
    t0 = time.monotonic()
    line = p._getline()[0]
    assert line.startswith(b"-ERR") and b"inactivity" in line
    assert 9 <= time.monotonic() - t0 <= 20
    p.sock.close()
    assert len(files(popplain, addr)) == 1  # no UPDATE on timeout


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "20", "-k"] + list(args),
                          capture_output=True, timeout=30)


def test_curl(pop):
    addr = "judy@example.test"
    put_msg(pop, addr, msg("curl one", ["first body"]))
    put_msg(pop, addr, msg("curl two", ["second body"]))
    user = "%s:%s" % (addr, pop.passwords[addr])
    r = curl("-u", user, "pop3s://127.0.0.1:%d/2" % pop.ports["pop3s_port"])
    assert r.returncode == 0, r.stderr
    assert b"second body" in r.stdout
    r = curl("--ssl-reqd", "-u", user, "pop3://127.0.0.1:%d/" % pop.ports["pop3_port"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(b"\r\n")[:2] == [b"1 %d" % len(msg("curl one", ["first body"])),
                                           b"2 %d" % len(msg("curl two", ["second body"]))]
    r = curl("--ssl-reqd", "-u", user, "-X", "UIDL",
             "pop3://127.0.0.1:%d/" % pop.ports["pop3_port"])
    assert r.returncode == 0 and r.stdout.count(b"\r\n") >= 2
    r = curl("-u", "%s:wrong" % addr, "pop3s://127.0.0.1:%d/1" % pop.ports["pop3s_port"])
    assert r.returncode != 0


def test_fetchmail_leave_on_server(pop, tmp_path):
    addr = "kate@example.test"
    for i in range(3):
        put_msg(pop, addr, msg("fetch %d" % i, ["body %d" % i, ".dotted %d" % i]))
    mbox = tmp_path / "mbox"
    rc = tmp_path / "fetchmailrc"
    idfile = tmp_path / "fetchids"

    def run(keep):
        rc.write_text(
            'poll 127.0.0.1 service %d protocol pop3 uidl\n'
            '  user "%s" there with password "%s" is "%s" here\n'
            '  %s ssl sslproto "auto" no sslcertck mda "cat >> %s"\n' % (pop.ports["pop3s_port"], addr, pop.passwords[addr],
                                    os.environ.get("USER", "root"),
                                    "keep" if keep else "nokeep fetchall", mbox))
        os.chmod(rc, 0o600)
        return subprocess.run(["fetchmail", "-f", str(rc), "-i", str(idfile), "--nosyslog",
                               "--nodetach", "--pidfile", str(tmp_path / "pid")],
                              capture_output=True, timeout=60,
                              env=dict(os.environ, HOME=str(tmp_path)))

    r = run(True)
    assert r.returncode == 0, r.stdout + r.stderr
    data = mbox.read_bytes()
    assert data.count(b"Subject: fetch") == 3 and b".dotted 1" in data
    # Leave on server: a second run sees the same UIDLs and fetches nothing.
    r = run(True)
    assert r.returncode == 1, r.stdout + r.stderr  # 1 = no new mail
    assert mbox.read_bytes().count(b"Subject: fetch") == 3
    assert len(files(pop, addr)) == 3
    # Fetch all and delete.
    r = run(False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert mbox.read_bytes().count(b"Subject: fetch") == 6
    assert files(pop, addr) == []


def test_through_smtp(pop):
    if not port_open(pop.ports["smtp_port"]):
        pytest.skip("smtpd not listening")
    addr = "bob@example.test"
    body = "Subject: via smtp\r\n\r\nhello through the queue\r\n.starts with dot\r\n"
    with smtplib.SMTP("127.0.0.1", pop.ports["smtp_port"], timeout=20) as s:
        s.sendmail("someone@example.org", [addr], body)
    wait_for(lambda: files(pop, addr), timeout=20, what="delivery")
    p = pop3s(pop, addr)
    lines = p.retr(1)[1]
    assert b"hello through the queue" in lines and b".starts with dot" in lines
    p.quit()
