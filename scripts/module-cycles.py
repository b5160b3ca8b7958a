#!/usr/bin/env python3
"""Lists import cycles between modules, at every level of each crate (README "The map of the code").

A module is a file or a folder. Within each folder (the crate's `src/` included) the modules
side by side form one graph: an edge A -> B is any path in A's files (`use` trees expanded,
inline paths too; `crate::`, `super::` and `self::` resolved) that reaches into B. So
`http/list_cache.rs` naming `super::sessions::…` while `http/sessions.rs` names
`super::list_cache::…` is a cycle of `http`, as `link/` and `registry/` naming each other is one
of the crate. A folder's own `mod.rs` is the folder, not one of its modules: a child naming an
item its `mod.rs` defines is no edge. Comments, test-only files (`*_tests.rs`, `tests.rs`,
`*_tests/`) and `#[cfg(test)]` items are skipped. Prints each cycle and exits 1 if there is one.

Usage: module-cycles.py [ROOT…] (default: every crate of the workspace).
"""
import os
import re
import sys

ROOTS = {
    "gateway-supervisor": "src",
    "gateway-supervisor-actors": "actors/src",
    "fake-gateway": "fake-gateway/src",
    "gs-bench": "bench/src",
    "gs-test-support": "test-support/src",
}
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
INLINE = re.compile(rf"\b(?:crate|super|self)(?:::{IDENT})+")
USE = re.compile(r"\buse\s+([^;]*);", re.S)


def strip_tests(text):
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        if lines[i].strip() == "#[cfg(test)]":
            # The next item (a module, a fn, a `mod x;`), by brace counting.
            j, depth, started = i + 1, 0, False
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                started = started or "{" in lines[j] or lines[j].rstrip().endswith(";")
                if started and depth <= 0:
                    break
                j += 1
            i = j + 1
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(l.split("//")[0] for l in text.split("\n"))


def expand(tree):
    """`a::{b, c::{d, e}}` -> [`a::b`, `a::c::d`, `a::c::e`] (`as` and `self` handled)."""
    tree = re.sub(rf"\s+as\s+{IDENT}", "", tree)
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1:i], tree[i + 1:]
                parts, d, cur = [], 0, ""
                for c in inner:
                    if c == "," and d == 0:
                        parts.append(cur)
                        cur = ""
                        continue
                    d += c == "{"
                    d -= c == "}"
                    cur += c
                parts.append(cur)
                paths = []
                for p in filter(None, parts):
                    for e in expand(p):
                        paths.append(prefix[:-2] if e == "self" else prefix + e + rest)
                return paths
    return [tree]


def module_path(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


def resolve(here, path):
    """An absolute module path for `path` as written in the module `here`, or None."""
    segs = path.split("::")
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    elif segs[0] in ("super", "self"):
        base = list(here)
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                if not base:
                    return None
                base.pop()
            segs = segs[1:]
    else:
        return None
    return base + [s for s in segs if s != "*"]


def children(root):
    """Each folder's modules: {folder path tuple: set of module names}."""
    kids = {}
    for dirpath, dirs, files in os.walk(root):
        here = tuple(os.path.relpath(dirpath, root).split(os.sep)) if dirpath != root else ()
        names = {f[:-3] for f in files if f.endswith(".rs") and f[:-3] not in ("mod", "lib", "main")}
        names |= set(dirs)
        kids[here] = names
    return kids


def edges(root):
    kids = children(root)
    graphs = {}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.endswith("_tests")]
        for f in files:
            if not f.endswith(".rs") or f.endswith("_tests.rs") or f == "tests.rs":
                continue
            path = os.path.join(dirpath, f)
            here = module_path(root, path)
            text = strip_comments(strip_tests(open(path).read()))
            written = [p for tree in USE.findall(text) for p in expand(tree)]
            written += INLINE.findall(USE.sub("", text))
            for p in written:
                target = resolve(here, p)
                if target is None:
                    continue
                # The folder both sit in, and the module of each side within it.
                n = 0
                while n < len(here) and n < len(target) and here[n] == target[n]:
                    n += 1
                if n >= len(here) or n >= len(target):
                    continue  # a module naming itself, its own parts, or a parent's items
                folder = tuple(here[:n])
                a, b = here[n], target[n]
                if b not in kids.get(folder, ()):
                    continue  # an item of the folder's mod.rs, not a module
                graph = graphs.setdefault(folder, {})
                graph.setdefault(a, set()).add(b)
                graph.setdefault(b, set())
    return graphs


def cycles(graph):
    found, index, low, stack, on, counter = [], {}, {}, [], set(), [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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


roots = {r: r for r in sys.argv[1:]} or ROOTS
status = 0
for crate, root in roots.items():
    for folder, graph in sorted(edges(root).items()):
        for comp in cycles(graph):
            status = 1
            where = "/".join(folder) + "/" if folder else "(top level)"
            print(f"{crate}: {where}: modules in a cycle: {', '.join(comp)}")
if status == 0:
    print("no import cycles between modules, at any level")
sys.exit(status)
