"""A minimal milter-protocol client (version 6), for tests that miltertest cannot express
(miltertest's fixed buffers crash on headers of more than a few KB).

    with MilterClient(port) as c:
        c.negotiate()
        c.connect("client.example", "203.0.113.9")
        c.helo("helo")
        c.macro("M", {"{auth_authen}": "user@example"})
        assert c.mail("<user@example>") == "c"
        ...
Replies are the one-letter codes (c continue, a accept, r reject, t tempfail, y reply code
with text in .last_text, d discard). Steps the milter negotiated as no-reply return None.
"""

import socket
import struct

# Protocol steps the milter may declare as "no reply" (SMFIP_NR_*), by command.
_NR = {"C": 0x1000, "H": 0x2000, "M": 0x4000, "R": 0x8000, "T": 0x10000, "L": 0x80,
       "N": 0x40000, "B": 0x80000}
_ALL_ACTIONS = 0x1FF
_ALL_STEPS = 0x1FFFFF | 0x30000000  # every step bit, plus MDS 256K/1M


class MilterClient:
    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.steps = 0
        self.last_text = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self._send("Q", b"")
        except OSError:
            pass
        self.sock.close()

    def _send(self, cmd, data):
        self.sock.sendall(struct.pack("!I", len(data) + 1) + cmd.encode() + data)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("milter closed the connection")
            buf += chunk
        return buf

    def _reply(self):
        while True:
            (n,) = struct.unpack("!I", self._recv_exact(4))
            body = self._recv_exact(n)
            code, data = chr(body[0]), body[1:]
            if code == "y":
                self.last_text = data.rstrip(b"\0").decode("utf-8", "replace")
            if code in "+-=.hiemfpq":  # modifications at end of message; keep reading
                continue
            return code

    def _step(self, cmd, data):
        self._send(cmd, data)
        if self.steps & _NR.get(cmd, 0):
            return None
        return self._reply()

    @staticmethod
    def _z(*parts):
        return b"".join((p.encode() if isinstance(p, str) else p) + b"\0" for p in parts)

    def negotiate(self):
        self._send("O", struct.pack("!III", 6, _ALL_ACTIONS, _ALL_STEPS))
        (n,) = struct.unpack("!I", self._recv_exact(4))
        body = self._recv_exact(n)
        _, _, self.steps = struct.unpack("!III", body[1:13])
        return self.steps

    def connect(self, hostname, ip, port=12345):
        return self._step("C", self._z(hostname)[:-1] + b"\0" + b"4" +
                          struct.pack("!H", port) + self._z(ip))

    def helo(self, name):
        return self._step("H", self._z(name))

    def macro(self, for_cmd, values):
        data = for_cmd.encode()
        for k, v in values.items():
            data += self._z(k, v)
        self._send("D", data)

    def mail(self, sender):
        return self._step("M", self._z(sender))

    def rcpt(self, rcpt):
        return self._step("R", self._z(rcpt))

    def data(self):
        return self._step("T", b"")

    def header(self, name, value):
        return self._step("L", self._z(name, value))

    def eoh(self):
        return self._step("N", b"")

    def eom(self):
        self._send("E", b"")
        return self._reply()
