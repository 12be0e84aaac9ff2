"""What `recnet mask` does with each photo of a batch: the model's pass in the compute thread, then the mask
picture (and the raw mask) in a writer thread. Imported when the command runs: it needs PyTorch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from recnet_cli.imaging import Photo, faults_fail_alone, shown_in_srgb, write_png16, write_rgb8
from recnet_cli.imaging.pixels import quantise
from recnet_cli.outputs import Job, side_path
from recnet_cli.runner import notice_run
from recnet_cli.viz.mask import mask_overlay

if TYPE_CHECKING:
    from recnet_cli.engine import Corrector, PendingCorrection
    from recnet_cli.tiling import Progress


@dataclass
class MaskDrawing:
    """Runs the model on each photo and draws where it sees over- and under-exposure; ``raw`` writes the
    mask itself beside the picture too."""

    raw: bool
    quality: int | None
    overwrite: bool
    replace_companions: bool  # the raw mask: replaced when the picture may be
    quiet: bool

    def compute(self, corrector: Corrector, photo: Photo, progress: Progress) -> PendingCorrection:
        return corrector.start(photo.pixels_to_correct, progress)

    def write(self, job: Job, photo: Photo, pending: PendingCorrection) -> float:
        """The raw mask first, the picture last: a job whose picture exists has finished. The mask comes from
        the device (a GPU's failure there stops the batch); a fault of recnet's in the files fails this photo
        alone."""
        mask = pending.mask_only()
        with faults_fail_alone(job.source):
            if self.raw:  # 16-bit grey: 65535 = under-exposed, 0 = over-exposed
                write_png16(
                    side_path(job.target, "raw"), quantise(mask, 16), overwrite=self.replace_companions
                )
            # as viewers show the photo: in sRGB's colours, its transparency over a checkerboard
            overlay = mask_overlay(shown_in_srgb(photo, pending.rgb), mask, alpha=photo.alpha)
            write_rgb8(job.target, overlay, quality=self.quality, overwrite=self.overwrite)
            if not self.quiet:
                notice_run(job.source, photo, pending)
        return photo.megapixels
