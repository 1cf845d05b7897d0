"""Runs the firmware tests under the MicroPython unix port.

    micropython tests/firmware/run_micropython.py

Runs every test function in the test_fw_*.py files next to it (valid
MicroPython; the test_fwhost_*.py files need CPython), prints one line of
counts and exits 1 if any test failed.
"""

import os
import sys

HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, HERE + "/../../firmware")
sys.path.insert(0, HERE)


def run_module(module_name):
    """(passed, failed) for the test functions in one module."""
    passed = failed = 0
    module = __import__(module_name)
    for name in sorted(dir(module)):
        if not name.startswith("test_"):
            continue
        try:
            getattr(module, name)()
            passed += 1
        except Exception as exc:
            failed += 1
            print("FAILED", module_name + "." + name)
            sys.print_exception(exc)
    return passed, failed


def main():
    passed = failed = 0
    for file_name in sorted(os.listdir(HERE)):
        if file_name.startswith("test_fw_") and file_name.endswith(".py"):
            module_passed, module_failed = run_module(file_name[:-3])
            passed += module_passed
            failed += module_failed
    print(f"micropython: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
