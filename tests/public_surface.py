"""Which modelbaton names a piece of code may use: a check over its ``ast`` imports.

``surfaces`` maps each module the code may import from (``modelbaton`` itself, or a package such
as ``modelbaton.versioning``) to its public names (its ``__all__``). Importing from any other
modelbaton module, a name outside that ``__all__``, or an attribute of ``modelbaton`` outside it is
a violation. Modules under ``own`` (the code's own package) are free.
"""

from __future__ import annotations

import ast
import importlib


def surfaces_of(*modules: str) -> dict[str, set[str]]:
    """The public names of each module, read from its ``__all__``."""
    return {m: set(importlib.import_module(m).__all__) for m in modules}


def violations(
    source: str, where: str, surfaces: dict[str, set[str]], own: str | None = None
) -> list[str]:
    """Every non-public use of modelbaton in ``source``, as ``where:line: what``."""
    found: list[str] = []
    aliases: set[str] = set()
    tree = ast.parse(source)

    def free(module: str) -> bool:
        return own is not None and (module == own or module.startswith(own + "."))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "modelbaton":
                    aliases.add(alias.asname or alias.name)
                elif alias.name.startswith("modelbaton.") and not free(alias.name):
                    found.append(f"{where}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if not (module == "modelbaton" or module.startswith("modelbaton.")) or free(module):
                continue
            public = surfaces.get(module)
            if public is None:
                found.append(f"{where}:{node.lineno}: from {module} import ...")
                continue
            found += [
                f"{where}:{node.lineno}: from {module} import {a.name}"
                for a in node.names
                if a.name not in public
            ]
    top = surfaces.get("modelbaton", set())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr not in top
        ):
            found.append(f"{where}:{node.lineno}: {node.value.id}.{node.attr}")
    return found
