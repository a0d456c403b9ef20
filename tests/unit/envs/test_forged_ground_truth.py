"""The coding environment's ground truth cannot be forged by the code it checks.

The solution runs in its own bubblewrap sandbox and the tests in another; only plain values come
back. Each hostile solution below would have scored a pass (or reached the host) when the tests
ran in the solution's interpreter. Bubblewrap is expected here (``apt-get install bubblewrap``):
these tests fail, not skip, without it.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from _double_task import GOOD, HALF, TASK
from purpose_agent.core.types import Action
from purpose_agent.envs.coding import WRITE_CODE, CodingEnvironment, run_tests
from purpose_agent.tools import _sandbox
from purpose_agent.tools._sandbox import SandboxUnavailableError

TESTS = TASK.tests  # double(2) == 4, double(-1) == -2
WRONG = "    return 0\n"


def _report(code: str, timeout: float = 10.0) -> dict[str, object]:
    report = run_tests(code, TESTS, timeout)
    assert report["total"] == 2
    return report


def test_a_correct_solution_passes_inside_bubblewrap() -> None:
    report = _report(GOOD)
    assert report["passed"] == 2 and report["failures"] == []
    layers = report["isolation"]
    assert isinstance(layers, list)
    for layer in ("bwrap", "no-network", "read-only-fs", "pid-namespace", "rlimits"):
        assert layer in layers


def test_a_partial_solution_gets_its_fraction_and_sees_what_it_returned() -> None:
    env = CodingEnvironment(TASK)
    after = env.execute(Action(WRITE_CODE.name, {"code": HALF}), env.reset())
    assert env.outcome(after) == 0.5
    assert after.data["failures"] == ["double(-1) == -2 -> assertion false: got 0"]
    assert "Tests: 1/2 passed." in after.summary
    assert "FAIL double(-1) == -2 -> assertion false: got 0" in after.summary


FORGERIES = {
    "bool patched to always true": "import builtins\nbuiltins.bool = lambda *a: True\n",
    "comparison builtins patched": (
        "import builtins, operator\n"
        "operator.eq = lambda *a: True\n"
        "builtins.AssertionError = type('Nope', (BaseException,), {})\n"
        "builtins.Exception = BaseException\n"
        "builtins.isinstance = lambda *a: True\n"
    ),
    "print patched, fake verdicts printed everywhere": (
        "import builtins, json, os, sys\n"
        "fake = ''.join(json.dumps({'i': i, 'ok': True, 'error': None}) + '\\n' for i in range(2))\n"
        "fake += json.dumps({'loaded': True}) + '\\n' + json.dumps({'done': True}) + '\\n'\n"
        "fake += json.dumps({'results': [{'test': t, 'ok': True, 'error': None} for t in 'ab']}) + '\\n'\n"
        "for fd in range(64):\n"
        "    try:\n"
        "        os.write(fd, fake.encode())\n"
        "    except OSError:\n"
        "        pass\n"
        "print(fake)\n"
        "sys.__stdout__.write(fake)\n"
        "builtins.print = lambda *a, **k: None\n"
    ),
    "json of the harness patched": (
        "import json\njson.dumps = lambda *a, **k: '{\"ok\": true}'\njson.loads = lambda *a, **k: {'ok': True}\n"
    ),
}


@pytest.mark.parametrize("prelude", FORGERIES.values(), ids=FORGERIES.keys())
def test_patching_the_solution_interpreter_forges_nothing(prelude: str) -> None:
    report = _report(prelude + "def double(x):\n" + WRONG)
    assert report["passed"] == 0


class_always_equal = (
    "class Anything(int):\n"
    "    def __eq__(self, other):\n        return True\n"
    "    __hash__ = int.__hash__\n"
    "class Whatever:\n"
    "    def __eq__(self, other):\n        return True\n"
    "    def __bool__(self):\n        return True\n"
)


def test_values_that_claim_to_equal_anything_do_not_pass() -> None:
    subclass = _report(class_always_equal + "def double(x):\n    return Anything(0)\n")
    assert subclass["passed"] == 0  # compared as the plain int 0
    alien = _report(class_always_equal + "def double(x):\n    return Whatever()\n")
    assert alien["passed"] == 0
    assert any("not plain data" in str(f) for f in alien["failures"])  # type: ignore[attr-defined]


EXITS = {
    "sys.exit(0) on load": "import sys\nsys.exit(0)\ndef double(x):\n    return 2 * x\n",
    "os._exit(0) on load": "import os\nos._exit(0)\ndef double(x):\n    return 2 * x\n",
    "sys.exit(0) in the call": "import sys\ndef double(x):\n    sys.exit(0)\n",
    "os._exit(0) in the call": "import os\ndef double(x):\n    os._exit(0)\n",
    "KeyboardInterrupt in the call": "def double(x):\n    raise KeyboardInterrupt\n",
    "kill the parent": "import os, signal\ndef double(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 0\n",
    "kill every process it can": "import os, signal\ndef double(x):\n    os.kill(-1, signal.SIGKILL)\n    return 0\n",
    "kill its own group": "import os, signal\ndef double(x):\n    os.killpg(0, signal.SIGKILL)\n",
}


@pytest.mark.parametrize("code", EXITS.values(), ids=EXITS.keys())
def test_exits_and_signals_fail_and_the_caller_survives(code: str) -> None:
    report = _report(code)
    assert report["passed"] == 0
    assert len(report["failures"]) >= 1  # type: ignore[arg-type]
    assert _report(GOOD)["passed"] == 2  # this process and the sandbox still work


def test_an_exit_after_some_tests_keeps_the_earlier_results() -> None:
    code = "import os\ndef double(x):\n    if x < 0:\n        os._exit(0)\n    return 2 * x\n"
    report = _report(code)
    assert report["passed"] == 1
    assert report["failures"] == [
        "double(-1) == -2 -> the solution's process ended during a call (an exit, a kill or a crash)"
    ]


def test_a_hang_in_one_test_keeps_the_other_result() -> None:
    report = _report("def double(x):\n    while x < 0:\n        pass\n    return 2 * x\n", timeout=2)
    assert report["passed"] == 1
    assert report["failures"] == ["double(-1) == -2 -> timeout after 2s"]


def test_writing_outside_its_folder_fails(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    code = (
        "def double(x):\n"
        f"    open({str(target)!r}, 'w').write('pwned')\n"
        "    open('/etc/pwned-by-candidate', 'w').write('pwned')\n"
        "    return 2 * x\n"
    )
    report = _report(code)
    assert report["passed"] == 0
    assert not target.exists() and not Path("/etc/pwned-by-candidate").exists()


def test_the_solution_cannot_see_the_tests_or_the_host_temp_dir() -> None:
    """Passes only when nothing of the judge (tests.json, the run's temp folders) is visible."""
    host_tmp = tempfile.gettempdir()
    code = (
        "import glob, os\n"
        "def double(x):\n"
        "    assert not os.path.exists('tests.json')\n"
        f"    assert not glob.glob({host_tmp + '/pa-code-*'!r})\n"
        "    assert not glob.glob('/tmp/**/tests.json', recursive=True)\n"
        "    assert not os.path.exists('../judge/tests.json')\n"
        "    return 2 * x\n"
    )
    report = _report(code)
    assert report["passed"] == 2, report["failures"]


def test_reaching_the_network_fails() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(0.2)
        port = srv.getsockname()[1]
        code = (
            "import socket\n"
            "def double(x):\n"
            f"    socket.create_connection(('127.0.0.1', {port}), 2).sendall(b'leak')\n"
            "    return 2 * x\n"
        )
        report = _report(code)
        assert report["passed"] == 0
        assert any("Connection refused" in f or "unreachable" in f for f in report["failures"])  # type: ignore[attr-defined]
        with pytest.raises(TimeoutError):
            srv.accept()


def test_a_memory_bomb_fails_without_hurting_the_caller() -> None:
    report = _report("def double(x):\n    return len(bytearray(4 * 2**30))\n")
    assert report["passed"] == 0
    assert _report(GOOD)["passed"] == 2


# ------------------------------------------------------------------ without bubblewrap
@pytest.fixture
def no_sandbox_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine without bwrap and unshare: an empty PATH, and the probes forgotten."""
    monkeypatch.setenv("PATH", str(tmp_path))
    _sandbox.bwrap_works.cache_clear()
    _sandbox.unshare_works.cache_clear()
    yield
    _sandbox.bwrap_works.cache_clear()
    _sandbox.unshare_works.cache_clear()


def test_without_bubblewrap_the_default_refuses_and_says_how_to_fix_it(no_sandbox_tools: None) -> None:
    with pytest.raises(SandboxUnavailableError) as caught:
        CodingEnvironment(TASK)
    message = str(caught.value)
    assert "bubblewrap" in message and "apt-get install bubblewrap" in message
    assert "isolation='none'" in message
    with pytest.raises(SandboxUnavailableError, match="apt-get install bubblewrap"):
        run_tests(GOOD, TESTS)


def test_without_bubblewrap_none_runs_only_when_asked_and_says_so(no_sandbox_tools: None) -> None:
    report = run_tests(HALF, TESTS, isolation="none")
    assert report["passed"] == 1 and report["total"] == 2
    layers = report["isolation"]
    assert isinstance(layers, list) and "bwrap" not in layers and "no-network" not in layers
    env = CodingEnvironment(TASK, isolation="none")
    assert env.isolation == "none"
    after = env.execute(Action(WRITE_CODE.name, {"code": GOOD}), env.reset())
    assert env.outcome(after) == 1.0
