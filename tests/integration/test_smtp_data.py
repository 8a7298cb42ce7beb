"""smtpd: message text: DATA and BDAT (RFC 3030), dot-stuffing, SMTP
smuggling variants (only CRLF.CRLF ends DATA), 8-bit and UTF-8, limits on
size, text lines and hops, and the Received field of what is delivered."""
import glob
import os
import smtplib
import socket

import pytest

from conftest import Yizhan, wait_for, delivered
from smtpraw import Raw


def start_txn(yz, rcpt="alice@example.test", mail="<a@remote.example>"):
    c = Raw(yz.ports["smtp_port"])
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("MAIL FROM:%s" % mail)[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt)[0] == 250
    return c


def qid_of(text):
    return text.rsplit(" ", 1)[1]


def test_data_received_and_dot_stuffing(yz):
    c = start_txn(yz)
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: dots\r\n\r\n..leading dot\r\n.\r\n")
    code, text = c.reply()
    assert code == 250, text
    qid = qid_of(text)
    c.cmd("QUIT")
    msg = delivered(yz, "alice@example.test", qid)
    # The mailbox role may put Return-Path/Delivered-To above our field.
    assert (b"Received: from client.example (unknown [127.0.0.1])\r\n"
            b"\tby mx.example.test (yizhan) with ESMTP id " + qid.encode() +
            b"\r\n\tfor <alice@example.test>; ") in msg, msg[:400]
    assert b"\r\nSubject: dots\r\n\r\n.leading dot\r\n" in msg
    assert not msg.endswith(b".\r\n.\r\n")
    # Port 25 adds no Message-ID/Date.
    assert b"Message-ID:" not in msg


@pytest.mark.parametrize("smuggle", [
    b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r\n.\rX",
])
def test_smuggling_variants_do_not_end_data(yz, smuggle):
    c = start_txn(yz)
    assert c.cmd("DATA")[0] == 354
    payload = (b"Subject: smuggle\r\n\r\nfirst" + smuggle +
               b"MAIL FROM:<evil@remote.example>\r\nRCPT TO:<bob@example.test>\r\n"
               b"DATA\r\nSubject: smuggled\r\n\r\nevil\r\n")
    c.send(payload + b".\r\n")
    code, text = c.reply()
    assert code == 250, text
    qid = qid_of(text)
    # Exactly one reply for everything: nothing was taken as commands.
    assert c.pending() == b""
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    c.cmd("QUIT")
    msg = delivered(yz, "alice@example.test", qid)
    assert b"MAIL FROM:<evil@remote.example>" in msg


def test_crlf_dot_crlf_pipelined_after(yz):
    c = start_txn(yz)
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: a\r\n\r\nbody\r\n.\r\nNOOP\r\n")
    assert c.reply()[0] == 250
    assert c.reply() == (250, "2.0.0 Ok")
    c.cmd("QUIT")


def test_8bit_and_smtputf8(yz):
    c = Raw(yz.ports["smtp_port"])
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<jörg@remote.example> SMTPUTF8 BODY=8BITMIME")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    body = "Subject: grüße\r\n\r\nhéllo wörld \u4f60\u597d\r\n".encode() + bytes(range(0x80, 0x100)) + b"\r\n"
    c.send(body + b".\r\n")
    code, text = c.reply()
    assert code == 250
    qid = qid_of(text)
    c.cmd("QUIT")
    msg = delivered(yz, "alice@example.test", qid)
    assert body.replace(b"\r\n.", b"\r\n..") in msg or body in msg
    assert b"with UTF8SMTP id" in msg


def test_utf8_address_needs_smtputf8(yz):
    c = Raw(yz.ports["smtp_port"])
    c.reply()
    c.cmd("EHLO client.example")
    code, _ = c.cmd("MAIL FROM:<jörg@remote.example>")
    assert code in (501, 553)
    c.cmd("QUIT")


def test_bdat_chunks(yz):
    c = start_txn(yz)
    part1 = b"Subject: chunks\r\n\r\nhello "
    part2 = b"world\r\n.\r\n..not stuffed\r\n"
    c.send(b"BDAT %d\r\n" % len(part1) + part1)
    code, text = c.reply()
    assert code == 250 and text.startswith("2.0.0")
    c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    code, text = c.reply()
    assert code == 250, text
    qid = qid_of(text)
    c.cmd("QUIT")
    msg = delivered(yz, "alice@example.test", qid)
    # BDAT is byte-exact: no dot-unstuffing, ".\r\n" is just data.
    assert msg.endswith(part1 + part2)


def test_bdat_zero_last(yz):
    c = start_txn(yz)
    c.send(b"BDAT 12\r\nSubject: z\r\n")
    assert c.reply()[0] == 250
    code, text = c.cmd("BDAT 0 LAST")
    assert code == 250 and "queued as" in text
    c.cmd("QUIT")


def test_bdat_pipelined(yz):
    c = Raw(yz.ports["smtp_port"])
    c.reply()
    c.cmd("EHLO client.example")
    data = b"Subject: p\r\n\r\nx\r\n"
    c.send(b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\n"
           b"BDAT %d LAST\r\n" % len(data) + data + b"NOOP\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    code, text = c.reply()
    assert code == 250 and "queued as" in text
    assert c.reply() == (250, "2.0.0 Ok")
    c.cmd("QUIT")


def test_bdat_out_of_sequence_swallows_bytes(yz):
    c = Raw(yz.ports["smtp_port"])
    c.reply()
    c.cmd("EHLO client.example")
    # The 6 bytes "QUIT\r\n" are chunk data, not a command.
    c.send(b"BDAT 6\r\nQUIT\r\n")
    code, text = c.reply()
    assert code == 503 and text.startswith("5.5.1")
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    c.cmd("MAIL FROM:<a@remote.example>")
    c.send(b"BDAT 6\r\nQUIT\r\n")
    assert c.reply()[0] == 503
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    c.cmd("QUIT")


def test_data_after_bdat_is_an_error(yz):
    c = start_txn(yz)
    c.send(b"BDAT 3\r\nabc")
    assert c.reply()[0] == 250
    code, text = c.cmd("DATA")
    assert code == 503 and text.startswith("5.5.1")
    assert c.cmd("RSET")[0] == 250
    c.cmd("QUIT")


def test_bad_bdat_syntax(yz):
    c = start_txn(yz)
    code, _ = c.cmd("BDAT x")
    assert code == 501
    c.cmd("QUIT")


def test_message_size_limit_actual(yz_with):
    yz = yz_with("message_size_limit = 10k")
    c = start_txn(yz)
    assert c.cmd("DATA")[0] == 354
    # Just at the limit: 10240 bytes of text (CRLF included).
    body = b"Subject: s\r\n\r\n"
    line = b"x" * 98 + b"\r\n"
    text = body + line * ((10240 - len(body)) // 100)
    text += b"y" * (10240 - len(text) - 2) + b"\r\n"
    assert len(text) == 10240
    c.send(text + b".\r\n")
    code, reply = c.reply()
    assert code == 250, reply
    # One byte more: read to the end, then 552, and the session goes on.
    c.cmd("MAIL FROM:<a@remote.example>")
    c.cmd("RCPT TO:<alice@example.test>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"z" + text + b".\r\n")
    code, reply = c.reply()
    assert code == 552 and reply.startswith("5.3.4")
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    # Far beyond.
    c.cmd("MAIL FROM:<a@remote.example>")
    c.cmd("RCPT TO:<alice@example.test>")
    assert c.cmd("DATA")[0] == 354
    c.send(line * 2000 + b".\r\n")
    code, reply = c.reply()
    assert code == 552
    # BDAT beyond.
    c.cmd("MAIL FROM:<a@remote.example>")
    c.cmd("RCPT TO:<alice@example.test>")
    c.send(b"BDAT 20000 LAST\r\n" + b"q" * 20000)
    code, reply = c.reply()
    assert code == 552 and reply.startswith("5.3.4")
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    c.cmd("QUIT")


def test_text_line_limit(yz_with):
    yz = yz_with("smtpd_text_line_limit = 1000")
    c = start_txn(yz)
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: l\r\n\r\n" + b"a" * 998 + b"\r\n.\r\n")
    assert c.reply()[0] == 250
    c.cmd("MAIL FROM:<a@remote.example>")
    c.cmd("RCPT TO:<alice@example.test>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: l\r\n\r\n" + b"a" * 999 + b"\r\n.\r\n")
    code, text = c.reply()
    assert code == 500 and text.startswith("5.5.2")
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    c.cmd("QUIT")


def test_hop_count(yz_with):
    yz = yz_with("hopcount_limit = 3")
    hops = b"".join(b"Received: from h%d by x; Sat, 28 Nov 2026 22:50:34 +0000\r\n" % i
                    for i in range(3))
    c = start_txn(yz)
    assert c.cmd("DATA")[0] == 354
    c.send(hops + b"Subject: h\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    c.cmd("MAIL FROM:<a@remote.example>")
    c.cmd("RCPT TO:<alice@example.test>")
    assert c.cmd("DATA")[0] == 354
    c.send(hops + b"received: from h9 by x; Sat, 28 Nov 2026 22:50:34 +0000\r\n"
           b"Subject: h\r\n\r\nx\r\n.\r\n")
    code, text = c.reply()
    assert code == 554 and text.startswith("5.4.6")
    c.cmd("QUIT")


def test_ten_mib_message(yz):
    s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=60)
    s.ehlo("client.example")
    line = b"0123456789" * 7 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (10 * 1024 * 1024 // len(line))
    refused = s.sendmail("a@remote.example", ["alice@example.test"], body)
    assert refused == {}
    s.quit()


def test_many_messages_one_session(yz):
    s = smtplib.SMTP("127.0.0.1", yz.ports["smtp_port"], timeout=30)
    s.ehlo("client.example")
    for i in range(20):
        s.sendmail("a@remote.example", ["alice@example.test", "bob@example.test"],
                   b"Subject: n%d\r\n\r\nbody\r\n" % i)
    s.quit()


def test_concurrent_sessions_group_commit(yz):
    clients = []
    for i in range(10):
        c = start_txn(yz)
        assert c.cmd("DATA")[0] == 354
        clients.append(c)
    for i, c in enumerate(clients):
        c.send(b"Subject: g%d\r\n\r\nx\r\n.\r\n" % i)
    qids = set()
    for c in clients:
        code, text = c.reply()
        assert code == 250
        qids.add(qid_of(text))
        c.cmd("QUIT")
    assert len(qids) == 10
