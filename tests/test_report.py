"""The HTML report of `recnet correct --report`, down to a real headless browser."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from conftest import as_recnet_wrote, make_photo, run
from PIL import Image

from recnet_cli.batch import Outcome, Summary
from recnet_cli.imaging import ImageWriteError
from recnet_cli.outputs import Job
from recnet_cli.viz.report import (
    FAILED_THIS_RUN,
    LOCK_NAME,
    NOT_A_REPORT,
    OTHER_RUN,
    PREVIEW_FOLDER,
    REPORT_NAME,
    ReportBuilder,
    ReportedRun,
    exposure_stats,
    report_problem,
)

RUN = ReportedRun("m", "cpu")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1200, 900)


def test_exposure_stats_count_clipped_highlights_and_crushed_shadows() -> None:
    image = np.full((10, 10, 3), 0.5, np.float32)
    image[:2, :, 0] = 1.0  # 20 pixels with a clipped red channel
    image[2:5] = 0.0  # 30 black pixels
    stats = exposure_stats(image)
    assert stats.clipped == pytest.approx(0.2)
    assert stats.crushed == pytest.approx(0.3)
    grey, reddish = 128, 0.299 * 255 + 0.587 * 128 + 0.114 * 128
    assert stats.mean_luma == pytest.approx((20 * reddish + 50 * grey) / 100 / 255, rel=1e-5)


@pytest.mark.parametrize(("level", "crushed"), [(5, 1.0), (6, 0.0)])
def test_a_grey_at_the_crushed_level_counts_as_crushed(level: int, crushed: float) -> None:
    image = np.full((300, 400, 3), level / 255, np.float32)  # float32 luma made it 5.0000005 over an image

    assert exposure_stats(image).crushed == crushed
    assert exposure_stats(image).mean_luma == pytest.approx(level / 255)


def test_exposure_stats_leave_out_what_full_transparency_hides() -> None:
    # counted, the white hidden under a cut-out's transparent background would be clipped highlights
    image = np.full((10, 10, 3), 0.5, np.float32)
    image[:, :5] = 1.0  # white under the transparent half
    alpha = np.full((10, 10), 255, np.uint8)
    alpha[:, :5] = 0
    stats = exposure_stats(image, alpha)
    assert stats.clipped == 0
    assert stats.mean_luma == pytest.approx(128 / 255)


def written(target: Path, content: bytes = b"corrected") -> Path:
    """An output file, as the batch writes it before its card."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return target


def test_report_escapes_names_and_links_its_previews_relatively(tmp_path: Path) -> None:
    out = tmp_path / "out"
    source = tmp_path / "in" / "a <b>&'q.jpg"
    target = out / "sub" / source.name
    builder = ReportBuilder(out)
    photo = np.random.default_rng(0).random((40, 60, 3), dtype=np.float32)
    written(target)
    card = builder.previews(target, photo, photo**0.5, np.zeros((40, 60, 3), np.uint8), strength=0.42)
    builder.add(target, card)
    summary = Summary(
        outcomes=[
            Outcome(Job(source, target), "done", seconds=0.5),
            Outcome(Job(tmp_path / "bad.jpg", out / "bad.jpg"), "failed", "<script>alert(1)</script>"),
        ]
    )
    page = builder.write(summary, ReportedRun("model <x>", "cpu")).read_text(encoding="utf-8")
    assert "full correction" in page and "strength 0.42, the photo's colours, corrected in 0.50 s" in page
    assert (out / PREVIEW_FOLDER / "sub" / f"{source.name}-card.json").is_file()
    assert "a &lt;b&gt;&amp;&#x27;q.jpg" in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "model &lt;x&gt;" in page
    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(links) == 4 and not any(str(tmp_path) in link or link.startswith("/") for link in links)
    for kind in ("before", "after", "mask"):
        assert (out / PREVIEW_FOLDER / "sub" / f"{source.name}-{kind}.jpg").is_file()
    partial = builder.write(summary, ReportedRun("model", "cpu", strength=0.5)).read_text(encoding="utf-8")
    assert "strength 0.5 (part of the correction)" in partial
    automatic = builder.write(summary, ReportedRun("model", "cpu", strength="auto")).read_text(
        encoding="utf-8"
    )
    model_colours = builder.write(summary, ReportedRun("model", "cpu", keep_colour=False)).read_text(
        encoding="utf-8"
    )
    assert "full correction, the photos' own colours." in page and "--model-colour" not in page
    assert "full correction, the model's colours (--model-colour)" in model_colours
    assert "strength chosen photo by photo" in automatic
    assert "not run" not in page
    summary.outcomes.append(Outcome(Job(tmp_path / "c.jpg", out / "c.jpg"), "not run", "the batch stopped"))
    stopped = builder.write(summary, ReportedRun("model", "cpu")).read_text(encoding="utf-8")
    assert "<strong>1</strong> not run (the batch stopped)" in stopped


def card_notes(page: Path) -> list[tuple[str, str]]:
    """(output link, the line under the card) for each card of a report."""
    return re.findall(r'<h2><a href="([^"]+)">.*?<p class="muted">([^<]+)</p>', page.read_text("utf-8"), re.S)


def corrected_by(page: Path) -> list[tuple[str, str]]:
    """(output link, "this run" or "another run") for each card of a report."""
    return [
        (name, "another run" if note.endswith(OTHER_RUN) else "this run") for name, note in card_notes(page)
    ]


def two_shots(tmp_path: Path) -> Path:
    """A folder of two small photos, one.png and two.png."""
    shots = tmp_path / "shots"
    shots.mkdir()
    for name in ("one.png", "two.png"):
        make_photo(shots / name)
    return shots


def test_a_run_that_goes_on_with_skip_existing_reports_the_photos_an_earlier_run_corrected(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    shots, out = two_shots(tmp_path), tmp_path / "out"
    command = ["correct", str(shots), "-o", str(out), "--report", "--model", str(model_file), "--strength"]
    first = run([*command, "0.7"], env)
    assert first.returncode == 0, first.stderr
    for name in ("two.png", "two_mask.png"):  # as if the first run had been interrupted before two.png
        (out / name).unlink()
    resumed = run([*command, "0.3", "--skip-existing", "--model-colour"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert "<strong>1</strong> corrected, <strong>1</strong> skipped" in (out / REPORT_NAME).read_text(
        "utf-8"
    )
    notes = card_notes(out / REPORT_NAME)
    assert [(name, note.split(", ")[0]) for name, note in notes] == [
        ("one.png", "strength 0.7"),
        ("two.png", "strength 0.3"),
    ]
    assert notes[0][1] == "strength 0.7, the photo's colours, corrected by another run"
    assert notes[1][1].startswith("strength 0.3, the model's colours, corrected in ")  # each card says
    summary = "strength 0.3 (part of the correction), the model's colours (--model-colour)"  # this run's
    assert summary in (out / REPORT_NAME).read_text("utf-8")

    (out / PREVIEW_FOLDER / "one.png-after.jpg").unlink()  # a card whose previews are gone is left out
    (out / "two.png").unlink()
    (out / "two_mask.png").unlink()
    again = run([*command, "0.3", "--skip-existing"], env)
    assert again.returncode == 0, again.stderr
    assert [name for name, _ in card_notes(out / REPORT_NAME)] == ["two.png"]


def test_the_page_names_the_model_as_people_read_it_and_json_as_model_takes_it(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    shutil.copy(model_file, Path(env["RECNET_WEIGHTS_DIR"]) / "mine.safetensors")  # a bundled model
    photo, out = make_photo(tmp_path / "a.png"), tmp_path / "out"
    result = run(["correct", str(photo), "-o", str(out), "--report", "--model", "mine", "--json"], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "mine"
    page = (out / REPORT_NAME).read_text("utf-8")
    assert "Model <code>mine (bundled)</code> on <code>cpu</code>, full correction" in page
    # --strength auto of a model without a calibration: the full correction, as each card and the note say
    assert "full correction" in page and "chosen photo by photo" not in page


def test_each_shard_writes_the_page_of_every_photo_in_the_folder(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    shots, out = tmp_path / "shots", tmp_path / "out"
    shots.mkdir()
    photos = [str(make_photo(shots / name)) for name in ("c.png", "a.png", "b.png")]  # the batch's order
    command = ["correct", *photos, "-o", str(out), "--report", "--model", str(model_file)]

    def shard(part: str) -> list[tuple[str, str]]:
        result = run([*command, "--shard", part], env)
        assert result.returncode == 0, result.stderr
        return corrected_by(out / REPORT_NAME)

    assert shard("2/2") == [("b.png", "this run")]  # the second of the outputs by name
    page = (out / REPORT_NAME).read_text("utf-8")
    assert "This run, shard 2/2 of the batch: <strong>1</strong> corrected" in page
    assert "<strong>2</strong> of the batch's photos have no card" in page
    assert "<li>c.png</li><li>a.png</li>" in page
    # The last shard to finish shows the whole batch, in the order of one run, not by name.
    assert shard("1/2") == [("c.png", "this run"), ("a.png", "this run"), ("b.png", "another run")]
    assert "have no card" not in (out / REPORT_NAME).read_text("utf-8")
    assert shard("9/9") == [("c.png", "another run"), ("a.png", "another run"), ("b.png", "another run")]

    (out / "a.png").unlink()  # a photo no longer there: its card and previews go
    assert shard("9/9") == [("c.png", "another run"), ("b.png", "another run")]
    assert sorted(path.name for path in (out / PREVIEW_FOLDER).iterdir() if path.name.startswith("a")) == []
    # Run again over one photo: its new card, then the others in the folder, by name.
    again = run(
        ["correct", photos[2], "-o", str(out), "--report", "--model", str(model_file), "--overwrite"], env
    )
    assert again.returncode == 0, again.stderr
    assert corrected_by(out / REPORT_NAME) == [("b.png", "this run"), ("c.png", "another run")]


def test_runs_that_write_one_report_take_turns(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "out"
    photo, mask = np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8)
    jobs = [Job(tmp_path / name, out / name) for name in ("a.jpg", "b.jpg")]
    first, second = ReportBuilder(out, [job.target for job in jobs]), ReportBuilder(out)
    first.add(written(jobs[0].target), first.previews(jobs[0].target, photo, photo, mask))
    (out / PREVIEW_FOLDER / LOCK_NAME).touch()
    with open(out / PREVIEW_FOLDER / LOCK_NAME) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another shard is writing the page
        waiting = threading.Thread(target=first.write, args=(Summary([Outcome(jobs[0], "done")]), RUN))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and not (out / REPORT_NAME).exists()
        # ... with b.jpg, which it corrected before
        second.add(written(jobs[1].target), second.previews(jobs[1].target, photo, photo, mask))
    waiting.join(10)
    assert [name for name, _ in card_notes(out / REPORT_NAME)] == ["a.jpg", "b.jpg"]


def test_a_report_whose_previews_folder_cannot_be_made_is_named_not_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # in a folder recnet may not write in, the error named out/.recnet-report/.lock, a file nobody knows
    out = tmp_path / "out"
    out.mkdir()

    def refuse(*_: object, **__: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(ImageWriteError) as raised:
        ReportBuilder(out).write(Summary([]), RUN)
    why = f"cannot make {PREVIEW_FOLDER} beside it: permission denied"
    assert str(raised.value) == f"{out / REPORT_NAME}: {why}"
    assert raised.value.errno == errno.EACCES


def test_only_cards_of_photos_no_longer_there_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    photo = np.zeros((8, 8, 3), np.float32)
    builder = ReportBuilder(out)
    for name in ("gone.jpg", "again.jpg", "rewritten.jpg", "kept.jpg"):
        builder.add(
            written(out / name), builder.previews(out / name, photo, photo, np.zeros((8, 8, 3), np.uint8))
        )
    previews = {path.name for path in (out / PREVIEW_FOLDER).iterdir()}
    for name in ("gone.jpg", "again.jpg"):
        (out / name).unlink()
    card = out / builder.preview(out / "again.jpg", "card.json")
    os.utime(
        card, ns=(0, 0)
    )  # a run that corrected again.jpg again put its previews in place, not yet its card
    written(out / "rewritten.jpg", b"written again since, without a report")
    moved = out / PREVIEW_FOLDER / "moved.jpg-card.json"  # a card not where recnet keeps it
    shutil.copy(out / builder.preview(out / "gone.jpg", "card.json"), moved)
    assert list(builder.stored_cards()) == ["kept.jpg"]
    left = previews - {path.name for path in (out / PREVIEW_FOLDER).iterdir()}
    assert left == {f"gone.jpg-{kind}" for kind in ("card.json", "before.jpg", "after.jpg", "mask.jpg")}
    assert moved.is_file()


def test_a_photo_whose_previews_cannot_be_written_is_not_written_either(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    shots, out = two_shots(tmp_path), tmp_path / "out"
    blocked = out / PREVIEW_FOLDER / "two.png-after.jpg"
    blocked.mkdir(parents=True)  # a folder where a preview goes
    result = run(["correct", str(shots), "-o", str(out), "--report", "--model", str(model_file)], env)
    assert result.returncode == 1
    assert f"error: {shots / 'two.png'}: {blocked}: " in result.stderr
    assert (out / "one.png").is_file() and not (out / "two.png").exists()
    assert not (out / "two_mask.png").exists()  # so that a rerun with --skip-existing corrects it
    assert [name for name, _ in card_notes(out / REPORT_NAME)] == ["one.png"]


def test_an_earlier_card_is_shown_only_while_it_is_whole_and_its_output_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "out"
    photo = np.random.default_rng(0).random((20, 30, 3), dtype=np.float32)
    long_name = "é" * 125 + "n.jpg"  # 255 bytes: its previews' names are cut, and told apart by a hash
    names = ("a.jpg", "b.jpg", "c.jpg", "d.jpg", long_name)
    jobs = [Job(tmp_path / name, written(out / name)) for name in names]
    first = ReportBuilder(out)
    for job in jobs:
        card = first.previews(job.target, photo, photo, np.zeros((20, 30, 3), np.uint8), strength=0.5)
        first.add(job.target, card)
    cards = {job.target.name: out / first.preview(job.target, "card.json") for job in jobs}
    assert all(len(os.fsencode(path.name)) <= 255 for path in cards.values())
    assert cards[long_name].name.encode("utf-8").startswith("é".encode() * 93 + b"-")  # whole characters
    card = json.loads(cards["b.jpg"].read_text())
    cards["b.jpg"].write_text(json.dumps({**card, "mask": None}))  # edited by hand
    card = json.loads(cards["c.jpg"].read_text())
    cards["c.jpg"].write_text(json.dumps({**card, "strength": "abc"}))
    card = json.loads(cards["d.jpg"].read_text())
    cards["d.jpg"].write_text(json.dumps(card).replace('"strength": 0.5', '"strength": 1' + "0" * 400))
    written(out / "a.jpg", b"written again since, without a report")
    later = ReportBuilder(out, [job.target for job in jobs])
    later.write(Summary([Outcome(job, "skipped", "output exists") for job in jobs]), RUN)
    assert list(later.stored_cards()) == [long_name]
    assert cards["a.jpg"].is_file()  # its output is there: the card is replaced when it is reported again
    assert [unquote(name) for name, _ in card_notes(out / REPORT_NAME)] == [long_name]


def test_a_photo_this_run_failed_on_keeps_its_earlier_card_marked_as_not_this_run_s(tmp_path: Path) -> None:
    out = tmp_path / "out"
    photo = np.zeros((8, 8, 3), np.float32)
    builder = ReportBuilder(out)
    for name in ("kept.jpg", "failed.jpg"):
        target = written(out / name)
        builder.add(target, builder.previews(target, photo, photo, np.zeros((8, 8, 3), np.uint8)))
    jobs = {name: Job(tmp_path / name, out / name) for name in ("kept.jpg", "failed.jpg")}
    summary = Summary(
        [Outcome(jobs["kept.jpg"], "done", seconds=0.5), Outcome(jobs["failed.jpg"], "failed", "corrupt")]
    )
    notes = dict(card_notes(builder.write(summary, RUN)))
    assert notes["kept.jpg"].startswith("strength 1, the photo's colours, corrected in ")
    assert notes["failed.jpg"] == f"strength 1, the photo's colours, {FAILED_THIS_RUN}"
    assert "earlier" in FAILED_THIS_RUN and "failed" in FAILED_THIS_RUN


def test_a_photo_not_written_leaves_its_earlier_card_and_previews_as_they_were(tmp_path: Path) -> None:
    # Its previews are staged while the photo is written, and take their names only once it is: a run that
    # fails in between (a full disk) pairs no new before with an old after.
    out = tmp_path / "out"
    target = written(out / "a.jpg")
    earlier, later = np.zeros((20, 30, 3), np.float32), np.ones((20, 30, 3), np.float32)
    mask = np.zeros((20, 30, 3), np.uint8)
    builder = ReportBuilder(out)
    with builder.keeping(target, builder.previews(target, earlier, earlier, mask)):
        written(target, b"the earlier run's photo")
    folder = out / PREVIEW_FOLDER
    kept = {path.name: path.read_bytes() for path in folder.iterdir()}
    card = builder.previews(target, later, later, mask)
    with pytest.raises(ImageWriteError), builder.keeping(target, card):
        raise ImageWriteError(target, "no space left on device")
    (folder / ".staged-a.jpg-mask.jpg").mkdir()  # the mask's preview cannot be staged: before's is undone
    with pytest.raises(ImageWriteError):
        builder.previews(target, later, later, mask)  # the photo is not written when its previews cannot be
    (folder / ".staged-a.jpg-mask.jpg").rmdir()
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == kept
    assert builder.stored_cards()["a.jpg"].before_stats.mean_luma == 0
    with builder.keeping(target, builder.previews(target, later, later, mask)):
        written(target, b"this run's photo")
    assert builder.stored_cards()["a.jpg"].before_stats.mean_luma == 1
    assert sorted(path.name for path in folder.iterdir()) == sorted(kept)
    assert (folder / "a.jpg-before.jpg").read_bytes() != kept["a.jpg-before.jpg"]


def test_a_report_cannot_go_where_a_folder_of_photos_is_or_would_be(tmp_path: Path) -> None:
    assert report_problem(tmp_path, [tmp_path / "day" / "a.jpg"]) is None
    problem = "and the report goes in a file of that name: choose another -o"
    assert report_problem(tmp_path, [tmp_path / REPORT_NAME / "a.jpg"]) == (
        f"{tmp_path / REPORT_NAME} is a folder the outputs go in, {problem}"
    )
    (tmp_path / REPORT_NAME).mkdir()  # an empty one: no folder of photos, as it was called
    assert report_problem(tmp_path) == f"{tmp_path / REPORT_NAME} is a folder, {problem}"
    (tmp_path / "notes.txt").write_text("mine")
    assert report_problem(tmp_path / "notes.txt") == (
        f"-o {tmp_path / 'notes.txt'} is a file, and --report needs a folder: choose another -o"
    )
    assert report_problem(Path(os.devnull)) == (
        f"-o {os.devnull} is a device, and --report needs a folder: choose another -o"
    )
    previews = tmp_path / "out" / PREVIEW_FOLDER
    previews.parent.mkdir()
    previews.symlink_to(tmp_path / "nowhere")
    assert report_problem(previews.parent).startswith(
        f"{previews} is a link to {tmp_path / 'nowhere'}, which does not exist"
    )


def test_a_preview_that_cannot_be_written_fails_its_photo_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    written(out / PREVIEW_FOLDER / "a.jpg-before.jpg" / "a folder's preview.jpg")  # where a.jpg's goes
    builder = ReportBuilder(out)
    photo = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(ImageWriteError):
        builder.previews(out / "a.jpg", photo, photo, np.zeros((8, 8, 3), np.uint8))
    (out / "sub").mkdir()
    written(out / PREVIEW_FOLDER / "sub")  # a file where the previews of sub/ go
    with pytest.raises(ImageWriteError):
        builder.previews(out / "sub" / "b.jpg", photo, photo, np.zeros((8, 8, 3), np.uint8))


def test_report_links_and_shows_a_name_that_is_not_utf_8(tmp_path: Path) -> None:
    out = tmp_path / "out"
    name = os.fsdecode(b"x\xff.jpg")  # Linux names are bytes; this one has no UTF-8 reading
    source, target = tmp_path / name, out / name
    builder = ReportBuilder(out)
    photo = np.random.default_rng(0).random((20, 30, 3), dtype=np.float32)
    card = builder.previews(target, photo, photo, np.zeros((20, 30, 3), np.uint8))
    builder.add(written(target), card)
    page = builder.write(Summary(outcomes=[Outcome(Job(source, target), "done")]), RUN).read_bytes()
    assert b'href="x%FF.jpg"' in page and b">x?.jpg<" in page


def test_a_report_goes_only_where_it_replaces_nothing_of_the_user_s_even_with_overwrite(
    tmp_path: Path,
) -> None:
    assert report_problem(tmp_path / "new") is None
    (tmp_path / PREVIEW_FOLDER).write_text("a note of mine")
    assert report_problem(tmp_path) == (
        f"{tmp_path / PREVIEW_FOLDER} is a file, and the report's previews go in a folder of that name: "
        "move it"
    )
    (tmp_path / PREVIEW_FOLDER).unlink()
    (tmp_path / "mine").mkdir()
    (tmp_path / PREVIEW_FOLDER).symlink_to("mine", target_is_directory=True)  # its files would be replaced
    assert report_problem(tmp_path) == (
        f"{tmp_path / PREVIEW_FOLDER} is a link to a folder, and the report's previews go in one of their "
        "own: move it"
    )
    (tmp_path / PREVIEW_FOLDER).unlink()
    (tmp_path / PREVIEW_FOLDER).mkdir()
    (tmp_path / PREVIEW_FOLDER / "2024").symlink_to("../mine", target_is_directory=True)  # one level down
    photo_there = tmp_path / "2024" / "may" / "a.jpg"
    assert report_problem(tmp_path, [tmp_path / "b.jpg"]) is None  # no preview goes there
    assert report_problem(tmp_path, [photo_there]) == (
        f"{tmp_path / PREVIEW_FOLDER / '2024'} is a link to a folder, and the report's previews go in one of "
        "their own: move it"
    )
    shutil.rmtree(tmp_path / PREVIEW_FOLDER)
    (tmp_path / REPORT_NAME).write_text("<html>my own page</html>")
    assert report_problem(tmp_path) == (
        f"{tmp_path / REPORT_NAME}: exists and is not a recnet report (not even --overwrite replaces it): "
        "move it, or choose another -o"
    )
    with pytest.raises(ImageWriteError):  # not even --overwrite replaces it
        ReportBuilder(tmp_path).write(Summary(), RUN)
    (tmp_path / REPORT_NAME).unlink()
    ReportBuilder(tmp_path).write(Summary(), RUN)
    assert report_problem(tmp_path) is None  # recnet's own is replaced on each run
    ReportBuilder(tmp_path).write(Summary(), RUN)
    # A page of the user's saved there while the batch ran (after report_problem) is kept as well.
    (tmp_path / REPORT_NAME).write_text("<html>my own page</html>")
    with pytest.raises(ImageWriteError) as raised:
        ReportBuilder(tmp_path).write(Summary(), RUN)
    assert str(raised.value) == f"{tmp_path / REPORT_NAME}: {NOT_A_REPORT}"
    assert (tmp_path / REPORT_NAME).read_text() == "<html>my own page</html>"


def test_a_page_that_cannot_be_read_is_kept_as_the_user_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / REPORT_NAME).write_text("<html>my own page</html>")
    opened = Path.open

    def no_permission(path: Path, *args: object, **kwargs: object) -> object:  # chmod cannot keep root out
        if path.name == REPORT_NAME:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", no_permission)
    assert report_problem(tmp_path) == f"{tmp_path / REPORT_NAME}: {NOT_A_REPORT}"


def test_a_report_edited_or_copied_since_recnet_wrote_it_is_kept_as_outputs_are(tmp_path: Path) -> None:
    page = tmp_path / REPORT_NAME
    page.write_text('<html><head><meta name="generator" content="recnet"></head><body>the report</body>')
    as_recnet_wrote(page)
    assert report_problem(tmp_path) is None
    with page.open("a") as file:
        file.write("<!-- my notes -->")
    mark = "it lacks recnet's mark: a file of yours, a copy, or an edited output"
    assert report_problem(tmp_path) == (
        f"{page}: exists, and recnet did not write it ({mark}): move it, or choose another -o"
    )


def test_a_report_of_no_photos_makes_its_folder(tmp_path: Path) -> None:
    # A shard with no photos (a SLURM array with more tasks than photos) corrects none, and makes no folder.
    page = ReportBuilder(tmp_path / "out" / "shard-9").write(Summary(), RUN)
    assert page == tmp_path / "out" / "shard-9" / REPORT_NAME
    assert "No photo in this folder was corrected with --report yet." in page.read_text("utf-8")


def test_report_needs_an_output_folder(tmp_path: Path, env: dict[str, str], model_file: Path) -> None:
    photo = make_photo(tmp_path / "shot.jpg")
    result = run(["correct", str(photo), "--report", "--model", str(model_file)], env)
    assert result.returncode == 2 and "--report needs an output folder" in result.stderr
    named_like_a_photo = tmp_path / "album.jpg"  # a folder, as -o takes it everywhere else
    named_like_a_photo.mkdir()
    command = ["correct", str(photo), "-o", str(named_like_a_photo), "--report", "--model", str(model_file)]
    result = run(command, env)
    assert result.returncode == 0, result.stderr
    assert (named_like_a_photo / "shot.jpg").is_file() and (named_like_a_photo / REPORT_NAME).is_file()


def test_a_dry_run_lists_the_report_it_would_write(tmp_path: Path, env: dict[str, str]) -> None:
    shots, out = two_shots(tmp_path), tmp_path / "out"
    plan = run(["correct", str(shots), "-o", str(out), "--report", "--dry-run"], env)
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.splitlines()[-1] == f"report -> {out / REPORT_NAME}, {out / PREVIEW_FOLDER}{os.sep}"
    listed = run(["correct", str(shots), "-o", str(out), "--report", "-n", "--json"], env)
    assert json.loads(listed.stdout)["report"] == {
        "page": str(out / REPORT_NAME),
        "previews": str(out / PREVIEW_FOLDER),
    }
    assert not out.exists()
    without = run(["correct", str(shots), "-o", str(out), "-n", "--json"], env)
    assert "report" not in json.loads(without.stdout)


def test_a_run_s_json_gives_its_report_and_each_photo_s_mask_picture(
    tmp_path: Path, env: dict[str, str], model_file: Path
) -> None:
    shots, out = two_shots(tmp_path), tmp_path / "out"
    result = run(
        ["correct", str(shots), "-o", str(out), "--report", "--json", "--model", str(model_file)], env
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["report"] == {"page": str(out / REPORT_NAME), "previews": str(out / PREVIEW_FOLDER)}
    assert [entry["companions"] for entry in summary["files"]] == [
        [str(out / "one_mask.png")],
        [str(out / "two_mask.png")],
    ]
    assert all(Path(path).is_file() for entry in summary["files"] for path in entry["companions"])


def chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on a local page, offline, with a throw-away profile."""
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=5000",
        *args,
        page.as_uri() if "--dump-dom" not in args else page.as_uri() + "?test=1",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs Debian's chromium)")
def test_report_works_in_a_browser_after_moving_the_folder(
    tmp_path: Path,
    env: dict[str, str],
    model_file: Path,
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    for name in ("one.jpg", "two <&'>.png", "three.jpg"):
        make_photo(shots / name, size=(96, 64))
    (shots / "broken.jpg").write_bytes(b"not a photo")
    result = run(
        ["correct", str(shots), "-o", str(tmp_path / "out"), "--report", "--model", str(model_file)],
        {**env, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 1, result.stderr  # broken.jpg failed, the others were corrected
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "out", moved)
    page = moved / REPORT_NAME
    assert "broken.jpg" in page.read_text(encoding="utf-8")

    dom = chromium(page, tmp_path, "--dump-dom")
    found = re.search(r'<pre id="selftest">(.*?)</pre>', dom.stdout)
    assert found, dom.stderr[-2000:]
    assert json.loads(found.group(1)) == {"cards": 3, "slider": "ok", "mask": "ok", "broken_images": []}

    shot = tmp_path / "shot.png"
    chromium(page, tmp_path, f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}")
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (WINDOW[1], WINDOW[0], 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500  # text and photos, not an empty page


def test_each_card_says_whose_colours_its_photo_got(tmp_path: Path) -> None:
    # the page shows the cards of several runs, which may have used --keep-colour and --model-colour
    out = tmp_path / "out"
    photo, mask = np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8)
    names = {"photo.jpg": True, "model.jpg": False, "older.jpg": True, "odd.jpg": True}
    builder = ReportBuilder(out)
    for name, keep_colour in names.items():
        target = written(out / name)
        builder.add(target, builder.previews(target, photo, photo, mask, keep_colour=keep_colour))
    for name, edit in (("older.jpg", {}), ("odd.jpg", {"keep_colour": "yes"})):
        card = out / builder.preview(out / name, "card.json")
        fields = {key: value for key, value in json.loads(card.read_text()).items() if key != "keep_colour"}
        card.write_text(json.dumps(fields | edit))  # a card from before --keep-colour, one edited by hand
    summary = Summary(
        [Outcome(Job(tmp_path / name, out / name), "skipped", "output exists") for name in names]
    )
    notes = dict(card_notes(ReportBuilder(out, [out / name for name in names]).write(summary, RUN)))
    assert notes["photo.jpg"].startswith("strength 1, the photo's colours, ")
    assert notes["model.jpg"].startswith("strength 1, the model's colours, ")
    assert notes["older.jpg"].startswith("strength 1, the model's colours, ")  # what runs wrote before
    assert notes.keys() == {"photo.jpg", "model.jpg", "older.jpg"}


def test_a_card_says_clipped_highlights_no_longer_clipped_are_no_detail_brought_back(tmp_path: Path) -> None:
    # "clipped highlights 30.9% -> 0.0%" read as detail recovered, where the model had made them flat grey
    out = tmp_path / "out"
    blown, flat_grey = np.ones((8, 8, 3), np.float32), np.full((8, 8, 3), 0.78, np.float32)
    mask = np.zeros((8, 8, 3), np.uint8)
    builder = ReportBuilder(out)
    for name, photo, corrected in (("sky.jpg", blown, flat_grey), ("dim.jpg", flat_grey * 0.5, flat_grey)):
        target = written(out / name)
        builder.add(target, builder.previews(target, photo, corrected, mask))
    summary = Summary([Outcome(Job(tmp_path / name, out / name), "done") for name in ("sky.jpg", "dim.jpg")])
    cards = builder.write(summary, RUN).read_text("utf-8").split('<article class="card">')[1:]
    note = "Clipped highlights hold little or no detail in the photo: fewer of them after correction means"
    by_photo = {"sky.jpg" in card: card for card in cards}
    assert note in by_photo[True] and note not in by_photo[False]
    assert "<th>clipped highlights</th><td>100.0%</td><td>0.0%</td>" in by_photo[True]


def test_a_photo_left_just_as_clipped_gets_no_note_of_fewer_clipped_highlights(tmp_path: Path) -> None:
    # a sky left as blown as it was is not one with fewer clipped highlights: the note would say otherwise
    out = tmp_path / "out"
    blown, mask = np.ones((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8)
    builder = ReportBuilder(out)
    target = written(out / "sky.jpg")
    builder.add(target, builder.previews(target, blown, blown, mask))
    summary = Summary([Outcome(Job(tmp_path / "sky.jpg", target), "done")])
    page = builder.write(summary, RUN).read_text("utf-8")
    assert "<th>clipped highlights</th><td>100.0%</td><td>100.0%</td>" in page
    assert "Clipped highlights hold little or no detail" not in page


@pytest.mark.parametrize("ext", ["png", "webp"])
def test_a_grey_photo_s_card_shows_it_grey_as_it_is_written(
    tmp_path: Path, env: dict[str, str], model_file: Path, ext: str
) -> None:
    # the model's colours asked for, the card showed them and said so, while the photo was written grey:
    # in a grey mode, or as RGB with R = G = B in a format without one (WebP)
    shots, out = tmp_path / "shots", tmp_path / "out"
    shots.mkdir()
    grey = (np.random.default_rng(3).random((48, 64)) * 255).astype(np.uint8)
    Image.fromarray(grey).save(shots / "grey.png")
    command = [
        "correct",
        str(shots),
        "-o",
        str(out),
        "--report",
        "--model",
        str(model_file),
        "--model-colour",
        "--ext",
        ext,
    ]
    result = run(command, env)
    assert result.returncode == 0, result.stderr
    written = np.asarray(Image.open(out / f"grey.{ext}").convert("RGB"), dtype=int)
    assert np.ptp(written, axis=2).max() <= 2  # grey, but for a lossy WebP's rounding
    card = dict(card_notes(out / REPORT_NAME))[f"grey.{ext}"]
    assert card.startswith("strength 1, the photo's colours, ")
    after = Image.open(out / PREVIEW_FOLDER / f"grey.{ext}-after.jpg").convert("RGB")
    assert (
        np.ptp(np.asarray(after, dtype=int), axis=2).max() <= 2
    )  # grey, but for the JPEG preview's rounding


@pytest.mark.parametrize(("level", "clipped"), [(250, 1.0), (249, 0.0)])
def test_a_channel_at_the_clipped_level_counts_as_clipped(level: int, clipped: float) -> None:
    image = np.full((4, 4, 3), 0.2, np.float32)
    image[..., 1] = level / 255
    assert exposure_stats(image).clipped == clipped


def test_a_photo_transparent_all_over_is_measured_whole_rather_than_as_nothing() -> None:
    # no pixel shows: its numbers come from all of them, not from none (NaN, which no card can hold)
    image = np.full((6, 6, 3), 0.5, np.float32)
    image[:3] = 1.0
    stats = exposure_stats(image, np.zeros((6, 6), np.uint8))
    assert stats == exposure_stats(image)
    assert stats.clipped == pytest.approx(0.5)


def test_a_photo_s_previews_show_it_before_and_after_correction_at_most_at_the_preview_size(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    dark, bright = np.zeros((20, 1400, 3), np.float32), np.ones((20, 1400, 3), np.float32)
    builder = ReportBuilder(out)
    target = written(out / "wide.jpg")
    builder.add(target, builder.previews(target, dark, bright, np.zeros((20, 1400, 3), np.uint8)))
    before, after = (
        Image.open(out / PREVIEW_FOLDER / f"wide.jpg-{kind}.jpg") for kind in ("before", "after")
    )
    assert before.size == after.size == (1280, 18)
    assert np.asarray(before).mean() < 5 and np.asarray(after).mean() > 250


def test_the_numbers_after_correction_leave_out_what_full_transparency_hides(tmp_path: Path) -> None:
    out = tmp_path / "out"
    photo, corrected = np.full((10, 10, 3), 0.5, np.float32), np.full((10, 10, 3), 0.5, np.float32)
    corrected[:, :5] = 1.0  # white under the transparent half
    alpha = np.full((10, 10), 255, np.uint8)
    alpha[:, :5] = 0
    card = ReportBuilder(out).previews(
        written(out / "cut-out.png"), photo, corrected, np.zeros((10, 10, 3), np.uint8), alpha=alpha
    )
    assert card.before_stats.clipped == card.after_stats.clipped == 0


def test_a_preview_keeps_its_output_s_name_up_to_the_longest_stem(tmp_path: Path) -> None:
    builder = ReportBuilder(tmp_path)
    longest = "a" * 196 + ".jpg"  # 200 bytes
    assert builder.preview(tmp_path / longest, "card.json").name == f"{longest}-card.json"
    longer = builder.preview(tmp_path / ("a" + longest), "card.json").name
    assert longer.startswith("a" * 187 + "-") and len(longer) == 187 + 13 + len("-card.json")


def test_a_card_edited_to_name_its_output_otherwise_is_left_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    photo = np.zeros((8, 8, 3), np.float32)
    builder = ReportBuilder(out)
    target = written(out / "a.jpg")
    builder.add(target, builder.previews(target, photo, photo, np.zeros((8, 8, 3), np.uint8)))
    card = out / builder.preview(target, "card.json")
    assert list(builder.stored_cards()) == ["a.jpg"]
    card.write_text(json.dumps({**json.loads(card.read_text()), "output": "./a.jpg"}))  # the same file
    assert builder.stored_cards() == {}


def test_the_page_lists_as_without_a_card_only_the_photos_this_run_did_not_account_for(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    photo = np.zeros((8, 8, 3), np.float32)
    names = ("done.jpg", "failed.jpg", "not-run.jpg", "plain.jpg")
    jobs = [Job(tmp_path / name, out / name) for name in names]
    builder = ReportBuilder(out, [job.target for job in jobs])
    builder.add(
        written(jobs[0].target), builder.previews(jobs[0].target, photo, photo, photo.astype(np.uint8))
    )
    written(jobs[3].target)  # written by a run without --report
    summary = Summary(
        [
            Outcome(jobs[0], "done", seconds=0.5),
            Outcome(jobs[1], "failed", "corrupt"),
            Outcome(jobs[2], "not run", "the batch stopped"),
            Outcome(jobs[3], "skipped", "output exists"),
        ]
    )
    page = builder.write(summary, RUN).read_text("utf-8")
    assert "<strong>1</strong> of the batch's photos have no card" in page
    assert "<ul><li>plain.jpg</li></ul>" in page


def test_only_a_shard_s_page_says_photos_without_a_card_may_be_another_shard_s(tmp_path: Path) -> None:
    out = tmp_path / "out"
    builder = ReportBuilder(out, [out / "a.jpg"])
    whole = builder.write(Summary(), RUN).read_text("utf-8")
    shard = builder.write(Summary(), ReportedRun("m", "cpu", shard="1/2")).read_text("utf-8")
    assert "have no card: written without <code>--report</code>" in whole
    assert "have no card: not corrected yet by their shard, or failed there" in shard


def test_a_card_notes_clipped_highlights_from_the_smallest_share_that_counts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    photo, mask = np.full((25, 40, 3), 0.5, np.float32), np.zeros((25, 40, 3), np.uint8)
    photo[0, 0] = 1.0  # one pixel in a thousand: BLOWN_SHARE
    builder = ReportBuilder(out)
    target = written(out / "glint.jpg")
    builder.add(target, builder.previews(target, photo, np.full_like(photo, 0.5), mask))
    page = builder.write(Summary([Outcome(Job(tmp_path / "glint.jpg", target), "done")]), RUN)
    assert "<th>clipped highlights</th><td>0.1%</td><td>0.0%</td>" in page.read_text("utf-8")
    assert "Clipped highlights hold little or no detail" in page.read_text("utf-8")


def test_a_link_where_the_page_goes_is_kept_even_when_it_leads_nowhere(tmp_path: Path) -> None:
    (tmp_path / REPORT_NAME).symlink_to(tmp_path / "elsewhere.html")
    assert report_problem(tmp_path) == f"{tmp_path / REPORT_NAME}: {NOT_A_REPORT}"
    with pytest.raises(ImageWriteError):
        ReportBuilder(tmp_path).write(Summary(), RUN)
    assert (tmp_path / REPORT_NAME).is_symlink()


def test_a_link_where_the_previews_of_an_output_s_own_folder_go_is_found(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / PREVIEW_FOLDER / "2024").mkdir(parents=True)
    (tmp_path / PREVIEW_FOLDER / "2024" / "may").symlink_to("../../mine", target_is_directory=True)
    assert report_problem(tmp_path, [tmp_path / "2024" / "a.jpg"]) is None
    assert report_problem(tmp_path, [tmp_path / "2024" / "may" / "a.jpg"]) == (
        f"{tmp_path / PREVIEW_FOLDER / '2024' / 'may'} is a link to a folder, and the report's previews go "
        "in one of their own: move it"
    )
