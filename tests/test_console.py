"""What the commands show: the batch progress bar's bookkeeping."""

from __future__ import annotations

from pathlib import Path

from recnet_cli.batch import Job, Outcome
from recnet_cli.console import BatchProgress


def test_photos_move_the_bar_as_they_go_and_count_once_when_done() -> None:
    big = Job(Path("big.jpg"), Path("big_recnet.jpg"))
    small = Job(Path("small.jpg"), Path("small_recnet.jpg"))
    with BatchProgress(2, "Correcting", quiet=True) as bar:
        task = bar.progress.tasks[0]
        bar.photo_progress(big, 24.0, 0.25)
        bar.photo_progress(big, 24.0, 0.75)
        assert (task.completed, task.fields["megapixels"]) == (0.75, 18.0)
        bar.update(Outcome(big, "done", megapixels=24.0))
        assert (task.completed, task.fields["megapixels"]) == (1.0, 24.0)
        bar.update(Outcome(small, "skipped"))  # never computed: counts as a whole image at once
        assert (task.completed, task.fields["megapixels"]) == (2.0, 24.0)
        assert task.finished and not bar.photo_fractions
