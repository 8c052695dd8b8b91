"""Several writers, commits in order: what a sync's checkpoint relies on when its pages are written at once."""

import threading
from concurrent.futures import Future

import pytest
from django.db import connection, transaction
from django.test import override_settings

from guildhub.discord.clients import run_async
from members.database_writers import DatabaseWriters, EarlierWriteFailed, Turn, writer_count
from members.models import Guild, Member

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 10  # seconds: only ever reached when the ordering is broken


def closed(writers: DatabaseWriters) -> None:
    run_async(writers.close())


def test_a_write_that_finishes_first_commits_after_the_one_handed_over_before_it():
    writers = DatabaseWriters("test-order", count=2)
    second_ready = threading.Event()
    commits: list[int] = []

    def slow(turn: Turn) -> None:
        assert second_ready.wait(WAIT)  # the second write is done with its work before this one
        turn.wait()
        commits.append(turn.ticket)

    def fast(turn: Turn) -> None:
        second_ready.set()
        turn.wait()
        commits.append(turn.ticket)

    try:
        first, second = writers.submit_in_turn(slow), writers.submit_in_turn(fast)
        first.result(WAIT), second.result(WAIT)
    finally:
        closed(writers)
    assert commits == [0, 1]


def test_a_write_sharing_a_member_with_one_in_flight_starts_only_after_it():
    writers = DatabaseWriters("test-keys", count=2)
    release = threading.Event()
    started: list[int] = []

    def write(turn: Turn, hold: bool) -> None:
        started.append(turn.ticket)
        if hold:
            assert release.wait(WAIT)
        turn.wait()

    try:
        first = writers.submit_in_turn(write, True, keys=[1, 2, 3])
        second = writers.submit_in_turn(write, False, keys=[3, 4])
        with pytest.raises(TimeoutError):
            second.result(0.2)
        assert started == [0]  # the second has not begun: it would wait for member 3's row lock
        release.set()
        first.result(WAIT), second.result(WAIT)
    finally:
        release.set()
        closed(writers)
    assert started == [0, 1]


def test_writes_after_a_failed_one_fail_instead_of_committing():
    writers = DatabaseWriters("test-fail", count=2)
    second_waiting = threading.Event()

    def fails(turn: Turn) -> None:
        assert second_waiting.wait(WAIT)
        raise ValueError("refused")

    def waits(turn: Turn) -> None:
        second_waiting.set()
        turn.wait()

    try:
        first, second, third = (writers.submit_in_turn(fn) for fn in (fails, waits, waits))
        with pytest.raises(ValueError, match="refused"):
            first.result(WAIT)
        for later in (second, third):
            with pytest.raises(EarlierWriteFailed):
                later.result(WAIT)
    finally:
        closed(writers)


def test_a_write_cancelled_before_it_started_does_not_leave_the_next_waiting_for_ever():
    writers = DatabaseWriters("test-cancel", count=2)
    release = threading.Event()

    def holds(turn: Turn) -> None:
        assert release.wait(WAIT)
        turn.wait()

    def waits(turn: Turn) -> None:
        turn.wait()

    try:
        first = writers.submit_in_turn(holds)  # thread 0
        second = writers.submit_in_turn(waits)  # thread 1
        queued = writers.submit_in_turn(waits)  # thread 0, behind the first
        fourth = writers.submit_in_turn(waits)  # thread 1, waits for the queued one's turn
        assert queued.cancel()
        release.set()
        first.result(WAIT), second.result(WAIT)
        with pytest.raises(EarlierWriteFailed):
            fourth.result(WAIT)
    finally:
        release.set()
        closed(writers)


def test_sqlite_gets_one_writer_and_postgresql_the_setting():
    with override_settings(MEMBER_SYNC_WRITERS=3):
        assert writer_count("sqlite") == 1
        assert writer_count("postgresql") == 3
    with override_settings(MEMBER_SYNC_WRITERS=0):
        assert writer_count("postgresql") == 1


@pytest.mark.postgres_only
def test_on_postgresql_a_page_after_a_refused_one_is_rolled_back_though_its_rows_were_written():
    guild = Guild.objects.create(id=1, name="writers")
    writers = DatabaseWriters("test-rollback", count=2)
    second_written = threading.Event()

    def refused(turn: Turn) -> None:
        with transaction.atomic():
            Member.objects.create(guild=guild, user_id=10, username="ten")
            assert second_written.wait(WAIT)
            raise ValueError("refused")

    def after_it(turn: Turn) -> None:
        with transaction.atomic():
            Member.objects.create(guild=guild, user_id=20, username="twenty")
            second_written.set()
            turn.wait()

    futures: list[Future] = []
    try:
        futures = [writers.submit_in_turn(refused, keys=[10]), writers.submit_in_turn(after_it, keys=[20])]
        with pytest.raises(ValueError, match="refused"):
            futures[0].result(WAIT)
        with pytest.raises(EarlierWriteFailed):
            futures[1].result(WAIT)
    finally:
        second_written.set()
        closed(writers)
    assert connection.vendor == "postgresql"
    assert not Member.objects.filter(guild=guild).exists()
