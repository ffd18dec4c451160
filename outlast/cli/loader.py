"""Loading the user's app from `path/to/file.py`, `module` or `module:attr`."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from outlast.client import Outlast
from outlast.errors import OutlastError


def load_app(spec: str) -> Outlast:
    """`path/to/file.py`, `module` or `module:attr` -> the Outlast app it defines."""
    module_name, _, attr = spec.partition(":")
    if module_name.endswith(".py") or os.sep in module_name:
        module = _load_file(module_name)
    else:
        module = _import_module(module_name, spec)
    if attr:
        app = getattr(module, attr, None)
        if not isinstance(app, Outlast):
            raise OutlastError(f"APP: {spec!r} is not an outlast.Outlast app")
        return app
    apps = [v for v in vars(module).values() if isinstance(v, Outlast)]
    if len(apps) != 1:
        raise OutlastError(f"APP: {spec!r} defines {len(apps)} Outlast apps; name one as module:attr")
    return apps[0]


def _load_file(name: str) -> ModuleType:
    path = Path(name).resolve()
    if not path.exists():
        raise OutlastError(f"APP: no such file {name!r}")
    if path.is_dir():
        raise OutlastError(f"APP: {name!r} is a directory; give the app's Python file (path/to/app.py)")
    if path.suffix != ".py":
        raise OutlastError(f"APP: {name!r} is not a Python file (*.py)")
    sys.path.insert(0, str(path.parent))
    loaded = importlib.util.spec_from_file_location(path.stem, path)
    if loaded is None or loaded.loader is None:
        raise OutlastError(f"APP: {name!r} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(loaded)
    sys.modules[path.stem] = module
    loaded.loader.exec_module(module)
    return module


def _import_module(name: str, spec: str) -> ModuleType:
    """Import `name` from the current directory; a missing or malformed name is the user's typo,
    while an import that fails inside their module keeps its traceback."""
    if not name or not all(part.isidentifier() for part in name.split(".")):
        raise OutlastError(f"APP: {spec!r} is not path/to/file.py, module or module:attr")
    sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (name == exc.name or name.startswith(f"{exc.name}.")):
            raise
        raise OutlastError(f"APP: no module named {name!r} in {os.getcwd()!r} (nor on the Python path)") from None
