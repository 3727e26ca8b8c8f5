# bench/benchlib.py: what bench/prioritization and bench/policy share:
# the machine description printed at the top of every result (cores,
# memory, kernel, file system of TMPDIR, date, load averages), and one
# run of bench/load as a child process, its statistics (JSON) and rows
# (CSV) read back. Not a benchmark by itself.
import csv, json, os, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
LOAD = os.path.join(HERE, "load")


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def machine():
    mem = 0
    for l in open("/proc/meminfo"):
        if l.startswith("MemTotal:"):
            mem = int(l.split()[1]) // 1024
    tmp = os.environ.get("TMPDIR", "/tmp")
    fs = subprocess.run(["df", "-T", tmp], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()
    fst = fs.splitlines()[1].split()[1] if len(fs.splitlines()) > 1 else "?"
    try:
        model = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
    except (OSError, IndexError):
        model = "?"
    return ("machine: %d cores (%s), %d MiB memory, Linux %s, TMPDIR %s on %s; %s UTC" %
            (os.cpu_count(), model, mem, os.uname().release, tmp, fst,
             time.strftime("%Y-%m-%d %H:%M", time.gmtime())))


def tempomxd():
    t = os.path.abspath(os.environ.get("TEMPOMXD", "./tempomxd"))
    if not os.access(t, os.X_OK):
        sys.exit("%s: no daemon at %s (set TEMPOMXD or run from a build directory)" %
                 (os.path.basename(sys.argv[0]), t))
    return t


def run_load(args, workdir, tag, verbose=False):
    """bench/load with args; (stats, rows). Raises on failure."""
    st = os.path.join(workdir, tag + ".json")
    cv = os.path.join(workdir, tag + ".csv")
    cmd = [sys.executable, LOAD, "--quiet", "--stats", st, "--csv", cv] + [str(x) for x in args]
    env = dict(os.environ, TEMPOMXD=tempomxd())
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    if verbose or r.returncode != 0:
        sys.stderr.write(r.stdout.decode(errors="replace"))
    if r.returncode != 0:
        raise RuntimeError("bench/load %s failed (exit %d)" % (tag, r.returncode))
    stats = json.load(open(st))
    rows = list(csv.DictReader(open(cv)))
    return stats, rows


def read_run(workdir, tag):
    """A run saved by run_load: (stats, rows), or None."""
    st = os.path.join(workdir, tag + ".json")
    if not os.path.exists(st):
        return None
    return json.load(open(st)), list(csv.DictReader(open(os.path.join(workdir, tag + ".csv"))))


def save_history(args, workdir):
    """A warm-up run that only builds the history; its directory."""
    h = os.path.join(workdir, "history")
    env = dict(os.environ, TEMPOMXD=tempomxd())
    r = subprocess.run([sys.executable, LOAD, "--history-save", h] + [str(x) for x in args],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0 or not os.path.isdir(h):
        sys.stderr.write(out)
        raise RuntimeError("history warm-up failed")
    return h, out.strip()


def workdir(name):
    d = tempfile.mkdtemp(prefix="tmx-%s-" % name)
    os.chmod(d, 0o755)
    return d


def fnum(x, f="%.2f"):
    return "-" if x is None else f % x


def fdelay(d):
    """A percentile from bench/load's summary: [value, exact]."""
    if d is None or d[0] is None:
        return "-"
    return ("%.2f" if d[1] else ">%.2f") % d[0]


HI_KINDS = {"known", "whitelisted", "big"}


def row_class(r):
    """The queue a message went to: as delivered (X-Tempomx-Class), else
    the one its kind is meant for."""
    if r["class"] in ("hi", "lo"):
        return r["class"]
    return "hi" if r["kind"] in HI_KINDS else "lo"


def censored_pct(vals, lbs, p):
    """The p-th percentile of exact values vals and of values known only
    to exceed lbs (still queued): [value, exact]."""
    allv = sorted([(v, 0) for v in vals] + [(v, 1) for v in lbs])
    if not allv:
        return [None, True]
    v, cens = allv[min(len(allv) - 1, int(p / 100.0 * len(allv)))]
    return [v, not cens and all(lb > v for lb in lbs)]


def delays(rows, t_end, pick):
    """Accepted, virus-free messages chosen by pick: (count, delays of the
    delivered, lower bounds of the rest)."""
    acc = [r for r in rows if r["code"] == "250" and not r["virus"] and pick(r)]
    vals = [float(r["delay"]) for r in acc if r["delay"]]
    lbs = [t_end - float(r["t_250"]) for r in acc if not r["delay"]]
    return len(acc), vals, lbs
