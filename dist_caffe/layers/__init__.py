"""Layer types: every module here registers its classes on import (no list to keep)."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def __getattr__(name):
    """pycaffe's `L.<Type>(...)`: NetSpec's layer factory for CamelCase type names."""
    if name[:1].isupper():
        from ..net_spec import layers as factory
        return getattr(factory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
