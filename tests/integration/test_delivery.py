"""End to end: SMTP in, durable queue, local delivery to Maildir, exactly
once. (Protocol details of the SMTP server are in test_smtp_*.py.)"""
import os
import random
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from conftest import wait_for


def maildir_files(yz, address, folder=None):
    base = yz.maildir(address)
    if folder:
        base = os.path.join(base, "." + folder)
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(base, sub)
        if os.path.isdir(d):
            out += [os.path.join(d, f) for f in sorted(os.listdir(d))]
    return out


def wait_delivered(yz, address, n, folder=None, timeout=30):
    return wait_for(lambda: len(maildir_files(yz, address, folder)) >= n and
                    maildir_files(yz, address, folder), timeout=timeout,
                    what="%d message(s) for %s" % (n, address))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def split_added_headers(data):
    """The headers yizhan adds (Return-Path, Received) and the rest."""
    lines = data.split(b"\r\n")
    i = 0
    added = []
    while i < len(lines) and (lines[i].startswith((b"Return-Path:", b"Received:", b"Delivered-To:"))
                              or (added and lines[i][:1] in (b" ", b"\t"))):
        added.append(lines[i])
        i += 1
    return added, b"\r\n".join(lines[i:])


MSG = (b"From: Sender <sender@example.org>\r\n"
       b"To: Alice <alice@example.test>\r\n"
       b"Subject: byte exact\r\n"
       b"Message-ID: <m1@example.org>\r\n"
       b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
       b"\r\n"
       b"line one\r\n"
       b".leading dot\r\n"
       b"..two dots\r\n"
       b"trailing spaces   \r\n"
       b"\r\n"
       b"last line\r\n")


def test_byte_exact_delivery(yz):
    s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=30)
    s.ehlo("client.example.org")
    code, resp = s.mail("sender@example.org")[0], None
    assert code == 250
    assert s.rcpt("alice@example.test")[0] == 250
    code, resp = s.data(MSG)
    assert code == 250 and b"queued as" in resp
    s.quit()
    path = wait_delivered(yz, "alice@example.test", 1)[0]
    data = read(path)
    added, rest = split_added_headers(data)
    assert rest == MSG, "the message is stored exactly as sent (CRLF, dot-unstuffed)"
    assert added[0] == b"Return-Path: <sender@example.org>"
    assert any(l.startswith(b"Received: from client.example.org") for l in added)
    assert ",S=%d" % len(data) in os.path.basename(path)


def test_null_sender_and_utf8_and_8bit(yz):
    s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=30)
    s.ehlo("c.example")
    body = ("From: <>\r\nTo: alice@example.test\r\nSubject: =?UTF-8?B?5Lit5paH?=\r\n"
            "\r\n驿站 8-bit body: äöü ✓\r\n").encode("utf-8")
    s.sendmail("", ["alice@example.test"], body, mail_options=["BODY=8BITMIME"])
    s.quit()
    data = read(wait_delivered(yz, "alice@example.test", 1)[0])
    assert data.endswith(body)
    assert data.startswith(b"Return-Path: <>\r\n")


def test_100_recipients_one_transaction(yz):
    users = ["u%03d@example.test" % i for i in range(100)]
    for u in users:
        yz.add_user(u, password="pw-bulk-user-1")
    s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=60)
    s.sendmail("sender@example.org", users, MSG)
    s.quit()
    for u in users:
        files = wait_delivered(yz, u, 1)
        assert len(files) == 1
        assert read(files[0]).endswith(MSG)


def test_ten_mib_message(yz):
    line = b"x" * 998 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (10 * 1024 * 1024 // len(line) + 1)
    s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=120)
    s.sendmail("sender@example.org", ["bob@example.test"], body)
    s.quit()
    data = read(wait_delivered(yz, "bob@example.test", 1, timeout=60)[0])
    assert data.endswith(body) and len(body) > 10 * 1024 * 1024


def test_alias_catchall_plus_and_forward(yz):
    yz.cli("alias", "add", "sales@example.test", "alice@example.test", "bob@example.test")
    yz.cli("alias", "add", "@example.test", "bob@example.test")
    yz.cli("alias", "add", "fwd@example.test", "someone@elsewhere.test")
    os.makedirs(os.path.join(yz.maildir("alice@example.test"), ".lists", "new"), exist_ok=True)
    for sub in ("cur", "tmp"):
        os.makedirs(os.path.join(yz.maildir("alice@example.test"), ".lists", sub), exist_ok=True)
    s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=30)
    s.sendmail("sender@example.org", ["sales@example.test"], MSG)
    s.sendmail("sender@example.org", ["nobody-here@example.test"], MSG)
    s.sendmail("sender@example.org", ["alice+lists@example.test"], MSG)
    s.sendmail("sender@example.org", ["alice+nofolder@example.test"], MSG)
    s.sendmail("sender@example.org", ["fwd@example.test"], MSG)
    s.quit()
    wait_delivered(yz, "alice@example.test", 2)   # sales + plus without folder
    wait_delivered(yz, "bob@example.test", 2)     # sales + catch-all
    wait_delivered(yz, "alice@example.test", 1, folder="lists")
    # Postfix-shaped log lines: one per final mailbox, with the address used.
    wait_for(lambda: "to=<bob@example.test>, orig_to=<sales@example.test>, relay=local" in yz.log()
             and "to=<alice@example.test>, orig_to=<sales@example.test>, relay=local" in yz.log()
             and "to=<bob@example.test>, orig_to=<nobody-here@example.test>" in yz.log(),
             what="per-target log lines")
    # The forward waits in the queue (deferred) until outbound delivery exists.
    wait_for(lambda: "to=<fwd@example.test>" in yz.log() and "status=deferred" in yz.log(),
             what="forward deferred")


def test_redelivery_after_restart_is_not_duplicated(yz):
    s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=30)
    for i in range(5):
        s.sendmail("sender@example.org", ["alice@example.test"], MSG)
    s.quit()
    wait_delivered(yz, "alice@example.test", 5)
    yz.stop()
    yz.start()
    time.sleep(1.0)
    assert len(maildir_files(yz, "alice@example.test")) == 5


class Sender(threading.Thread):
    """Sends messages one per connection; remembers which got 250."""

    def __init__(self, port, ident, count, deadline):
        super().__init__(daemon=True)
        self.port, self.sid, self.count, self.deadline = port, ident, count, deadline
        self.acked = []
        self.keep_going = True  # cleared when the killing is over

    def run(self):
        i = -1
        while i + 1 < self.count or self.keep_going:
            i += 1
            if time.monotonic() > self.deadline:
                return
            # Paced, so that the load is still running during all the kills.
            time.sleep(0.08)
            tag = "crash-%d-%d" % (self.sid, i)
            body = ("Subject: %s\r\nX-Tag: %s\r\n\r\nbody %s\r\n" % (tag, tag, tag)).encode()
            try:
                s = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
                s.ehlo("crash.example")
                s.mail("sender@example.org")
                s.rcpt("alice@example.test")
                code, _ = s.data(body)
                if code == 250:
                    self.acked.append(tag)
                try:
                    s.quit()
                except Exception:
                    pass
            except Exception:
                time.sleep(0.05)


def test_crash_loses_nothing_acknowledged(yz):
    """500 messages from 10 clients while smtpd, queue and mailbox are
    killed with SIGKILL at random moments 20 times: every message that got
    250 is in the Maildir exactly once."""
    deadline = time.monotonic() + 180
    senders = [Sender(yz.ports["smtp_port"], i, 50, deadline) for i in range(10)]
    for t in senders:
        t.start()
    rnd = random.Random(1234)
    kills = 0
    while kills < 20 and time.monotonic() < deadline:
        time.sleep(rnd.uniform(0.05, 0.25))
        role = rnd.choice(["smtpd", "queue", "mailbox"])
        pids = yz.role_pids(role)
        if pids:
            try:
                os.kill(pids[0], signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
    for t in senders:
        t.keep_going = False
    for t in senders:
        t.join(timeout=max(1, deadline - time.monotonic()))
    assert kills == 20
    acked = [tag for t in senders for tag in t.acked]
    assert len(acked) > 100, "the load went through (%d acknowledged)" % len(acked)
    wait_for(lambda: yz.roles_running(None), timeout=30, what="roles back")

    def tags():
        seen = {}
        for p in maildir_files(yz, "alice@example.test"):
            for line in read(p).split(b"\r\n"):
                if line.startswith(b"X-Tag: "):
                    t = line[7:].decode()
                    seen[t] = seen.get(t, 0) + 1
        return seen
    wait_for(lambda: all(t in tags() for t in acked), timeout=120, what="all acked delivered")
    seen = tags()
    dups = {t: n for t, n in seen.items() if n > 1}
    assert not dups, "delivered twice: %s" % dups


def send_raw(yz, sender, rcpts, body):
    """MAIL/RCPT/DATA without the SIZE parameter smtplib.sendmail adds."""
    s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=30)
    s.ehlo("client.example.org")
    assert s.mail(sender)[0] == 250
    for r in rcpts:
        assert s.rcpt(r)[0] == 250
    code, resp = s.data(body)
    assert code == 250, resp
    s.quit()


def test_over_quota_defers_then_delay_notice_then_bounce(yz_with):
    """Over quota at delivery: deferred, a delay DSN after delay_warning_time,
    then past maximal_queue_lifetime a failure DSN (RFC 3464) to the sender,
    and the message leaves the queue."""
    yz = yz_with("maximal_queue_lifetime = 3s\nminimal_backoff_time = 1s\n"
                 "maximal_backoff_time = 1s\ndelay_warning_time = 1s\n")
    yz.cli("user", "quota", "bob@example.test", "100")
    send_raw(yz, "alice@example.test", ["bob@example.test"],
             b"Subject: too big for bob\r\nMessage-ID: <q1@example.test>\r\n\r\n" + b"x" * 500 + b"\r\n")
    wait_for(lambda: "to=<bob@example.test>" in yz.log() and "status=deferred" in yz.log(),
             what="deferred for quota")

    def dsns():
        out = []
        for p in maildir_files(yz, "alice@example.test"):
            out.append(read(p))
        return out
    wait_for(lambda: any(b"Undelivered Mail Returned to Sender" in d for d in dsns()),
             timeout=30, what="failure DSN")
    failure = [d for d in dsns() if b"Undelivered Mail Returned to Sender" in d][0]
    assert failure.startswith(b"Return-Path: <>\r\n")
    assert b"Content-Type: multipart/report; report-type=delivery-status;" in failure
    assert b"Final-Recipient: rfc822; bob@example.test" in failure
    assert b"Action: failed" in failure
    assert b"Status: 4.2.2" in failure
    assert b"Subject: too big for bob" in failure  # the original comes back
    assert any(b"Delayed Mail (still being retried)" in d and b"Action: delayed" in d
               for d in dsns()), "a delay notice came first"
    assert "status=bounced" in yz.log()
    wait_for(lambda: not os.listdir(os.path.join(yz.state, "queue", "active")),
             what="queue empty")
    assert maildir_files(yz, "bob@example.test") == []


def test_bounce_of_a_bounce_is_never_sent(yz_with):
    """A message from the null sender that fails is dropped with a log line:
    no DSN about a DSN."""
    yz = yz_with("maximal_queue_lifetime = 1s\nbounce_queue_lifetime = 1s\n"
                 "minimal_backoff_time = 1s\nmaximal_backoff_time = 1s\n")
    yz.cli("user", "quota", "bob@example.test", "100")
    send_raw(yz, "", ["bob@example.test"], b"Subject: a bounce\r\n\r\n" + b"y" * 500 + b"\r\n")
    wait_for(lambda: "status=bounced" in yz.log(), timeout=30, what="given up")
    wait_for(lambda: not os.listdir(os.path.join(yz.state, "queue", "active")),
             what="queue empty")
    assert "notification" not in yz.log()


def _mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", path],
                       capture_output=True)
    return r.returncode == 0


def test_disk_full_gives_temporary_errors_and_harms_nothing():
    """Low disk: 452 4.3.1 at MAIL; the disk filling up during DATA: 451
    4.3.0, the partial file removed, the session alive, and what was queued
    before untouched."""
    import shutil
    import tempfile
    from conftest import Yizhan
    qdir = tempfile.mkdtemp(prefix="yz-qfs-")
    if os.geteuid() != 0 or not _mount_tmpfs(qdir, "4m"):
        shutil.rmtree(qdir, ignore_errors=True)
        pytest.skip("needs root to mount a small tmpfs for the queue")
    yz = Yizhan(extra_conf="queue_directory = %s/q\nmessage_size_limit = 1M\n"
                "queue_minfree_multiple = 1\n" % qdir)
    filler = os.path.join(qdir, "filler")
    try:
        yz.init()
        yz.start()
        # Something already queued: a forward waits (deferred) in active/.
        yz.cli("alias", "add", "fwd@example.test", "someone@elsewhere.test")
        send_raw(yz, "alice@example.test", ["fwd@example.test"], b"Subject: waiting\r\n\r\nkeep me\r\n")
        wait_for(lambda: "status=deferred" in yz.log(), what="deferred forward")
        active = os.path.join(qdir, "q", "active")
        before = sorted(os.listdir(active))
        assert len(before) == 1

        s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=30)
        s.ehlo("c.example")
        assert s.mail("alice@example.test")[0] == 250
        assert s.rcpt("bob@example.test")[0] == 250
        assert s.docmd("DATA")[0] == 354
        s.send(b"Subject: fills the disk\r\n\r\n" + (b"z" * 998 + b"\r\n") * 100)
        time.sleep(0.3)
        st = os.statvfs(qdir)
        free = st.f_bavail * st.f_frsize
        with open(filler, "wb") as f:  # leave almost nothing
            f.write(b"\0" * max(0, free - 16 * 1024))
        s.send((b"z" * 998 + b"\r\n") * 400 + b".\r\n")
        code, msg = s.getreply()
        assert code == 451 and msg.startswith(b"4.3.0"), (code, msg)
        assert s.noop()[0] == 250, "the session stays up"
        # Still no room: refused at MAIL with a temporary error.
        code, msg = s.mail("alice@example.test")
        assert code == 452 and msg.startswith(b"4.3.1"), (code, msg)
        s.rset()
        os.unlink(filler)
        assert os.listdir(os.path.join(qdir, "q", "incoming")) == [], "no partial file left"
        assert sorted(os.listdir(active)) == before, "the queued message is untouched"
        # With room again, mail flows.
        send_raw(yz, "alice@example.test", ["bob@example.test"], b"Subject: after\r\n\r\nok\r\n")
        wait_delivered(yz, "bob@example.test", 1)
        s.quit()
    finally:
        yz.cleanup()
        subprocess.run(["umount", qdir], capture_output=True)
        shutil.rmtree(qdir, ignore_errors=True)
