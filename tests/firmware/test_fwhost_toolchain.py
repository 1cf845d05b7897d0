"""The firmware as MicroPython sees it: mpy-cross compiles every file, the unix port runs the tests.

CPython only (subprocesses); the MicroPython runner skips test_fwhost_* files.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIRMWARE_DIR = HERE.parents[1] / "firmware"
MPY_CROSS = [sys.executable, "-m", "mpy_cross"]
MICROPYTHON = [sys.executable, "-m", "micropython_unix"]


def compile_mpy(source: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    out = tmp_path / (source.stem + ".mpy")
    return subprocess.run(
        [*MPY_CROSS, "-o", str(out), str(source)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "source", sorted(FIRMWARE_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(FIRMWARE_DIR))
)
def test_every_firmware_file_compiles_with_mpy_cross(source: Path, tmp_path: Path) -> None:
    result = compile_mpy(source, tmp_path)
    assert result.returncode == 0, result.stderr


def test_mpy_cross_rejects_what_micropython_lacks(tmp_path: Path) -> None:
    source = tmp_path / "unpacking.py"
    source.write_text('CODES = ("A",)\nALL = ("NONE", *CODES)\n')
    assert compile_mpy(source, tmp_path).returncode != 0


def count_tests() -> int:
    total = 0
    for path in HERE.glob("test_fw_*.py"):
        tree = ast.parse(path.read_text())
        total += sum(
            isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            for node in tree.body
        )
    return total


def test_the_firmware_tests_pass_under_micropython() -> None:
    result = subprocess.run(
        [*MICROPYTHON, str(HERE / "run_micropython.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"micropython: {count_tests()} passed, 0 failed" in result.stdout
