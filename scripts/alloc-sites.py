"""The largest allocation sources per request in dhat profiles (bench alloc_profile).

    python3 scripts/alloc-sites.py SHORT.json N_SHORT LONG.json N_LONG [TOP]

Two runs of `alloc_profile` with different request counts: per call site,
the difference in allocations (and bytes) divided by the difference in
requests is what each request costs there. Start-up (the policy
component's compilation, the emulator, the first miss) is the same in both
and drops out. Each site is named by its first frame in this project's
code or, failing that, the first frame outside the allocator and the
standard library.
"""

import json
import sys

SKIP = ("alloc::", "dhat::", "core::", "<alloc::", "<dhat::", "std::", "<core::",
        "__rust", "<std::", "hashbrown::", "<hashbrown::", "[root]")


def name(frame):
    # "0x1234: path::to::fn (src/file.rs:10:5)"
    return frame.split(": ", 1)[-1].split(" (", 1)[0]


def site(frames):
    named = [name(f) for f in frames]
    ours = [f for f in named if "mangaassist" in f]
    if ours:
        return ours[0]
    rest = [f for f in named if not f.startswith(SKIP)]
    return rest[0] if rest else (named[0] if named else "?")


def sites(path):
    data = json.load(open(path))
    table = data["ftbl"]
    out = {}
    for pp in data["pps"]:
        key = site([table[i] for i in pp["fs"]])
        blocks, bytes_ = out.get(key, (0, 0))
        out[key] = (blocks + pp["tbk"], bytes_ + pp["tb"])
    return out


def main():
    short, n_short, long_, n_long = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    top = int(sys.argv[5]) if len(sys.argv) > 5 else 15
    a, b = sites(short), sites(long_)
    n = n_long - n_short
    rows = []
    for key in set(a) | set(b):
        blocks = (b.get(key, (0, 0))[0] - a.get(key, (0, 0))[0]) / n
        bytes_ = (b.get(key, (0, 0))[1] - a.get(key, (0, 0))[1]) / n
        rows.append((blocks, bytes_, key))
    rows.sort(reverse=True)
    total_blocks = sum(r[0] for r in rows)
    total_bytes = sum(r[1] for r in rows)
    print(f"per request: {total_blocks:.1f} allocations, {total_bytes:.0f} bytes")
    print(f"{'allocs/req':>10} {'bytes/req':>10}  source")
    for blocks, bytes_, key in rows[:top]:
        if blocks < 0.05:
            break
        print(f"{blocks:>10.1f} {bytes_:>10.0f}  {key}")


if __name__ == "__main__":
    main()
