#!/usr/bin/env python3
"""Fails when a crate's top-level modules import each other in a cycle.

Crates cannot form cycles (cargo refuses them); modules inside a crate can,
and a cycle there is a crate that does not have one job per module. A
module's dependencies are the `crate::<module>` paths in its code (comments
and doc links left out). Standard library only.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PATH = re.compile(r"\bcrate::([a-z_][a-z_0-9]*)")
GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)
TESTS = re.compile(r"^#\[cfg\(test\)\]", re.M)


def graph(src):
    deps = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        name = rel.parts[0]
        if name in ("lib", "main"):
            continue
        found = deps.setdefault(name, set())
        text = TESTS.split(f.read_text(encoding="utf-8"), maxsplit=1)[0]
        code = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
        names = set(PATH.findall(code))
        for group in GROUP.findall(code):
            names.update(part.strip().split("::")[0] for part in group.split(","))
        found.update(n for n in names if n and n != name and n != "self")
    return deps


def cycle(deps):
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(deps.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(deps):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def main():
    crates = sorted(p.parent / "src" for p in ROOT.glob("**/Cargo.toml")
                    if (p.parent / "src").is_dir() and "node_modules" not in p.parts
                    and "target" not in p.parts)
    bad = False
    for src in crates:
        found = cycle(graph(src))
        if found:
            bad = True
            print(f"module cycle in {src.relative_to(ROOT)}: {' -> '.join(found)}", file=sys.stderr)
    if bad:
        sys.exit(1)
    print(f"no module cycles in {len(crates)} crates")


if __name__ == "__main__":
    main()
