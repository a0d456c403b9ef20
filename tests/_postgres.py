"""A real PostgreSQL server for the tests: initdb in a temporary folder, ``postgres`` on a unix
socket there (no TCP port), stopped at the end of the session.

Loaded by ``tests/conftest.py`` (``pytest_plugins``). Tests ask for ``pg_url`` (a fresh, empty
database per test) or ``postgres_server``. When the binaries or psycopg are missing, those tests
FAIL and name ``make install-test`` (which installs Debian's ``postgresql`` package and the
``postgres`` extra); they are never skipped. ``PURPOSE_AGENT_TEST_PG_URL`` points the tests at a
server of your own instead (its database is used as the maintenance database).

PostgreSQL refuses to run as root: as root, the data folder is given to the ``postgres`` user
(created by the Debian package) and the server runs as that user through ``runuser``.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

INSTALL_HINT = (
    "run `make install-test` (it installs Debian's postgresql package and the postgres extra, psycopg 3)"
)
_DB_COUNTER = itertools.count()


def _bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: $PATH first, then Debian's layout."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """One throwaway cluster; ``url(db)`` names a database on it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="pa-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 5432 + os.getpid() % 1000 + 100  # only names the socket file: no TCP listener
        self.user = "purpose"
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(
                    f"running as root and there is no 'postgres' user to run the server: {INSTALL_HINT}"
                )
            shutil.chown(self.root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.root, 0o755)

    def _run(self, *cmd: str) -> None:
        proc = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr or proc.stdout}\n{log}")

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        opts = (
            f"-k {self.root} -p {self.port} -c listen_addresses='' -c fsync=off "
            "-c full_page_writes=off -c max_connections=60 -c shared_buffers=64MB"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "start"
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [
                    *self._as,
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
                capture_output=True,
                timeout=120,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@/{dbname}?host={quote(str(self.root), safe='')}&port={self.port}"

    def pg_dump(self, url: str) -> str:
        """``pg_dump`` of a database (schema and data), as text."""
        proc = subprocess.run(
            [str(self.bindir / "pg_dump"), "--no-owner", "--dbname", url],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return proc.stdout


class ExternalServer(PostgresServer):
    """A server given by PURPOSE_AGENT_TEST_PG_URL: databases are created on it, nothing started."""

    def __init__(self, url: str, bindir: Path | None) -> None:
        self.base = url
        self.bindir = bindir or Path("/usr/bin")

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def url(self, dbname: str) -> str:
        from purpose_agent.memory._pg_schema import with_database

        return with_database(self.base, dbname)


def _require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail(f"the PostgreSQL backend tests need psycopg 3 (the postgres extra): {INSTALL_HINT}")


def new_server() -> PostgresServer:
    """The server the tests will use; FAILS (never skips) naming make install-test when it cannot be."""
    _require_psycopg()
    external = os.environ.get("PURPOSE_AGENT_TEST_PG_URL")
    bindir = _bindir()
    if external:
        return ExternalServer(external, bindir)
    if bindir is None:
        pytest.fail(f"PostgreSQL binaries (initdb, pg_ctl, postgres) are not installed: {INSTALL_HINT}")
    return PostgresServer(bindir)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (started on first use)."""
    server = new_server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _maintenance_url(server: PostgresServer) -> str:
    return server.base if isinstance(server, ExternalServer) else server.url("postgres")


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's server; its URL (dropped afterwards)."""
    import psycopg

    name = f"t{os.getpid()}_{next(_DB_COUNTER)}"
    with psycopg.connect(_maintenance_url(postgres_server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    yield postgres_server.url(name)
    with psycopg.connect(_maintenance_url(postgres_server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives, once per backend: a SQLite file, or a fresh database on the session's
    PostgreSQL server (the store suites that run on both take it)."""
    if request.param == "sqlite":
        return str(tmp_path / "m.db")
    return str(request.getfixturevalue("pg_url"))
