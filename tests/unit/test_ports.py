"""Every implementation of a use-case port, PostgreSQL's and memory's, offers each of its
members with the port's own parameters (the memory ones stand in for the others in unit tests
of use cases, and must not drift)."""

from __future__ import annotations

import inspect

import pytest

from shared.storage import memory
from shared.storage.documents import StoredDocuments
from shared.storage.keyvault import KeyVault
from shared.storage.units import PostgresUnitOfWork, PostgresUnitsOfWork
from shared.usecases import ports

IMPLEMENTATIONS = [
    (ports.UnitOfWork, PostgresUnitOfWork),
    (ports.UnitOfWork, memory.MemoryUnitOfWork),
    (ports.UnitsOfWork, PostgresUnitsOfWork),
    (ports.UnitsOfWork, memory.MemoryUnitsOfWork),
    (ports.Documents, StoredDocuments),
    (ports.Documents, memory.MemoryDocuments),
    (ports.Vault, KeyVault),
    (ports.Vault, memory.MemoryVault),
]


@pytest.mark.parametrize(
    ("port", "implementation"),
    IMPLEMENTATIONS,
    ids=[f"{port.__name__}-{impl.__name__}" for port, impl in IMPLEMENTATIONS],
)
def test_each_implementation_offers_its_port_with_the_same_parameters(
    port: type, implementation: type
) -> None:
    members = [name for name in vars(port) if not name.startswith("_")]
    assert members
    for name in members:
        wanted = list(inspect.signature(getattr(port, name)).parameters)
        assert list(inspect.signature(getattr(implementation, name)).parameters) == wanted, name
