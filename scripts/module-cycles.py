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


def graph(src):
    deps = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        name = rel.parts[0]
        if name in ("lib", "main"):
            continue
        found = deps.setdefault(name, set())
        for line in f.read_text(encoding="utf-8").splitlines():
            code = line.split("//", 1)[0]
            found.update(m for m in PATH.findall(code) if m != name)
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
