"""The console entry point (cli.main) ends the process without the interpreter's teardown, but
only after what finalization does that anyone can see: the command's exit status, the threads
that are not daemons joined, the atexit handlers run, the standard streams flushed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import atexit, sys, threading, time
    from pathlib import Path
    from cementleak_stats import cli

    out = Path(sys.argv[1])
    atexit.register(lambda: (out / "atexit").write_text("ran"))

    def late():  # a thread that is not a daemon: finalization waits for it
        time.sleep(0.3)
        (out / "thread").write_text("done")

    threading.Thread(target=late).start()
    sys.stdout.write("buffered, not flushed")
    sys.argv = ["cementleak", *sys.argv[2:]]
    cli.main()
    raise AssertionError("main() returned")
""")


@pytest.mark.parametrize(("args", "status"), [(["--help"], 0), (["validate", "/no/such/study.yaml"], 2), (["no-such-command"], 2)])
def test_main_exits_with_the_commands_status_after_threads_atexit_and_output(tmp_path: Path, args: list[str],
                                                                              status: int) -> None:
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), *args], capture_output=True, text=True, timeout=120)
    assert res.returncode == status, res.stderr
    assert (tmp_path / "atexit").read_text() == "ran" and (tmp_path / "thread").read_text() == "done"
    assert res.stdout.startswith("buffered, not flushed")
    assert "Traceback" not in res.stderr and "AssertionError" not in res.stderr
