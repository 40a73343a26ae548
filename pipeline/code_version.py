"""The version of the code and files a component runs, in TFX's cache key: TFX keys it on inputs, exec
properties and the executor spec, not on the Python source; stamp() makes a hash of that an exec property,
which ML Metadata also records on each execution (pipeline.lineage reads the Trainer's)."""
import ast
import hashlib
import os
from typing import Iterable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the project's packages' parent


def _digest(path: str) -> bytes:
    """A file's bytes; a directory's files' names, sizes and modification times (as ExampleGen's)."""
    files = sorted(os.path.join(d, name) for d, _, names in os.walk(path) for name in names)
    return open(path, "rb").read() if os.path.isfile(path) else repr(
        [(os.path.relpath(f, path), os.path.getsize(f), os.path.getmtime(f)) for f in files]).encode()


def source_hash(modules: Iterable[str], paths: Iterable[str] = (), root: str = ROOT) -> str:
    """sha256 of the source of `modules` and of the project modules they import, transitively
    (files under `root`; others are ignored), and of `paths` (see _digest)."""
    todo, files = list(modules), {}
    while todo:
        name = todo.pop()
        file = next((f for f in (os.path.join(root, *name.split(".")) + ext for ext in (".py", "/__init__.py"))
                     if os.path.isfile(f)), None)
        if file and name not in files:
            files[name] = open(file, "rb").read()
            todo += [name.rsplit(".", 1)[0]] if "." in name else []  # its package runs first
            for node in ast.walk(ast.parse(files[name])):
                if isinstance(node, ast.Import):
                    todo += [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:  # a name may be a module too
                    todo += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return hashlib.sha256(repr(sorted(files.items())).encode() + b"".join(map(_digest, sorted(paths)))).hexdigest()


def stamp(component) -> None:
    """Sets `component`'s `code_version` exec property to the hash of its executor's module, the modules its
    exec properties name (`run_fn`, `preprocessing_fn`) and the local files and directories they name."""
    values = [v for v in component.exec_properties.values() if isinstance(v, str)]
    modules = [v.rsplit(".", 1)[0] for v in values if all(part.isidentifier() for part in v.split("."))]
    component.exec_properties["code_version"] = source_hash(
        [component.executor_spec.executor_class.__module__, *modules], [v for v in values if os.path.exists(v)])
