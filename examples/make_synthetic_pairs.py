"""Writes the held-out synthetic validation pairs of a photo folder to disk, for `recnet eval`.

The pairs are those `recnet train --photos FOLDER` validates on with the default `--regimes` (same
hold-out split, same fixed degradation seed), so `recnet eval --inputs OUT/input --targets OUT/gt` scores
any model on them; at `--size 512`, the size training validates at, they are the very pairs it
validates on (its first 24, where 24 or more are held out), written at 8 bits: `eval --strength 1
--model-colour`, as training scores it, then gives the run's validation scores up to that rounding.

    python examples/make_synthetic_pairs.py ../shared/data/photos local/val --size 768
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recnet_cli.imaging import write_rgb8
from recnet_cli.imaging.pixels import quantise
from recnet_cli.train.data import photo_validation, split_photos
from recnet_cli.train.synthesis import DegradationConfig
from recnet_cli.wording import counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="folder of well-exposed photos (searched recursively)")
    parser.add_argument("out", type=Path, help="writes OUT/input/<name>.png and OUT/gt/<name>.png")
    parser.add_argument("--size", type=int, default=768, help="long side of the pairs in pixels")
    parser.add_argument("--count", type=int, default=1000, help="at most this many pairs")
    args = parser.parse_args()

    _, held_out = split_photos(args.photos)
    pairs = photo_validation(held_out, DegradationConfig(), args.size, args.count)
    for kind in ("input", "gt"):
        (args.out / kind).mkdir(parents=True, exist_ok=True)
    for path, pair in zip(held_out, pairs, strict=False):
        name = "-".join(path.relative_to(args.photos).with_suffix("").parts)  # stems repeat across folders
        for kind, image in (("input", pair.input), ("gt", pair.target)):
            # data, not recnet's outputs: unmarked, so that correct and calibrate do not pass them over
            write_rgb8(
                args.out / kind / f"{name}.png", quantise(image.permute(1, 2, 0).numpy(), 8), marked=False
            )
    print(f"wrote {counted(len(pairs), 'pair')} to {args.out}")


if __name__ == "__main__":
    main()
