#!/usr/bin/env python3
"""Folds `perf script` stacks of a stripped Go binary (the Temporal CLI's dev server) into
flamegraph lines, naming each frame from the binary's own .gopclntab (Go keeps it in a stripped
binary for its stack traces; perf cannot read it).

    perf script -i perf.data -F ip | scripts/go-fold.py BINARY > folded.txt
    scripts/go-fold.py --packages < folded.txt          # self time per Go package, top 25
    scripts/go-fold.py --inclusive A B ... < folded.txt  # share of samples with A (B, ...) on the stack
"""
import bisect, struct, subprocess, sys
from collections import Counter


def functions(binary):
    out = subprocess.run(["readelf", "-S", "-W", binary], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if ".gopclntab" in line:
            f = line.split("]", 1)[1].split()
            off, size = int(f[3], 16), int(f[4], 16)
            break
    else:
        sys.exit("no .gopclntab section")
    with open(binary, "rb") as fh:
        fh.seek(off)
        tab = fh.read(size)
    magic, _, _, _, ptr = struct.unpack_from("<IBBBB", tab, 0)
    if magic not in (0xFFFFFFF1, 0xFFFFFFF0) or ptr != 8:
        sys.exit(f"unknown pclntab magic {magic:#x}")
    nfunc, _nfiles, text, fname, _cu, _ft, _pc, pcln = struct.unpack_from("<qQQQQQQQ", tab, 8)
    entries, names = [], []
    for i in range(nfunc):
        entry, funcoff = struct.unpack_from("<II", tab, pcln + 8 * i)
        _, nameoff = struct.unpack_from("<Ii", tab, pcln + funcoff)
        start = fname + nameoff
        names.append(tab[start:tab.index(b"\0", start)].decode(errors="replace"))
        entries.append(text + entry)
    return entries, names


def name_of(entries, names, ip):
    if ip >= 0xFFFF000000000000:
        return "[kernel]"
    i = bisect.bisect_right(entries, ip) - 1
    return names[i] if i >= 0 else "[unknown]"


def fold(binary):
    entries, names = functions(binary)
    counts, stack = Counter(), []

    def flush():
        if stack:
            frames = [name_of(entries, names, ip) for ip in reversed(stack)]
            # Consecutive kernel frames as one.
            out = [f for i, f in enumerate(frames) if not (f == "[kernel]" and i and frames[i - 1] == "[kernel]")]
            counts[";".join(out)] += 1
            stack.clear()

    for line in sys.stdin:
        line = line.strip()
        if not line:
            flush()
            continue
        try:
            stack.append(int(line.split()[0], 16))
        except ValueError:
            pass
    flush()
    for s, n in counts.most_common():
        print(f"{s} {n}")


def package(func):
    if func.startswith("["):
        return func
    # go.temporal.io/server/common/persistence/sql.(*x).y -> go.temporal.io/server/common/persistence/sql
    head, _, tail = func.rpartition("/")
    return (head + "/" if head else "") + tail.split(".", 1)[0]


def packages():
    self_time, total = Counter(), 0
    for line in sys.stdin:
        stack, _, n = line.rstrip().rpartition(" ")
        leaf = stack.split(";")[-1]
        self_time[package(leaf)] += int(n)
        total += int(n)
    for p, n in self_time.most_common(25):
        print(f"{100 * n / total:5.1f}%  {p}")
    print(f"{total} samples")


def inclusive(layers):
    under, total = Counter(), 0
    for line in sys.stdin:
        stack, _, n = line.rstrip().rpartition(" ")
        total += int(n)
        for layer in layers:
            if layer in stack:
                under[layer] += int(n)
    for layer in layers:
        print(f"{100 * under[layer] / max(total, 1):5.1f}%  {layer}")
    print(f"{total} samples")


if __name__ == "__main__":
    if "--packages" in sys.argv:
        packages()
    elif "--inclusive" in sys.argv:
        inclusive(sys.argv[sys.argv.index("--inclusive") + 1:])
    else:
        fold(sys.argv[1])
