"""The package's shape: a library the dashboard drives, never the other way round."""

import subprocess
import sys


def test_the_package_never_imports_streamlit():
    modules = ["umask", "umask.jobs", "umask.workers", "umask.sweep", "umask.report", "umask.bench", "umask.cli",
               "umask.plots.run", "umask.plots.study", "umask.plots.geometry", "umask.geometry", "umask.toy"]
    code = f"import sys, {', '.join(modules)}; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
