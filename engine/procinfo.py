"""What ``top`` and ``stats`` read about a running container, straight from the kernel.

``top`` lists the processes of the container's cgroup (cgroup.procs) with the columns of
``ps -ef`` (Docker runs ``ps`` on the host and keeps the container's pids; the same fields
come from /proc/<pid>/stat, status and cmdline here, without a subprocess). ``stats`` takes
two samples of the cgroup's CPU time against the host's (/proc/stat), as Docker's CLI
computes CPU % from two API samples, plus memory, block I/O and pids from
``Cgroup.stats()`` and network bytes from /proc/<pid>/net/dev inside the container's netns.
"""

from __future__ import annotations

import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class Proc:
    """One process as /proc shows it (the fields ps -ef and -o use)."""

    def __init__(self, pid: int) -> None:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
        self.pid = pid
        self.comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        self.state = rest[0]
        self.ppid = int(rest[1])
        self.tty_nr = int(rest[4])
        self.utime, self.stime = int(rest[11]), int(rest[12])
        self.nice = int(rest[16])
        self.nlwp = int(rest[17])
        self.start_ticks = int(rest[19])
        self.vsize = int(rest[20])
        self.rss = int(rest[21]) * PAGE
        self.uid = self.gid = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    self.uid = int(line.split()[2])  # effective, as ps shows
                elif line.startswith("Gid:"):
                    self.gid = int(line.split()[2])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().rstrip(b"\0").split(b"\0")
        self.args = " ".join(a.decode(errors="replace") for a in argv if a) or f"[{self.comm}]"

    def cpu_seconds(self) -> float:
        return (self.utime + self.stime) / CLK_TCK

    def elapsed(self) -> float:
        return max(_uptime() - self.start_ticks / CLK_TCK, 0.0)

    def started(self) -> float:
        return _boot_time() + self.start_ticks / CLK_TCK


def _uptime() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _user(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _tty(nr: int) -> str:
    """ps's TTY: pts/N, ttyN or ``?`` (linux/kdev_t.h major/minor split of tty_nr)."""
    if nr == 0:
        return "?"
    major, minor = (nr >> 8) & 0xFFF, (nr & 0xFF) | ((nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    return "?"


def _hms(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    text = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}-{text}" if days else text


def _etime(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if days:
        return f"{days}-{h:02d}:{m:02d}:{s:02d}"
    return f"{h:02d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _stime(when: float) -> str:
    """ps's STIME: HH:MM today, MonDD this year, else the year."""
    t, today = time.localtime(when), time.localtime()
    if t[:3] == today[:3]:
        return time.strftime("%H:%M", t)
    if t.tm_year == today.tm_year:
        return time.strftime("%b%d", t)
    return str(t.tm_year)


def _pcpu(p: Proc) -> float:
    el = p.elapsed()
    return 100.0 * p.cpu_seconds() / el if el > 0 else 0.0


def _pmem(p: Proc) -> float:
    total = mem_total()
    return 100.0 * p.rss / total if total else 0.0


#: ps -o keywords: (header, value)
FIELDS = {
    "uid": ("UID", lambda p: str(p.uid)),
    "user": ("USER", lambda p: _user(p.uid)),
    "euser": ("EUSER", lambda p: _user(p.uid)),
    "gid": ("GID", lambda p: str(p.gid)),
    "pid": ("PID", lambda p: str(p.pid)),
    "ppid": ("PPID", lambda p: str(p.ppid)),
    "c": ("C", lambda p: str(int(_pcpu(p)))),
    "%cpu": ("%CPU", lambda p: f"{_pcpu(p):.1f}"),
    "pcpu": ("%CPU", lambda p: f"{_pcpu(p):.1f}"),
    "%mem": ("%MEM", lambda p: f"{_pmem(p):.1f}"),
    "pmem": ("%MEM", lambda p: f"{_pmem(p):.1f}"),
    "stime": ("STIME", lambda p: _stime(p.started())),
    "start": ("START", lambda p: _stime(p.started())),
    "tty": ("TTY", lambda p: _tty(p.tty_nr)),
    "tt": ("TT", lambda p: _tty(p.tty_nr)),
    "time": ("TIME", lambda p: _hms(p.cpu_seconds())),
    "etime": ("ELAPSED", lambda p: _etime(p.elapsed())),
    "cmd": ("CMD", lambda p: p.args),
    "args": ("COMMAND", lambda p: p.args),
    "command": ("COMMAND", lambda p: p.args),
    "comm": ("COMMAND", lambda p: p.comm),
    "stat": ("STAT", lambda p: p.state),
    "s": ("S", lambda p: p.state),
    "ni": ("NI", lambda p: str(p.nice)),
    "nlwp": ("NLWP", lambda p: str(p.nlwp)),
    "vsz": ("VSZ", lambda p: str(p.vsize // 1024)),
    "rss": ("RSS", lambda p: str(p.rss // 1024)),
}
DEFAULT = ["uid-name", "pid", "ppid", "c", "stime", "tty", "time", "cmd"]
FIELDS["uid-name"] = ("UID", lambda p: _user(p.uid))  # ps -f shows the name under UID
AUX = ["user", "pid", "%cpu", "%mem", "vsz", "rss", "tty", "stat", "start", "time", "command"]


def ps_columns(options: list[str]) -> list[str]:
    """The columns for ``top``'s ps options: -ef (Docker's default), -e/-f/-A, aux, -o LIST."""
    cols: list[str] = []
    it = iter(options)
    for opt in it:
        if opt in ("-e", "-f", "-ef", "-fe", "-A", "-Af", "-eF", "-ely", "-el"):
            continue
        if opt in ("aux", "-aux", "au", "ux"):
            return AUX
        if opt.startswith("-o") or opt in ("o", "--format"):
            spec = opt[2:] if opt.startswith("-o") and len(opt) > 2 else next(it, "")
            for word in spec.replace(",", " ").split():
                key, _, title = word.partition("=")
                if key not in FIELDS:
                    raise ValueError(f"ps: unknown output format field {key!r}")
                cols.append(key + ("=" + title if title else ""))
            continue
        raise ValueError(f"ps: unsupported option {opt!r} (top takes -ef, aux or -o FIELDS)")
    return cols or DEFAULT


def top(pids: list[int], options: list[str]) -> tuple[list[str], list[list[str]]]:
    """Titles and rows for the processes ``pids``; processes gone meanwhile are skipped."""
    cols = ps_columns(options)
    titles = []
    for c in cols:
        key, _, title = c.partition("=")
        titles.append(title or FIELDS[key][0])
    rows = []
    for pid in sorted(pids):
        try:
            p = Proc(pid)
        except (OSError, ValueError, IndexError):
            continue
        rows.append([FIELDS[c.partition("=")[0]][1](p) for c in cols])
    return titles, rows


# -- stats ---------------------------------------------------------------------------------


def mem_total() -> int:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024


def system_cpu_ns() -> int:
    """All CPUs' time from /proc/stat's first line, in ns (Docker's SystemUsage)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]  # user nice system idle iowait irq softirq
    return sum(int(x) for x in fields) * 1_000_000_000 // CLK_TCK


def net_io(pid: int) -> tuple[int, int]:
    """(rx, tx) bytes of every interface but lo in the network namespace of ``pid``."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.readlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        name, _, data = line.partition(":")
        if name.strip() == "lo":
            continue
        v = data.split()
        rx += int(v[0])
        tx += int(v[8])
    return rx, tx


def memory_cache(cgroup) -> int:  # noqa: ANN001
    """Inactive page cache charged to the cgroup, which Docker's CLI leaves out of MEM
    USAGE (total_inactive_file on v1, inactive_file on v2: memory.stat)."""
    from ..cgroupfs.layout import UNIFIED

    d = cgroup.paths.get("memory")
    key = "total_inactive_file"
    if d is None and cgroup.layout.mode == "v2":
        d, key = cgroup.paths.get(UNIFIED), "inactive_file"
    if d is None:
        return 0
    try:
        with open(f"{d}/memory.stat") as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == key:
                    return int(v)
    except OSError:
        pass
    return 0
