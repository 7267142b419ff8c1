#!/usr/bin/env python3
"""Include-graph check of the project's own C files (run by `make test`).

A unit is a source and its header (ps_sub.c + ps_sub.h = "ps_sub"); unit A depends on
unit B when a file of A includes B's header.  Layers only look down (README, "Code
map"), so this graph must have no cycle: every strongly connected set of two or more
units is printed with one cycle through it, and the exit status is 1.

KNOWN lists cycles still to be taken apart (none left since issue 15: the reactor
knows its subscribers by the callbacks of ps_reactor_subs_t, ps_sub looks down at it):
an entry must match a cycle exactly (a unit more in it fails too), and one that no
longer matches fails until it is removed here.

    test/include_graph.py            check (exit 0: no cycle)
    test/include_graph.py --edges    also print every unit's dependencies
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRS = ("mod_pushstream", "mod_pushstream/common", "mod_pushstream_wstunnel",
        "bench", "test/unit", "test/fuzz")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

KNOWN = set()


def files():
    """{basename: path} of every .c/.h; the build copies them flat, so names are unique."""
    found, dup = {}, []
    for d in DIRS:
        full = os.path.join(ROOT, d)
        for name in sorted(os.listdir(full)) if os.path.isdir(full) else ():
            if name.endswith((".c", ".h")):
                if name in found:
                    dup.append((name, found[name], os.path.join(d, name)))
                found[name] = os.path.join(d, name)
    return found, dup


def unit(name):
    """A .c and its .h are one unit; so is a private header X_int.h of X.c."""
    base = name.rsplit(".", 1)[0]
    return base[:-4] if base.endswith("_int") else base


def graph(found):
    g = {}
    for name, path in found.items():
        u = unit(name)
        g.setdefault(u, set())
        with open(os.path.join(ROOT, path), errors="replace") as f:
            for inc in INCLUDE.findall(f.read()):
                inc = os.path.basename(inc)
                if inc in found and unit(inc) != u:
                    g[u].add(unit(inc))
    return g


def sccs(g):
    """Tarjan, iterative: the strongly connected sets of two or more units."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], 0
    for root in sorted(g):
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = n
        n += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = n
                    n += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def one_cycle(g, comp):
    """A cycle through the first unit of comp, by breadth-first search inside comp."""
    start, inside = comp[0], set(comp)
    prev, todo = {start: None}, [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(g[v]):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in inside and w not in prev:
                prev[w] = v
                todo.append(w)
    return comp


def main(argv):
    found, dup = files()
    if dup:
        for name, a, b in dup:
            print(f"include graph: {name} exists twice ({a}, {b})")
        return 1
    g = graph(found)
    if "--edges" in argv:
        for u in sorted(g):
            print(f"{u} -> {', '.join(sorted(g[u])) or '-'}")
    found_sccs = sccs(g)
    bad = [c for c in found_sccs if frozenset(c) not in KNOWN]
    stale = KNOWN - {frozenset(c) for c in found_sccs}
    for comp in found_sccs:
        if frozenset(comp) in KNOWN:
            print(f"known include cycle (to be removed): {' -> '.join(one_cycle(g, comp))}")
    for comp in sorted(stale, key=sorted):
        print(f"include graph: KNOWN lists {', '.join(sorted(comp))}, no longer a cycle: "
              "remove it from test/include_graph.py")
    for comp in bad:
        print(f"include cycle among {len(comp)} units: {' -> '.join(one_cycle(g, comp))}")
        for u in comp:
            print(f"    {u} -> {', '.join(sorted(w for w in g[u] if w in comp))}")
    if bad or stale:
        print(f"include graph: FAIL, {len(bad)} new cycle(s) in {len(g)} units")
        return 1
    print(f"include graph: {len(g)} units, {sum(map(len, g.values()))} edges, "
          f"no new cycle ({len(found_sccs)} known)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
