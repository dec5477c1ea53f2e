"""PyPI's unrelated `kernels` distribution must not shadow this project's kernels/ package.

The imposter sits first on PYTHONPATH, ahead of everything (harsher than an install into
site-packages); both entry points, the `qoracle` command line and pytest with the rootdir
conftest, must still import the checkout's kernels/.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _imposter(tmp_path) -> dict:
    pkg = tmp_path / "site" / "kernels"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('the unrelated PyPI kernels package was imported')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), ROOT])}


def test_command_line_imports_its_own_kernels(tmp_path):
    r = subprocess.run([sys.executable, "-m", "reports", "isa"], cwd=tmp_path, env=_imposter(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ggml.quantize" in r.stdout


def test_pytest_imports_its_own_kernels(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        os.path.join(ROOT, "tests", "test_isa.py")],
                       cwd=ROOT, env=_imposter(tmp_path), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
