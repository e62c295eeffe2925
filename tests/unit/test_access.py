"""The access policy, pure: who may act and read, without a database."""

from __future__ import annotations

import pytest

from shared.security.tokens import Principal
from shared.usecases.access import (
    Parties,
    may_act,
    may_act_for_coach,
    may_list_coach_engagements,
    may_list_notifications,
    may_manage_parked,
    may_read,
    may_read_coach_rollup,
    may_read_intake,
    may_register_webhook,
    reads_everything,
    recipient_key,
)

ENGAGEMENT = Parties("co-1", "cl-1", "su-1")
COACH, CLIENT, SUPERVISOR = (
    Principal("coach", "co-1"),
    Principal("client", "cl-1"),
    Principal("supervisor", "su-1"),
)
ADMIN, AUDITOR = Principal("admin", "ops"), Principal("auditor", "au")
STRANGERS = (Principal("coach", "co-2"), Principal("client", "cl-2"), Principal("supervisor", "x"))


def test_the_recipient_key_is_role_and_id() -> None:
    assert recipient_key(COACH) == "coach:co-1"


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("coach", {COACH}),
        ("client", {CLIENT}),
        ("party", {COACH, CLIENT}),
        ("reporter", {COACH, CLIENT, SUPERVISOR}),
    ],
)
def test_a_command_is_sent_by_the_parties_it_names_or_an_admin(
    who: str, allowed: set[Principal]
) -> None:
    everyone = {COACH, CLIENT, SUPERVISOR, ADMIN, AUDITOR, *STRANGERS}
    assert {p for p in everyone if may_act(p, ENGAGEMENT, who)} == allowed | {ADMIN}  # type: ignore[arg-type]


def test_an_engagement_without_a_supervisor_lets_no_supervisor_report() -> None:
    assert not may_act(Principal("supervisor", "su-1"), Parties("co-1", "cl-1"), "reporter")


def test_the_parties_auditors_and_admins_read_an_engagement_and_strangers_do_not() -> None:
    assert all(may_read(p, ENGAGEMENT) for p in (COACH, CLIENT, SUPERVISOR, ADMIN, AUDITOR))
    assert not any(may_read(p, ENGAGEMENT) for p in STRANGERS)
    view = {"coach_id": "co-1", "client_id": "cl-1", "supervisor_id": None}
    assert Parties.of(view) == Parties("co-1", "cl-1", None)


def test_an_intake_is_run_by_its_coach_or_an_admin_and_read_by_auditors_too() -> None:
    assert may_act_for_coach(COACH, "co-1") and may_act_for_coach(ADMIN, "co-1")
    assert not may_act_for_coach(COACH, None) and not may_act_for_coach(AUDITOR, "co-1")
    assert may_read_intake(AUDITOR, "co-1") and not may_read_intake(CLIENT, "co-1")


def test_a_coachs_lists_and_roll_up_are_for_that_coach_their_supervisors_and_readers() -> None:
    assert may_list_coach_engagements(COACH, "co-1") and may_list_coach_engagements(AUDITOR, "x")
    assert not may_list_coach_engagements(SUPERVISOR, "co-1")
    assert may_read_coach_rollup(SUPERVISOR, "co-1", ["su-1"])
    assert not may_read_coach_rollup(SUPERVISOR, "co-1", ["su-2"])
    assert not may_read_coach_rollup(CLIENT, "co-1", ["cl-1"])


def test_notifications_are_listed_and_webhooks_registered_for_oneself() -> None:
    assert may_list_notifications(COACH, "coach:co-1") and may_list_notifications(AUDITOR, "*")
    assert not may_list_notifications(COACH, "coach:co-2")
    assert may_register_webhook(CLIENT, "client:cl-1") and may_register_webhook(ADMIN, "*")
    assert not may_register_webhook(AUDITOR, "auditor:au")
    assert not may_register_webhook(COACH, "*")


def test_readers_read_everything_but_only_admins_act_on_parked_events() -> None:
    assert reads_everything(AUDITOR) and reads_everything(ADMIN) and not reads_everything(COACH)
    assert may_manage_parked(ADMIN) and not may_manage_parked(AUDITOR)
