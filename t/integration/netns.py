#!/usr/bin/env python3
# t/integration/netns.py: SMTP clients behind a slow link, for
# t/integration/test_netem.c and bench/classifier.
#
# A network namespace joined to the root namespace by veth, with
# addresses from the RFC 2544 benchmarking range 198.18.0.0/15: the root
# side is 198.18.S.1/24 (tempomxd listens there), the namespace side
# 198.18.S.2/24 plus 198.18.S.10-.59 for the clients, one address per
# client kind so the sender history keeps them apart. A one-way delay is
# added in both directions, so the round trip is twice that:
#  - with "tc qdisc ... netem delay" on both ends of one veth pair, where
#    the kernel has sch_netem;
#  - else (kernels built without it, like some VM guests) the two sides
#    are two veth pairs whose inner ends sit in a third, address-less
#    namespace NAME-l, and a small bridge process there forwards every
#    frame between them after the delay (AF_PACKET sockets). TCP still
#    runs end to end, so the kernel's RTT (TCP_INFO) includes the delay.
#    The two end devices send with checksum offload off (ethtool), since
#    the bridge copies frames without completing them.
# Only the namespace's own addresses are ever targeted. State (mode,
# the bridge's PID, the current delay) lives in /tmp/tmx-netns-NAME/.
#
#   netns.py up NAME S          create namespace NAME with subnet 198.18.S.0/24
#   netns.py delay NAME MS      one-way delay MS in each direction (0: none)
#   netns.py down NAME          remove it all (stops the bridge by its PID)
#   netns.py client KIND SRC HOST PORT [ROUNDS] [INTERVAL_MS]
#                               run ROUNDS sessions (run it inside the
#                               namespace with "ip netns exec NAME")
#   netns.py bridge A B STATEDIR
#                               the delay bridge (started by "up")
#
# KIND "polite" waits for every reply, then sends the next command at
# once. KIND "scripted" waits for the banner, then writes EHLO, MAIL and
# RCPT at fixed INTERVAL_MS intervals without reading the replies in
# between (no pipelining: each command reaches the server after the
# previous reply left), so on a slow link its commands arrive sooner
# than one round trip after the reply they seem to answer; then it reads
# the three replies and finishes politely. Each session prints one line,
# "session N: CODE" with the reply to the end of data; the exit status
# is 0 when every session got 250. Every step has a timeout.
import heapq, os, shutil, signal, socket, subprocess, sys, threading, time

TIMEOUT = 30
BRIDGE_LIFETIME = 1800


def sh(*argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stdout.decode(errors="replace").strip()))


def names(name):
    # Interface names are at most 15 characters; the caller's NAME is short.
    n = name[:12]
    return {"root": n + "r", "inner": n + "n", "lx": n + "x", "ly": n + "y",
            "link": name + "-l", "state": "/tmp/tmx-netns-" + name}


def has_netem():
    probe = "tmxprobe%d" % os.getpid()
    try:
        sh("ip", "link", "add", probe + "a", "type", "veth", "peer", "name", probe + "b")
    except RuntimeError:
        return False
    r = subprocess.run(["tc", "qdisc", "add", "dev", probe + "a", "root", "netem", "delay", "1ms"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    subprocess.run(["ip", "link", "del", probe + "a"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30)
    return r.returncode == 0


def up(name, subnet):
    n = names(name)
    net = "198.18.%d" % subnet
    out = subprocess.run(["ip", "-o", "addr", "show", "to", net + ".0/24"],
                         stdout=subprocess.PIPE, timeout=30).stdout
    if out.strip():
        raise RuntimeError("%s.0/24 is already in use here" % net)
    os.makedirs(n["state"], exist_ok=True)
    mode = "netem" if has_netem() else "bridge"
    sh("ip", "netns", "add", name)
    try:
        if mode == "netem":
            sh("ip", "link", "add", n["root"], "type", "veth", "peer", "name", n["inner"])
            sh("ip", "link", "set", n["inner"], "netns", name)
        else:
            sh("ip", "netns", "add", n["link"])
            sh("ip", "link", "add", n["root"], "type", "veth", "peer", "name", n["ly"])
            sh("ip", "link", "add", n["inner"], "type", "veth", "peer", "name", n["lx"])
            sh("ip", "link", "set", n["inner"], "netns", name)
            for d in ("lx", "ly"):
                sh("ip", "link", "set", n[d], "netns", n["link"])
                sh("ip", "-n", n["link"], "link", "set", n[d], "up")
            subprocess.run(["ip", "netns", "exec", n["link"], "sysctl", "-qw",
                            "net.ipv6.conf.all.disable_ipv6=1"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        sh("ip", "addr", "add", net + ".1/24", "dev", n["root"])
        sh("ip", "link", "set", n["root"], "up")
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", name, "addr", "add", net + ".2/24", "dev", n["inner"])
        for h in range(10, 60):
            sh("ip", "-n", name, "addr", "add", "%s.%d/32" % (net, h), "dev", n["inner"])
        sh("ip", "-n", name, "link", "set", n["inner"], "up")
        if mode == "bridge":
            # The bridge copies frames as they are: the sending ends must
            # fill in their checksums (no offload) and send no GSO frames.
            sh("ethtool", "-K", n["root"], "tx", "off")
            sh("ip", "netns", "exec", name, "ethtool", "-K", n["inner"], "tx", "off")
        with open(n["state"] + "/mode", "w") as f:
            f.write(mode + "\n")
        if mode == "bridge":
            with open(n["state"] + "/delay", "w") as f:
                f.write("0\n")
            log = open(n["state"] + "/bridge.log", "w")
            p = subprocess.Popen(["ip", "netns", "exec", n["link"], sys.executable,
                                  os.path.abspath(__file__), "bridge", n["lx"], n["ly"],
                                  n["state"]], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
            with open(n["state"] + "/bridge.pid", "w") as f:
                f.write("%d\n" % p.pid)
            # Up once a frame can cross: a connection refused by the
            # root side (nothing listens on port 9) proves the path.
            probe = ("import socket\n"
                     "try: socket.create_connection(('%s.1', 9), 1)\n"
                     "except ConnectionRefusedError: raise SystemExit(0)\n"
                     "except OSError: raise SystemExit(1)\n" % net)
            for _ in range(30):
                r = subprocess.run(["ip", "netns", "exec", name, sys.executable, "-c", probe],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   timeout=30)
                if r.returncode == 0:
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("the delay bridge passes no traffic (%s)" %
                                   open(n["state"] + "/bridge.log").read().strip())
    except Exception:
        down(name)
        raise
    return mode


def delay(name, ms):
    n = names(name)
    mode = open(n["state"] + "/mode").read().strip()
    if mode == "bridge":
        with open(n["state"] + "/delay.new", "w") as f:
            f.write("%d\n" % ms)
        os.rename(n["state"] + "/delay.new", n["state"] + "/delay")
        time.sleep(0.3)  # the bridge reads it every 100 ms
        return
    for pre, dev in ((["ip", "netns", "exec", name], n["inner"]), ([], n["root"])):
        subprocess.run(pre + ["tc", "qdisc", "del", "dev", dev, "root"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        if ms > 0:
            sh(*(pre + ["tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", "%dms" % ms]))


def down(name):
    n = names(name)
    try:
        pid = int(open(n["state"] + "/bridge.pid").read())
        # Only the bridge this script started (its own session leader).
        if os.getsid(pid) == pid:
            os.killpg(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass
    for argv in (["ip", "link", "del", n["root"]], ["ip", "netns", "del", name],
                 ["ip", "netns", "del", n["link"]]):
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    shutil.rmtree(n["state"], ignore_errors=True)


def bridge(a, b, state):
    """Forward every frame between interfaces a and b after the delay in
    state/delay (ms), read every 100 ms. Ends when state/ goes away, or
    after BRIDGE_LIFETIME seconds should nobody ever call "down"."""
    socks = {}
    for dev in (a, b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        s.bind((dev, 0))
        socks[dev] = s
    other = {a: socks[b], b: socks[a]}
    pending, lock, wake = [], threading.Lock(), threading.Event()
    cur = [0.0]
    seq = [0]

    def rx(dev):
        s = socks[dev]
        while True:
            frame, addr = s.recvfrom(65536)
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            with lock:
                seq[0] += 1
                heapq.heappush(pending, (time.monotonic() + cur[0], seq[0], dev, frame))
            wake.set()

    for dev in (a, b):
        threading.Thread(target=rx, args=(dev,), daemon=True).start()
    next_read, end = 0.0, time.monotonic() + BRIDGE_LIFETIME
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_read:
            try:
                cur[0] = int(open(state + "/delay").read()) / 1000.0
            except FileNotFoundError:
                return 0
            except (OSError, ValueError):
                pass
            next_read = now + 0.1
        due = []
        with lock:
            while pending and pending[0][0] <= now:
                due.append(heapq.heappop(pending))
            wait = min(pending[0][0] - now, 0.1) if pending else 0.1
        for _, _, dev, frame in due:
            try:
                other[dev].send(frame)
            except OSError:
                pass
        wake.wait(max(wait, 0))
        wake.clear()
    return 0


class Conn:
    def __init__(self, src, host, port):
        self.s = socket.create_connection((host, port), TIMEOUT, (src, 0))
        # Without it Nagle would hold each timed write until the previous
        # one is acknowledged, a round trip later.
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def reply(self):
        """One whole (multi-line) reply; its code, 0 on close."""
        while True:
            while b"\r\n" in self.buf:
                line, self.buf = self.buf.split(b"\r\n", 1)
                if len(line) >= 4 and line[3:4] == b" ":
                    return int(line[:3])
                if len(line) < 4 or line[3:4] != b"-":
                    return -2
            d = self.s.recv(4096)
            if not d:
                return 0
            self.buf += d

    def close(self):
        self.s.close()


BODY = b"From: slow@example.test\r\nTo: u@localhost\r\nSubject: slow link\r\n\r\nhello\r\n.\r\n"


def session(kind, src, host, port, interval):
    c = Conn(src, host, port)
    try:
        if c.reply() != 220:
            return -1
        cmds = [b"EHLO slow.example.test\r\n", b"MAIL FROM:<slow@example.test>\r\n",
                b"RCPT TO:<u@localhost>\r\n"]
        if kind == "polite":
            for cmd in cmds:
                c.send(cmd)
                code = c.reply()
                if code != 250:
                    return code
        else:
            for i, cmd in enumerate(cmds):
                if i:
                    time.sleep(interval / 1000.0)
                c.send(cmd)
            for _ in cmds:
                code = c.reply()
                if code != 250:
                    return code
        c.send(b"DATA\r\n")
        code = c.reply()
        if code != 354:
            return code
        c.send(BODY)
        code = c.reply()
        c.send(b"QUIT\r\n")
        c.reply()
        return code
    finally:
        c.close()


def client(kind, src, host, port, rounds, interval):
    ok = True
    # Make both ends learn each other's link address first (port 9 is
    # closed: a refusal), so no ARP exchange inflates the first RTT.
    try:
        socket.create_connection((host, 9), TIMEOUT, (src, 0)).close()
    except OSError:
        pass
    for n in range(rounds):
        try:
            code = session(kind, src, host, port, interval)
        except OSError as e:
            code = "error %s" % e
        print("session %d: %s" % (n + 1, code), flush=True)
        ok = ok and code == 250
        # Let the history record the session before the next one.
        time.sleep(1)
    return 0 if ok else 1


def main(argv):
    if len(argv) >= 3 and argv[0] == "up":
        print(up(argv[1], int(argv[2])))
    elif len(argv) >= 3 and argv[0] == "delay":
        delay(argv[1], int(argv[2]))
    elif len(argv) >= 2 and argv[0] == "down":
        down(argv[1])
    elif len(argv) >= 4 and argv[0] == "bridge":
        return bridge(argv[1], argv[2], argv[3])
    elif len(argv) >= 5 and argv[0] == "client":
        rounds = int(argv[5]) if len(argv) > 5 else 2
        interval = int(argv[6]) if len(argv) > 6 else 20
        return client(argv[1], argv[2], argv[3], int(argv[4]), rounds, interval)
    else:
        print(__doc__ or "usage: see the header of netns.py", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print("netns.py: %s" % e, file=sys.stderr)
        sys.exit(1)
