#!/usr/bin/env python3
"""What a wasm module carries: its sections, and its code summed by crate (or by module path).

A small stand-in for twiggy: reads the code section (each function body's size) and the
`name` custom section (each function's name), demangles Rust's legacy symbols enough to tell
the crate (or the first DEPTH path segments), and prints the heaviest. Works on the artifact
cargo writes (names present) and on wasm-bindgen's output with `--keep-debug`/names; on a
module without a `name` section every function is `?`.

    python3 scripts/wasm-weight.py FILE.wasm [--depth N] [--top N] [--grep TEXT]
"""

import argparse
import collections
import re
import sys


def leb(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def sections(data):
    assert data[:4] == b"\0asm", "not a wasm module"
    pos = 8
    while pos < len(data):
        kind = data[pos]
        size, body = leb(data, pos + 1)
        name = None
        if kind == 0:
            length, start = leb(data, body)
            name = data[start : start + length].decode("utf-8", "replace")
        yield kind, name, body, size
        pos = body + size


def imported_functions(data, body):
    count, pos = leb(data, body)
    functions = 0
    for _ in range(count):
        for _ in range(2):  # module, field
            length, pos = leb(data, pos)
            pos += length
        kind = data[pos]
        pos += 1
        if kind == 0:  # function: type index
            _, pos = leb(data, pos)
            functions += 1
        elif kind == 1:  # table: reftype + limits
            pos += 1
            flags, pos = leb(data, pos)
            _, pos = leb(data, pos)
            if flags & 1:
                _, pos = leb(data, pos)
        elif kind == 2:  # memory: limits
            flags, pos = leb(data, pos)
            _, pos = leb(data, pos)
            if flags & 1:
                _, pos = leb(data, pos)
        elif kind == 3:  # global: valtype + mutability
            pos += 2
        elif kind == 4:  # tag
            pos += 1
            _, pos = leb(data, pos)
    return functions


def function_names(data, body, size):
    length, pos = leb(data, body)
    pos += length
    end = body + size
    names = {}
    while pos < end:
        sub = data[pos]
        sub_size, sub_body = leb(data, pos + 1)
        if sub == 1:
            count, p = leb(data, sub_body)
            for _ in range(count):
                index, p = leb(data, p)
                length, p = leb(data, p)
                names[index] = data[p : p + length].decode("utf-8", "replace")
                p += length
        pos = sub_body + sub_size
    return names


ESCAPES = {
    "$LT$": "<", "$GT$": ">", "$u20$": " ", "$RF$": "&", "$BP$": "*", "$LP$": "(",
    "$RP$": ")", "$C$": ",", "$u5b$": "[", "$u5d$": "]", "$u7b$": "{", "$u7d$": "}",
    "$u3b$": ";", "$u27$": "'", "$u22$": '"', "$u7e$": "~", "$SP$": "@", "$u2b$": "+",
}


def demangle(name):
    """Legacy Rust mangling (`_ZN…E`) to a path; anything else is returned as it is."""
    if not name.startswith("_ZN"):
        return name
    pos, parts = 3, []
    while pos < len(name) and name[pos].isdigit():
        digits = re.match(r"\d+", name[pos:]).group()
        pos += len(digits)
        part = name[pos : pos + int(digits)]
        pos += int(digits)
        if re.fullmatch(r"h[0-9a-f]{16}", part):
            continue
        if part.startswith("_$"):
            part = part[1:]
        for code, char in ESCAPES.items():
            part = part.replace(code, char)
        parts.append(part.replace("..", "::"))
    return "::".join(parts)


def owner(path, depth):
    """The crate (or first `depth` segments) a demangled path belongs to: for `<T as Trait>`
    and `<impl X for T>`, the type's (where a monomorphised generic's code lives is debatable;
    the implementing type's crate is usually the one to blame)."""
    # `<T as Trait>::f` (a blanket impl: legacy symbols name the parameter, not the type)
    generic = re.match(r"<[&*]*(?:mut )?[A-Z][A-Za-z0-9]{0,2} as (.*)", path)
    if generic:
        path = generic.group(1)
    path = path.lstrip("<&*")
    if path.startswith("impl "):
        path = path[5:]
        if " for " in path:
            path = path.split(" for ", 1)[1]
    if path.startswith("dyn "):
        path = path[4:]
    path = path.lstrip("<&*( ")
    if path.startswith("mut "):
        path = path[4:]
    segments = re.split(r"::", re.split(r"[<> ,;\[\]()]", path, 1)[0])
    return "::".join(segments[:depth]) or "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wasm")
    parser.add_argument("--depth", type=int, default=1, help="path segments to group by")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--grep", help="only functions whose demangled name contains this")
    parser.add_argument("--functions", action="store_true", help="list the heaviest functions")
    args = parser.parse_args()
    data = open(args.wasm, "rb").read()

    print(f"{args.wasm}: {len(data):,} bytes")
    imports, code, names = 0, None, {}
    for kind, name, body, size in sections(data):
        label = f"custom {name}" if kind == 0 else {
            1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
            7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount",
            13: "tag"}.get(kind, str(kind))
        print(f"  section {label:<40} {size:>12,}")
        if kind == 2:
            imports = imported_functions(data, body)
        elif kind == 10:
            code = (body, size)
        elif kind == 0 and name == "name":
            names = function_names(data, body, size)
    if code is None:
        return
    count, pos = leb(data, code[0])
    groups = collections.Counter()
    functions = []
    for i in range(count):
        size, start = leb(data, pos)
        path = demangle(names.get(imports + i, "?"))
        pos = start + size
        if args.grep and args.grep not in path:
            continue
        groups[owner(path, args.depth)] += size
        functions.append((size, path))
    total = sum(groups.values())
    print(f"code: {count:,} functions, {total:,} bytes")
    for key, size in groups.most_common(args.top):
        print(f"  {size:>10,} {100 * size / total:5.1f}%  {key}")
    if args.functions:
        for size, path in sorted(functions, reverse=True)[: args.top]:
            print(f"  {size:>10,}  {path[:200]}")


if __name__ == "__main__":
    sys.exit(main())
