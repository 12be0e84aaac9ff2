"""What the commands show: the batch progress bar's bookkeeping and the summary."""

from __future__ import annotations

import errno
import io
import os
import types
from pathlib import Path

import pytest
from rich.progress import Progress

from recnet_cli import console
from recnet_cli.batch import Outcome, Summary
from recnet_cli.console import (
    BatchProgress,
    Eta,
    GoingOnConsole,
    TrainingProgress,
    WholeWrites,
    done,
    error,
    notice,
    print_plan,
    print_summary,
    progress_bar,
    timing_line,
)
from recnet_cli.outputs import Job
from recnet_cli.train.loop import Progress as TrainingReport
from recnet_cli.train.run_folder import ValScores


def job(name: str) -> Job:
    return Job(Path(f"{name}.jpg"), Path(f"{name}_recnet.jpg"))


def test_the_bar_counts_megapixels_so_large_photos_weigh_more() -> None:
    big, small, thumbnail = job("big"), job("small"), job("thumbnail")
    with BatchProgress(3, {big: 24.0, small: 1.0, thumbnail: 0.5}, "Correcting", quiet=True) as bar:
        task = bar.progress.tasks[0]
        assert task.total == 25.5
        bar.photo_progress(big, 24.0, 0.25)
        bar.photo_progress(big, 24.0, 0.75)
        assert (task.completed, task.fields["done"]) == (18.0, 0)
        bar.update(Outcome(big, "done", megapixels=24.0))
        assert (task.completed, task.total, task.fields["done"]) == (24.0, 25.5, 1)
        bar.update(Outcome(small, "done", megapixels=1.0))  # no tiles reported: counted whole when done
        assert (task.completed, task.fields["done"]) == (25.0, 2)
        assert not task.finished
        bar.update(Outcome(thumbnail, "done", megapixels=0.5))
        assert task.finished and not bar.moved


def test_skipped_and_failed_photos_leave_the_total() -> None:
    skipped, failed, unreadable, grown = job("skipped"), job("failed"), job("unreadable"), job("grown")
    expected = {skipped: 12.0, failed: 12.0, unreadable: 0.0, grown: 2.0}
    with BatchProgress(4, expected, "Correcting", quiet=True) as bar:
        task = bar.progress.tasks[0]
        bar.update(Outcome(skipped, "skipped"))
        assert (task.completed, task.total) == (0.0, 14.0)
        bar.photo_progress(failed, 12.0, 0.5)
        bar.update(Outcome(failed, "failed", "out of memory"))  # the work done counts, the rest leaves
        assert (task.completed, task.total) == (6.0, 8.0)
        bar.update(Outcome(unreadable, "failed", "not an image"))
        assert (task.completed, task.total) == (6.0, 8.0)
        bar.update(Outcome(grown, "done", megapixels=3.0))  # the header said less than the photo has
        assert (task.completed, task.total, task.fields["done"]) == (9.0, 9.0, 4)
        assert task.finished


def test_the_bar_ends_full_whatever_the_sums_round_to() -> None:
    # 0.1 + 0.2 + 0.7 - 0.2 is 0.8, where 0.1 + 0.7 is 0.7999999999999999: the bar of a batch with a failed
    # photo ended a half-character short of full, at "3/3 images"
    first, failed, last = job("first"), job("failed"), job("last")
    with BatchProgress(3, {first: 0.1, failed: 0.2, last: 0.7}, "Correcting", quiet=True) as bar:
        task = bar.progress.tasks[0]
        bar.update(Outcome(first, "done", megapixels=0.1))
        bar.update(Outcome(failed, "failed", "not an image"))
        bar.photo_progress(last, 0.7, 0.5)
        assert not task.finished
        bar.update(Outcome(last, "done", megapixels=0.7))
        assert task.finished and task.percentage == 100


@pytest.mark.parametrize("status", ["done", "failed"])
def test_a_photo_counts_once_however_far_its_tiles_went(status: str) -> None:
    photo = job("photo")
    with BatchProgress(1, {photo: 4.0}, "Correcting", quiet=True) as bar:
        task = bar.progress.tasks[0]
        for fraction in (0.2, 0.6, 1.0):
            bar.photo_progress(photo, 4.0, fraction)
        bar.update(Outcome(photo, status, megapixels=4.0))
        assert (task.completed, task.total) == (4.0, 4.0)


def test_the_eta_says_it_does_not_know_yet() -> None:
    progress = progress_bar(quiet=True)
    task_id = progress.add_task("Training", total=None)
    task = progress.tasks[task_id]
    assert Eta().render(task).plain == "ETA -:--:--"
    progress.update(task_id, total=10)
    assert Eta().render(task).plain == "ETA -:--:--"  # no speed measured yet


def test_without_a_recent_speed_the_eta_follows_the_average_pace() -> None:
    clock = [0.0]
    progress = Progress(get_time=lambda: clock[0])
    task_id = progress.add_task("Correcting", total=10.0)
    task = progress.tasks[task_id]
    clock[0] = 20.0
    progress.update(task_id, completed=5.0)  # one sample: Rich knows no speed yet
    assert task.time_remaining is None and Eta().render(task).plain == "ETA 0:00:20"
    clock[0] = 30.0
    progress.update(task_id, completed=6.0)
    assert Eta().render(task).plain == f"ETA 0:00:{int(task.time_remaining):02d}"  # Rich's own, from speed
    progress.update(task_id, total=8.0)  # a skipped photo leaves the total: Rich forgets its speed
    assert Eta().render(task).plain == "ETA 0:00:10"  # 2 units left at 6 units per 30 s


def test_the_summary_says_what_a_stopped_batch_did_not_run_and_how_to_go_on(capsys) -> None:
    stopped = "the batch stopped: out/b.jpg: no space left on device"
    outcomes = [
        Outcome(job("a"), "done", seconds=1.0, megapixels=2.0),
        Outcome(job("b"), "failed", "out/b.jpg: no space left on device", stops_batch=True),
        Outcome(job("c"), "not run", stopped),
        Outcome(job("d"), "not run", stopped),
    ]
    print_summary(Summary(outcomes, seconds=2.0), "corrected")
    assert capsys.readouterr().err.splitlines() == [
        "corrected 1, skipped 0, failed 1, not run 2 in 2.0 s, 1.00 MP/s",
        f"error: {stopped}; once that is fixed, run the same command with --skip-existing to do the rest",
    ]
    print_summary(Summary(outcomes, seconds=2.0, overwrite=True), "corrected")  # both: refused together
    assert capsys.readouterr().err.splitlines()[1] == (
        f"error: {stopped}; once that is fixed, run the same command with --skip-existing in place of "
        "--overwrite to do the rest"
    )


def test_a_quiet_summary_still_gives_the_counts_when_a_photo_failed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # correct -q with a failed photo must still give the counts: a script's log says how many failed
    done = Outcome(job("a"), "done", seconds=1.0, megapixels=1.0)
    print_summary(Summary([done], seconds=1.0), "corrected", quiet=True)
    assert capsys.readouterr().err == ""  # nothing to say when all went well
    failed = Outcome(job("b"), "failed", "b.png: not an image")
    print_summary(Summary([done, failed], seconds=1.0), "corrected", quiet=True)
    assert capsys.readouterr().err.splitlines() == ["corrected 1, skipped 0, failed 1 in 1.0 s, 1.00 MP/s"]


def test_a_full_disk_in_an_overwrite_run_advises_running_it_again_where_earlier_outputs_remain(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stopped = "the batch stopped: b_recnet.jpg: no space left on device"
    for name in ("b", "c"):  # an earlier run's, kept where writing failed or never began
        Path(f"{name}_recnet.jpg").write_bytes(b"earlier run")
    outcomes = [
        Outcome(job("a"), "done", seconds=1.0, megapixels=2.0),
        Outcome(job("b"), "failed", "b_recnet.jpg: no space left on device", stops_batch=True),
        Outcome(job("c"), "not run", stopped),
    ]
    print_summary(Summary(outcomes, seconds=2.0), "corrected")
    assert capsys.readouterr().err.splitlines()[1] == (
        f"error: {stopped}; once that is fixed, run the same command again to do the rest (--skip-existing "
        "would keep 2 outputs from before it as they were: b_recnet.jpg, c_recnet.jpg)"
    )


def test_the_summary_says_which_skipped_photos_lack_the_pictures_asked_for(capsys) -> None:
    lacking = [Path("out/b_mask.png"), Path("out/b_features.png")]
    outcomes = [
        Outcome(job("a"), "skipped", "output exists"),
        Outcome(job("b"), "skipped", "output exists, without ...", lacking=tuple(lacking)),
    ]
    print_summary(Summary(outcomes), "corrected")
    assert capsys.readouterr().err.splitlines() == [
        "corrected 0, skipped 2, failed 0 in 0.0 s",
        "note: 1 photo was skipped whose output was written without the pictures asked for now (such as "
        f"{lacking[0]}); --overwrite writes them again, with those pictures",
    ]


def test_without_a_terminal_each_corrected_photo_gets_a_line_instead_of_the_bar(capsys) -> None:
    corrected, kept, broken = job("done"), job("skipped"), job("failed")
    with BatchProgress(3, {}, "Correcting") as bar:
        bar.update(Outcome(corrected, "done", seconds=2.5, megapixels=1.0))
        bar.update(Outcome(kept, "skipped", "output exists"))
        bar.update(Outcome(broken, "failed", "truncated or corrupt image data"))
    assert capsys.readouterr().err.splitlines() == [
        "1/3 done.jpg -> done_recnet.jpg (2.5 s)",
        "error: failed.jpg: truncated or corrupt image data",
    ]
    with BatchProgress(1, {}, "Correcting", quiet=True) as bar:
        bar.update(Outcome(corrected, "done", seconds=2.5, megapixels=1.0))
    assert capsys.readouterr().err == ""


def test_file_names_with_brackets_are_printed_as_they_are(capsys) -> None:
    error("shots/IMG [best].jpg: truncated or corrupt image data")
    notice("shots/[b]old.jpg: has 2 pages; only the first is used")
    done("trained 3 steps", "; model: runs/a[/]b/final.safetensors")  # "[/]" would be a markup error
    assert capsys.readouterr().err.splitlines() == [
        "error: shots/IMG [best].jpg: truncated or corrupt image data",
        "note: shots/[b]old.jpg: has 2 pages; only the first is used",
        "trained 3 steps; model: runs/a[/]b/final.safetensors",
    ]


def test_control_characters_in_names_are_shown_as_escapes_so_an_error_stays_one_line(capsys) -> None:
    print_plan(Summary([Outcome(job("two\nlines"), "planned")]), "correct", quiet=False)
    error("shots/two\nlines.jpg: truncated or corrupt image data")
    notice("org/re\x1b[31mpo: not a Hub reference")  # an escape sequence would colour the terminal
    done("trained 3 steps", "; model: runs/tab\there.safetensors")
    with BatchProgress(1, {}, "Correcting") as bar:
        bar.update(Outcome(job("bell\a"), "done", seconds=2.5, megapixels=1.0))
    shown = capsys.readouterr()
    assert shown.out == "two\\nlines.jpg -> two\\nlines_recnet.jpg\n"
    assert shown.err.splitlines() == [
        "dry run: would correct 1, skip 0, fail 0; nothing was read or written",
        "error: shots/two\\nlines.jpg: truncated or corrupt image data",
        "note: org/re\\x1b[31mpo: not a Hub reference",
        "trained 3 steps; model: runs/tab\\there.safetensors",
        "1/1 bell\\x07.jpg -> bell\\x07_recnet.jpg (2.5 s)",
    ]
    error("café, 東京 and emoji 📷 are printed as they are")
    assert capsys.readouterr().err == "error: café, 東京 and emoji 📷 are printed as they are\n"


def test_stdout_writes_what_the_system_takes_in_part_whole_or_raises(tmp_path: Path, monkeypatch) -> None:
    # A nearly full disk takes 4 KB of a summary's 8, then none: Python's own stdout dropped the rest.
    system_write = os.write

    def in_pieces(descriptor: int, data: bytes) -> int:
        return system_write(descriptor, bytes(data[:1000]))

    def then_full(descriptor: int, data: bytes) -> int:
        monkeypatch.setattr(os, "write", full)
        return system_write(descriptor, bytes(data[:4096]))

    def full(descriptor: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    summary = b'{"files": []}' * 600
    for path, write in ((tmp_path / "whole.json", in_pieces), (tmp_path / "cut.json", then_full)):
        with open(path, "wb") as file:
            stream = io.BufferedWriter(WholeWrites(file.fileno()))
            stream.write(summary)
            monkeypatch.setattr(os, "write", write)
            try:
                stream.flush()
            except OSError as error:
                assert write is then_full and error.errno == errno.ENOSPC
            else:
                assert write is in_pieces
            finally:
                monkeypatch.setattr(os, "write", system_write)
            stream.close()  # as at exit: what failed is not sent again, whole or in part
    assert (tmp_path / "whole.json").read_bytes() == summary
    assert (tmp_path / "cut.json").read_bytes() == summary[:4096]


def test_bench_says_how_the_model_ran_in_one_line() -> None:
    timing = {
        "device": "cuda:0",
        "precision": "fp16",
        "compiled": False,
        "fused": True,
        "keep_colour": True,
        "width": 4000,
        "height": 3000,
        "tile": 0,
        "best_seconds": 0.0803,
        "median_seconds": 0.0811,
        "megapixels_per_second": 149.4,
    }
    memory = "peak 1.25 GiB of GPU memory"
    assert timing_line(timing, 12, memory) == (
        "4000x3000 (12 MP) on cuda:0, fp16, fused, whole image: best 0.080 s (149.40 MP/s), median 0.081 s, "
        "peak 1.25 GiB of GPU memory"
    )
    tiled = timing | {"compiled": True, "fused": False, "tile": 1024}
    assert timing_line(tiled, 12, "").startswith("4000x3000 (12 MP) on cuda:0, fp16, compiled, tile 1024:")
    assert timing_line(tiled, 12, "").endswith("median 0.081 s")
    model_colours = timing_line(timing | {"keep_colour": False}, 12, "")
    assert model_colours.startswith(
        "4000x3000 (12 MP) on cuda:0, fp16, fused, whole image, the model's colours:"
    )


def test_a_reader_that_has_gone_ends_nothing() -> None:
    # `recnet train ... 2>&1 | head -1`: Rich ended the program (exit 1) at the next line, and the run lost
    # its steps since its last checkpoint
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as stream:
        gone = GoingOnConsole(file=stream, soft_wrap=True)
        for step in range(3):
            gone.print(f"step {step}")  # no SystemExit
        assert gone.quiet


def test_a_reader_gone_from_a_stream_with_no_descriptor_leaves_no_file_open() -> None:
    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    opened = len(os.listdir("/proc/self/fd"))
    gone = GoingOnConsole(file=Gone())
    gone.print("a line")
    assert gone.quiet and len(os.listdir("/proc/self/fd")) == opened


def training_report(step: int, validated: bool) -> TrainingReport:
    return TrainingReport(
        step=step,
        steps=20000,
        losses={"total": 0.5508},
        lr=6.7e-6,
        images_per_second=3.7,
        val=ValScores(psnr=19.97, ssim=0.651, identity_psnr=15.93, identity_ssim=0.5),
        validated=validated,
    )


@pytest.mark.parametrize("width", [80, 100, 120, 137, 138, 160])
def test_the_training_bar_keeps_its_steps_and_eta_on_a_narrow_terminal(
    width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # at 80 columns the line was "Train… loss 0.5508 | 3.7 img/s | lr 6.70e-06 | val 9.97 dB / 0.051 (inp…"
    screen = io.StringIO()
    monkeypatch.setenv("TTY_INTERACTIVE", "1")  # a terminal that redraws, as the bar needs
    terminal = GoingOnConsole(
        file=screen, width=width, force_terminal=True, color_system=None, soft_wrap=True
    )
    monkeypatch.setattr(console, "err", terminal)
    progress = TrainingProgress()
    progress(training_report(12344, validated=False))
    progress.progress.tasks[0].start_time -= 41 * 3600  # 41 hours in: the time taken is wider
    progress(training_report(12345, validated=False))
    terminal.print(progress.progress.get_renderable())
    (line,) = screen.getvalue().splitlines()
    assert len(line.rstrip()) <= width
    assert line.startswith("Training ━") and " 12345/20000 loss 0.5508" in line
    assert " 1 day, 17:00:00 ETA " in line
    # 138 columns: the whole status beside the narrowest bar
    assert ("val 19.97 dB" in line) == (width >= 100) and ("(input 15.93 dB)" in line) == (width >= 138)


def test_training_log_lines_show_the_validation_at_the_step_it_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(console, "err", GoingOnConsole(file=log, width=200, soft_wrap=True))
    progress = TrainingProgress()
    for step in (1000, 1001, 1500, 2000, 2500):  # validated at 1500; and a line every 1000 steps (5%)
        progress(training_report(step, validated=step == 1500))
    assert log.getvalue().splitlines() == [
        "step 1000/20000: loss 0.5508 | 3.7 img/s | lr 6.70e-06",
        "step 1500/20000: loss 0.5508 | 3.7 img/s | lr 6.70e-06 | val 19.97 dB / 0.651 (input 15.93 dB)",
        "step 2000/20000: loss 0.5508 | 3.7 img/s | lr 6.70e-06",
    ]


def test_training_log_lines_keep_to_every_5_percent_after_a_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    # resumed at step 1300, the lines came at 1300 and 2500, where a run from the start has them at 2000
    log = io.StringIO()
    monkeypatch.setattr(console, "err", GoingOnConsole(file=log, width=200, soft_wrap=True))
    progress = TrainingProgress()
    for step in (1300, 1301, 2000, 2500, 2999, 3000):
        progress(training_report(step, validated=False))
    steps = [line.split(":")[0] for line in log.getvalue().splitlines()]
    assert steps == ["step 1300/20000", "step 2000/20000", "step 3000/20000"]


def test_a_log_file_gets_a_training_line_at_least_every_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    # 5% of 20,000 steps is hours on a CPU: a batch job's log showed nothing that long
    log = io.StringIO()
    monkeypatch.setattr(console, "err", GoingOnConsole(file=log, width=200, soft_wrap=True))
    clock = [0.0]
    monkeypatch.setattr(console, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    progress = TrainingProgress()
    for step, seconds in ((1, 30.0), (2, 59.0), (3, 61.0), (4, 100.0), (5, 125.0)):
        clock[0] = seconds
        progress(training_report(step, validated=False))
    assert [line.split(":")[0] for line in log.getvalue().splitlines()] == ["step 3/20000", "step 5/20000"]


@pytest.mark.parametrize("quiet", [False, True])
def test_a_counting_bar_in_a_log_file_says_how_many_then_how_far_at_least_every_minute(
    monkeypatch: pytest.MonkeyPatch, quiet: bool
) -> None:
    log = io.StringIO()
    monkeypatch.setattr(console, "err", GoingOnConsole(file=log, width=200, soft_wrap=True))
    clock = [0.0]
    monkeypatch.setattr(console, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    with console.counting(4, "Evaluating", "pair", quiet) as count_one:
        for seconds in (10.0, 60.0, 80.0, 140.0):  # the second a minute to the second after the first line
            clock[0] = seconds
            count_one()
    assert log.getvalue().splitlines() == (
        []
        if quiet
        else ["Evaluating 4 pairs", "Evaluating: 2/4 pairs in 1.0 min", "Evaluating: 4/4 pairs in 2.3 min"]
    )


def test_progress_is_drawn_only_where_stderr_is_a_terminal_that_can_redraw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # FORCE_COLOR (common in CI) made a log file take 5 KB of redrawn bars and no line per photo; TERM=dumb
    # on a terminal had neither bars nor lines, nothing until the summary
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    forced = console.GoingOnConsole(stderr=True, force_terminal=True)  # as FORCE_COLOR makes it
    monkeypatch.setattr(console, "err", forced)
    assert forced.is_terminal and not console.shows_progress(quiet=False)
    leader, follower = os.openpty()
    with os.fdopen(leader, "rb"), open(follower, "w") as screen:
        monkeypatch.setattr(console, "err", console.GoingOnConsole(file=screen))
        assert console.shows_progress(quiet=False) and not console.shows_progress(quiet=True)
        monkeypatch.setenv("TERM", "dumb")
        monkeypatch.setattr(console, "err", console.GoingOnConsole(file=screen))
        assert not console.shows_progress(quiet=False)
    monkeypatch.setenv("TTY_INTERACTIVE", "1")  # Rich's way to ask for them anyway
    monkeypatch.setattr(console, "err", console.GoingOnConsole(stderr=True))
    assert console.shows_progress(quiet=False)
