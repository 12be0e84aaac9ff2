"""Scoring a model on image pairs: PSNR/SSIM of its output and of the untouched input (identity)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recnet_cli.engine import Corrector
from recnet_cli.imaging import write_rgb8
from recnet_cli.metrics import psnr, ssim, to_uint8
from recnet_cli.train.data import ImageFileError, read_rgb
from recnet_cli.train.pairs import ImagePair


@dataclass(frozen=True)
class ImageScore:
    """Scores of one pair: the model's output and the input itself, both against the ground truth."""

    input: Path
    target: Path
    psnr: float
    ssim: float
    identity_psnr: float
    identity_ssim: float


@dataclass
class EvalReport:
    scores: list[ImageScore]

    def mean(self, field: str) -> float:
        return float(np.mean([getattr(score, field) for score in self.scores]))

    @property
    def mean_psnr(self) -> float:
        return self.mean("psnr")

    @property
    def mean_ssim(self) -> float:
        return self.mean("ssim")

    @property
    def mean_identity_psnr(self) -> float:
        return self.mean("identity_psnr")

    @property
    def mean_identity_ssim(self) -> float:
        return self.mean("identity_ssim")

    def to_dict(self) -> dict[str, object]:
        """The report as plain JSON-ready values."""
        return {
            "images": len(self.scores),
            "psnr": self.mean_psnr,
            "ssim": self.mean_ssim,
            "identity_psnr": self.mean_identity_psnr,
            "identity_ssim": self.mean_identity_ssim,
            "per_image": [
                {**score.__dict__, "input": str(score.input), "target": str(score.target)}
                for score in self.scores
            ],
        }


def score_pair(pair: ImagePair, corrector: Corrector) -> tuple[ImageScore, np.ndarray]:
    """Scores one pair; returns the score and the corrected 8-bit image. Metrics use 8-bit RGB."""
    source, target = read_rgb(pair.input), read_rgb(pair.target)
    if source.shape != target.shape:
        raise ImageFileError(
            f"{pair.input}: size {source.shape[1]}x{source.shape[0]} differs from its ground truth "
            f"{pair.target} ({target.shape[1]}x{target.shape[0]})"
        )
    corrected = to_uint8(corrector.correct(source.astype(np.float32) / 255).image)
    score = ImageScore(
        pair.input,
        pair.target,
        psnr(corrected, target),
        ssim(corrected, target),
        psnr(source, target),
        ssim(source, target),
    )
    return score, corrected


def evaluate_pairs(
    pairs: Sequence[ImagePair],
    corrector: Corrector,
    save_dir: Path | None = None,
    progress: Callable[[int, int, ImageScore], None] | None = None,
) -> EvalReport:
    """Corrects every pair's input and scores it; ``save_dir`` keeps the outputs as ``<input stem>.png``.

    ``progress(done, total, score)`` is called after each image.
    """
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
    scores = []
    for index, pair in enumerate(pairs, start=1):
        score, corrected = score_pair(pair, corrector)
        if save_dir is not None:
            write_rgb8(save_dir / f"{pair.input.stem}.png", corrected)
        scores.append(score)
        if progress is not None:
            progress(index, len(pairs), score)
    return EvalReport(scores)
