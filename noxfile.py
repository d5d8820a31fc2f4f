"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``.

Not run by default: ``nox -s bench`` (the side-by-side benchmark, ``bench/run.py``).
"""

from __future__ import annotations

import shutil

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, as CI runs it."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules (including the ASYNC rules) and formatting."""
    session.install("ruff>=0.17,<0.18")  # as .ci/run
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package (settings in pyproject.toml).

    With the ``fast`` extra: mypy must find httptools to check the parser that uses it.
    """
    session.install("-e", ".[fast]", "mypy>=2.4,<2.5")  # as .ci/run
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """The side-by-side benchmark against Hypercorn and Uvicorn: ``bench/run.py``.

    Writes ``docs/performance.md`` and ``docs/performance.png``. Options go after ``--``, e.g.
    ``nox -s bench -- --quick``. Needs ``wrk`` and ``taskset``; installs ``wrk`` with apt-get
    if it is missing (as root, on Debian or Ubuntu).
    """
    session.install("-e", ".[fast]", "hypercorn[trio]", "uvicorn[standard]", "matplotlib")
    if shutil.which("wrk") is None:
        session.log("wrk is not on the PATH; installing the Debian package: apt-get install wrk")
        session.run("apt-get", "update", external=True)
        session.run("apt-get", "install", "-y", "--no-install-recommends", "wrk", external=True)
    session.run("python", "bench/run.py", *session.posargs)
