"""The package's shape: a library the dashboard drives, never the other way round."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import umask
import umask.cli


def test_the_package_never_imports_streamlit():
    modules = ["umask", "umask.jobs", "umask.workers", "umask.sweep", "umask.report", "umask.bench", "umask.cli",
               "umask.plots.run", "umask.plots.study", "umask.plots.geometry", "umask.geometry", "umask.toy",
               *(f"umask.cli.{name}" for name in umask.cli.COMMANDS)]
    code = f"import sys, {', '.join(modules)}; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_package_logs_or_returns_and_never_prints():
    root = Path(umask.__file__).parent
    calls = [f"{path.relative_to(root)}:{node.lineno}" for path in sorted(root.rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"]
    assert calls == []


def test_ci_runs_the_readmes_test_command():
    root = Path(umask.__file__).parent.parent
    readme = (root / "README.md").read_text()
    documented = next(line.split("#")[0].strip() for line in readme.splitlines() if line.startswith("python -m pytest"))
    ci = [line.strip() for line in (root / ".ci" / "run").read_text().splitlines() if "pytest" in line and not line.startswith("#")]
    assert ci == [documented] == ["python -m pytest -v"]


def test_importing_the_package_leaves_torch_until_a_name_is_used():
    code = "import sys, umask; before = 'torch' in sys.modules; umask.Config; print(before, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
    for name in umask.__all__:  # every advertised name resolves (dir() lists them whatever they resolve to)
        assert getattr(umask, name) is not None, name


def test_the_dashboard_starts_its_first_worker_before_it_imports_torch():
    # app.py starts the worker first, so its torch import (seconds) overlaps
    # the server's: a first click then found it ready (first frame 0.78-1.20 s,
    # not 2.3-4.6 s). A torch import creeping back into the modules the start
    # goes through, or the call moving after configure_torch, undoes that.
    root = Path(__file__).resolve().parent.parent
    code = ("import sys, time, ui.server\n"
            "ui.server.start_first_worker()\n"
            "pool = ui.server.worker_pool()\n"
            "deadline = time.monotonic() + 120\n"
            "while pool.idle_count == 0 and time.monotonic() < deadline: time.sleep(0.1)\n"
            "print(pool.started, pool.idle_count, 'torch' in sys.modules)\n"
            "pool.close()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.split() == ["1", "1", "False"]  # a worker ready, and still no torch in this process
    calls = [node.func.id for node in ast.walk(ast.parse((root / "app.py").read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    assert calls.index("start_first_worker") < calls.index("configure_torch")


def test_the_command_list_answers_without_loading_torch():
    # python -m umask --help, or no command at all, imports no command module (each one loads torch).
    for argv in (["--help"], [], ["genrate"]):
        code = f"import sys; from umask.cli import main\ntry: main({argv!r})\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.splitlines()[-1] == "False"
    out = subprocess.run([sys.executable, "-m", "umask", "genrate"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr == (
        "umask: error: unknown command 'genrate'; did you mean 'generate'? (the commands: generate, evaluate, models, "
        "classes, sweep, geometry, fgsm, bench); see python -m umask --help.\n")
    out = subprocess.run([sys.executable, "-m", "umask", "zzz"], capture_output=True, text=True)  # nothing alike: the list
    assert out.returncode == 2 and "invalid choice: 'zzz' (choose from 'generate', 'evaluate'," in out.stderr
    # Looking up a class name needs no torch either: it answers at once.
    for argv in (["classes", "gold"], ["classes", "--help"]):
        code = f"import sys; from umask.cli import main\ntry: main({argv!r})\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.splitlines()[-1] == "False" and (argv[1] != "gold" or "goldfish" in out.stdout)


def test_the_bundled_model_and_the_class_names_need_no_torchvision_import():
    """torchvision's import costs seconds (torch._dynamo): a command, a worker
    or a page that runs the bundled model must not pay it."""
    code = ("import sys; from umask.models import list_models, load_model; from umask.targets import imagenet_classes; "
            "from umask.cli import build_parser; build_parser(['generate']); "
            "names = imagenet_classes(); model = load_model('efficientnet_lite0'); "
            "print(len(names), model.categories == names, len(list_models()) >= 7, 'torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1000", "True", "True", "False"]
    # ... and asking for a study model's download size loads it then, from torchvision's own metadata.
    code = "from umask.models import model_info; print(model_info('vgg16').download_mb)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "527.8"


def wait_for_torch_import(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until libtorch is in ``proc``'s memory (Linux): umask's __main__ set its
    Ctrl-C handler before the import began. A press before that, while Python
    itself starts, is Python's own traceback; on a loaded machine that window
    passed 0.25 s."""
    import time

    maps, deadline = Path(f"/proc/{proc.pid}/maps"), time.monotonic() + timeout
    while "libtorch" not in maps.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, "the CLI never reached torch's import"
        time.sleep(0.005)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc to see torch's import start")
def test_ctrl_c_while_the_cli_starts_is_one_line(tmp_path):
    """Presses land in torch's import at different points: some of those turn
    KeyboardInterrupt into an ImportError, or swallow it and let the run start."""
    import signal
    import time

    for delay in (0.0, 0.5, 1.3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "umask", "generate", "--k", "4", "--steps", "100000", "--out", str(tmp_path / f"run{delay}")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # pytest may run with Ctrl-C ignored
        )
        wait_for_torch_import(proc)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, (delay, err)
        assert "interrupted" in out + err, (delay, out, err)
        # 130: the press came during torch's import (the guard's exit). -2: it came once the command ran,
        # which wrote the line, then Python re-raised SIGINT on exit.
        assert proc.returncode in (130, -signal.SIGINT), (delay, proc.returncode)


def test_ctrl_c_inside_a_callback_python_cannot_raise_from_is_one_line():
    """CI once saw a press land in importlib's module-lock cleanup, a weakref
    callback: Python printed the KeyboardInterrupt as "Exception ignored" with
    a traceback. A weakref callback that raises SIGINT stands in for it here."""
    code = ("import runpy, signal, sys, weakref\n"
            "import umask.cli as cli\n"
            "class Held: pass\n"
            "def load(name):\n"
            "    held = Held()\n"
            "    ref = weakref.ref(held, lambda r: signal.raise_signal(signal.SIGINT))\n"
            "    del held\n"
            "cli.command_module = load\n"
            "sys.argv = ['umask', 'generate', '--k', '4']\n"
            "runpy.run_module('umask', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (130, "umask: interrupted; no file was left half-written\n")
