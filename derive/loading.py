"""Import a generated module from its source text, without writing a file."""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import linecache
from types import CodeType, ModuleType


class _SourceLoader(importlib.abc.InspectLoader):
    """Loads one module from its source text: ``get_source`` returns that text."""

    def __init__(self, source: str, filename: str) -> None:
        self.source = source
        self.filename = filename

    def get_source(self, fullname: str) -> str:
        return self.source

    def get_code(self, fullname: str) -> CodeType:
        return compile(self.source, self.filename, "exec", dont_inherit=True)


def load_module(name: str, source: str) -> ModuleType:
    """Execute ``source`` as a new module named ``name``.

    Its lines are entered in :mod:`linecache` under a name holding a hash of the
    source, so tracebacks and ``inspect.getsource`` show the generated code.
    """
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    filename = f"<derive {name}.py {digest}>"
    loader = _SourceLoader(source, filename)
    spec = importlib.util.spec_from_loader(name, loader, origin=filename)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    linecache.cache[filename] = (
        len(source),
        None,
        source.splitlines(keepends=True),
        filename,
    )
    loader.exec_module(module)
    return module
