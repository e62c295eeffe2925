"""The access policy, pure: who may act and read, without a database (the kernel's rules and
the ones each service composes from them)."""

from __future__ import annotations

import pytest

from services.engagement.application import access as engagement
from services.intake.application import access as intake
from services.notifications.application import access as notifications
from shared.security.tokens import PermissionDenied, Principal
from shared.usecases.access import (
    ADMINS,
    Parties,
    Rule,
    Subject,
    allowed,
    reads_everything,
    recipient_key,
    require,
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
    ("who", "senders"),
    [
        ("coach", {COACH}),
        ("client", {CLIENT}),
        ("party", {COACH, CLIENT}),
        ("reporter", {COACH, CLIENT, SUPERVISOR}),
    ],
)
def test_a_command_is_sent_by_the_parties_it_names_or_an_admin(
    who: str, senders: set[Principal]
) -> None:
    everyone = {COACH, CLIENT, SUPERVISOR, ADMIN, AUDITOR, *STRANGERS}
    rule = engagement.COMMANDS[who]
    assert {p for p in everyone if allowed(p, rule, Subject(ENGAGEMENT))} == senders | {ADMIN}


def test_an_engagement_without_a_supervisor_lets_no_supervisor_report() -> None:
    no_supervisor = Subject(Parties("co-1", "cl-1"))
    assert not allowed(SUPERVISOR, engagement.COMMANDS["reporter"], no_supervisor)


def test_the_parties_auditors_and_admins_read_an_engagement_and_strangers_do_not() -> None:
    readers = (COACH, CLIENT, SUPERVISOR, ADMIN, AUDITOR)
    assert all(allowed(p, engagement.READS, Subject(ENGAGEMENT)) for p in readers)
    assert not any(allowed(p, engagement.READS, Subject(ENGAGEMENT)) for p in STRANGERS)
    view = {"coach_id": "co-1", "client_id": "cl-1", "supervisor_id": None}
    assert Parties.of(view) == Parties("co-1", "cl-1", None)


def test_an_intake_is_run_by_its_coach_or_an_admin_and_read_by_auditors_too() -> None:
    coached, nobodys = Subject(Parties("co-1")), Subject(Parties(None))
    assert allowed(COACH, intake.RUNS, coached) and allowed(ADMIN, intake.RUNS, coached)
    assert not allowed(COACH, intake.RUNS, nobodys)
    assert not allowed(AUDITOR, intake.RUNS, coached)
    assert allowed(AUDITOR, intake.READS, coached) and not allowed(CLIENT, intake.READS, coached)


def test_a_coachs_lists_and_roll_up_are_for_that_coach_their_supervisors_and_readers() -> None:
    coach = Subject(Parties("co-1"))
    assert allowed(COACH, engagement.LISTS_COACH, coach)
    assert allowed(AUDITOR, engagement.LISTS_COACH, Subject(Parties("x")))
    assert not allowed(SUPERVISOR, engagement.LISTS_COACH, coach)
    rollup = engagement.READS_ROLLUP
    assert allowed(SUPERVISOR, rollup, Subject(Parties("co-1"), supervisors=["su-1"]))
    assert not allowed(SUPERVISOR, rollup, Subject(Parties("co-1"), supervisors=["su-2"]))
    assert not allowed(CLIENT, rollup, Subject(Parties("co-1"), supervisors=["cl-1"]))


def test_notifications_are_listed_and_webhooks_registered_for_oneself() -> None:
    def to(recipient: str) -> Subject:
        return Subject(recipient=recipient)

    lists, registers = notifications.LISTS, notifications.REGISTERS
    assert allowed(COACH, lists, to("coach:co-1")) and allowed(AUDITOR, lists, to("*"))
    assert not allowed(COACH, lists, to("coach:co-2"))
    assert allowed(CLIENT, registers, to("client:cl-1")) and allowed(ADMIN, registers, to("*"))
    assert not allowed(AUDITOR, registers, to("auditor:au"))
    assert not allowed(COACH, registers, to("*"))


def test_readers_read_everything_but_only_admins_act_on_parked_events() -> None:
    assert reads_everything(AUDITOR) and reads_everything(ADMIN) and not reads_everything(COACH)
    assert allowed(ADMIN, ADMINS) and not allowed(AUDITOR, ADMINS)


def test_a_rule_refused_is_a_permission_denied_with_its_reason() -> None:
    with pytest.raises(PermissionDenied, match="not yours"):
        require(COACH, ADMINS, Subject(), "not yours")


def test_rules_composed_with_or_allow_whom_either_allows_and_say_so() -> None:
    either = ADMINS | Rule("the coach co-1", lambda p, s: p == COACH)
    assert allowed(COACH, either) and allowed(ADMIN, either) and not allowed(CLIENT, either)
    assert either.name == "an admin or the coach co-1"


@pytest.mark.parametrize("service", [intake, engagement, notifications])
def test_every_service_declares_the_rules_it_applies(service: object) -> None:
    declared = service.ACCESS
    assert declared and all(isinstance(rule, Rule) for rule in declared.values())
