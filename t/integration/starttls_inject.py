#!/usr/bin/python3
"""starttls_inject.py PORT: STARTTLS command injection check for tempomxd.

A client (or a man in the middle) sends "STARTTLS\\r\\nRSET\\r\\nMAIL ..."
in one plaintext write. Commands that arrived before the handshake must be
thrown away (RFC 3207 section 4.2; the 2011 STARTTLS injection bugs in
several MTAs): after the handshake the server must not answer them, either
unprompted or in front of the reply to the client's first real command.

Run by t/integration/test_smuggling.c against a daemon on 127.0.0.1:PORT.
Prints one line, "OK ..." or "FAIL ...", and exits 0 or 1.
"""
import socket
import ssl
import sys


def fail(why):
    print("FAIL " + why)
    sys.exit(1)


def read_reply(recv_byte):
    """Read one reply, one octet at a time (so that nothing after it is
    consumed before the TLS handshake). Returns (code, text)."""
    lines = []
    while len(lines) < 100:
        line = b""
        while not line.endswith(b"\n"):
            c = recv_byte()
            if not c:
                fail("connection closed while reading a reply: %r" % (lines, ))
            line += c
            if len(line) > 2048:
                fail("overlong reply line %r" % line[:80])
        lines.append(line.decode("latin-1").rstrip("\r\n"))
        if len(line) >= 4 and line[3:4] != b"-":
            break
    last = lines[-1]
    if len(last) < 3 or not last[:3].isdigit():
        fail("not a reply: %r" % lines)
    return int(last[:3]), lines


def main():
    port = int(sys.argv[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    plain = lambda: sock.recv(1)

    code, text = read_reply(plain)
    if code != 220:
        fail("greeting %r" % text)
    sock.sendall(b"EHLO client.example.test\r\n")
    code, text = read_reply(plain)
    if code != 250 or not any("STARTTLS" in t for t in text):
        fail("EHLO does not offer STARTTLS: %r" % text)

    # The injection: commands after STARTTLS in the same plaintext write.
    sock.sendall(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@localhost>\r\n")
    code, text = read_reply(plain)
    if code != 220:
        # Refusing STARTTLS when input follows it is safe as well.
        print("OK STARTTLS with pipelined input refused: %r" % text)
        return
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        tls = ctx.wrap_socket(sock, server_hostname="mx.example.test")
    except (ssl.SSLError, OSError) as e:
        fail("TLS handshake failed (plaintext after the 220?): %s" % e)

    # Nothing may arrive before the client says something.
    tls.settimeout(1.5)
    try:
        data = tls.recv(4096)
        if data:
            fail("server answered injected commands after the handshake: %r" % data)
        fail("server closed the connection after the handshake")
    except socket.timeout:
        pass
    except ssl.SSLError as e:
        fail("TLS error while idle: %s" % e)

    tls.settimeout(10)
    tls_byte = lambda: tls.recv(1)
    tls.sendall(b"EHLO client.example.test\r\n")
    code, text = read_reply(tls_byte)
    if code != 250 or not text[0][4:].lower().startswith("mx.example.test"):
        fail("first reply after the handshake is not the EHLO reply: %r" % text)
    if any("STARTTLS" in t for t in text[1:]):
        fail("STARTTLS still offered inside TLS: %r" % text)
    # The injected MAIL must not be in effect: RCPT needs a MAIL first.
    tls.sendall(b"RCPT TO:<bob@localhost>\r\n")
    code, text = read_reply(tls_byte)
    if code != 503:
        fail("RCPT after the handshake got %r: the injected MAIL was used" % text)
    tls.sendall(b"QUIT\r\n")
    code, text = read_reply(tls_byte)
    if code != 221:
        fail("QUIT: %r" % text)
    print("OK injected commands were discarded (%s)" % tls.version())


if __name__ == "__main__":
    main()
