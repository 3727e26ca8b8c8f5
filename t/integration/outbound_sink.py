#!/usr/bin/python3
# outbound_sink.py: a small SMTP/LMTP server that stores what tempomxd
# delivers, for t/integration/test_outbound.c and test_client.c. Each
# transaction becomes DIR/N.env (helo, sender, recipients, whether the
# envelope came pipelined and how many command lines were already buffered
# behind MAIL, the connection number, the most connections seen at once,
# RSETs on the connection, MAIL's SIZE= value or -1, MAIL's parameters as
# "params", and what followed the address in MAIL and in each accepted
# RCPT as "mail-params" and "rcpt-params" lines) and DIR/N.data (the
# message, dot-unstuffed, byte for byte). Addresses are stored octet for
# octet (UTF-8 included).
#
# Behaviour switches: --tempfail N answers 451 to the first N transactions'
# MAIL; recipients whose local part starts with "unknown" get 550 5.1.1;
# --lmtp answers LHLO and gives one reply per recipient after the dot (a
# recipient starting with "full" gets 452 there); --no-ehlo refuses EHLO;
# --tls CERT KEY offers STARTTLS; --stall S waits S seconds before the
# reply to the first transaction's final dot, --delay S before every one;
# --stall-data S stops reading for S seconds after the first 354;
# --no-pipelining leaves PIPELINING out of the EHLO reply; --dsn offers
# DSN (RFC 3461) in it; --hang-up
# closes the connection after each reply to the final dot; --unix PATH
# listens on a unix socket instead of --addr/--port; --smtputf8 offers
# SMTPUTF8 (RFC 6531), without which a non-ASCII MAIL or RCPT address gets
# 550/553 5.6.7 as from a server that does not know the extension.
import argparse
import asyncio
import os
import ssl
import sys


class Sink:
    def __init__(self, args):
        self.args = args
        self.count = 0
        self.conns = 0
        self.active = 0
        self.max_active = 0
        self.tempfails = args.tempfail
        self.data_stalls = 1 if args.stall_data > 0 else 0

    def store(self, helo, sender, rcpts, data, pipelined, tls, conn, batch, rsets, size,
              params="", mail_params="", rcpt_params=()):
        self.count += 1
        base = os.path.join(self.args.dir, "%d" % self.count)
        with open(base + ".data.tmp", "wb") as f:
            f.write(data)
        with open(base + ".env.tmp", "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("helo %s\nfrom %s\npipelined %d\nbatch %d\ntls %d\nconn %d\n"
                    "maxconc %d\nrset %d\nsize %d\nparams %s\n"
                    % (helo, sender, pipelined, batch, tls, conn, self.max_active, rsets,
                       size, params))
            for r in rcpts:
                f.write("rcpt %s\n" % r)
            f.write("mail-params %s\n" % mail_params)
            for r in rcpt_params:
                f.write("rcpt-params %s\n" % r)
        os.rename(base + ".data.tmp", base + ".data")
        os.rename(base + ".env.tmp", base + ".env")

    async def session(self, reader, writer):
        args = self.args
        helo, sender, rcpts, tls = "", None, [], 0
        pipelined = 0
        batch = 0
        rsets = 0
        size = -1
        params = ""
        mail_params, rcpt_params = "", []
        self.conns += 1
        conn = self.conns
        self.active += 1
        self.max_active = max(self.max_active, self.active)

        async def reply(text):
            writer.write((text + "\r\n").encode())
            await writer.drain()

        await reply("220 sink.test ESMTP")
        try:
            while True:
                line = await asyncio.wait_for(reader.readline(), 60)
                if not line:
                    return
                cmd = line.decode("utf-8", "surrogateescape").rstrip("\r\n")
                verb = cmd[:4].upper()
                if verb in ("EHLO", "LHLO"):
                    if args.no_ehlo or (verb == "LHLO") != args.lmtp:
                        await reply("502 5.5.2 not here")
                        continue
                    helo = cmd[5:]
                    ext = ["SIZE 10000000", "8BITMIME"]
                    if args.dsn:
                        ext.append("DSN")
                    if args.smtputf8:
                        ext.append("SMTPUTF8")
                    if not args.no_pipelining:
                        ext.insert(0, "PIPELINING")
                    if args.tls and not tls:
                        ext.append("STARTTLS")
                    lines = ["250-sink.test"] + ["250-" + e for e in ext[:-1]] + ["250 " + ext[-1]]
                    await reply("\r\n".join(lines))
                elif verb == "HELO":
                    helo = cmd[5:]
                    await reply("250 sink.test")
                elif verb == "STAR" and args.tls and not tls:
                    await reply("220 2.0.0 go ahead")
                    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                    ctx.load_cert_chain(args.tls[0], args.tls[1])
                    await writer.start_tls(ctx)
                    tls = 1
                elif verb == "MAIL":
                    # Commands already buffered behind MAIL: the client pipelined.
                    pipelined = 1 if len(reader._buffer) > 0 else 0
                    batch = bytes(reader._buffer).count(b"\n")
                    if self.tempfails > 0:
                        self.tempfails -= 1
                        await reply("451 4.3.0 try again later")
                        continue
                    sender = cmd[cmd.index("<") + 1:cmd.index(">")]
                    params = " ".join(cmd[cmd.index(">") + 1:].split())
                    if not args.smtputf8 and not line.isascii():
                        sender = None
                        await reply("550 5.6.7 non-ASCII address without SMTPUTF8")
                        continue
                    size = -1
                    mail_params = cmd[cmd.index(">") + 1:].strip()
                    rcpt_params = []
                    for param in cmd[cmd.index(">") + 1:].split():
                        if param.upper().startswith("SIZE="):
                            size = int(param[5:])
                    rcpts = []
                    await reply("250 2.1.0 ok")
                elif verb == "RCPT":
                    if sender is None:
                        await reply("503 5.5.1 need MAIL")
                        continue
                    r = cmd[cmd.index("<") + 1:cmd.index(">")]
                    if not args.smtputf8 and not line.isascii():
                        await reply("553 5.6.7 non-ASCII address without SMTPUTF8")
                        continue
                    if r.startswith("unknown"):
                        await reply("550 5.1.1 <%s>: no such user" % r)
                        continue
                    rcpts.append(r)
                    rcpt_params.append(cmd[cmd.index(">") + 1:].strip())
                    await reply("250 2.1.5 ok")
                elif verb == "DATA":
                    if sender is None or not rcpts:
                        await reply("554 5.5.1 no valid recipients")
                        continue
                    await reply("354 go ahead")
                    if self.data_stalls > 0:
                        # Read nothing for a while: the client's data
                        # block or final dot times out.
                        self.data_stalls -= 1
                        await asyncio.sleep(args.stall_data)
                    data = bytearray()
                    while True:
                        l = await asyncio.wait_for(reader.readline(), 60)
                        if not l:
                            return
                        if l == b".\r\n":
                            break
                        if l.startswith(b"."):
                            l = l[1:]
                        data += l
                    self.store(helo, sender, rcpts, bytes(data), pipelined, tls, conn, batch,
                               rsets, size, params, mail_params, rcpt_params)
                    if self.args.delay > 0:
                        await asyncio.sleep(self.args.delay)
                    if self.args.stall > 0 and self.count == 1:
                        # Hold the reply: the test kills the client meanwhile.
                        await asyncio.sleep(self.args.stall)
                    if args.lmtp:
                        for r in rcpts:
                            if r.startswith("full"):
                                await reply("452 4.2.2 <%s>: mailbox full" % r)
                            else:
                                await reply("250 2.0.0 <%s> delivered" % r)
                    else:
                        await reply("250 2.0.0 queued as %d" % self.count)
                    sender, rcpts = None, []
                    if args.hang_up:
                        return
                elif verb == "RSET":
                    sender, rcpts = None, []
                    rsets += 1
                    await reply("250 2.0.0 ok")
                elif verb == "NOOP":
                    await reply("250 2.0.0 ok")
                elif verb == "QUIT":
                    await reply("221 2.0.0 bye")
                    return
                else:
                    await reply("502 5.5.2 unknown command")
        except (asyncio.TimeoutError, ConnectionError, ssl.SSLError):
            return
        finally:
            self.active -= 1
            writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--unix")
    p.add_argument("--dir", required=True)
    p.add_argument("--tempfail", type=int, default=0)
    p.add_argument("--lmtp", action="store_true")
    p.add_argument("--no-ehlo", action="store_true")
    p.add_argument("--tls", nargs=2)
    p.add_argument("--stall", type=float, default=0)
    p.add_argument("--delay", type=float, default=0)
    p.add_argument("--stall-data", type=float, default=0)
    p.add_argument("--no-pipelining", action="store_true")
    p.add_argument("--hang-up", action="store_true")
    p.add_argument("--dsn", action="store_true")
    p.add_argument("--smtputf8", action="store_true")
    args = p.parse_args()
    sink = Sink(args)
    if args.unix:
        server = await asyncio.start_unix_server(sink.session, args.unix)
        # The delivery process runs as an unprivileged user.
        os.chmod(args.unix, 0o666)
    else:
        server = await asyncio.start_server(sink.session, args.addr, args.port)
    with open(os.path.join(args.dir, "ready"), "w") as f:
        f.write("%d\n" % os.getpid())
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
