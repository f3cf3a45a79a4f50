"""Build helpers for the codec generator tests.

The generator is loaded from the working tree's `codecs/` (as setup.py does), so these tests check the
source, not whatever is installed. Generated modules are compiled into build/codec-tests/<key>/, where
the key hashes everything that goes into the build (generated source, extra .pyx, Cython and Python
versions): a second run imports them from there without compiling.
"""
import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "sbe"
VENUE_STYLE = Path(__file__).resolve().parent / "data" / "venue-style-schema.xml"
SCHEMAS = REPO / "schemas"
CACHE = REPO / "build" / "codec-tests"

_codegen = None
_modules = {}


def codegen():
    """The generator package from `codecs/` under a private name (never as `codecs`)."""
    global _codegen
    if _codegen is None:
        name = "_lob_codegen_under_test"
        spec = importlib.util.spec_from_file_location(
            name, REPO / "codecs" / "__init__.py", submodule_search_locations=[str(REPO / "codecs")])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _codegen = module
    return _codegen


# name -> (schema path or (path, version) for a schema cut back to an older version,
#          extra .pyx sources in tests/ that cimport the generated module)
CODECS = {
    "sbe_lob": (SCHEMAS / "lob.xml", ["codec_hotpath_lob.pyx"]),
    "sbe_example": (DATA / "example-schema.xml", ["codec_hotpath_example.pyx"]),
    "sbe_extension": (DATA / "example-extension-schema.xml", []),
    "sbe_extension_v0": ((DATA / "example-extension-schema.xml", 0), []),
    "sbe_extension_v1": ((DATA / "example-extension-schema.xml", 1), []),
    "sbe_bigendian": (DATA / "example-bigendian-test-schema.xml", ["codec_hotpath_bigendian.pyx"]),
    "sbe_codegen": (DATA / "code-generation-schema.xml", []),
    "sbe_basic_types": (DATA / "basic-types-schema.xml", []),
    "sbe_basic_varlen": (DATA / "basic-variable-length-schema.xml", []),
    "sbe_composite_elements": (DATA / "composite-elements-schema.xml", []),
    "sbe_constant_enums": (DATA / "constant-enum-fields.xml", []),
    "sbe_encoding_types": (DATA / "encoding-types-schema.xml", []),
    "sbe_group_constants": (DATA / "group-with-constant-fields.xml", []),
    "sbe_group_data": (DATA / "group-with-data-schema.xml", []),
    "sbe_nested_groups": (DATA / "nested-group-schema.xml", []),
    "sbe_venue": (VENUE_STYLE, ["codec_hotpath_venue.pyx"]),
    "sbe_venue_v0": ((VENUE_STYLE, 0), []),
    "sbe_venue_v1": ((VENUE_STYLE, 1), []),
}


def register(module_name, schema_path):
    """Add a schema found at run time (tests on schemas that cannot be shipped in tests/data)."""
    CODECS[module_name] = (Path(schema_path), [])
    return module_name


_SETUP = textwrap.dedent('''\
    import sys
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension
    names = sys.argv[1:]
    # the generated Python API compiles fastest unoptimized; the hot-path checks run optimized code
    exts = [Extension(n, [n + ".pyx"], extra_compile_args=["-O2" if n.startswith("codec_hotpath") else "-O0", "-w"])
            for n in names]
    dist = Distribution({"ext_modules": cythonize(exts, include_path=["."], quiet=True,
                                                  compiler_directives={"language_level": 3})})
    cmd = dist.get_command_obj("build_ext")
    cmd.inplace = True
    cmd.build_temp = "tmp"
    cmd.ensure_finalized()
    cmd.run()
''')


def schema_at_version(text, version):
    """The schema as it was at `version`: every element with a higher sinceVersion removed."""
    ET.register_namespace("sbe", "http://fixprotocol.io/2016/sbe")
    root = ET.fromstring(text)
    for parent in list(root.iter()):
        for child in list(parent):
            if int(child.get("sinceVersion", "0")) > version:
                parent.remove(child)
    root.set("version", str(version))
    return ET.tostring(root, encoding="unicode")


def schema_text(module_name):
    source = CODECS[module_name][0]
    if isinstance(source, tuple):
        path, version = source
        return schema_at_version(path.read_text(), version), f"{path.stem}@v{version}.xml"
    return source.read_text(), source.name


def _key(files):
    import Cython

    h = hashlib.sha256()
    h.update(f"{sys.version}|{Cython.__version__}|{_SETUP}".encode())
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return h.hexdigest()[:16]


def _prepare(module_name):
    """Generate the sources in memory; -> (build dir, extension names in build order, all files)."""
    extras = CODECS[module_name][1]
    gen = codegen()
    text, source_name = schema_text(module_name)
    schema = gen.parse_string(text, source=source_name)
    files = gen.generate(schema, module_name, source_name)
    for extra in extras:
        files[extra] = (Path(__file__).resolve().parent / extra).read_text()
    directory = CACHE / f"{module_name}-{_key(files)}"
    names = [module_name] + [Path(e).stem for e in extras]
    return directory, names, files


def _built(directory, names):
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return all((directory / (n + suffix)).exists() for n in names)


def _build(directory, names, files):
    if _built(directory, names):
        return
    tmp = directory.with_name(directory.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for filename, text in files.items():
        (tmp / filename).write_text(text)
    (tmp / "build_codec.py").write_text(_SETUP)
    result = subprocess.run([sys.executable, "build_codec.py", *names], cwd=tmp, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"building {names} failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}")
    for scratch in ("tmp", "build"):
        shutil.rmtree(tmp / scratch, ignore_errors=True)
    for c_file in tmp.glob("*.c"):
        c_file.unlink()
    try:
        tmp.rename(directory)
    except OSError:  # another process finished the same build first
        if not _built(directory, names):
            raise


def _prune(module_name, keep):
    """Drop builds of this module from older sources."""
    for old in CACHE.glob(module_name + "-*"):
        if old != keep and old.name.rsplit("-", 1)[0] == module_name and ".tmp" not in old.name:
            shutil.rmtree(old, ignore_errors=True)


def _import(directory, name):
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    path = directory / (name + suffix)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_codecs(names=None):
    """Compile (or reuse) the generated codecs; -> {module name: module} incl. the hot-path test modules."""
    names = list(CODECS if names is None else names)
    todo = [n for n in names if n not in _modules]
    prepared = {n: _prepare(n) for n in todo}
    CACHE.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(len(todo), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(_build, *prepared[n]) for n in todo]:
            future.result()
    for n in todo:
        directory, ext_names, _ = prepared[n]
        _prune(n, directory)
        for ext in ext_names:
            _modules[ext] = _import(directory, ext)
    return {k: v for k, v in _modules.items()}
