"""Package names imported on first use, so that importing a light module of a package (settings, file
readers) does not import TensorFlow through the package's `__init__`."""
from __future__ import annotations

import importlib
from typing import Any, MutableMapping


def attach(namespace: MutableMapping[str, Any], exports: dict[str, str]) -> None:
    """Gives the package whose globals are `namespace` the public names `exports` ({name: the module
    defining it, relative to the package}), each imported on first use; sets `__all__` and `__getattr__`."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    namespace["__getattr__"] = __getattr__
    namespace["__all__"] = sorted(exports)
