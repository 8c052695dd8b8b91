"""The throwaway PostgreSQL server: settings on top of ours reach the server."""

import psycopg
import pytest

from tests.pgcluster import PostgresCluster


@pytest.mark.postgres_only
def test_a_cluster_starts_with_the_settings_asked_for():
    cluster = PostgresCluster.start(settings={"shared_buffers": "48MB", "work_mem": "7MB"})
    try:
        with psycopg.connect(cluster.dsn()) as connection:
            names = ("shared_buffers", "work_mem", "fsync")
            shown = [connection.execute(f"SHOW {name}").fetchone()[0] for name in names]
    finally:
        cluster.stop()
    assert shown == ["48MB", "7MB", "off"]
    assert not cluster.root.exists()
