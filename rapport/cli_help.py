"""`--help` that reads like a manual page: `Usage: rapport restore [OPTIONS] SOURCE`, flags
without a value placeholder, and `--workers INTEGER` rather than a Python type. Typer's own help
writes `{source}` for a required argument, `--help <bool>` for every flag (as if it took a
value) and `<list[str]>` for a repeatable option."""

from __future__ import annotations

from collections.abc import Sequence

from typer._click import Context, Parameter  # the click that typer's classes are built on
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

__all__ = ["Command", "Group"]


# The value placeholder of an option of each type typer names (`<int range>` is `int`).
PLACEHOLDERS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH"}


def _plain(params: Sequence[Parameter], ctx: Context) -> list[Parameter]:
    """Arguments named in capitals (`SOURCE`), flags with no placeholder for a value, options
    with a word for theirs."""
    for param in params:
        if param.metavar is not None:
            continue
        if isinstance(param, TyperArgument) and param.name:
            param.metavar = param.name.upper()
        elif isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
        elif isinstance(param, TyperOption):
            kind = param.display_type(ctx).strip("<>").removesuffix(" range")
            kind = kind.removeprefix("list[").removesuffix("]")  # repeatable: one value each
            param.metavar = PLACEHOLDERS.get(kind)
    return list(params)


class Command(TyperCommand):
    """A `rapport` command with plain help (see the module)."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _plain(super().get_params(ctx), ctx)

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.display_name_raw + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class Group(TyperGroup):
    """A `rapport` command group with plain help (see the module)."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _plain(super().get_params(ctx), ctx)
