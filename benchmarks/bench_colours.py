"""Times --keep-colour's colour transfer (the correction's lightness in the photo's colours) where recnet
runs it: on the host with OpenCV (``imaging.pixels.lightness_only``, the CPU's and tiled photos' way) and
with PyTorch on a device (``device_pixels.lightness_only``, a GPU's way for a whole image), on random
photos of the sizes given. Best of the repeats after one warm-up; on a GPU, from queueing to the end of the
work (synchronised). Writes benchmarks/results/colours-<device>.md and .json.

    python benchmarks/bench_colours.py --sizes 1,12,24
    python benchmarks/bench_colours.py --device cpu --sizes 12
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from bench_inference import add_name_option, device_description, image_shape, synchronize, write_tables

from recnet_cli import device_pixels
from recnet_cli.imaging import pixels


def best_seconds(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    """The best time of ``repeats`` runs of ``run`` after one warm-up, each run's work on ``device`` done."""
    run()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def measure(megapixels: float, device: torch.device, repeats: int) -> dict:
    """The host's and the device's time for one photo of ``megapixels``, and how far the two differ."""
    height, width = image_shape(megapixels)
    rng = np.random.default_rng(0)
    photo = rng.random((height, width, 3), dtype=np.float32)
    corrected = np.clip(photo * 1.5 + 0.05, 0, 1).astype(np.float32)
    photo_chw, corrected_chw = (torch.from_numpy(x).permute(2, 0, 1).to(device) for x in (photo, corrected))
    host = best_seconds(lambda: pixels.lightness_only(photo, corrected), torch.device("cpu"), repeats)
    on_device = best_seconds(lambda: device_pixels.lightness_only(photo_chw, corrected_chw), device, repeats)
    gap = device_pixels.lightness_only(photo_chw, corrected_chw).permute(1, 2, 0).cpu().numpy()
    gap = float(np.abs(gap - pixels.lightness_only(photo, corrected)).max())
    return {"megapixels": megapixels, "host_seconds": host, "device_seconds": on_device, "largest_gap": gap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default="1,12", help="photo sizes in megapixels, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    add_name_option(parser)
    args = parser.parse_args()
    device = torch.device(args.device)
    device_text = device_description(device)
    host_text = device_description(torch.device("cpu"))
    rows = [measure(float(size), device, args.repeats) for size in args.sizes.split(",")]
    lines = [
        f"# The colour transfer (--keep-colour) on the host and on {device_text}",
        "",
        f"torch {torch.__version__}; host: OpenCV on {host_text}; device: PyTorch. Random photos, best of "
        f"{args.repeats} after a warm-up.",
        "",
        "| photo | host (OpenCV) | device (PyTorch) | largest difference |",
        "|---|---|---|---|",
        *[
            f"| {r['megapixels']:g} MP | {r['host_seconds'] * 1000:.1f} ms "
            f"| {r['device_seconds'] * 1000:.1f} ms | {r['largest_gap']:.1e} |"
            for r in rows
        ],
    ]
    summary = {"device": device_text, "host": host_text, "torch": torch.__version__, "rows": rows}
    write_tables(args.name + "colours-", device_text, summary, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
