"""Tests of firmware/: a package, so its conftest and modules never shadow those in tests/."""
