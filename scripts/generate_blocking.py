"""Write ``toolkit/blocking.py``: the blocking twin of every async area, method for method.

Each blocking method has the async method's name, parameters, defaults, annotations and docstring; it submits
the coroutine to the client's private loop and waits. Async generators become ordinary iterators. Run it after
changing an area's public methods; ``make lint`` runs it with ``--check`` and fails when the file is stale.

    python scripts/generate_blocking.py [--check]
"""

from __future__ import annotations

import argparse
import builtins
import inspect
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "toolkit" / "blocking.py"
TOP_LEVEL = ("stats", "last_night", "data_version", "sql", "provenance")
NAME = re.compile(r"\b([A-Za-z_][A-Za-z_0-9]*)(?:\.[A-Za-z_][A-Za-z_0-9]*)*")


def _defining_module(name: str, obj: Any, home: ModuleType) -> str:
    """Where ``name`` is defined (not merely imported), so that mypy --strict accepts the import."""
    module = getattr(obj, "__module__", None)
    if isinstance(module, str) and module in sys.modules and getattr(sys.modules[module], name, None) is obj:
        return module
    pattern = re.compile(rf"^(?:{name}\s*(?::[^=]*)?=|class {name}\b|def {name}\b)", re.MULTILINE)
    for candidate in sorted(m for m in sys.modules if m == "toolkit" or m.startswith("toolkit.")):
        mod = sys.modules[candidate]
        source = getattr(mod, "__file__", None)
        if source and getattr(mod, name, None) is obj and pattern.search(Path(source).read_text()):
            return candidate
    raise SystemExit(f"cannot tell where {name} (used by {home.__name__}) is defined")


def _imports_for(annotations: list[str], home: ModuleType, imports: dict[str, str]) -> None:
    for text in annotations:
        for match in NAME.finditer(text):
            name = match.group(1)
            if name in imports or hasattr(builtins, name) or name == "None":
                continue
            if name == "Iterator":
                imports[name] = "from collections.abc import Iterator"
                continue
            obj = vars(home).get(name)
            if obj is None:
                # A name the module imports for type checking only (astropy's, imported lazily at run time).
                found = re.search(
                    rf"^\s+from ([\w.]+) import [^\n]*\b{name}\b",
                    Path(str(home.__file__)).read_text(),
                    re.MULTILINE,
                )
                if found is None:
                    raise SystemExit(f"{home.__name__}: annotation name {name!r} is not in the module")
                imports[name] = f"from {found.group(1)} import {name}"
                continue
            if inspect.ismodule(obj):
                parent, _, last = obj.__name__.rpartition(".")
                if parent.startswith("toolkit") and last == name:
                    imports[name] = f"from {parent} import {name}"
                else:
                    imports[name] = f"import {obj.__name__} as {name}"
            else:
                imports[name] = f"from {_defining_module(name, obj, home)} import {name}"


def _signature(method: Any, returns: str) -> tuple[str, str, list[str]]:
    """(parameter list text, call arguments text, annotation texts) of a bound method."""
    params, call, annotations = ["self"], [], [returns]
    star_done = False
    for p in inspect.signature(method).parameters.values():
        if p.kind == p.VAR_KEYWORD:  # the filters of an area's export: passed on as given
            annotations.append(str(p.annotation))
            params.append(f"**{p.name}: {p.annotation}")
            call.append(f"**{p.name}")
            continue
        if p.kind == p.VAR_POSITIONAL:
            star_done = True
            annotations.append(str(p.annotation))
            params.append(f"*{p.name}: {p.annotation}")
            call.append(f"*{p.name}")
            continue
        if p.kind == p.KEYWORD_ONLY and not star_done:
            params.append("*")
            star_done = True
        text = p.name
        if p.annotation is not p.empty:
            annotations.append(str(p.annotation))
            text += f": {p.annotation}"
        if p.default is not p.empty:
            if eval(repr(p.default)) != p.default:
                raise SystemExit(f"{method.__qualname__}: default {p.default!r} does not round-trip")
            text += f" = {p.default!r}" if p.annotation is not p.empty else f"={p.default!r}"
        params.append(text)
        call.append(p.name if p.kind != p.KEYWORD_ONLY else f"{p.name}={p.name}")
    return ", ".join(params), ", ".join(call), annotations


def _is_context(method: Any, home: ModuleType) -> bool:
    """A plain method returning an async context manager (``notes.batch()``): mirrored for ``with``."""
    if inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method) or not callable(method):
        return False
    returned = vars(home).get(str(inspect.signature(method).return_annotation))
    return isinstance(returned, type) and hasattr(returned, "__aenter__")


def _method(name: str, method: Any, target: str, imports: dict[str, str], home: ModuleType) -> str:
    returns = str(inspect.signature(method).return_annotation)
    iterator = inspect.isasyncgenfunction(method)
    context = _is_context(method, home)
    if iterator:
        returns = re.sub(r"^AsyncIterator\[", "Iterator[", returns)
    params, call, annotations = _signature(method, returns)
    _imports_for(annotations, home, imports)
    if context:
        returns = f"BlockingContext[{returns}]"
    doc = inspect.getdoc(method) or ""
    body = "self._iterate" if iterator else "self._context" if context else "self._run"
    lines = [f"    def {name}({params}) -> {returns}:"]
    if doc:
        quoted = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        lines.append('        """' + quoted.replace("\n", "\n        ") + '"""')
    lines.append(f"        return {body}({target}.{name}({call}))")
    return "\n".join(lines)


def _public(obj: Any) -> list[tuple[str, Any]]:
    home = sys.modules[type(obj).__module__]
    return [
        (name, member)
        for name, member in inspect.getmembers(obj)
        if not name.startswith("_")
        and name != "aclose"
        and (
            inspect.iscoroutinefunction(member)
            or inspect.isasyncgenfunction(member)
            or _is_context(member, home)
        )
    ]


def generate() -> str:
    from toolkit.client import AsyncClient, area_names

    client = AsyncClient(products_db="unused.sqlite3")
    imports: dict[str, str] = {}
    classes: list[str] = []
    wiring: list[tuple[str, str]] = []
    for area in area_names(client):
        obj = getattr(client, area)
        cls = type(obj)
        home = sys.modules[cls.__module__]
        imports[cls.__name__] = f"from {cls.__module__} import {cls.__name__}"
        methods = [_method(name, member, "self._area", imports, home) for name, member in _public(obj)]
        classes.append(
            f"class Blocking{cls.__name__}(BlockingArea):\n"
            f'    """``client.{area}``, blocking: each method is ``AsyncClient.{area}``\'s, waited for."""\n\n'
            f"    _area: {cls.__name__}\n\n" + "\n\n".join(methods)
        )
        wiring.append((area, f"Blocking{cls.__name__}"))
    home = sys.modules[AsyncClient.__module__]
    top = [_method(name, getattr(client, name), "self._area", imports, home) for name in TOP_LEVEL]
    classes.append(
        "class BlockingClientCalls(BlockingArea):\n"
        '    """The calls made on the client itself (``stats``, ``last_night``, ``data_version``, ``sql``, ``provenance``), blocking."""\n\n'
        "    _area: AsyncClient\n\n" + "\n\n".join(top)
    )
    classes.append(
        "class BlockingAreas:\n"
        '    """The blocking twin of each area of ``AsyncClient``, attached by ``Client``."""\n\n'
        + "".join(f"    {area}: {cls}\n" for area, cls in wiring)
        + "\n    def _attach_areas(self, loop: LoopThread, client: AsyncClient) -> None:\n"
        + "".join(f"        self.{area} = {cls}(loop, client.{area})\n" for area, cls in wiring)
    )
    imports["AsyncClient"] = "from .client import AsyncClient"
    typed = sorted(
        re.sub(r"^from toolkit\b", "from .", line).replace("from ..", "from .")
        for name, line in imports.items()
        if name != "AsyncClient"
    )
    header = (
        '"""GENERATED by scripts/generate_blocking.py from the async areas: do not edit by hand.\n\n'
        "The blocking twin of every area: same names, parameters, defaults, annotations and docstrings; each\n"
        'call waits for the async one on the client\'s private loop (see :mod:`toolkit.sync`)."""\n\n'
        "from __future__ import annotations\n\n"
        "from typing import TYPE_CHECKING\n\n"
        "from .loop_thread import BlockingArea, BlockingContext, LoopThread\n\n"
        "if TYPE_CHECKING:\n"
        + "".join(f"    {line}\n" for line in sorted({*typed, "from .client import AsyncClient"}))
    )
    return header + "\n\n" + "\n\n\n".join(classes) + "\n"


def formatted(text: str) -> str:
    """As ruff would leave it (imports sorted, formatted), so that `make lint` passes on the output."""
    for args in (["check", "--fix", "--select", "I", "--quiet"], ["format"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(TARGET), "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        text = done.stdout
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if toolkit/blocking.py is stale")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    text = formatted(generate())
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print("toolkit/blocking.py is stale: run `python scripts/generate_blocking.py`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
