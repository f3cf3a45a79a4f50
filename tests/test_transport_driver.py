"""Media-driver launcher: embedded, attached, and the standalone `lob driver` command."""
import os
import signal
import subprocess
import sys

import pytest
from aeron_helpers import ROOT, WAIT

from lob.transport.client import Client
from lob.transport.driver import AttachedDriver, MediaDriver, launch, unique_dir, wait_for_driver


def test_embedded_driver_owns_a_fresh_directory_and_removes_it():
    before = os.environ.get("AERON_SHARED_IDLE_STRATEGY")
    driver = MediaDriver()
    try:
        assert driver.dir.startswith("/dev/shm/") and os.path.isdir(driver.dir)
        assert (driver.threading, driver.idle) == ("shared", "yield")
        assert os.environ.get("AERON_SHARED_IDLE_STRATEGY") == before  # set only while the driver starts
        with Client(driver.dir) as c:
            assert c.client_id >= 0
    finally:
        driver.close()
    assert not os.path.exists(driver.dir)
    driver.close()


def test_attach_to_a_running_driver_leaves_its_directory_alone():
    with MediaDriver() as owner:
        with launch(owner.dir, attach=True) as attached:
            assert isinstance(attached, AttachedDriver) and not attached.owned
            with Client(attached.dir):
                pass
        assert os.path.isdir(owner.dir)


def test_attach_without_a_driver_fails(tmp_path):
    with pytest.raises(RuntimeError, match="no active Aeron media driver"):
        launch(str(tmp_path), attach=True)


def test_bad_driver_options_are_refused_before_anything_is_created():
    with pytest.raises(ValueError):
        MediaDriver(threading="threaded")
    with pytest.raises(ValueError):
        MediaDriver(idle="busy")


def test_lob_driver_runs_until_sigterm_and_removes_its_directory():
    directory = unique_dir("lob-test-driver")
    process = subprocess.Popen([sys.executable, "-m", "lob.cli", "driver", "--dir", directory], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_for_driver(directory, WAIT), process.stdout.read() if process.poll() is not None else ""
        with Client(directory) as c:
            assert c.aeron_dir == directory
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT) == 0
        output = process.stdout.read()
        assert "ready" in output and "stopping" in output
        assert not os.path.exists(directory)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        if os.path.exists(directory):
            import shutil
            shutil.rmtree(directory, ignore_errors=True)


def test_directories_of_dead_processes_are_removed():
    import shutil
    from lob.transport.driver import remove_stale_dirs
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = unique_dir("lob-test-stale").replace(f"-{os.getpid()}-", f"-{pid}-")
    alive = unique_dir("lob-test-stale")
    os.makedirs(stale)
    os.makedirs(alive)
    try:
        assert remove_stale_dirs("lob-test-stale") == [stale]
        assert not os.path.exists(stale) and os.path.isdir(alive)
    finally:
        shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(alive, ignore_errors=True)


def _log_file(driver):
    folder = os.path.join(driver.dir, "publications")
    names = os.listdir(folder)
    assert len(names) == 1
    return os.stat(os.path.join(folder, names[0]))


@pytest.mark.parametrize("sparse", [False, True])
def test_log_buffers_are_allocated_whole_unless_sparse(sparse):
    from aeron_helpers import free_port_base
    with MediaDriver(sparse_terms=sparse) as driver, Client(driver.dir, client_name="lob-test") as client:
        publication = client.add_exclusive_publication(f"aeron:udp?endpoint=127.0.0.1:{free_port_base(1)}", 5)
        try:
            assert publication.term_buffer_length == 4 << 20
            log = _log_file(driver)
            assert log.st_size > 3 * (4 << 20)          # three terms and the metadata
            allocated = log.st_blocks * 512
            if sparse:
                assert allocated < 4 << 20              # pages come when first written
            else:
                assert allocated >= log.st_size         # every page is there before the first message
            assert ("sparse" in driver.describe()) == sparse
        finally:
            publication.close()


def test_extra_driver_settings_must_be_aeron_variables():
    with pytest.raises(ValueError, match="driver setting 'FOO': expected an AERON_\\* variable"):
        MediaDriver(extra_settings={"FOO": "1"})
