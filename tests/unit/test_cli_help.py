"""The `rapport` command line as a newcomer reads it: help without Python types or template
placeholders, the six factors named where the report is described, and a missing secret
explained by the option that finds it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rapport.cli import app


def command_paths(group: object, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group of the CLI, as the words that name it."""
    yield prefix
    for name, command in sorted(getattr(group, "commands", {}).items()):
        yield from command_paths(command, (*prefix, name))


COMMANDS = list(command_paths(typer.main.get_command(app)))


def help_of(*words: str) -> str:
    result = CliRunner().invoke(app, [*words, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


def usage_of(*words: str) -> str:
    return next(line.strip() for line in help_of(*words).splitlines() if "Usage:" in line)


@pytest.mark.parametrize("words", COMMANDS, ids=lambda words: " ".join(words) or "rapport")
def test_help_shows_no_python_types_and_no_template_placeholders(words: tuple[str, ...]) -> None:
    shown = help_of(*words)
    options = shown.partition("─ Options ")[2]
    assert options, shown
    for placeholder in ("{", "}", "<bool>", "<list["):
        assert placeholder not in shown, f"{' '.join(words)}: {placeholder}\n{shown}"
    for placeholder in ("<str>", "<int", "<float", "<path>"):  # an option's value has a word
        assert placeholder not in options, f"{' '.join(words)}: {placeholder}\n{shown}"


def test_arguments_are_named_in_capitals_in_the_usage_line() -> None:
    assert usage_of("restore").endswith(" restore [OPTIONS] SOURCE")
    assert usage_of("audit", "report").endswith(" audit report [OPTIONS] ENGAGEMENT_ID")
    assert "--workers" in help_of("audit", "replay") and "INTEGER" in help_of("audit", "replay")


def test_the_reports_help_names_the_six_factors_and_the_findings() -> None:
    shown = " ".join(help_of("audit", "report").replace("│", " ").split())
    assert "six factors" in shown
    for factor in ("empathy", "active listening", "non-judgment", "confidentiality"):
        assert factor in shown
    assert "collaboration" in shown and "boundaries" in shown
    assert "boundary violations" in shown and "supervision" in shown


def test_a_token_without_secrets_here_names_the_data_dir_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAPPORT_JWT_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)  # another folder than the one `rapport dev` runs in
    result = CliRunner().invoke(app, ["token", "--role", "coach", "--sub", "c-1"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "--data-dir" in message and "RAPPORT_JWT_SECRET" in message
    assert str(tmp_path / ".rapport" / "secrets.json") in message
