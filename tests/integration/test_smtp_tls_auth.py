"""smtpd: STARTTLS (RFC 3207, incl. the plaintext injection of
CVE-2011-0411), implicit TLS on submissions, AUTH PLAIN/LOGIN (RFC 4954),
submission rules (AUTH required, sender ownership, Message-ID/Date added),
and real clients (swaks, curl)."""
import base64
import glob
import os
import shutil
import smtplib
import socket
import ssl
import subprocess

import pytest

from conftest import Yizhan, wait_for, delivered
from smtpraw import Raw, tls_ctx

ALICE = "alice@example.test"


def plain(user, password, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, user, password)).encode()).decode()


def test_starttls_then_auth_on_port_25(yz):
    s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=20)
    s.ehlo("client.example")
    assert s.has_extn("starttls")
    assert not s.has_extn("auth")
    code, _ = s.starttls(context=tls_ctx())
    assert code == 220
    s.ehlo("client.example")
    assert not s.has_extn("starttls")
    assert "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"]
    code, text = s.login(ALICE, yz.passwords[ALICE])
    assert code == 235 and text.startswith(b"2.7.0")
    s.mail(ALICE)
    assert s.rcpt("friend@remote.example")[0] == 250  # relay: authenticated
    assert s.rcpt("bob@example.test")[0] == 250
    code, text = s.data(b"Subject: tls\r\n\r\nhi\r\n")
    assert code == 250
    qid = text.decode().rsplit(" ", 1)[1]
    s.quit()
    msg = delivered(yz, "bob@example.test", qid)
    lines = msg.split(b"\r\n")
    i = next(n for n, l in enumerate(lines) if l.startswith(b"Received: from client.example"))
    assert lines[i + 1].startswith(b"\t(using TLSv1."), lines[i:i + 4]
    assert b"with ESMTPSA id " + qid.encode() in msg
    wait_for(lambda: "sasl_username=alice@example.test" in yz.log(), what="sasl log")


def test_starttls_injection_discarded(yz):
    c = Raw(yz.ports["smtp_port"])
    assert c.reply()[0] == 220
    c.cmd("EHLO client.example")
    # Pipelined plaintext after STARTTLS must never be executed.
    c.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<injected@remote.example>\r\n")
    code, text = c.reply()
    assert code == 220 and text.startswith("2.0.0")
    c.wrap()
    # State was reset: MAIL needs EHLO first, and no injected MAIL exists.
    code, text = c.cmd("MAIL FROM:<a@remote.example>")
    assert code == 503
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 503
    code, text = c.cmd("STARTTLS")
    assert code == 554 and text.startswith("5.5.1")
    c.cmd("QUIT")


def test_starttls_syntax(yz):
    c = Raw(yz.ports["smtp_port"])
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("STARTTLS now")[0] == 501
    c.cmd("QUIT")


def test_submission_requires_auth_and_tls(yz):
    c = Raw(yz.ports["submission_port"])
    assert c.reply()[0] == 220
    code, text = c.cmd("EHLO client.example")
    assert "STARTTLS" in text.split("\n")
    code, text = c.cmd("MAIL FROM:<alice@example.test>")
    assert code == 530 and text.startswith("5.7.0")
    code, text = c.cmd("AUTH PLAIN " + plain(ALICE, yz.passwords[ALICE]))
    assert code == 538 and text.startswith("5.7.11")
    c.cmd("QUIT")


def test_submissions_implicit_tls(yz):
    c = Raw(yz.ports["submissions_port"], implicit_tls=True)
    assert c.reply()[0] == 220
    code, text = c.cmd("EHLO client.example")
    kws = text.split("\n")
    assert "STARTTLS" not in kws
    assert "AUTH PLAIN LOGIN" in kws
    assert c.cmd("MAIL FROM:<alice@example.test>")[0] == 530
    code, text = c.cmd("AUTH PLAIN " + plain(ALICE, "wrong password"))
    assert code == 535 and text.startswith("5.7.8")
    code, text = c.cmd("AUTH PLAIN " + plain(ALICE, yz.passwords[ALICE]))
    assert code == 235
    assert c.cmd("AUTH PLAIN " + plain(ALICE, yz.passwords[ALICE]))[0] == 503
    code, text = c.cmd("MAIL FROM:<bob@example.test>")
    assert code == 553 and text.startswith("5.7.1")
    assert c.cmd("MAIL FROM:<alice@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<bob@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: no id\r\nFrom: alice@example.test\r\n\r\nbody\r\n.\r\n")
    code, text = c.reply()
    assert code == 250
    qid = text.rsplit(" ", 1)[1]
    c.cmd("QUIT")
    msg = delivered(yz, "bob@example.test", qid)
    header = msg.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nMessage-ID: <" in header
    assert b"\r\nDate: " in header
    assert b"with ESMTPSA id" in header


def test_submission_keeps_existing_ids(yz):
    s = smtplib.SMTP("127.0.0.1", yz.ports["submission_port"], timeout=20)
    s.starttls(context=tls_ctx())
    s.login(ALICE, yz.passwords[ALICE])
    refused = s.sendmail(ALICE, ["bob@example.test"],
                         b"Message-ID: <given@client>\r\nDate: Sat, 28 Nov 2026 22:50:34 +0000\r\n"
                         b"Subject: ids\r\n\r\nbody\r\n")
    assert refused == {}
    s.quit()


def test_auth_login_and_cancel(yz):
    c = Raw(yz.ports["submissions_port"], implicit_tls=True)
    c.reply()
    c.cmd("EHLO client.example")
    code, text = c.cmd("AUTH LOGIN")
    assert (code, text) == (334, "VXNlcm5hbWU6")
    code, text = c.cmd(base64.b64encode(ALICE.encode()).decode())
    assert (code, text) == (334, "UGFzc3dvcmQ6")
    code, text = c.cmd(base64.b64encode(yz.passwords[ALICE].encode()).decode())
    assert code == 235
    c.cmd("QUIT")

    c = Raw(yz.ports["submissions_port"], implicit_tls=True)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("AUTH PLAIN")[0] == 334
    code, text = c.cmd("*")
    assert code == 501 and text.startswith("5.7.0")
    assert c.cmd("AUTH PLAIN")[0] == 334
    code, text = c.cmd("!!!notbase64")
    assert code == 501
    code, text = c.cmd("AUTH CRAM-MD5")
    assert code == 504 and text.startswith("5.5.4")
    assert c.cmd("AUTH PLAIN " + plain("bob@example.test", "x", authzid=ALICE))[0] == 535
    c.cmd("QUIT")


def test_auth_failures_disconnect(yz):
    c = Raw(yz.ports["submissions_port"], implicit_tls=True, timeout=60)
    c.reply()
    c.cmd("EHLO client.example")
    for i in range(2):
        assert c.cmd("AUTH PLAIN " + plain(ALICE, "bad%d" % i))[0] == 535
    code, text = c.cmd("AUTH PLAIN " + plain(ALICE, "bad3"))
    assert code == 535
    code, text = c.reply()
    assert code == 421 and text.startswith("4.7.0")
    assert c.closed()


def test_auth_over_plaintext_when_enabled(yz_with):
    yz = yz_with("smtpd_auth_over_plaintext = yes\nsmtpd_sender_login_match = no")
    s = smtplib.SMTP("127.0.0.1", yz.ports["submission_port"], timeout=20)
    s.ehlo("client.example")
    assert s.has_extn("auth")
    s.login(ALICE, yz.passwords[ALICE])
    assert s.mail("someone-else@remote.example")[0] == 250
    s.quit()


def test_relay_denied_unauthenticated_then_allowed(yz_with):
    yz = yz_with("mynetworks = 192.0.2.0/24")
    s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=20)
    s.ehlo("client.example")
    s.mail("a@remote.example")
    assert s.rcpt("x@remote.example")[0] == 554
    s.rset()
    s.starttls(context=tls_ctx())
    s.ehlo("client.example")
    s.login(ALICE, yz.passwords[ALICE])
    s.mail(ALICE)
    assert s.rcpt("x@remote.example")[0] == 250
    s.quit()


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks_pipelining_tls_auth(yz):
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(yz.ports["submission_port"]),
                        "--tls", "--auth", "PLAIN", "--auth-user", ALICE,
                        "--auth-password", yz.passwords[ALICE], "--pipeline",
                        "--from", ALICE, "--to", "bob@example.test", "--helo", "swaks.example",
                        "--header", "Subject: swaks"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "queued as" in r.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_smtp(yz, tmp_path):
    mail = tmp_path / "mail.txt"
    mail.write_bytes(b"Subject: curl\r\n\r\nfrom curl\r\n")
    r = subprocess.run(["curl", "-sS", "--url", "smtp://127.0.0.1:%d" % yz.ports["smtp_port"],
                        "--mail-from", "a@remote.example", "--mail-rcpt", "alice@example.test",
                        "--upload-file", str(mail)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
