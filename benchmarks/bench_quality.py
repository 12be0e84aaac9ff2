"""Scores a model against the classic one-click fixes on held-out synthetic pairs, regime by regime.

The classic fixes, as photo tools apply them:
- gamma: one global gamma that brings the mean luminance to mid-grey;
- clahe: OpenCV's CLAHE on the L channel of Lab (clip limit 2, 8x8 tiles);
- fusion: exposure fusion (Mertens, Kautz, Van Reeth 2007, OpenCV) of three exposures made from the
  photo itself: -2, 0 and +2 EV in linear light.
The pairs: the held-out photos of a folder (the split `recnet train --photos` validates on), each
degraded once per regime (under, over, mixed, mild: nearly right) and once with the training mix, with
fixed seeds. Scores are PSNR and SSIM on 8-bit RGB, as `recnet eval` computes them, of the model's
lightness in the photo's colours as `recnet correct` gives it by default (--model-colour: of the model's
own colours). Writes benchmarks/results/quality-<model>[-strength<S>][-modelcolour][-size<N>].md and
.json, and with --sheet a picture of a few pairs through every method.

    python benchmarks/bench_quality.py ../shared/data/photos --size 512 --sheet quality.jpg
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from bench_inference import EXAMPLE_PHOTOS, RESULTS

from recnet_cli.devices import pick_device
from recnet_cli.engine import Corrector
from recnet_cli.imaging import fit_size, read_photo, write_rgb8
from recnet_cli.imaging.pixels import luma, quantise
from recnet_cli.metrics import MAX_PSNR, psnr, ssim
from recnet_cli.train.data import photo_validation, split_photos
from recnet_cli.train.synthesis import MODES, DegradationConfig, linear_to_srgb, srgb_to_linear
from recnet_cli.viz import draw
from recnet_cli.weights import load_model, strength_calibration

CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (8, 8)
FUSION_EVS = (-2.0, 0.0, 2.0)
GAMMA_LIMITS = (0.25, 4.0)
SHEET_ROW_HEIGHT = 220
DEFAULT_SIZE = 512  # results at other sizes get -size<N> in their file names

Method = Callable[[np.ndarray], np.ndarray]  # 8-bit RGB in, 8-bit RGB out


def gamma_fix(rgb: np.ndarray) -> np.ndarray:
    """One global gamma mapping the mean luminance to 0.5."""
    values = rgb.astype(np.float32) / 255
    mean = float(np.clip(luma(values).mean(), 1e-3, 1 - 1e-3))
    gamma = float(np.clip(math.log(0.5) / math.log(mean), *GAMMA_LIMITS))
    return quantise(values**gamma, 8)


def clahe_fix(rgb: np.ndarray) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of the lightness channel."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)
    lab[..., 0] = clahe.apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def fusion_fix(rgb: np.ndarray) -> np.ndarray:
    """Mertens exposure fusion of the photo re-exposed at -2, 0 and +2 EV (in linear light)."""
    linear = srgb_to_linear(torch.from_numpy(rgb.astype(np.float32) / 255))
    brackets = [
        cv2.cvtColor(quantise(linear_to_srgb((linear * 2**ev).clamp(0, 1)).numpy(), 8), cv2.COLOR_RGB2BGR)
        for ev in FUSION_EVS
    ]
    fused = cv2.createMergeMertens().process(brackets)
    return cv2.cvtColor(quantise(fused, 8), cv2.COLOR_BGR2RGB)


def model_fix(corrector: Corrector) -> Method:
    return lambda rgb: quantise(corrector.correct(rgb.astype(np.float32) / 255).image, 8)


def regime_pairs(folder: Path, size: int, count: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """(input, ground truth) 8-bit pairs of the held-out photos, per regime."""
    _, held_out = split_photos(folder)
    configs = {mode: DegradationConfig.only(mode) for mode in MODES} | {"training mix": DegradationConfig()}
    as_uint8 = lambda x: quantise(x.permute(1, 2, 0).numpy(), 8)  # noqa: E731
    return {
        regime: [
            (as_uint8(p.input), as_uint8(p.target)) for p in photo_validation(held_out, config, size, count)
        ]
        for regime, config in configs.items()
    }


def score(
    methods: dict[str, Method], pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]]
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, float]]:
    """Mean PSNR/SSIM per regime and method (the input itself as 'identity'), how many pairs each method
    brings closer to the ground truth than the input is, and seconds per photo of each method."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    seconds = dict.fromkeys(methods, 0.0)
    for regime, regime_pairs_ in pairs.items():
        input_psnrs = np.array([psnr(source, truth) for source, truth in regime_pairs_])
        results[regime] = {
            "identity": summary(input_psnrs, [ssim(s, t) for s, t in regime_pairs_], input_psnrs)
        }
        for name, method in methods.items():
            start = time.perf_counter()
            outputs = [method(source) for source, _ in regime_pairs_]
            seconds[name] += time.perf_counter() - start
            psnrs = np.array(
                [psnr(out, truth) for out, (_, truth) in zip(outputs, regime_pairs_, strict=True)]
            )
            ssims = [ssim(out, truth) for out, (_, truth) in zip(outputs, regime_pairs_, strict=True)]
            results[regime][name] = summary(psnrs, ssims, input_psnrs)
    photos = sum(len(p) for p in pairs.values())
    return results, {name: total / photos for name, total in seconds.items()}


def summary(psnrs: np.ndarray, ssims: list[float], input_psnrs: np.ndarray) -> dict[str, float]:
    return {
        "psnr": float(np.mean(np.minimum(psnrs, MAX_PSNR))),
        "ssim": float(np.mean(ssims)),
        "better_than_input": int(np.sum(psnrs > input_psnrs)),
    }


def markdown(results: dict, seconds: dict[str, float], model: str, count: int, size: int) -> str:
    names = list(next(iter(results.values())))
    lines = [
        f"# Quality against the classic fixes: {model}",
        "",
        f"{count} held-out synthetic pairs per regime, long side {size} px; PSNR dB / SSIM on 8-bit RGB "
        "(mean over pairs). Best per row in bold.",
        "",
        "| regime | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for regime, by_method in results.items():
        best = max(by_method, key=lambda n: by_method[n]["psnr"])
        cells = []
        for name in names:
            cell = f"{by_method[name]['psnr']:.2f} / {by_method[name]['ssim']:.3f}"
            cells.append(f"**{cell}**" if name == best else cell)
        lines.append(f"| {regime} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Pairs where a method beats the uncorrected input's PSNR: "
        + "; ".join(
            f"{regime}: " + ", ".join(f"{n} {by[n]['better_than_input']}/{count}" for n in names[1:])
            for regime, by in results.items()
        ),
        "",
        "Seconds per photo on this machine: " + ", ".join(f"{n} {s:.3f}" for n, s in seconds.items()),
        "",
    ]
    return "\n".join(lines)


def sheet(methods: dict[str, Method], rows: list[tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
    """One row per (photo, ground truth or None): the photo and every method's result, then the ground
    truth and each panel's PSNR where there is one."""

    def panel(name: str, image: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
        caption = name if truth is None or name == "ground truth" else f"{name} {psnr(image, truth):.1f} dB"
        return draw.captioned(image, caption, SHEET_ROW_HEIGHT, 0.5)

    drawn = []
    for source, truth in rows:
        panels = [("input", source)] + [(name, method(source)) for name, method in methods.items()]
        panels += [("ground truth", truth)] if truth is not None else []
        drawn.append([panel(name, image, truth) for name, image in panels])
    return draw.grid(drawn)


def real_photos(folder: Path, size: int) -> list[np.ndarray]:
    """The JPEGs of a folder (real photos, no ground truth) as 8-bit RGB, long side at most ``size``."""
    return [
        quantise(fit_size(read_photo(path).pixels, max_side=size), 8) for path in sorted(folder.glob("*.jpg"))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="folder of well-exposed photos (searched recursively)")
    parser.add_argument("--model", default=None, help="model to score (default: the bundled one)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="long side of the pairs in pixels")
    parser.add_argument("--count", type=int, default=1000, help="at most this many photos per regime")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--strength",
        type=lambda text: text if text == "auto" else float(text),
        default=1.0,
        help="the model's correction strength: 0 to 1, or auto (the model card's calibration)",
    )
    parser.add_argument(
        "--model-colour",
        action="store_true",
        help="score the model's own colours, not its lightness in the photo's colours (recnet's default)",
    )
    parser.add_argument(
        "--sheet", type=Path, help="also write a picture of mixed-regime pairs and real photos here"
    )
    parser.add_argument("--sheet-rows", type=int, default=3, help="synthetic pairs in the picture")
    parser.add_argument(
        "--real", type=Path, default=EXAMPLE_PHOTOS, help="folder of real JPEGs for the picture (no scores)"
    )
    args = parser.parse_args()

    loaded = load_model(args.model)
    calibration = strength_calibration(loaded) if args.strength == "auto" else None
    if args.strength == "auto" and calibration is None:
        parser.error(f"{loaded.source} has no strength calibration (recnet calibrate fits one)")
    corrector = Corrector(
        loaded.model,
        pick_device(args.device),
        tile="auto",
        strength=args.strength,
        calibration=calibration,
        keep_colour=not args.model_colour,
    )
    methods = {"gamma": gamma_fix, "clahe": clahe_fix, "fusion": fusion_fix, "recnet": model_fix(corrector)}
    pairs = regime_pairs(args.photos, args.size, args.count)
    count = len(pairs["mixed"])
    results, seconds = score(methods, pairs)
    strength = args.strength if args.strength == "auto" else f"{args.strength:g}"
    name = loaded.path.stem + (f"-strength{strength}" if args.strength != 1 else "")
    name += "-modelcolour" * args.model_colour + (f"-size{args.size}" if args.size != DEFAULT_SIZE else "")
    model = loaded.source + (f", strength {strength}" if args.strength != 1 else "")
    model += ", --model-colour" * args.model_colour
    text = markdown(results, seconds, model, count, args.size)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"quality-{name}.md").write_text(text)
    report = {
        "model": loaded.source,
        "strength": args.strength,
        "keep_colour": not args.model_colour,
        "pairs_per_regime": count,
        "size": args.size,
        "results": results,
    }
    (RESULTS / f"quality-{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(text)
    if args.sheet:
        rows = pairs["mixed"][: args.sheet_rows] + [(p, None) for p in real_photos(args.real, args.size)]
        write_rgb8(args.sheet, sheet(methods, rows), quality=90)
        print(f"sheet written to {args.sheet}")


if __name__ == "__main__":
    main()
