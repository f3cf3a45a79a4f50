"""`lob codegen` through the installed console command."""
import subprocess
import sys
from pathlib import Path

from codec_build import DATA

LOB = Path(sys.executable).with_name("lob")


def run(*args):
    return subprocess.run([str(LOB), "codegen", *map(str, args)], capture_output=True, text=True, timeout=120)


def test_codegen_writes_the_module(tmp_path):
    out = tmp_path / "gen"
    result = run(DATA / "example-schema.xml", "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["baseline.pxd", "baseline.pyx"]
    assert result.stdout.split() == [str(out / "baseline.pxd"), str(out / "baseline.pyx")]
    pxd = (out / "baseline.pxd").read_text()
    assert "cdef inline uint64_t Car_serialNumber(const uint8_t* p) noexcept nogil:" in pxd
    result = run(DATA / "nested-group-schema.xml", "--out", out, "--module", "nested")
    assert result.returncode == 0, result.stderr
    assert (out / "nested.pyx").exists()


def test_codegen_rejects_an_invalid_schema(tmp_path):
    out = tmp_path / "gen"
    result = run(DATA / "invalid" / "error-handler-since-version.xml", "--out", out)
    assert result.returncode == 1
    assert result.stderr.startswith("lob codegen: error: ")
    assert "message 'TestMessage' (line 24): sinceVersion=1 is greater than the schema version 0" in result.stderr
    assert not out.exists()


def test_codegen_usage_error():
    result = run(DATA / "example-schema.xml")
    assert result.returncode == 2 and "--out" in result.stderr
