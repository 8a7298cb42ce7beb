"""smtpd: the command set, sequencing, replies with enhanced status codes,
recipient checks and relay rules, over the real daemon on loopback.

Run as part of `make integration` (the `yz` fixture of conftest.py starts
a dev instance with example.test, alice@ and bob@)."""
import os
import re
import smtplib
import socket
import time

import pytest

from conftest import Yizhan, wait_for
from smtpraw import Raw


def smtp(yz, port="smtp_port"):
    return smtplib.SMTP("127.0.0.1", yz.ports[port], timeout=20)


def greeted(yz, port="smtp_port"):
    c = Raw(yz.ports[port])
    code, text = c.reply()
    assert code == 220, text
    return c


def test_banner_and_ehlo_keywords(yz):
    c = greeted(yz)
    code, text = c.cmd("EHLO client.example")
    assert code == 250
    kws = text.split("\n")
    assert kws[0] == "mx.example.test"
    for kw in ("PIPELINING", "SIZE 52428800", "8BITMIME", "ENHANCEDSTATUSCODES",
               "STARTTLS", "SMTPUTF8", "DSN", "CHUNKING"):
        assert kw in kws, kws
    # AUTH is not offered in plaintext by default.
    assert not any(k.startswith("AUTH") for k in kws)
    assert c.cmd("QUIT") == (221, "2.0.0 Bye")
    assert c.closed()


def test_helo_and_simple_commands(yz):
    c = greeted(yz)
    assert c.cmd("HELO")[0] == 501
    assert c.cmd("HELO client.example") == (250, "mx.example.test")
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    assert c.cmd("NOOP anything") == (250, "2.0.0 Ok")
    assert c.cmd("RSET") == (250, "2.0.0 Ok")
    code, text = c.cmd("HELP")
    assert code == 214 and text.startswith("2.0.0")
    assert c.cmd("VRFY alice@example.test") [0:1] == (252,)
    code, text = c.cmd("VRFY nobody@example.test")
    assert code == 252 and text.startswith("2.5.2")
    code, text = c.cmd("EXPN staff")
    assert code == 252 and text.startswith("2.5.2")
    code, text = c.cmd("FOO bar")
    assert code == 500 and text.startswith("5.5.")
    c.cmd("QUIT")


def test_sequencing_errors(yz):
    c = greeted(yz)
    code, text = c.cmd("MAIL FROM:<a@b.example>")
    assert (code, text[:5]) == (503, "5.5.1")
    c.cmd("EHLO client.example")
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 503
    assert c.cmd("DATA")[0] == 503
    assert c.cmd("MAIL FROM:<a@b.example>") == (250, "2.1.0 Ok")
    code, text = c.cmd("MAIL FROM:<a@b.example>")
    assert code == 503 and "nested" in text
    code, text = c.cmd("DATA")
    assert code == 503 and "RCPT" in text
    assert c.cmd("RCPT TO:<alice@example.test>") == (250, "2.1.5 Ok")
    # AUTH inside a transaction
    assert c.cmd("AUTH PLAIN")[0] == 503
    # STARTTLS inside a transaction
    assert c.cmd("STARTTLS")[0] == 503
    # EHLO resets the transaction
    assert c.cmd("EHLO again.example")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 503
    assert c.cmd("MAIL FROM:<a@b.example>")[0] == 250
    # RSET too
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("DATA")[0] == 503
    c.cmd("QUIT")


def test_null_sender_and_queue_reply(yz):
    s = smtp(yz)
    s.ehlo("client.example")
    assert s.mail("<>") == (250, b"2.1.0 Ok")
    assert s.rcpt("alice@example.test") == (250, b"2.1.5 Ok")
    code, text = s.data(b"Subject: bounce\r\n\r\nbody\r\n")
    assert code == 250
    assert re.match(rb"2\.0\.0 Ok: queued as [0-9A-Z]{12}$", text), text
    s.quit()


def test_unknown_user_and_log_shapes(yz):
    s = smtp(yz)
    s.ehlo("client.example")
    s.mail("sender@remote.example")
    code, text = s.rcpt("nobody@example.test")
    assert code == 550 and text.startswith(b"5.1.1 <nobody@example.test>")
    assert s.rcpt("alice@example.test")[0] == 250
    code, text = s.data(b"Subject: x\r\n\r\nx\r\n")
    assert code == 250
    qid = text.decode().rsplit(" ", 1)[1]
    s.quit()
    wait_for(lambda: "disconnect from [127.0.0.1]" in yz.log(), what="disconnect line")
    log = yz.log()
    assert "connect from [127.0.0.1]" in log
    assert re.search(r"NOQUEUE: reject: RCPT from \[127\.0\.0\.1\]: 550 5\.1\.1 "
                     r"<nobody@example\.test>: Recipient address rejected", log)
    assert "%s: client=[127.0.0.1]" % qid in log
    assert "%s: from=<sender@remote.example>, size=" % qid in log
    assert "nrcpt=1" in log
    assert re.search(r"disconnect from \[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1/2 data=1 "
                     r"quit=1 commands=5/6", log)


def test_relay_from_mynetworks(yz):
    # 127.0.0.1 is in the default mynetworks: relaying is allowed.
    s = smtp(yz)
    s.ehlo("client.example")
    s.mail("a@example.test")
    assert s.rcpt("someone@remote.example")[0] == 250
    s.quit()


def test_relay_denied_outside_mynetworks(yz_with):
    yz = yz_with("mynetworks = 192.0.2.0/24")
    c = greeted(yz)
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@remote.example>")
    code, text = c.cmd("RCPT TO:<victim@remote.example>")
    assert code == 554 and text == "5.7.1 <victim@remote.example>: Relay access denied"
    # Local recipients are still fine.
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    # Relay-sneak forms are never accepted.
    for rcpt in ("<victim%remote.example@example.test>",
                 "<remote.example!victim@example.test>",
                 "<\"victim@remote.example\"@example.test>",
                 "<@example.test:victim@remote.example>",
                 "<@example.test:alice@example.test>"):
        code, text = c.cmd("RCPT TO:%s" % rcpt)
        assert code in (550, 553, 554, 501), (rcpt, code, text)
    c.cmd("QUIT")


def test_relay_sneak_rejected_even_from_mynetworks(yz):
    c = greeted(yz)
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@example.test>")
    for rcpt in ("<victim%remote.example@example.test>",
                 "<remote.example!victim@example.test>"):
        code, text = c.cmd("RCPT TO:%s" % rcpt)
        assert code == 550 and text.startswith("5.7.1"), (rcpt, code, text)
    # A source route from a trusted client is stripped and the address used.
    assert c.cmd("RCPT TO:<@relay.example:alice@example.test>")[0] == 250
    c.cmd("QUIT")


def test_recipient_limit(yz_with):
    yz = yz_with("smtpd_recipient_limit = 3")
    c = greeted(yz)
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@remote.example>")
    for _ in range(3):
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    code, text = c.cmd("RCPT TO:<bob@example.test>")
    assert code == 452 and text.startswith("4.5.3")
    c.cmd("QUIT")


def test_hundred_recipients(yz):
    s = smtp(yz)
    s.ehlo("client.example")
    s.mail("a@remote.example")
    for i in range(100):
        assert s.rcpt("rcpt%d@remote.example" % i)[0] == 250
    assert s.data(b"Subject: many\r\n\r\nhi\r\n")[0] == 250
    s.quit()


def test_size_param_over_limit(yz_with):
    yz = yz_with("message_size_limit = 10k")
    c = greeted(yz)
    code, text = c.cmd("EHLO client.example")
    assert "SIZE 10240" in text.split("\n")
    assert c.cmd("MAIL FROM:<a@remote.example> SIZE=10240")[0] == 250
    c.cmd("RSET")
    code, text = c.cmd("MAIL FROM:<a@remote.example> SIZE=10241")
    assert code == 552 and text.startswith("5.3.4")
    c.cmd("QUIT")


def test_low_disk_refuses_mail(yz_with):
    # queue_minfree_multiple x message_size_limit beyond any disk.
    yz = yz_with("message_size_limit = 4G\nqueue_minfree_multiple = 100")
    c = greeted(yz)
    c.cmd("EHLO client.example")
    code, text = c.cmd("MAIL FROM:<a@remote.example>")
    assert code == 452 and text.startswith("4.3.1")
    c.cmd("QUIT")


def test_bad_params(yz):
    c = greeted(yz)
    c.cmd("EHLO client.example")
    code, text = c.cmd("MAIL FROM:<a@remote.example> FOO=bar")
    assert code == 555 and text.startswith("5.5.4")
    code, text = c.cmd("MAIL FROM:<not an address>")
    assert code == 501
    assert c.cmd("MAIL FROM:<a@remote.example> BODY=8BITMIME RET=HDRS ENVID=QQ314159")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE "
                 "ORCPT=rfc822;alice@example.test")[0] == 250
    code, text = c.cmd("RCPT TO:<alice@example.test> NOTIFY=NEVER,SUCCESS")
    assert code == 501
    c.cmd("QUIT")


def test_command_line_limit(yz):
    c = greeted(yz)
    c.cmd("EHLO client.example")
    # 512 bytes with CRLF: accepted.
    line = "NOOP " + "x" * (512 - 2 - 5)
    assert len(line) + 2 == 512
    assert c.cmd(line) == (250, "2.0.0 Ok")
    # 513: refused, the session goes on.
    code, text = c.cmd(line + "y")
    assert code == 500 and text.startswith("5.5.2")
    # far beyond: refused once, resync at the next LF
    c.send("NOOP " + "z" * 100000 + "\r\n")
    code, text = c.reply()
    assert code == 500 and text.startswith("5.5.2")
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    c.cmd("QUIT")


def test_bare_lf_command_accepted(yz):
    c = greeted(yz)
    c.send(b"EHLO client.example\n")
    assert c.reply()[0] == 250
    c.send(b"NOOP\n")
    assert c.reply() == (250, "2.0.0 Ok")
    c.cmd("QUIT")


def test_hard_error_limit(yz_with):
    yz = yz_with("smtpd_hard_error_limit = 3\nsmtpd_soft_error_limit = 1\n"
                 "smtpd_error_sleep_time = 0")
    c = greeted(yz)
    assert c.cmd("BOGUS1")[0] == 500
    assert c.cmd("BOGUS2")[0] == 500
    code, text = c.cmd("BOGUS3")
    assert code == 500
    code, text = c.reply()
    assert code == 421 and text.startswith("4.7.0")
    assert c.closed()


def test_error_sleep(yz_with):
    yz = yz_with("smtpd_soft_error_limit = 1\nsmtpd_error_sleep_time = 1s")
    c = greeted(yz)
    c.cmd("BOGUS1")
    c.cmd("BOGUS2")  # beyond the soft limit: the next command waits 1 s
    t0 = time.monotonic()
    assert c.cmd("NOOP")[0] == 250
    assert time.monotonic() - t0 >= 0.8
    c.cmd("QUIT")


def test_connection_limit_per_ip(yz_with):
    yz = yz_with("smtpd_client_connection_count_limit = 2")
    a = greeted(yz)
    b = greeted(yz)
    c = Raw(yz.ports["smtp_port"])
    code, text = c.reply()
    assert code == 421 and text.startswith("4.7.0")
    assert c.closed()
    a.cmd("QUIT")
    wait_for(lambda: yz.log().count("disconnect from") >= 2, what="disconnect")
    d = greeted(yz)
    d.cmd("QUIT")
    b.cmd("QUIT")


def test_connection_limit_total(yz_with):
    yz = yz_with("smtpd_connection_limit = 1")
    a = greeted(yz)
    c = Raw(yz.ports["submission_port"])
    code, text = c.reply()
    assert code == 421 and text.startswith("4.7.0")
    assert c.closed()
    a.cmd("QUIT")


def test_command_timeout(yz_with):
    yz = yz_with("smtpd_timeout = 1s")
    c = greeted(yz)
    c.cmd("EHLO client.example")
    c.sock.settimeout(10)
    code, text = c.reply()
    assert code == 421 and text.startswith("4.4.2")
    assert c.closed()
    wait_for(lambda: "timeout after EHLO from [127.0.0.1]" in yz.log(), what="timeout log")


def test_greet_pause_early_talker(yz_with):
    yz = yz_with("smtpd_greet_pause = 1s")
    c = Raw(yz.ports["smtp_port"])
    c.send("EHLO hasty.example\r\n")
    code, text = c.reply()
    assert code == 554 and text.startswith("5.5.1")
    assert c.closed()
    # A patient client is greeted.
    d = Raw(yz.ports["smtp_port"])
    t0 = time.monotonic()
    assert d.reply()[0] == 220
    assert time.monotonic() - t0 >= 0.8
    d.cmd("QUIT")


def test_pipelining_order(yz):
    c = greeted(yz)
    c.cmd("EHLO client.example")
    c.send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\n"
           "RCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert c.reply() == (250, "2.1.0 Ok")
    assert c.reply() == (250, "2.1.5 Ok")
    assert c.reply()[0] == 550
    assert c.reply() == (250, "2.1.5 Ok")
    assert c.reply()[0] == 354
    c.send("Subject: p\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
    assert c.reply()[0] == 250
    assert c.reply() == (250, "2.0.0 Ok")
    assert c.reply() == (221, "2.0.0 Bye")


def test_graceful_stop_lets_sessions_finish(yz):
    c = greeted(yz)
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@remote.example>")
    pids = yz.role_pids("smtpd")
    assert pids
    import subprocess
    stopper = subprocess.Popen(yz.base_args() + ["stop"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wait_for(lambda: not __import__("conftest").port_open(yz.ports["smtp_port"]),
             timeout=10, what="listener closed")
    # The open session may still send its mail.
    assert c.cmd("RCPT TO:<alice@example.test>")[0] in (250, 451)
    code, _ = c.cmd("DATA")
    if code == 354:
        c.send("Subject: late\r\n\r\nbody\r\n.\r\n")
        assert c.reply()[0] == 250
    c.cmd("QUIT")
    stopper.wait(timeout=30)


def _fill_tiny(yz):
    yz.add_user("tiny@example.test", quota=2000)
    s = smtp(yz)
    s.ehlo("client.example")
    s.mail("a@remote.example")
    assert s.rcpt("tiny@example.test")[0] == 250
    code, text = s.data(b"Subject: fill\r\n\r\n" + b"x" * 1500 + b"\r\n")
    assert code == 250
    s.quit()
    wait_for(lambda: any(os.listdir(os.path.join(yz.maildir("tiny@example.test"), d))
                         for d in ("new", "cur")
                         if os.path.isdir(os.path.join(yz.maildir("tiny@example.test"), d))),
             what="delivery to tiny")


def test_over_quota_temporary(yz):
    _fill_tiny(yz)
    c = greeted(yz)
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@remote.example> SIZE=1000")
    code, text = c.cmd("RCPT TO:<tiny@example.test>")
    assert code == 452 and text.startswith("4.2.2"), text
    c.cmd("QUIT")


def test_over_quota_permanent(yz_with):
    yz = yz_with("smtpd_over_quota_permanent = yes")
    _fill_tiny(yz)
    c = greeted(yz)
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@remote.example> SIZE=1000")
    code, text = c.cmd("RCPT TO:<tiny@example.test>")
    assert code == 552 and text.startswith("5.2.2"), text
    c.cmd("QUIT")


def test_shutdown_timeout_says_421(yz_with):
    import subprocess
    yz = yz_with("master_shutdown_timeout = 5s")
    c = greeted(yz)
    c.cmd("EHLO client.example")
    stopper = subprocess.Popen(yz.base_args() + ["stop"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    c.sock.settimeout(15)
    code, text = c.reply()
    assert code == 421 and text.startswith("4.3.2"), text
    assert c.closed()
    stopper.wait(timeout=30)
