"""ICC profiles for RGB colour spaces that files describe by their primaries instead of a profile.

A HEIF photo may carry an nclx colour description (ITU-T H.273: primaries, transfer curve) where other
files carry an ICC profile, and a PNG its gAMA and cHRM chunks (a power curve, primaries). A JPEG, PNG,
TIFF, WebP or AVIF output can only say it with a profile, so for the common cases, other primaries than
sRGB's (Display P3, BT.2020) with the sRGB curve or a power curve, this writes the small matrix/TRC profile
(ICC v4) that says the same: the primaries adapted to the D50 connection space with the Bradford transform,
and the curve as a parametric curve. A grey profile with the sRGB curve is what grey pixels are converted
to where an output cannot hold their own profile.

It also reads the colorants and tone curves of matrix/TRC profiles (``matrix_shaper``), so that colours
can be converted in floating point where Pillow's LittleCMS converts 8-bit RGB only.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence

import numpy as np

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


def d50_colorants(primaries: Sequence[tuple[float, float]], white: tuple[float, float]) -> np.ndarray:
    """A matrix profile's colorants (columns: red, green, blue) for these chromaticities, adapted to D50."""
    return bradford_adaptation(xyz_of(*white)) @ rgb_to_xyz(primaries, white)


S15_FIXED16_LIMIT = 32768  # an s15Fixed16Number holds values in (-32768.5, 32768), in steps of 1/65536


def s15_fixed16(values: Sequence[float]) -> bytes:
    return struct.pack(f">{len(values)}i", *(round(value * 65536) for value in values))


def text_tag(text: str) -> bytes:
    """A multiLocalizedUnicodeType with one English record."""
    encoded = text.encode("utf-16-be")
    return b"mluc" + struct.pack(">4xII2s2sII", 1, 12, b"en", b"US", len(encoded), 28) + encoded


def xyz_tag(xyz: Sequence[float]) -> bytes:
    return b"XYZ \0\0\0\0" + s15_fixed16(xyz)


def parametric_curve(gamma: float | None) -> bytes:
    """A parametricCurveType: Y = X^gamma (function type 0), or the sRGB curve for None (type 3)."""
    function, parameters = (3, SRGB_CURVE) if gamma is None else (0, (gamma,))
    return b"para\0\0\0\0" + struct.pack(">H2x", function) + s15_fixed16(parameters)


def matrix_profile(
    primaries: Sequence[tuple[float, float]],
    white: tuple[float, float],
    name: str,
    gamma: float | None = None,
) -> bytes:
    """An ICC v4 display profile for RGB with these chromaticities and, on each channel, the power curve
    Y = X^gamma or (None) the sRGB curve."""
    adaptation = bradford_adaptation(xyz_of(*white))
    columns = adaptation @ rgb_to_xyz(primaries, white)
    curve = parametric_curve(gamma)
    tags = [
        *_named(name),
        (b"chad", b"sf32\0\0\0\0" + s15_fixed16(adaptation.ravel())),
        (b"rXYZ", xyz_tag(columns[:, 0])),
        (b"gXYZ", xyz_tag(columns[:, 1])),
        (b"bXYZ", xyz_tag(columns[:, 2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    return _profile(b"RGB ", tags)


def grey_profile(name: str, gamma: float | None = None) -> bytes:
    """An ICC v4 display profile for grey with the power curve Y = X^gamma or (None) the sRGB curve."""
    return _profile(b"GRAY", [*_named(name), (b"kTRC", parametric_curve(gamma))])


def _named(name: str) -> list[tuple[bytes, bytes]]:
    """The tags every profile here starts with: its name, its (lack of) copyright and its white, D50."""
    return [
        (b"desc", text_tag(name)),
        (b"cprt", text_tag("No copyright, use freely")),
        (b"wtpt", xyz_tag(D50)),
    ]


def _profile(colour_space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """An ICC v4 display profile of ``colour_space`` (b"RGB ", b"GRAY") with these (signature, data) tags."""
    offset = HEADER_SIZE + 4 + 12 * len(tags)
    table, data = [struct.pack(">I", len(tags))], []
    for signature, payload in tags:
        padded = payload + b"\0" * (-len(payload) % 4)
        table.append(signature + struct.pack(">II", offset, len(payload)))
        data.append(padded)
        offset += len(padded)
    header = struct.pack(">I4sI4s4s4s", offset, b"\0" * 4, 0x04300000, b"mntr", colour_space, b"XYZ ")
    header += struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 24
    header += struct.pack(">I", 0) + s15_fixed16(D50)
    header += b"\0" * (HEADER_SIZE - len(header))
    return header + b"".join(table) + b"".join(data)


def colour_space(profile: bytes) -> bytes:
    """The colour space an ICC profile's header names for its data: b"RGB ", b"GRAY", b"CMYK"..."""
    return profile[16:20]


_SPACE_NAMES = {b"GRAY": "grey", b"RGB ": "RGB", b"CMYK": "CMYK", b"Lab ": "Lab", b"XYZ ": "XYZ"}


def unusable_for(profile: bytes, grayscale: bool) -> str | None:
    """Why an embedded ICC profile cannot say what a photo's colours (grey, or RGB) are: it is no ICC
    profile at all (no ``acsp`` signature), or one of another colour space; None when it can."""
    if len(profile) < HEADER_SIZE or profile[36:40] != b"acsp":
        return "is not an ICC profile"
    space, own = colour_space(profile), b"GRAY" if grayscale else b"RGB "
    if space == own:
        return None
    name = _SPACE_NAMES.get(space, space.decode("latin-1").strip() or "unnamed")
    return f"is one for {name} colours, not the photo's {_SPACE_NAMES[own]}"


def read_tags(profile: bytes) -> dict[bytes, bytes]:
    """An ICC profile's tags by signature (b"rXYZ"), each its data from its type signature on; struct.error
    or ValueError for a tag table that does not fit in the profile."""
    (count,) = struct.unpack_from(">I", profile, HEADER_SIZE)
    tags = {}
    for at in range(HEADER_SIZE + 4, HEADER_SIZE + 4 + 12 * count, 12):
        signature, offset, size = struct.unpack_from(">4sII", profile, at)
        if offset + size > len(profile):
            raise ValueError(f"its {signature!r} tag ends past the profile")
        tags[signature] = profile[offset : offset + size]
    return tags


def _parametric(parameters: tuple[float, ...], values: np.ndarray) -> np.ndarray:
    """A parametric curve of ICC function type 4, Y = (aX + b)^g + e for X >= d, else cX + f, which holds
    the others (``parameters``: g, a, b, c, d, e, f)."""
    g, a, b, c, d, e, f = parameters
    return np.where(values >= d, np.maximum(a * values + b, 0) ** g + e, c * values + f)


def _sampled(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.interp(values, np.linspace(0, 1, len(table)), table).astype(values.dtype)


def _identity(values: np.ndarray) -> np.ndarray:
    return values


_PARAMETERS = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}  # how many parameters each parametric curve type has


def tone_curve(tag: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """What a curveType tag (a gamma, or a table) or parametricCurveType tag does to values in [0, 1];
    ValueError for a tag of another type."""
    if tag[:4] == b"curv":
        (count,) = struct.unpack_from(">I", tag, 8)
        if count == 0:
            return _identity
        if count == 1:  # a gamma, u8Fixed8Number
            return functools.partial(
                _parametric, (struct.unpack_from(">H", tag, 12)[0] / 256, 1, 0, 0, 0, 0, 0)
            )
        return functools.partial(_sampled, np.frombuffer(tag, ">u2", count, 12) / 65535)
    if tag[:4] == b"para":
        (function,) = struct.unpack_from(">H", tag, 8)
        if function not in _PARAMETERS:
            raise ValueError(f"unknown parametric curve type {function}")
        given = [value / 65536 for value in struct.unpack_from(f">{_PARAMETERS[function]}i", tag, 12)]
        if function == 0:
            parameters = (given[0], 1, 0, 0, 0, 0, 0)
        elif function in (1, 2):  # from X = -b/a on; below it Y is 0 (type 1) or c (type 2)
            g, a, b, *c = given
            floor = c[0] if c else 0.0
            parameters = (g, a, b, 0, -b / a, floor, floor)
        else:  # type 3 has no e and f
            parameters = (*given, 0, 0)[:7]
        return functools.partial(_parametric, parameters)
    raise ValueError(f"a tone curve of type {tag[:4]!r}")


MatrixShaper = tuple[np.ndarray | None, list[Callable[[np.ndarray], np.ndarray]]]


def matrix_shaper(profile: bytes) -> MatrixShaper | None:
    """The colorants (a 3 x 3 matrix from linear RGB to D50 XYZ, by column) and tone curves of an RGB
    matrix/TRC profile (Adobe RGB, Display P3, those made here), or the tone curve of a grey one (no
    colorants, None); None for other profiles (those with lookup tables, which LittleCMS prefers where a
    profile has both) and those that cannot be read."""
    try:
        tags = read_tags(profile)
        if any(signature[:3] in (b"A2B", b"D2B") for signature in tags):
            return None
        if colour_space(profile) == b"GRAY":
            return None, [tone_curve(tags[b"kTRC"])]
        colorants = [
            np.array(struct.unpack_from(">3i", tags[s], 8)) / 65536 for s in (b"rXYZ", b"gXYZ", b"bXYZ")
        ]
        return np.stack(colorants, axis=1), [tone_curve(tags[s]) for s in (b"rTRC", b"gTRC", b"bTRC")]
    except (KeyError, ValueError, ZeroDivisionError, struct.error):
        return None
