"""Loading the user's app from `path/to/file.py`, `module` or `module:attr`."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from outlast.client import Outlast
from outlast.errors import OutlastError


def load_app(spec: str) -> Outlast:
    """`path/to/file.py`, `module` or `module:attr` -> the Outlast app it defines."""
    module_name, _, attr = spec.partition(":")
    if module_name.endswith(".py") or os.sep in module_name:
        path = Path(module_name).resolve()
        if not path.exists():
            raise OutlastError(f"APP: no such file {module_name!r}")
        sys.path.insert(0, str(path.parent))
        loaded = importlib.util.spec_from_file_location(path.stem, path)
        assert loaded is not None and loaded.loader is not None
        module = importlib.util.module_from_spec(loaded)
        sys.modules[path.stem] = module
        loaded.loader.exec_module(module)
    else:
        sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_name)
    if attr:
        app = getattr(module, attr, None)
        if not isinstance(app, Outlast):
            raise OutlastError(f"APP: {spec!r} is not an outlast.Outlast app")
        return app
    apps = [v for v in vars(module).values() if isinstance(v, Outlast)]
    if len(apps) != 1:
        raise OutlastError(f"APP: {spec!r} defines {len(apps)} Outlast apps; name one as module:attr")
    return apps[0]
