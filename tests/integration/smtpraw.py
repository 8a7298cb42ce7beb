"""A byte-exact SMTP client over a plain socket (TLS on demand), for the
tests that must send exactly the bytes they mean: smuggling variants,
pipelining, over-long lines, injection after STARTTLS."""
import socket
import ssl


def tls_ctx():
    """A client context that accepts the test instance's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Raw:
    """One SMTP connection; wrap() switches it to TLS (STARTTLS)."""

    def __init__(self, port, host="127.0.0.1", timeout=20, implicit_tls=False):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        if implicit_tls:
            self.sock = tls_ctx().wrap_socket(self.sock)
        self.buf = b""

    def wrap(self):
        assert self.buf == b"", "server sent bytes before the handshake: %r" % self.buf
        self.sock = tls_ctx().wrap_socket(self.sock)

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed; buffered %r" % self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return int(ln[:3]), "\n".join(l[4:] for l in lines)

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def pending(self, wait=0.5):
        """Bytes the server sent without being asked (should be none)."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            data = b""
        self.sock.settimeout(self.timeout)
        return self.buf + data

    def closed(self, timeout=5):
        """True if the server closed the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()
