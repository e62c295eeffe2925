"""Running a command against an event-sourced stream: fold, decide, append, remember.

The same loop serves every service: the stream is folded with the pure `evolve`, the pure
`decide` returns new events (or raises a DomainError), and the append is checked against the
version folded. A lost race is retried against the new state. A command with an
`Idempotency-Key` returns its first answer again and writes nothing. Work that must commit
with a command (a queue row, a lease settled) runs in its transaction through `transact`, and
so shares its retries.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.model.envelope import GENESIS_HASH, Envelope
from shared.model.errors import DomainError, NotFound
from shared.model.events import DomainEvent, EventRegistry
from shared.model.log import ConcurrencyConflict, EventMetadata, Head
from shared.resilience.retry import Backoff, Retry, retrying
from shared.security.crypto import Protect, Record
from shared.security.tokens import PermissionDenied
from shared.usecases.idempotency import IdempotencyKey, IdempotencyRace
from shared.usecases.ports import UnitOfWork, UnitsOfWork

__all__ = [
    "CommandRunner",
    "Decider",
    "Folded",
    "Reply",
    "StateCache",
    "Then",
    "fold",
]

S = TypeVar("S")
T = TypeVar("T")
Reply = dict[str, Any]
"""What a command or read answers: a JSON object."""
Then = Callable[[UnitOfWork, list[Envelope]], Awaitable[None]]
"""Work run in a command's transaction after its append, given the appended envelopes."""


@dataclass(frozen=True)
class Decider(Generic[S]):
    """A stream's pure behaviour: its empty state, how events change it, whose data it holds."""

    initial: Callable[[], S]
    evolve: Callable[[S, DomainEvent], S]
    owner: Callable[[S], str | None]


@dataclass(frozen=True)
class Folded(Generic[S]):
    """A stream's state, the version it was folded up to, and that event's hash. `appended`:
    this state is the one this runner's own append committed."""

    state: S
    version: int
    hash: str = GENESIS_HASH
    appended: bool = False

    @property
    def head(self) -> Head:
        return Head(self.version, self.hash)


class StateCache(Generic[S]):
    """The last committed fold of recently used streams (least recently used dropped first).

    A command folds only the events appended since the cached version, so its cost does not
    grow with the stream. Only committed states are kept. A stream this runner appended to
    last is decided on its cached state without a read (the append checks that the stream
    still ends there). A lost race makes it `contended`: commands read what was appended
    since the cached version first, until a read finds nothing new (the race was between
    this runner's own commands, not with another writer).
    """

    def __init__(self, capacity: int = 20_000) -> None:
        self._capacity = capacity
        self._states: OrderedDict[str, Folded[S]] = OrderedDict()
        self._contended: set[str] = set()

    def current(self, stream_id: str) -> Folded[S] | None:
        """The cached state if it may be decided on without a read, else None."""
        found = self.get(stream_id)
        if found is None or not found.appended or stream_id in self._contended:
            return None
        return found

    def contend(self, stream_id: str) -> None:
        """A race on this stream was lost: read before deciding from now on."""
        if stream_id in self._states:
            self._contended.add(stream_id)

    def settle(self, stream_id: str) -> None:
        """A read found the cached state current: nobody else writes here lately."""
        self._contended.discard(stream_id)

    def get(self, stream_id: str) -> Folded[S] | None:
        found = self._states.get(stream_id)
        if found is not None:
            self._states.move_to_end(stream_id)
        return found

    def put(self, stream_id: str, folded: Folded[S]) -> None:
        known = self._states.get(stream_id)
        if known is not None and known.version > folded.version:
            return  # a later commit got here first
        self._states[stream_id] = folded
        self._states.move_to_end(stream_id)
        while len(self._states) > self._capacity:
            dropped, _ = self._states.popitem(last=False)
            self._contended.discard(dropped)


async def fold(
    unit: UnitOfWork,
    registry: EventRegistry,
    decider: Decider[S],
    stream_id: str,
    since: Folded[S] | None = None,
) -> Folded[S]:
    """The stream's current state: `since` (a fold up to some version, or nothing) with the
    events appended after it."""
    state = decider.initial() if since is None else since.state
    version = 0 if since is None else since.version
    last_hash = GENESIS_HASH if since is None else since.hash
    for envelope in await unit.read_stream_after(stream_id, version):
        state = decider.evolve(state, registry.load(envelope))
        version, last_hash = envelope.stream_version, envelope.hash
    return Folded(state, version, last_hash)


class CommandRunner(Generic[S]):
    """Executes commands on one kind of stream for a service; `noun` names that kind in the
    404 of an unknown id ("no engagement <id>")."""

    def __init__(
        self,
        units: UnitsOfWork,
        registry: EventRegistry,
        decider: Decider[S],
        *,
        noun: str = "stream",
        retries: int = 12,
        cache: StateCache[S] | None = None,
    ) -> None:
        self.units = units
        self.registry = registry
        self.decider = decider
        self.noun = noun
        self.retries = retries
        # Another command won the race: decide again against the new state (the cached fold is
        # still a true, older, state: the next attempt reads on), after a short random pause so
        # a crowd of writers spreads out instead of colliding.
        self._lost_race = Retry(
            attempts=retries + 1,
            backoff=Backoff(first=0.002, most=0.128, jitter=1.0),
            worth=lambda error: isinstance(error, ConcurrencyConflict | IdempotencyRace),
        )
        self.cache: StateCache[S] = cache or StateCache()

    async def execute(
        self,
        stream_id: str,
        decide: Callable[[S], Sequence[DomainEvent]],
        metadata: EventMetadata,
        respond: Callable[[S, list[Envelope]], Reply],
        *,
        creates: bool = False,
        idempotency: IdempotencyKey | None = None,
    ) -> Reply:
        """Fold, decide, append; retry on a lost race; answer the first answer to a retried key.

        Without an `Idempotency-Key` a command needs no transaction: its append is one atomic
        statement that checks the stream still ends where the fold did.
        """

        async def attempt(unit: UnitOfWork) -> Reply:
            return await self.execute_in(
                unit, stream_id, decide, metadata, respond, creates=creates, idempotency=idempotency
            )

        if idempotency is None:
            return await self._retrying(self.units.statements, attempt)
        return await self._retrying(self.units.transaction, attempt)

    async def transact(
        self,
        work: Callable[[UnitOfWork], Awaitable[Reply]],
        *,
        idempotency: IdempotencyKey | None = None,
    ) -> Reply:
        """Run `work` in one transaction, the in-transaction hook of the runner: with an
        `Idempotency-Key` the first reply is answered again (and `work` not run); a lost race
        (`ConcurrencyConflict`, `IdempotencyRace`) runs it again after a short pause. `work`
        may run commands with `execute_in` in the unit of work it is given."""

        async def attempt(unit: UnitOfWork) -> Reply:
            return await self._once(unit, idempotency, lambda: work(unit))

        return await self._retrying(self.units.transaction, attempt)

    async def _retrying(
        self,
        begin: Callable[[], AbstractAsyncContextManager[UnitOfWork]],
        attempt: Callable[[UnitOfWork], Awaitable[T]],
    ) -> T:
        async def once() -> T:
            async with begin() as unit:
                return await attempt(unit)

        return await retrying(once, self._lost_race)

    async def _once(
        self,
        unit: UnitOfWork,
        idempotency: IdempotencyKey | None,
        work: Callable[[], Awaitable[Reply]],
    ) -> Reply:
        """`work`'s reply, kept under the key; or the reply already kept under it."""
        if idempotency is None:
            return await work()
        previous = await unit.remembered(idempotency)
        if previous is not None:
            return previous
        reply = await work()
        await unit.remember(idempotency, 201, reply)
        return reply

    async def execute_in(
        self,
        unit: UnitOfWork,
        stream_id: str,
        decide: Callable[[S], Sequence[DomainEvent]],
        metadata: EventMetadata,
        respond: Callable[[S, list[Envelope]], Reply],
        *,
        creates: bool = False,
        idempotency: IdempotencyKey | None = None,
        then: Then | None = None,
    ) -> Reply:
        """One attempt in the caller's unit of work (inside its transaction, if it has one: a
        consumer's inbox, say); `then` runs after the append, in the same unit of work. The new
        state is cached once its events are committed."""
        return await self._once(
            unit,
            idempotency,
            lambda: self._decide(unit, stream_id, decide, metadata, respond, creates, then),
        )

    async def _decide(
        self,
        unit: UnitOfWork,
        stream_id: str,
        decide: Callable[[S], Sequence[DomainEvent]],
        metadata: EventMetadata,
        respond: Callable[[S, list[Envelope]], Reply],
        creates: bool,
        then: Then | None,
    ) -> Reply:
        current, events = self._decide_cached(stream_id, decide)
        if current is None:
            since = self.cache.get(stream_id)
            current = await fold(unit, self.registry, self.decider, stream_id, since)
            if since is not None and since.appended and current.version == since.version:
                self.cache.settle(stream_id)
            if current.version == 0 and not creates:
                raise NotFound(f"no {self.noun} {stream_id}")
            if current.version:
                read = current
                unit.after_commit(lambda: self.cache.put(stream_id, read))
            events = list(decide(current.state))
        state = current.state
        for event in events:
            state = self.decider.evolve(state, event)
        owner = self.decider.owner(state)
        sealed = 0  # personal values sealed into the stored events

        async def sealing() -> Protect | None:
            if not owner or not events:
                return None
            seal_value = await unit.sealer(Record(owner, stream_id))

            def counted(field: str, value: str) -> str:
                nonlocal sealed
                sealed += 1
                return seal_value(field, value)

            return counted

        try:
            envelopes = await unit.append(
                stream_id,
                current.version,
                events,
                metadata,
                protect=await sealing(),
                head=current.head,
            )
        except ConcurrencyConflict:
            self.cache.contend(stream_id)
            raise
        if envelopes:  # cached as a fold of the stored (sealed) events would give it
            stored = state  # which, with nothing sealed, is the state decided
            if sealed:
                stored = current.state
                for envelope in envelopes:
                    stored = self.decider.evolve(stored, self.registry.load(envelope))
            reached = Folded(stored, envelopes[-1].stream_version, envelopes[-1].hash, True)
            unit.after_commit(lambda: self.cache.put(stream_id, reached))
        if then is not None:
            await then(unit, envelopes)
        reply = respond(state, envelopes)
        if "stream_version" not in reply:
            reply["stream_version"] = envelopes[-1].stream_version if envelopes else current.version
        return reply

    def _decide_cached(
        self, stream_id: str, decide: Callable[[S], Sequence[DomainEvent]]
    ) -> tuple[Folded[S] | None, list[DomainEvent]]:
        """The decision on the cached state, when it may be taken without a read; (None, [])
        otherwise. A refusal or a decision to write nothing is never answered from the cache (it
        may be behind): the caller decides again on the stored stream."""
        cached = self.cache.current(stream_id)
        if cached is None:
            return None, []
        try:
            events = list(decide(cached.state))
        except (DomainError, PermissionDenied):
            return None, []
        return (cached, events) if events else (None, [])
