"""The reader as one file: ``paddle.js`` and every module and JSON table it imports.

Netron loads a reader with one ``import()`` of its ``<format>.js``. Served as separate files,
the reader costs the browser a second round of requests (``paddle.js`` first, then the modules
and the signature table it imports) before the model can be opened; upstream's ``paddle.js`` is
one file. The launcher therefore serves ``paddle.js`` as this bundle: each module becomes a
function scope whose exports are collected in an object, each JSON table is parsed once, and
``paddle.js`` keeps its own exports. The source files stay as they are (the Node tests and
Netron's harness load them as modules).

A large member of a JSON table (an object of at least ``LAZY_ENTRIES`` entries, such as the
signature table's ``ops``) is not parsed when the bundle is evaluated: it is kept as one line of
text per entry and each entry is parsed when it is first looked up. A model uses a few dozen of
the table's 1,161 ops; parsing all of them was 1.5 ms of the 6 ms the bundle took to evaluate.
The lines are kept in buckets by the first ``PREFIX`` characters of the key, so a look-up
searches a few hundred bytes instead of the whole 136 KB text (README "Speed").

A dynamic ``import('./x.js')`` inside the code stays as it is: the browser fetches that module
from the launcher (which serves it next to ``paddle.js``) when the code runs. The reader uses it
for code needed only after the graph is drawn (reading the weights file), so that code is not
compiled before the first draw. Such a module imports nothing of the bundle's.

The bundle starts with V8's compile hint ``//# allFunctionsCalledOnLoad`` (a comment to other
engines). Nearly all of the bundled code runs to open any model, and a V8 that reads the hint
(Chromium 136 and later) compiles it with the script, off the page's main thread while the file
streams in, instead of compiling each function when it is first called during ``open()``
(README "Speed" has the measurement). Code that runs only after the draw (the dynamically
imported weights-file reader) is not in the bundle and stays lazily compiled.

Only the forms of ``import``/``export`` the reader uses are accepted; anything else raises
``ValueError`` naming the file and line, so a new form cannot be served half-translated.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

ENTRY = "paddle.js"
LAZY_ENTRIES = 64
PREFIX = 2
COMPILE_HINT = "//# allFunctionsCalledOnLoad"

# Run where the bundle starts: an object (behind a Proxy) over lines "<key>\t<JSON value>", kept
# in buckets by the first PREFIX characters of the key; a value is parsed when its key is first
# read and kept. Keys, `in` and Object.keys work as on the parsed object (in its key order);
# keys absent from the table (also `constructor`, `toString`) are undefined.
_LAZY_RUNTIME = r"""const __entries = (buckets, order) => {
    const cache = new Map();
    const find = (key) => {
        if (typeof key !== 'string' || key.includes('\n') || key.includes('\t')) {
            return undefined;
        }
        if (!cache.has(key)) {
            const prefix = key.substring(0, __PREFIX);
            const text = Object.hasOwn(buckets, prefix) ? buckets[prefix] : '';
            const at = text.indexOf(`\n${key}\t`);
            let value = undefined;
            if (at !== -1) {
                const start = at + key.length + 2;
                value = JSON.parse(text.substring(start, text.indexOf('\n', start)));
            }
            cache.set(key, value);
        }
        return cache.get(key);
    };
    const keys = () => order === null ?
        Object.values(buckets).flatMap((text) => text.split('\n').filter((line) => line).map((line) => line.substring(0, line.indexOf('\t')))) :
        order.split('\n');
    return new Proxy({}, {
        get: (target, key) => find(key),
        has: (target, key) => find(key) !== undefined,
        ownKeys: () => keys(),
        getOwnPropertyDescriptor: (target, key) => {
            const value = find(key);
            return value === undefined ? undefined : { value, writable: false, enumerable: true, configurable: true };
        }
    });
};
const __table = (members) => Object.fromEntries(members.map(([key, json, buckets, order]) => [key, buckets === null ? JSON.parse(json) : __entries(buckets, order)]));"""

_IMPORT = re.compile(
    r"^import\s+(?:(?P<what>[^'\"]+?)\s+from\s+)?'\./(?P<name>[^']+)'"
    r"(?:\s+with\s*\{\s*type:\s*'json'\s*\})?;[ \t]*$",
    re.M,
)
_EXPORT_DECLARATION = re.compile(
    r"^export\s+(?P<kind>const|let|class|function|async\s+function)\s+(?P<name>[A-Za-z_$][\w$]*)",
    re.M,
)
_EXPORT_LIST = re.compile(r"^export\s*\{(?P<names>[^}]*)\};[ \t]*$", re.M)
_ANY_EXPORT_OR_IMPORT = re.compile(r"^(?:export|import)\b.*$", re.M)
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*$")


def _fail(name: str, text: str, position: int, problem: str):
    line = text.count("\n", 0, position) + 1
    raise ValueError(f"{name}:{line}: {problem}")


def _translate(name: str, text: str, tables: dict[str, str], folder: Path, entry: bool):
    """The module's code with its imports bound to the bundled modules and tables, and (except
    for the entry, which keeps them) its export keywords removed; and the names it exports."""

    def bind(match: re.Match) -> str:
        what, target = (match.group("what") or "").strip(), match.group("name")
        key = json.dumps(target)
        if target.endswith(".json"):
            if target not in tables:
                tables[target] = (folder / target).read_text(encoding="utf-8")
            if not what:
                return ""
            if not _IDENTIFIER.match(what):
                _fail(name, text, match.start(), f"unsupported JSON import '{what}'")
            return f"const {what} = __tables[{key}];"
        if not what:
            return ""  # evaluated already: modules come before the modules that import them
        if what.startswith("* as ") and _IDENTIFIER.match(what[5:].strip()):
            return f"const {what[5:].strip()} = __modules[{key}];"
        if what.startswith("{") and what.endswith("}") and " as " not in what:
            return f"const {what} = __modules[{key}];"
        _fail(name, text, match.start(), f"unsupported import '{what}'")
        return ""

    code = _IMPORT.sub(bind, text)
    if entry:
        return code, []
    exports = [m.group("name") for m in _EXPORT_DECLARATION.finditer(code)]
    code = _EXPORT_DECLARATION.sub(lambda m: f"{m.group('kind')} {m.group('name')}", code)
    for match in _EXPORT_LIST.finditer(code):
        for item in match.group("names").split(","):
            item = item.strip()
            if item and not _IDENTIFIER.match(item):
                _fail(name, code, match.start(), f"unsupported export '{item}'")
            if item:
                exports.append(item)
    code = _EXPORT_LIST.sub("", code)
    left = _ANY_EXPORT_OR_IMPORT.search(code)
    if left:
        _fail(name, code, left.start(), f"unsupported statement '{left.group(0).strip()}'")
    return code, exports


def _collect(folder: Path, name: str, seen: list[str]) -> list[str]:
    """``name`` and the modules it imports, each after the modules it imports."""
    found: list[str] = []
    text = (folder / name).read_text(encoding="utf-8")
    for match in _IMPORT.finditer(text):
        target = match.group("name")
        if not target.endswith(".json") and target not in seen + found:
            found.extend(_collect(folder, target, seen + found + [name]))
    found.append(name)
    return found


@functools.lru_cache(maxsize=4)
def _bundle(folder: str, stamp: tuple) -> bytes:
    web = Path(folder)
    tables: dict[str, str] = {}
    order = _collect(web, ENTRY, [])
    parts = [
        COMPILE_HINT,
        "// netron-paddle-pir: paddle.js and the modules and tables it imports, in one file.",
        "const __modules = {};",
        "const __tables = {};",
    ]
    bodies = []
    for name in order:
        text = (web / name).read_text(encoding="utf-8")
        code, exports = _translate(name, text, tables, web, entry=name == ENTRY)
        if name == ENTRY:
            bodies.append(f"// ---- {name}\n{code}")
            continue
        bodies.append(
            f"// ---- {name}\n__modules[{json.dumps(name)}] = (() => {{\n{code}\n"
            f"return {{ {', '.join(exports)} }};\n}})();"
        )
    lazy = False
    for table, content in tables.items():
        code = _table(content)
        lazy = lazy or code.startswith("__table(")
        parts.append(f"__tables[{json.dumps(table)}] = {code};")
    if lazy:
        parts.insert(2, _LAZY_RUNTIME.replace("__PREFIX", str(PREFIX)))
    return ("\n".join(parts + bodies) + "\n").encode("utf-8")


def _table(content: str) -> str:
    """The expression that makes a JSON table in the bundle: ``JSON.parse`` of its text (faster
    than a literal), or, when it has a member of at least ``LAZY_ENTRIES`` entries, members one by
    one with the large ones as lines of ``<key>\\t<JSON value>`` parsed entry by entry, the lines
    kept in buckets by the key's first ``PREFIX`` characters (a look-up searches one bucket, a few
    hundred bytes, not the whole table). The key order is kept: it is the order of the buckets
    when entries of one bucket are adjacent (sorted keys), else it is stored with them."""
    data = json.loads(content)

    def lazy(value) -> bool:
        return (
            isinstance(value, dict)
            and len(value) >= LAZY_ENTRIES
            and not any("\n" in key or "\t" in key for key in value)
        )

    if not isinstance(data, dict) or not any(lazy(value) for value in data.values()):
        return f"JSON.parse({json.dumps(content.strip())})"
    members = []
    for key, value in data.items():
        if lazy(value):
            groups: dict[str, list[str]] = {}
            for name in value:
                groups.setdefault(name[:PREFIX], []).append(name)
            buckets = {
                prefix: "".join(
                    f"\n{name}\t{json.dumps(value[name], separators=(',', ':'))}" for name in names
                )
                + "\n"
                for prefix, names in groups.items()
            }
            in_buckets = [name for names in groups.values() for name in names]
            order = None if in_buckets == list(value) else "\n".join(value)
            members.append([key, None, buckets, order])
        else:
            members.append([key, json.dumps(value, separators=(",", ":")), None, None])
    return f"__table({json.dumps(members, separators=(',', ':'))})"


def bundle(folder: Path) -> bytes:
    """The bundle of ``folder``'s ``paddle.js``, rebuilt when a file of the folder changes."""
    stamp = tuple(
        (path.name, path.stat().st_mtime_ns)
        for path in sorted(folder.iterdir())
        if path.suffix in (".js", ".json")
    )
    return _bundle(str(folder), stamp)
