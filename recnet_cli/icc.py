"""ICC profiles for RGB colour spaces that files describe by their primaries instead of a profile.

A HEIF photo may carry an nclx colour description (ITU-T H.273: primaries, transfer curve) where other
files carry an ICC profile. A JPEG, PNG, TIFF, WebP or AVIF output can only say it with a profile, so for
the common case, other primaries than sRGB's (Display P3, BT.2020) with the sRGB curve, this writes the
small matrix/TRC profile (ICC v4) that says the same: the primaries adapted to the D50 connection space
with the Bradford transform, and the sRGB curve as a parametric curve.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

SRGB_TRANSFER = 13  # H.273 transfer characteristics: the sRGB curve (IEC 61966-2-1)
D50 = np.array([0.9642, 1.0, 0.8249])  # the ICC profile connection space's white
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
# The sRGB curve as ICC parametric curve type 3: Y = (aX + b)^g for X >= d, else cX.
SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
HEADER_SIZE = 128


def xyz_of(x: float, y: float) -> np.ndarray:
    """The XYZ of a chromaticity at luminance Y = 1."""
    return np.array([x / y, 1.0, (1 - x - y) / y])


def rgb_to_xyz(primaries: Sequence[tuple[float, float]], white: tuple[float, float]) -> np.ndarray:
    """The 3 x 3 matrix from linear RGB to XYZ for red, green and blue chromaticities and a white point."""
    columns = np.stack([xyz_of(*primary) for primary in primaries], axis=1)
    return columns * np.linalg.solve(columns, xyz_of(*white))


def bradford_adaptation(white: np.ndarray) -> np.ndarray:
    """The 3 x 3 matrix that carries XYZ colours seen under ``white`` to how they look under D50."""
    gains = (BRADFORD @ D50) / (BRADFORD @ white)
    return np.linalg.inv(BRADFORD) @ np.diag(gains) @ BRADFORD


def s15_fixed16(values: Sequence[float]) -> bytes:
    return struct.pack(f">{len(values)}i", *(round(value * 65536) for value in values))


def text_tag(text: str) -> bytes:
    """A multiLocalizedUnicodeType with one English record."""
    encoded = text.encode("utf-16-be")
    return b"mluc" + struct.pack(">4xII2s2sII", 1, 12, b"en", b"US", len(encoded), 28) + encoded


def xyz_tag(xyz: Sequence[float]) -> bytes:
    return b"XYZ \0\0\0\0" + s15_fixed16(xyz)


def matrix_profile(primaries: Sequence[tuple[float, float]], white: tuple[float, float], name: str) -> bytes:
    """An ICC v4 display profile for RGB with these chromaticities and the sRGB curve on each channel."""
    adaptation = bradford_adaptation(xyz_of(*white))
    columns = adaptation @ rgb_to_xyz(primaries, white)
    curve = b"para\0\0\0\0" + struct.pack(">H2x", 3) + s15_fixed16(SRGB_CURVE)
    tags = [
        (b"desc", text_tag(name)),
        (b"cprt", text_tag("No copyright, use freely")),
        (b"wtpt", xyz_tag(D50)),
        (b"chad", b"sf32\0\0\0\0" + s15_fixed16(adaptation.ravel())),
        (b"rXYZ", xyz_tag(columns[:, 0])),
        (b"gXYZ", xyz_tag(columns[:, 1])),
        (b"bXYZ", xyz_tag(columns[:, 2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = HEADER_SIZE + 4 + 12 * len(tags)
    table, data = [struct.pack(">I", len(tags))], []
    for signature, payload in tags:
        padded = payload + b"\0" * (-len(payload) % 4)
        table.append(signature + struct.pack(">II", offset, len(payload)))
        data.append(padded)
        offset += len(padded)
    header = struct.pack(">I4sI4s4s4s", offset, b"\0" * 4, 0x04300000, b"mntr", b"RGB ", b"XYZ ")
    header += struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 24
    header += struct.pack(">I", 0) + s15_fixed16(D50)
    header += b"\0" * (HEADER_SIZE - len(header))
    return header + b"".join(table) + b"".join(data)
