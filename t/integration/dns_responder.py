#!/usr/bin/python3
# dns_responder.py: a tiny authoritative DNS server on a loopback UDP port
# for t/integration/test_outbound.c and test_rdns.c. Records come from a
# file of lines "name MX pref host", "name A 1.2.3.4", "name AAAA ::1" and
# "name PTR host" (name as 4.3.2.1.in-addr.arpa); a name with no line at
# all is NXDOMAIN, a known name without the asked type is an empty answer
# (NODATA). Writes DIR/dns.ready when listening; with a fourth argument,
# appends "name TYPE" to that file for every question.
import socket
import struct
import sys


def parse_name(msg, off):
    labels = []
    while True:
        n = msg[off]
        if n == 0:
            return ".".join(labels), off + 1
        if n & 0xC0:
            raise ValueError("compression in a question")
        labels.append(msg[off + 1:off + 1 + n].decode("ascii").lower())
        off += 1 + n


def enc_name(name):
    out = b""
    for l in name.rstrip(".").split("."):
        out += bytes([len(l)]) + l.encode()
    return out + b"\0"


def main():
    port, table, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    qlog = open(sys.argv[4], "a") if len(sys.argv) > 4 else None
    qnames = {1: "A", 12: "PTR", 15: "MX", 28: "AAAA"}
    records = {}
    for line in open(table):
        f = line.split()
        if len(f) >= 3:
            records.setdefault(f[0].lower().rstrip("."), []).append(f[1:])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    open(ready, "w").write("ok\n")
    while True:
        msg, peer = s.recvfrom(4096)
        try:
            qid, flags, qd = struct.unpack("!HHH", msg[:6])
            name, off = parse_name(msg, 12)
            qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
        except (ValueError, struct.error, IndexError, UnicodeDecodeError):
            continue
        question = msg[12:off + 4]
        if qlog:
            qlog.write("%s %s\n" % (name, qnames.get(qtype, str(qtype))))
            qlog.flush()
        answers = []
        rcode = 0
        if name not in records:
            rcode = 3
        else:
            for rec in records[name]:
                if rec[0] == "MX" and qtype == 15:
                    rdata = struct.pack("!H", int(rec[1])) + enc_name(rec[2])
                    answers.append(struct.pack("!HHIH", 15, 1, 60, len(rdata)) + rdata)
                elif rec[0] == "A" and qtype == 1:
                    rdata = socket.inet_aton(rec[1])
                    answers.append(struct.pack("!HHIH", 1, 1, 60, len(rdata)) + rdata)
                elif rec[0] == "AAAA" and qtype == 28:
                    rdata = socket.inet_pton(socket.AF_INET6, rec[1])
                    answers.append(struct.pack("!HHIH", 28, 1, 60, len(rdata)) + rdata)
                elif rec[0] == "PTR" and qtype == 12:
                    rdata = enc_name(rec[1])
                    answers.append(struct.pack("!HHIH", 12, 1, 60, len(rdata)) + rdata)
        hdr = struct.pack("!HHHHHH", qid, 0x8400 | rcode, 1, len(answers), 0, 0)
        body = b"".join(b"\xc0\x0c" + a for a in answers)
        s.sendto(hdr + question + body, peer)


if __name__ == "__main__":
    main()
