"""Build: generate the SBE codecs from schemas/, then cythonize every .pyx of the package.

The top-level folders map into one namespace (see README, "Layout"): lob <- lob/, lob.codecs <- codecs/,
lob.transport <- transport/, lob.tools <- tools/.
"""
import importlib.util
import os
import sys
from glob import glob

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIRS = {"lob": "lob", "lob.codecs": "codecs", "lob.transport": "transport", "lob.tools": "tools"}
GENERATED = [("schemas/lob.xml", "lob/sbe", "messages")]


def load_codegen():
    """Import codecs/ without installing it (and without shadowing the standard library's codecs)."""
    spec = importlib.util.spec_from_file_location(
        "_lob_codegen", os.path.join(HERE, "codecs", "__init__.py"),
        submodule_search_locations=[os.path.join(HERE, "codecs")])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def generate_codecs():
    if os.environ.get("LOB_SKIP_CODEGEN"):
        return
    codegen = load_codegen()
    for schema, out_dir, module in GENERATED:
        codegen.generate_file(os.path.join(HERE, schema), os.path.join(HERE, out_dir), module)


def module_name(pyx_path):
    folder, filename = os.path.split(os.path.relpath(pyx_path, HERE))
    stem = os.path.splitext(filename)[0]
    for package, directory in PACKAGE_DIRS.items():
        if folder == directory:
            return f"{package}.{stem}"
        if folder.startswith(directory + os.sep):
            return ".".join([package, *folder[len(directory) + 1:].split(os.sep), stem])
    raise ValueError(f"{pyx_path} is outside the package folders")


def cython_include_dir():
    """An include tree in which Cython finds `cimport lob.transport.x` as lob/transport/x.pxd.

    Cython looks cimported modules up by path, so the folders mapped into the namespace from the top level
    (transport/ -> lob.transport, ...) are symlinked under build/ at their package paths.
    """
    root = os.path.join(HERE, "build", "cython-include")
    for package, directory in PACKAGE_DIRS.items():
        if package.replace(".", os.sep) == directory:
            continue
        link = os.path.join(root, *package.split("."))
        os.makedirs(os.path.dirname(link), exist_ok=True)
        target = os.path.relpath(os.path.join(HERE, directory), os.path.dirname(link))
        if os.path.islink(link) and os.readlink(link) == target:
            continue
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(target, link)
    return root


def extensions():
    from Cython.Build import cythonize

    pyx = sorted(p for d in PACKAGE_DIRS.values() for p in glob(os.path.join(HERE, d, "**", "*.pyx"), recursive=True))
    exts = [
        Extension(module_name(p), [os.path.relpath(p, HERE)], include_dirs=[HERE],
                  extra_compile_args=["-O3", "-Wno-unused-function", "-Wno-unreachable-code"])
        for p in pyx
    ]
    only = [prefix for prefix in os.environ.get("LOB_BUILD_ONLY", "").split(",") if prefix]
    if only:  # development: rebuild just these modules (comma-separated name prefixes)
        exts = [e for e in exts if e.name.startswith(tuple(only))]
    return cythonize(
        exts,
        include_path=[HERE, cython_include_dir()],
        language_level=3,
        # Safe defaults: hot-path modules turn off bounds and wraparound checks in their own header
        # (`# cython: boundscheck=False, wraparound=False`), never globally, since Python-level code
        # like `paths[-1]` would silently break.
        compiler_directives={"cdivision": True, "embedsignature": True},
        annotate=bool(os.environ.get("LOB_ANNOTATE")),
    )


def packages():
    found = []
    for package, directory in PACKAGE_DIRS.items():
        found.append(package)
        for root, dirs, files in os.walk(os.path.join(HERE, directory)):
            dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
            rel = os.path.relpath(root, os.path.join(HERE, directory))
            if rel != "." and "__init__.py" in files:
                found.append(".".join([package, *rel.split(os.sep)]))
    return found


generate_codecs()
setup(
    packages=packages(),
    package_dir=PACKAGE_DIRS,
    package_data={"": ["*.pxd", "*.pxi", "*.pyx", "*.h", "*.xml", "*.jinja"]},
    data_files=[("share/lob/schemas", ["schemas/lob.xml"]), ("share/lob/examples", ["examples/credentials.txt"])],
    ext_modules=extensions(),
    zip_safe=False,
)
