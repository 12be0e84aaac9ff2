"""How `recnet eval` ends: the scores (a table, or JSON), a note when it was stopped, and its exit status."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from recnet_cli import console
from recnet_cli.console import fail
from recnet_cli.entry import INTERRUPTED, ignore_further_stops

if TYPE_CHECKING:
    from recnet_cli.evaluate import EvalReport
    from recnet_cli.weights import LoadedModel


def report_evaluation(
    report: EvalReport,
    pairs: int,
    loaded: LoadedModel,
    amount: float | str,
    as_json: bool,
    keep_colour: bool,
) -> None:
    """Says the scores of ``pairs`` pairs; exits 130 when stopped (after the scores so far) and 1 when a pair
    could not be scored."""
    ignore_further_stops()  # the scores are all there is left to say: a stop must not cut them short
    if report.interrupted:
        theirs = "the JSON report holds their scores" if as_json else "the scores below are theirs"
        scored = theirs if report.scores else "none was scored"
        done = len(report.scores) + len(report.failures)
        console.notice(f"interrupted after {done} of {pairs} pairs; {scored}")
    if as_json:  # also when no pair could be scored: the failures are listed there
        settings = {"model": loaded.reference, "strength": amount, "keep_colour": keep_colour}
        typer.echo(json.dumps(settings | report.to_dict(), indent=2))
    elif report.scores:
        console.print_scores(report, loaded.source, amount, keep_colour)
    if report.interrupted:
        raise typer.Exit(INTERRUPTED)
    if shortfall := report.shortfall(pairs):
        raise fail(shortfall, 1)
