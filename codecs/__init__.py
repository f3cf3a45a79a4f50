"""lob.codecs: the SBE code generator (schema XML -> IR -> Cython). See README.md in this folder.

Only relative imports here: the build loads this folder under a private module name.
"""
import os
import re

from .schema import SchemaError, parse_file, parse_string
from .cython_gen import generate

__all__ = ["SchemaError", "parse_file", "parse_string", "generate", "generate_file", "default_module_name"]


def default_module_name(schema):
    """The schema's package attribute made into a Python identifier ("code.generation.test" -> "code_generation_test")."""
    name = re.sub(r"\W+", "_", schema.package or "").strip("_")
    if not name:
        name = "messages"
    if name[0].isdigit():
        name = "_" + name
    return name


def generate_file(schema_path, out_dir, module_name=None, warn=None):
    """Generate `out_dir/NAME.pxd` and `out_dir/NAME.pyx` from the schema; returns their paths.

    `warn(text)` is called with each of the schema's warnings (what is accepted but worth a look).

    A file whose content would not change is not rewritten (its mtime stays, so the build does not
    recompile what cimports it). Raises SchemaError, writing nothing, if the schema is invalid.
    """
    schema = parse_file(schema_path)
    if warn is not None:
        for text in schema.warnings:
            warn(text)
    module_name = module_name or default_module_name(schema)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", module_name):
        raise ValueError(f"module name {module_name!r} is not a Python identifier")
    files = generate(schema, module_name, os.path.basename(str(schema_path)))
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for filename, text in files.items():
        path = os.path.join(out_dir, filename)
        paths.append(path)
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() == text:
                    continue
        except FileNotFoundError:
            pass
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    return paths
