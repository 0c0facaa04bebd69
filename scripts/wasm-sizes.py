#!/usr/bin/env python3
"""Code bytes of a .wasm by crate, largest first: what each piece costs.

Reads the function names of the name section (the cargo output, before
wasm-bindgen strips them) and adds each function body's size to the crate
that owns its symbol (the first crate of a v0-mangled name; generic code
counts for the crate that defines it, not the one that instantiates it).

    python3 scripts/wasm-sizes.py \
      ~/.cache/mangaassist/wasm-target/wasm-release/wasm32-unknown-unknown/wasm-release/mangaassist_wasm.wasm
"""
import re, sys, collections

def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7f) << s; s += 7
        if x < 0x80: return r, i

data = open(sys.argv[1], "rb").read()
assert data[:4] == b"\0asm"
i = 8
imports = 0; bodies = []; names = {}
while i < len(data):
    sid = data[i]; i += 1
    size, i = leb(data, i); end = i + size
    if sid == 2:  # imports: count function imports
        n, j = leb(data, i)
        for _ in range(n):
            l, j = leb(data, j); j += l
            l, j = leb(data, j); j += l
            kind = data[j]; j += 1
            if kind == 0: _, j = leb(data, j); imports += 1
            elif kind == 1:  # table: element type, limits
                j += 1
                flags, j = leb(data, j)
                _, j = leb(data, j)
                if flags & 1:
                    _, j = leb(data, j)
            elif kind == 2:  # memory: limits
                flags, j = leb(data, j)
                _, j = leb(data, j)
                if flags & 1:
                    _, j = leb(data, j)
            elif kind == 3:  # global: value type, mutability
                j += 2
    elif sid == 10:
        n, j = leb(data, i)
        for _ in range(n):
            l, j = leb(data, j); bodies.append(l); j += l
    elif sid == 0:
        l, j = leb(data, i); name = data[j:j+l].decode(); j += l
        if name == "name":
            while j < end:
                sub = data[j]; j += 1
                sl, j = leb(data, j); se = j + sl
                if sub == 1:
                    n, k = leb(data, j)
                    for _ in range(n):
                        idx, k = leb(data, k); l2, k = leb(data, k)
                        names[idx] = data[k:k+l2].decode("utf-8", "replace"); k += l2
                j = se
    i = end

by = collections.Counter()
for n, size in enumerate(bodies):
    name = names.get(imports + n, "?")
    m = re.search(r"C(?:s[0-9a-zA-Z]*_)?(\d+)", name) if name.startswith("_R") else None
    if m:
        crate = name[m.end():m.end() + int(m.group(1))]
    elif (m := re.match(r"_ZN(\d+)", name)):
        crate = name[len(m.group(0)):len(m.group(0)) + int(m.group(1))]
    else:
        crate = re.split(r"::|<| ", name.lstrip("<"))[0] or "?"
    crate = re.sub(r"\.\d+$", "", crate)
    by[crate] += size
total = sum(bodies)
print(f"code bytes: {total}, functions: {len(bodies)}, named: {len(names)}")
for crate, size in by.most_common(25):
    print(f"{size:>8} {100*size/total:5.1f}%  {crate}")
