#!/usr/bin/env python3
"""Checks that every crate Parley builds with is licensed compatibly with
MIT OR Apache-2.0: each package's SPDX expression must be satisfiable with the
permissive licences allowed below. (cargo-deny does the same; this avoids
compiling it in every CI run.)"""

import json
import re
import subprocess
import sys

ALLOWED = {
    "MIT", "MIT-0", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "BSD-2-Clause",
    "BSD-3-Clause", "ISC", "Zlib", "Unicode-3.0", "Unicode-DFS-2016", "0BSD",
    "BSL-1.0", "CDLA-Permissive-2.0", "OpenSSL", "Unlicense",
}


def tokens(expr):
    # Licence ids, WITH clauses kept whole, parentheses and the operators.
    expr = expr.replace("/", " OR ")
    expr = re.sub(r"(\S+)\s+WITH\s+(\S+)", lambda m: m.group(1) + "\x00WITH\x00" + m.group(2), expr)
    return [t.replace("\x00", " ") for t in re.findall(r"\(|\)|[^\s()]+", expr)]


def satisfiable(toks):
    """Evaluates OR (lowest), AND, parentheses; a licence id is true if allowed."""
    pos = 0

    def parse_or():
        nonlocal pos
        value = parse_and()
        while pos < len(toks) and toks[pos] == "OR":
            pos += 1
            value = parse_and() or value
        return value

    def parse_and():
        nonlocal pos
        value = parse_atom()
        while pos < len(toks) and toks[pos] == "AND":
            pos += 1
            value = parse_atom() and value
        return value

    def parse_atom():
        nonlocal pos
        tok = toks[pos]
        pos += 1
        if tok == "(":
            value = parse_or()
            pos += 1  # ")"
            return value
        return tok in ALLOWED

    result = parse_or()
    if pos != len(toks):
        raise ValueError("trailing tokens")
    return result


def main():
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--locked"]))
    workspace = set(meta["workspace_members"])
    resolved = {node["id"] for node in meta["resolve"]["nodes"]}
    bad = []
    for pkg in meta["packages"]:
        if pkg["id"] not in resolved:
            continue
        lic = pkg.get("license")
        if pkg["id"] in workspace:
            if lic != "MIT OR Apache-2.0":
                bad.append(f"{pkg['name']}: workspace crate must be 'MIT OR Apache-2.0', is {lic!r}")
            continue
        if not lic:
            bad.append(f"{pkg['name']} {pkg['version']}: no SPDX licence expression")
            continue
        try:
            ok = satisfiable(tokens(lic))
        except (ValueError, IndexError):
            ok = False
        if not ok:
            bad.append(f"{pkg['name']} {pkg['version']}: {lic}")
    if bad:
        print("Licences not compatible with MIT OR Apache-2.0:")
        print("\n".join("  " + b for b in sorted(bad)))
        return 1
    print(f"licences: {len(resolved)} crates checked, all compatible with MIT OR Apache-2.0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
