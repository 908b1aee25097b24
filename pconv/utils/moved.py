"""Module paths of earlier pconv versions, still importable after the package was laid out
by its jobs (training/, weights/, utils/).

Configs and scripts name classes by module path (``class_path: pconv.module.InpaintingModule``,
``pconv.callbacks.FinetuneSwitch``). Importing an old path gives the module at its new place,
the very same module object (so classes stay identical and isinstance holds), and prints one
line on stderr naming the new path (once, for the old package or module a path starts with).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType

#: Old module path -> new module path; submodules follow their package.
MOVED = {
    "pconv.module": "pconv.training.module",
    "pconv.trainer_cli": "pconv.training.cli",
    "pconv.preflight": "pconv.training.preflight",
    "pconv.callbacks": "pconv.training.callbacks",
    "pconv.hub": "pconv.weights.push",
    "pconv.export": "pconv.weights.export",
    "pconv.notices": "pconv.utils.notices",
    "pconv.progress": "pconv.utils.progress",
    "pconv.tool_args": "pconv.utils.tool_args",
}


def new_path(name: str) -> str | None:
    """The current path of module ``name`` if it is an old one, else None."""
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old) :]
    return None


class _Alias(importlib.abc.Loader):
    """Loads an old path as the module at its new path."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.target_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system set the old path's spec on the shared module; give it back its own.
        module.__spec__ = self.target_spec


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds old pconv module paths (:data:`MOVED`) before the file system is searched."""

    def find_spec(self, name: str, path=None, target=None) -> ModuleSpec | None:
        new = new_path(name)
        if new is None:
            return None
        if name in MOVED:  # a submodule's package was noted when it was imported first
            print(
                f"pconv: note: {name} is now {new}; the old path still works, but update your "
                "imports and configs' class_path",
                file=sys.stderr,
            )
        return importlib.util.spec_from_loader(name, _Alias(new))


def install() -> None:
    """Put :class:`MovedModuleFinder` first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
