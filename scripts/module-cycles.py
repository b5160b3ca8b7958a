#!/usr/bin/env python3
"""Lists import cycles between the top-level modules of each crate (README "Layout").

A module is a file or folder directly under a crate's `src/` (`link/` counts as one module,
`http/` too); an edge A → B is any `use crate::B` (or `crate::B::` path) in A's files.
Comments, test-only files (`*_tests.rs`, `tests.rs`) and `#[cfg(test)]` blocks are skipped. Prints each
cycle and exits 1 if there is one.
"""
import os
import re
import sys

ROOTS = {"gateway-supervisor": "src", "gateway-supervisor-actors": "actors/src"}
PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


def strip_tests(text):
    out, depth, skipping = [], 0, False
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "#[cfg(test)]":
            # skip the next item (a module or fn) by brace counting
            j, depth = i + 1, 0
            started = False
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                started = started or "{" in lines[j] or lines[j].rstrip().endswith(";")
                if started and depth <= 0:
                    break
                j += 1
            i = j + 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def module_of(root, path):
    rel = os.path.relpath(path, root)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def edges(root):
    graph = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs") or f.endswith("_tests.rs") or f == "tests.rs":
                continue
            path = os.path.join(dirpath, f)
            m = module_of(root, path)
            if m in ("lib", "main"):
                continue
            text = strip_tests(open(path).read())
            # Comments (doc links included) name modules without depending on them.
            text = "\n".join(l.split("//")[0] for l in text.split("\n"))
            for target in PATH.findall(text):
                if target != m:
                    graph.setdefault(m, set()).add(target)
            graph.setdefault(m, set())
    return graph


def cycles(graph):
    found, index, low, stack, on, counter = [], {}, {}, [], set(), [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return found


status = 0
for crate, root in ROOTS.items():
    for comp in cycles(edges(root)):
        status = 1
        print(f"{crate}: modules in a cycle: {', '.join(comp)}")
if status == 0:
    print("no import cycles between top-level modules")
sys.exit(status)
