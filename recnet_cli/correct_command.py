"""What `recnet correct` does with each photo of a batch: the model's pass (and the features it shows) in
the compute thread, then the pictures beside the photo, the report's card and the photo in a writer thread.
Imported when the command runs: it needs PyTorch."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recnet_cli import console
from recnet_cli.imaging import (
    Photo,
    faults_fail_alone,
    format_for,
    output_notices,
    shown_in_srgb,
    write_photo,
    write_rgb8,
)
from recnet_cli.imaging.pixels import as_written
from recnet_cli.outputs import Job, side_path
from recnet_cli.runner import notice_run
from recnet_cli.viz.mask import mask_overlay

if TYPE_CHECKING:
    from recnet_cli.engine import Correction, Corrector, PendingCorrection
    from recnet_cli.tiling import Progress
    from recnet_cli.viz.features import Features
    from recnet_cli.viz.report import ReportBuilder


@dataclass
class PhotoCorrection:
    """Corrects each photo and writes it with what was asked for beside it; ``strengths`` gathers the share of
    the correction each photo got, by its input path."""

    save_mask: bool
    save_features: bool
    quality: int | None
    overwrite: bool
    replace_companions: bool  # the pictures beside a photo: replaced when the photo may be
    quiet: bool
    report: ReportBuilder | None = None  # needs save_mask
    strengths: dict[str, float] = field(default_factory=dict)

    def compute(
        self, corrector: Corrector, photo: Photo, progress: Progress
    ) -> tuple[PendingCorrection, Features | None]:
        from recnet_cli.viz.features import extract_features  # PyTorch: not needed where no photo is run

        pixels = photo.pixels_to_correct
        pending = corrector.start(pixels, progress)
        return pending, extract_features(corrector.model, pixels) if self.save_features else None

    def write(self, job: Job, photo: Photo, computed: tuple[PendingCorrection, Features | None]) -> float:
        """The device's share of the work first (a GPU's failure there stops the batch), then the files'
        (``write_files``: a fault of recnet's there fails this photo alone)."""
        pending, features = computed
        result = pending.result()
        with faults_fail_alone(job.source):
            self.write_files(job, photo, pending, result, features)
        self.strengths[str(job.source)] = result.strength
        return photo.megapixels

    def write_files(
        self,
        job: Job,
        photo: Photo,
        pending: PendingCorrection,
        result: Correction,
        features: Features | None,
    ) -> None:
        """The pictures beside the photo first, the photo last: a job whose photo exists has finished. The
        report's card is kept once the photo is written."""
        # the pictures drawn of the photo carry no colour profile: in sRGB's colours, as viewers show them
        shown = shown_in_srgb(photo, pending.rgb) if self.save_mask else None
        overlay = None if shown is None else mask_overlay(shown, result.mask, alpha=photo.alpha)
        kept_in_report = contextlib.nullcontext()
        if self.report is not None and shown is not None:
            # a grey photo is written grey in any format, so shown grey: in its own colours, not the model's
            after = shown_in_srgb(photo, as_written(result.image, photo.grayscale))
            keep_colour = pending.corrector.keep_colour or photo.grayscale
            card = self.report.previews(
                job.target, shown, after, overlay, result.strength, keep_colour=keep_colour, alpha=photo.alpha
            )
            kept_in_report = self.report.keeping(job.target, card)
        with kept_in_report:
            if overlay is not None:
                write_rgb8(side_path(job.target, "mask"), overlay, overwrite=self.replace_companions)
            if features is not None:
                from recnet_cli.viz.features import feature_figure

                figure = feature_figure(features, f"recnet features: {job.source.name}")
                write_rgb8(side_path(job.target, "features"), figure, overwrite=self.replace_companions)
            write_photo(job.target, result.image, like=photo, quality=self.quality, overwrite=self.overwrite)
        if not self.quiet:
            for notice in output_notices(photo, format_for(job.target)):
                console.notice(f"{job.source}: {notice}")
            notice_run(job.source, photo, pending)
