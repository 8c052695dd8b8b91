"""Fixtures for the whole suite.

Database: SQLite by default; `--db=postgres` runs the same tests on a throwaway
PostgreSQL server started for the run (see tests/pgcluster.py).
"""

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests import testdb
from tests.pgcluster import PostgresCluster, find_bindir

if TYPE_CHECKING:
    from guildhub.emulator.server import EmulatorServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="database backend for the tests: sqlite (default) or postgres (starts a throwaway server)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--db") == "postgres" and find_bindir() is None:
        raise pytest.UsageError(
            "--db=postgres needs the PostgreSQL server binaries (initdb, postgres): install Debian's "
            "postgresql package, or set PG_BINDIR"
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres_only") and item.config.getoption("--db") != "postgres":
        pytest.skip("needs PostgreSQL: run with --db=postgres")


@pytest.fixture(scope="session")
def postgres_cluster(request: pytest.FixtureRequest) -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this run's own (one per xdist worker)."""
    if request.config.getoption("--db") != "postgres":
        pytest.skip("needs PostgreSQL: run with --db=postgres")
    cluster = PostgresCluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def _test_database_settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
    if request.config.getoption("--db") == "postgres":
        cluster = request.getfixturevalue("postgres_cluster")
        testdb.use_postgres(host=cluster.host, port=cluster.port, user=cluster.user)
    else:
        testdb.use_sqlite_file(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    _test_database_settings: None,
    django_db_modify_db_settings_parallel_suffix: None,
) -> None:
    """pytest-django's hook for changing DATABASES before the test databases are created.

    The order of the arguments matters: pytest sets them up in order, so the backend
    is chosen first and the xdist suffix (test_guildhub_gw0 …) is then applied to it.
    """


@pytest.fixture
def database_url(transactional_db: None) -> str:
    """DATABASE_URL of the test database, for subprocesses (manage.py qcluster …) that must use it too.

    It brings `transactional_db` along: a subprocess sees only committed rows, and on
    SQLite a test transaction would hold the write lock the subprocess needs.
    """
    from django.db import connection

    return testdb.database_url(connection.settings_dict)


@pytest.fixture
def emulator() -> Iterator["EmulatorServer"]:
    """A Discord API emulator on a free loopback port: two small guilds, fast rate limits."""
    from guildhub.emulator.app import EmulatorOptions
    from guildhub.emulator.server import EmulatorServer
    from guildhub.emulator.state import GuildSpec, World

    # member_json: the member pages and chunks of every sync test come from the store the
    # benchmarks use (guildhub/emulator/member_json.py); tests with their own World use the generator.
    world = World(
        seed=7,
        guilds=[GuildSpec(name="Test Guild", members=300, channels=3, messages=250), GuildSpec(members=40)],
        member_json=True,
    )
    with EmulatorServer(world, profile="fast", options=EmulatorOptions(heartbeat_interval_ms=1000)) as server:
        yield server


@pytest.fixture
def discord_settings(settings, emulator):
    """Point GuildHub at the test emulator, with quick retries."""
    settings.DISCORD_TOKEN = "test-token"
    settings.DISCORD_API_BASE = emulator.api_base
    settings.DISCORD_RETRY_BASE = 0.01
    settings.DISCORD_RETRY_CAP = 0.05
    return settings


@pytest.fixture
def emulator_guild(emulator):
    """The emulator's first guild (300 generated members and the bot)."""
    return next(iter(emulator.world.guilds.values()))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway Redis server (`.ci/run` installs redis-server; skipped where it is missing)."""
    from tests.redisserver import RedisServer

    try:
        server = RedisServer.start()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    yield server.url
    server.stop()
