"""Group commit: concurrent writes share statements, one per key, each with its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from shared.storage.group_commit import GroupCommit

CONN: Any = object()  # the leader's connection, passed through untouched


class Statements:
    """A fake statement runner: records each statement's items; the first waits for `release`."""

    def __init__(self, *, hold_first: bool = True) -> None:
        self.runs: list[list[str]] = []
        self.release = asyncio.Event()
        if not hold_first:
            self.release.set()
        self.fail_with: Exception | None = None

    async def execute(self, conn: Any, items: Sequence[str]) -> list[str | Exception]:
        assert conn is CONN
        self.runs.append(list(items))
        if len(self.runs) == 1:
            await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return [ValueError(item) if item.startswith("bad") else item.upper() for item in items]


def grouped(statements: Statements) -> GroupCommit[str, str]:
    return GroupCommit(statements.execute, key=lambda item: item.split(":")[0], service="unit")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def behind_a_running_statement(
    *items: str,
) -> tuple[Statements, GroupCommit[str, str], asyncio.Task[str], list[asyncio.Task[str]]]:
    """A statement for "a:1" held running, and writes of `items` submitted behind it."""
    statements = Statements()
    groups = grouped(statements)
    first = asyncio.create_task(groups.submit(CONN, "a:1"))
    await settle()
    behind = [asyncio.create_task(groups.submit(CONN, item)) for item in items]
    await settle()
    return statements, groups, first, behind


async def test_a_lone_write_runs_at_once_in_a_statement_of_its_own() -> None:
    statements = Statements(hold_first=False)
    assert await grouped(statements).submit(CONN, "a:1") == "A:1"
    assert statements.runs == [["a:1"]]


async def test_writes_arriving_during_a_statement_share_the_next_one_key_by_key() -> None:
    statements, _, first, behind = await behind_a_running_statement("b:1", "c:1", "b:2")
    statements.release.set()
    assert await first == "A:1"
    assert await asyncio.gather(*behind) == ["B:1", "C:1", "B:2"]
    # b:2 waits for a statement after b:1's: one write per key in a statement
    assert statements.runs == [["a:1"], ["b:1", "c:1"], ["b:2"]]


async def test_each_write_gets_its_own_error_and_a_failed_statement_fails_only_its_writes() -> None:
    statements, groups, first, (bad, good) = await behind_a_running_statement("bad:1", "c:1")
    statements.release.set()
    assert await first == "A:1"
    with pytest.raises(ValueError, match="bad:1"):
        await bad
    assert await good == "C:1"

    statements.fail_with = ConnectionResetError("database away")
    with pytest.raises(ConnectionResetError):
        await groups.submit(CONN, "d:1")
    statements.fail_with = None
    assert await groups.submit(CONN, "e:1") == "E:1"  # the next statement runs as ever


async def test_a_queued_writer_that_gives_up_stalls_nobody() -> None:
    statements, _, first, (quitter, patient) = await behind_a_running_statement("b:1", "c:1")
    quitter.cancel()
    await settle()
    statements.release.set()
    assert await first == "A:1"
    assert await patient == "C:1"
    assert quitter.cancelled()
    assert ["b:1"] not in statements.runs and ["b:1", "c:1"] not in statements.runs


async def test_a_writer_cancelled_after_being_handed_the_lead_hands_it_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    statements = Statements()
    groups = grouped(statements)
    first = asyncio.create_task(groups.submit(CONN, "a:1"))
    await settle()
    heir = asyncio.create_task(groups.submit(CONN, "a:2"))  # same key: cannot join a:1's
    await settle()
    later = asyncio.create_task(groups.submit(CONN, "a:3"))
    await settle()
    pass_on = groups._pass_on

    def then_cancel_the_heir() -> None:
        pass_on()  # hands the lead to a:2's writer...
        heir.cancel()  # ...which is cancelled before it can take it

    monkeypatch.setattr(groups, "_pass_on", then_cancel_the_heir)
    statements.release.set()
    assert await first == "A:1"
    monkeypatch.setattr(groups, "_pass_on", pass_on)
    assert await later == "A:3"
    assert heir.cancelled()
    assert statements.runs == [["a:1"], ["a:3"]]
