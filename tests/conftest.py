"""Fixtures shared by the test suite; the tools themselves live in tests/helpers.py."""
