"""The largest allocation sources in a dhat profile (bench alloc_profile).

    python3 scripts/alloc-sites.py dhat-heap.json REQUESTS [TOP]

Lists the allocation sites dhat recorded at least once per request, by
allocations per request (the program's start-up is spread over them too,
which is why only sites at one or more per request are shown), each named
by its first frame in this project's code or, failing that, the first frame
outside the allocator and the standard library's collections.
"""

import json
import sys

SKIP = ("alloc::", "dhat::", "core::", "<alloc::", "<dhat::", "std::", "<core::",
        "__rust", "<std::", "hashbrown::", "<hashbrown::", "[root]")


def name(frame):
    # "0x1234: path::to::fn (src/file.rs:10:5)"
    return frame.split(": ", 1)[-1]


def site(frames):
    named = [name(f) for f in frames]
    ours = [f for f in named if "mangaassist" in f]
    if ours:
        return ours[0]
    rest = [f for f in named if not f.startswith(SKIP)]
    return rest[0] if rest else (named[0] if named else "?")


def main():
    path, requests = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 12
    data = json.load(open(path))
    table = data["ftbl"]
    by_site = {}
    for pp in data["pps"]:
        key = site([table[i] for i in pp["fs"]])
        blocks, bytes_ = by_site.get(key, (0, 0))
        by_site[key] = (blocks + pp["tbk"], bytes_ + pp["tb"])
    rows = sorted(by_site.items(), key=lambda kv: -kv[1][0])
    print(f"{'allocs/req':>10} {'bytes/req':>10}  source")
    for key, (blocks, bytes_) in rows[:top]:
        if blocks < requests:
            break
        print(f"{blocks / requests:>10.1f} {bytes_ / requests:>10.0f}  {key}")


if __name__ == "__main__":
    main()
