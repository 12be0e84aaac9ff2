"""The Click classes that recnet's commands run on: usage errors said in one line, as recnet's other errors
are, and help that shows no Python types."""

from __future__ import annotations

import contextlib
import importlib
import os
import shlex
from collections.abc import Iterable, Iterator
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from recnet_cli import console
from recnet_cli.console import fail
from recnet_cli.entry import INTERRUPTED, STOPPED_STARTING, ignore_further_stops, stopped_unfinished

# The Click that Typer runs on: Typer 0.29 carries its own copy (typer._click), whose exceptions are not the
# click package's; earlier Typers run on Click itself.
click_errors = importlib.import_module(typer.BadParameter.__module__)


def sentence_part(message: str) -> str:
    """Click's sentence as a part of recnet's line: ``Missing argument 'PHOTOS'.`` as ``missing argument
    'PHOTOS'`` (and a value's check without the ``Value error,`` that Typer 0.29 takes from pydantic)."""
    message = message.removeprefix("Value error, ").removesuffix(".")
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    return message


def parameter_name(param: Any) -> str:
    """How an error names a parameter: an option by its long name, an argument by its metavar."""
    if param.param_type_name == "option":
        return next((name for name in param.opts if name.startswith("--")), param.opts[0])
    return (param.metavar or param.name or "").upper()


def as_typed(command: Any, ctx: typer.Context, args: list[str], param: Any) -> tuple[str, str] | None:
    """An option and its value as ``args`` give them, ``("--mp", "lots")``; None where they do not (a
    default, the environment, an argument)."""
    source = ctx.get_parameter_source(param.name)
    if param.param_type_name != "option" or source is None or source.name != "COMMANDLINE":
        return None
    opts, _, _ = command.make_parser(ctx).parse_args(args=list(args))  # the values by parameter, as read
    value = opts.get(param.name)
    if not isinstance(value, str):  # a flag, an option of several values
        return None
    names = [*param.opts, *param.secondary_opts]
    typed = (arg.partition("=")[0] for arg in reversed(args))  # --mp lots, --mp=lots
    return next((name for name in typed if name in names), parameter_name(param)), value


def outside_bounds(param: Any, value: str) -> str | None:
    """What a number option with bounds takes, where ``value`` is a number outside them: ``give a number
    from 1 to 100`` (where Typer 0.29 says ``input should be greater than or equal to 1`` of 0, and Click
    ``0 is not in the range 1<=x<=100``); None otherwise (not a number, or refused for another reason)."""
    # Typer 0.29 keeps the bounds on the option, Click on its range type
    bounds = param if hasattr(param, "min") else getattr(param, "type", None)
    low, high = getattr(bounds, "min", None), getattr(bounds, "max", None)
    try:
        number = float(value)
    except ValueError:
        return None
    if (low is None or number >= low) and (high is None or number <= high):
        return None  # within them (NaN is within none): refused for what it is, such as 1.5 for a count
    if low is not None and high is not None:
        return f"give a number from {low:g} to {high:g}"
    return f"give a number of {low:g} or more" if low is not None else f"give a number of {high:g} or less"


def refused_value(error: Any) -> bool:
    """Whether ``error`` refuses a parameter's value (not that it is missing)."""
    missing = isinstance(error, click_errors.MissingParameter)
    return isinstance(error, click_errors.BadParameter) and not missing and error.param is not None


# What other image tools call some of recnet's options (mogrify's -format, Real-ESRGAN's --fp32 and
# --gpu-id), for the suggestion where one is typed
OTHER_TOOLS_NAMES = {
    "--format": "--ext",
    "--outdir": "--output",
    "--output-dir": "--output",
    "--gpu": "--device",
    "--gpu-id": "--device",
    "--fp32": "--precision fp32",
    "--fp16": "--precision fp16",
    "--half": "--precision fp16",
}


def click_error_line(error: Any) -> str:
    """A usage error of Click's as one line in recnet's style, with where to read more:
    ``--repeats 0: give a number of 1 or more (see recnet bench --help)``, where Typer drew
    a box under the command's usage. Another Click error (a file Click could not open) is its message."""
    if not isinstance(error, click_errors.UsageError):
        return sentence_part(error.format_message())
    ctx = error.ctx
    path = ctx.command_path if ctx is not None else "recnet"
    if isinstance(error, click_errors.NoSuchOption):
        close = list(error.possibilities or ())
        meant = OTHER_TOOLS_NAMES.get(error.option_name, "")
        if ctx is not None and meant.partition(" ")[0] in option_names(ctx.command, ctx):
            close = [meant]
        suggestion = f". Did you mean {' or '.join(close)}?" if close else ""
        if file := getattr(error, "file", None):  # UsageErrorsSayWhat
            return f"{sentence_part(error.message)}: to name {file}, write ./{file}, or put -- before it"
        if one_dash := getattr(error, "one_dash", None):  # UsageErrorsSayWhat
            typed, name = one_dash
            return f"no such option: {typed}: write {name}, with two dashes ({path} --help lists the options)"
        return f"{sentence_part(error.message)}{suggestion} ({path} --help lists the options)"
    if refused_value(error):
        typed = getattr(error, "typed", None)  # UsageErrorsSayWhat
        named = f"{typed[0]} {shlex.quote(typed[1])}" if typed else parameter_name(error.param)
        wanted = outside_bounds(error.param, typed[1]) if typed else None
        message = f"{named}: {wanted or sentence_part(error.message)}"
    else:  # a missing argument, a command that does not exist, a value the option lacks, an extra argument
        message = sentence_part(error.format_message())
    if ctx is not None and isinstance(ctx.command, TyperGroup):
        return f"{message} ({path} --help lists the commands)"
    return f"{message} (see {path} --help)"


def one_dash_long_option(arg: str, names: Iterable[str]) -> str | None:
    """The long option that ``arg`` spells with one dash, as ImageMagick and exiftool spell theirs
    (``-overwrite``, ``-quality=90``, and exiftool's ``-overwrite_original`` for ``--overwrite``); None
    where it spells none."""
    if not arg.startswith("-") or arg.startswith("--") or len(arg) <= 2:
        return None
    word = "-" + arg.partition("=")[0]
    longs = (name for name in names if name.startswith("--"))
    return next((name for name in longs if word == name or word.startswith(f"{name}_")), None)


def option_names(command: Any, ctx: typer.Context) -> set[str]:
    """Every name of every option ``command`` takes, ``-o`` and ``--output`` alike."""
    return {name for param in command.get_params(ctx) for name in (*param.opts, *param.secondary_opts)}


def values_as_typed(command: Any, ctx: typer.Context, args: list[str]) -> set[str]:
    """The words of ``args`` that ``command`` reads as values (of its options, or its arguments), as typed."""
    opts, positional, _ = command.make_parser(ctx).parse_args(args=list(args))
    lists = (value if isinstance(value, (list, tuple)) else [value] for value in opts.values())
    return {*positional, *(item for items in lists for item in items if isinstance(item, str))}


def before_dashes(args: list[str]) -> list[str]:
    """The words of a command line before ``--`` (after it, each is a file's name)."""
    return args[: args.index("--")] if "--" in args else args


def long_option_read_as_short(args: list[str], option: str, names: set[str]) -> tuple[str, str] | None:
    """The word of ``args`` that spells a long option with one dash and was read as short options, one
    of them the unknown ``option`` (``-quality`` read as ``-q -u ...``), with the option it spells; None
    where no such word holds ``option``'s letter."""
    for arg in before_dashes(args):
        if option[1:] in arg[1:] and (name := one_dash_long_option(arg, names)):
            return arg, name
    return None


def file_read_as_option(args: list[str], option: str) -> str | None:
    """The argument that was read as the unknown ``option`` where it names a file or folder (``-1.jpg``
    read as ``-1``); None otherwise."""
    return next((arg for arg in args if arg.startswith(option) and os.path.lexists(arg)), None)


def refuse_an_option_taken_as_a_value(command: Any, ctx: typer.Context) -> None:
    """Refuses an option whose value is one of the command's own options, as Click takes the word after an
    option for its value: ``-o --dry-run`` (a value forgotten) wrote the photo into a folder named
    --dry-run, the dry run undone."""
    names = option_names(command, ctx)
    for param in command.get_params(ctx):
        value = ctx.params.get(param.name) if param.param_type_name == "option" else None
        if value is not None and not isinstance(value, bool) and str(value) in names:
            typed = parameter_name(param)
            reason = f"{value} is an option, so {typed} was given no value (a file named so: ./{value})"
            raise click_errors.UsageError(f"{typed} {value}: {reason}", ctx)


def refuse_a_file_read_as_options(ctx: typer.Context, words: list[str], values: set[str]) -> None:
    """Refuses a file named as short options are (``-o.jpg``, ``-qr``) that was read as them: ``recnet
    correct *`` in a folder holding ``-o.jpg`` wrote every photo into a hidden folder ``.jpg`` and left that
    one out. A word read as a value, as typed (``-o -o.jpg``, ``--photos -edited/``), is one. (A word read
    as an unknown option is refused by Click, and named by ``file_read_as_option``.) ``words``: the command
    line's before ``--``; ``values``: ``values_as_typed``."""
    for arg in words:
        glued = arg.startswith("-") and not arg.startswith("--") and len(arg) > 2
        if glued and arg not in values and os.path.lexists(arg):
            raise click_errors.UsageError(
                f"{arg} names a file, but was read as the option {arg[:2]} and what follows it: to name the "
                f"file, write ./{arg}, or put -- before it",
                ctx,
            )


def refuse_a_long_option_with_one_dash(
    ctx: typer.Context, words: list[str], values: set[str], names: set[str]
) -> None:
    """Refuses a long option spelt with one dash that was read as a short one and its value: ``recnet
    correct photo.jpg -overwrite`` (as ImageMagick and exiftool spell options) wrote the photo into a folder
    named verwrite, as ``-o verwrite``. A word read as a value, as typed (``--suffix -overwrite``), is one.
    ``words``, ``values``: as ``refuse_a_file_read_as_options`` takes them; ``names``: ``option_names``."""
    for arg in words:
        if arg not in values and (name := one_dash_long_option(arg, names)):
            read_as = f"{arg[:2]} {arg[2:]}"
            reason = f"write {name}, with two dashes, or {read_as}, with a space"
            raise click_errors.UsageError(f"{arg} was read as {read_as}: {reason}", ctx)


@contextlib.contextmanager
def click_errors_in_one_line() -> Iterator[None]:
    """Click's errors (an unknown option or command, a bad value, a missing argument) said as recnet's
    other errors are, in one line, with the same exit status (2 for a usage error)."""
    try:
        yield
    except click_errors.ClickException as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # `recnet` alone: the help is shown, as Typer does
            raise
        raise fail(click_error_line(error), error.exit_code) from None


@contextlib.contextmanager
def stop_said_in_one_line(interrupted: str = STOPPED_STARTING) -> Iterator[None]:
    """A stop (Ctrl-C, SIGTERM) that nothing inside reported, which Typer would end in silence (exit 130),
    is said in one line, ``interrupted``, with exit 130: in a scheduler's log, why the job ended. (One
    before the command line is read is said by ``entry.run``.)"""
    try:
        yield
    except KeyboardInterrupt:
        ignore_further_stops()
        console.notice(interrupted)
        raise typer.Exit(INTERRUPTED) from None


class UsageErrorsSayWhat:
    """What a usage error's line names that Click leaves out of the error: the command, where its parser
    raises one without (an option given no value), a refused value as typed (``--repeats 0``), and the file
    an unknown option is the start of (``-1.jpg``, read as the option ``-1``)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        given = list(args)  # Click's parser consumes the list it reads
        try:
            rest = super().parse_args(ctx, args)  # type: ignore[misc]
        except click_errors.UsageError as error:
            if error.ctx is None:
                error.ctx = ctx
            if refused_value(error):
                error.typed = as_typed(self, ctx, given, error.param)
            if isinstance(error, click_errors.NoSuchOption):
                error.file = file_read_as_option(given, error.option_name)
                error.one_dash = long_option_read_as_short(given, error.option_name, option_names(self, ctx))
            raise
        refuse_an_option_taken_as_a_value(self, ctx)
        if not isinstance(self, TyperGroup):  # a group's arguments are its command's, read there
            words, values = before_dashes(given), values_as_typed(self, ctx, given)
            refuse_a_file_read_as_options(ctx, words, values)
            refuse_a_long_option_with_one_dash(ctx, words, values, option_names(self, ctx))
        return rest


# Options a command also takes spelt the American way; help shows the British names alone
AMERICAN_SPELLINGS = {"--keep-color": "--keep-colour", "--model-color": "--model-colour"}


class AmericanSpellings:
    """Takes ``--keep-color`` and ``--model-color`` for ``--keep-colour`` and ``--model-colour``, in the
    commands that have them, before ``--`` (after it, a name is a file's)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        names = {name for param in ctx.command.params for name in param.opts + param.secondary_opts}
        end = len(before_dashes(args))
        british = [
            AMERICAN_SPELLINGS[arg] if at < end and AMERICAN_SPELLINGS.get(arg) in names else arg
            for at, arg in enumerate(args)
        ]
        return super().parse_args(ctx, british)  # type: ignore[misc]


class PlainHelpFlag:
    """Shows -h/--help like recnet's other flags, with no value type (Typer 0.29 prints <bool> beside it)."""

    def get_help_option(self, ctx: typer.Context) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option


class RecnetGroup(UsageErrorsSayWhat, PlainHelpFlag, TyperGroup):
    def get_params(self, ctx: typer.Context) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:  # --install-completion and --show-completion, which Typer adds as <bool>
            if isinstance(param, TyperOption) and param.is_flag:
                param.metavar = ""
        return params

    # Every Click error, and every stop before the command runs, passes through these two: the parsing of
    # recnet's own options (make_context), then the command's name, the parsing of its options and the
    # command itself (invoke).
    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with stop_said_in_one_line(), click_errors_in_one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: typer.Context) -> Any:
        with stop_said_in_one_line(), click_errors_in_one_line():
            return super().invoke(ctx)


class PlainArgument(TyperArgument):
    """An argument shown as Click shows one, ``PHOTOS...``: not as Typer 0.29's ``{PHOTOS}...`` with a
    Python type beside it (``<list[str]>``), which means nothing to a photographer."""

    def display_type_rich(self, ctx: typer.Context) -> str | None:
        return None

    def get_usage_pieces(self, ctx: typer.Context) -> list[str]:
        name = (self.metavar or self.name or "").upper() + ("..." if self.nargs != 1 else "")
        return [name if self.required else f"[{name}]"]


class RecnetCommand(AmericanSpellings, UsageErrorsSayWhat, PlainHelpFlag, TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:  # Typer makes them itself, with no way to pass a class
                param.__class__ = PlainArgument

    def invoke(self, ctx: typer.Context) -> Any:
        """Runs the command; a stop it does not report itself, such as one while the model loads, is said
        in one line."""
        with stop_said_in_one_line(stopped_unfinished(ctx.info_name)):
            return super().invoke(ctx)
