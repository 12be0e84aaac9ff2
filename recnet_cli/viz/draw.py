"""Drawing helpers shared by the figures: colour maps, labels, colour bars, a bar chart and layout.

Everything works on H x W x 3 uint8 RGB arrays. Text is drawn by Pillow in DejaVu Sans, bundled in
``fonts/`` (its licence beside it), so figures look the same with any OpenCV (4's Hershey font knows ASCII
only, 5's no Greek) and a file name in Latin, Greek or Cyrillic script is drawn as it is spelt; a character
the font lacks (Chinese, Japanese, Korean) is drawn as a box. The colour maps are safe for the common
colour-vision deficiencies: viridis and cividis for magnitudes, and Okabe-Ito blue / white / vermillion for
signed values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from recnet_cli.wording import visible

FONT_FILE = Path(__file__).with_name("fonts") / "DejaVuSans.ttf"
# A text scale's font size in pixels: text as high and as wide as OpenCV's Hershey font drew it at that scale.
PIXELS_PER_SCALE = 28
INK = (35, 35, 35)
MUTED = (105, 105, 105)
PAPER = (255, 255, 255)
BLUE = (0, 114, 178)  # Okabe-Ito blue
VERMILLION = (213, 94, 0)  # Okabe-Ito vermillion


Colouring = Callable[[np.ndarray], np.ndarray]
Colour = tuple[int, int, int]


@cache
def font(pixels: int) -> ImageFont.FreeTypeFont:
    """The figures' font at a size in pixels, laid out by Pillow's own engine (raqm, where installed, would
    change the spacing from machine to machine)."""
    return ImageFont.truetype(FONT_FILE, pixels, layout_engine=ImageFont.Layout.BASIC)


def font_at(scale: float) -> ImageFont.FreeTypeFont:
    return font(max(1, round(scale * PIXELS_PER_SCALE)))


def drawable(text: str) -> str:
    """The text as valid UTF-8, each character that has none (a file name's undecodable byte, which Python
    keeps as a lone surrogate) a ``?``: Pillow cannot encode such a string; and on one line, its control
    characters as escapes (a file name's newline would start a second line, outside the strip)."""
    return visible(text.encode("utf-8", "replace").decode("utf-8"))


def text_size(text: str, scale: float) -> tuple[int, int]:
    """Width (to the last character's right edge) and height (the font's ascent plus descent) of a line of
    text, in pixels."""
    face = font_at(scale)
    ascent, descent = face.getmetrics()
    return face.getbbox(drawable(text), anchor="ls")[2], ascent + descent


def put_text(
    image: np.ndarray, text: str, origin: tuple[int, int], scale: float, colour: Colour = INK
) -> None:
    """Draws text with its baseline-left corner at ``origin``, smoothed into what is underneath; what falls
    outside the image is left out."""
    face, text = font_at(scale), drawable(text)
    x, y = origin
    left, top, right, bottom = face.getbbox(text, anchor="ls")
    x0, y0 = max(x + left, 0), max(y + top, 0)
    x1, y1 = min(x + right, image.shape[1]), min(y + bottom, image.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    patch = Image.fromarray(image[y0:y1, x0:x1])
    ImageDraw.Draw(patch).text((x - x0, y - y0), text, fill=colour, font=face, anchor="ls")
    image[y0:y1, x0:x1] = np.asarray(patch)


def blank(height: int, width: int) -> np.ndarray:
    """White paper of ``height`` x ``width`` pixels."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = PAPER
    return image


def line_height(scale: float) -> int:
    return round(text_size("Ag", scale)[1] * 1.45)


def text_margin(scale: float) -> int:
    """The white space around the text of ``text_lines``."""
    return round(line_height(scale) * 0.3)


def fitted_line(text: str, width: int, scale: float) -> str:
    """The line as it fits a strip ``width`` pixels wide (see ``text_lines``): a longer one keeps its start
    and its end (a file name's extension) with ``...`` for what is left out of its middle."""
    room = width - 2 * text_margin(scale)
    if text_size(text, scale)[0] <= room:
        return text
    head, tail = len(text) // 2, len(text) - len(text) // 2
    while head + tail > 0:
        if tail >= head:
            tail -= 1
        else:
            head -= 1
        line = f"{text[:head]}...{text[len(text) - tail :]}"
        if text_size(line, scale)[0] <= room:
            return line
    return "..."


def text_lines(lines: Sequence[str], width: int, scale: float, colour: Colour = INK) -> np.ndarray:
    """A white strip with one line of text per entry, left-aligned; a line too long is shortened in the
    middle (see ``fitted_line``) rather than cut at the strip's edge."""
    step, margin = line_height(scale), text_margin(scale)
    strip = blank(step * len(lines) + 2 * margin, width)
    for row, line in enumerate(lines):
        put_text(
            strip,
            fitted_line(line, width, scale),
            (margin, margin + step * (row + 1) - step // 3),
            scale,
            colour,
        )
    return strip


def titled(image: np.ndarray, title: str, scale: float) -> np.ndarray:
    """The image with a one-line caption above it; a caption wider than the image widens the panel (white
    on the image's right) rather than being cut off."""
    width = max(image.shape[1], text_size(title, scale)[0] + 2 * text_margin(scale))
    return vstack([text_lines([title], width, scale), image])


def captioned(image: np.ndarray, caption: str, height: int, scale: float) -> np.ndarray:
    """The image scaled to ``height`` pixels, with a caption above it: a panel of a grid."""
    return titled(fit_height(image, height), caption, scale)


def sequential(values: np.ndarray, top: float, colour_map: int = cv2.COLORMAP_VIRIDIS) -> np.ndarray:
    """Values from 0 to ``top`` through a perceptually uniform colour map (viridis by default)."""
    levels = np.rint(np.clip(values / max(top, 1e-12), 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, colour_map), cv2.COLOR_BGR2RGB)


def diverging(values: np.ndarray, limit: float) -> np.ndarray:
    """Signed values: blue for -limit, white for 0, vermillion for +limit."""
    t = np.clip(values / max(limit, 1e-12), -1, 1)[..., None].astype(np.float32)
    white = np.float32(255)
    end = np.where(t < 0, np.array(BLUE, np.float32), np.array(VERMILLION, np.float32))
    return np.rint(white + (end - white) * np.abs(t)).astype(np.uint8)


def colour_bar(
    colouring: Colouring, low: float, high: float, width: int, scale: float, caption: str
) -> np.ndarray:
    """A horizontal colour bar with numbered ticks at round values (``round_ticks``) and a caption
    underneath."""
    _, text_height = text_size("0", scale)
    margin = text_size("-0.000", scale)[0] // 2 + 4
    bar_height = round(text_height * 1.1)
    inner = width - 2 * margin
    ramp = np.linspace(low, high, inner, dtype=np.float32)
    strip = blank(bar_height + round(text_height * 1.8), width)
    strip[:bar_height, margin : margin + inner] = colouring(np.repeat(ramp[None], bar_height, axis=0))
    for value in round_ticks(low, high):
        x = margin + round((value - low) / (high - low) * (inner - 1)) if high > low else margin
        strip[bar_height : bar_height + 4, max(x - 1, 0) : x + 1] = INK
        label = tick_label(value)
        put_text(strip, label, (x - text_size(label, scale)[0] // 2, bar_height + text_height + 6), scale)
    return vstack([strip, text_lines([caption], width, scale, MUTED)])


def round_ticks(low: float, high: float, most: int = 7) -> list[float]:
    """At most ``most`` values from ``low`` to ``high``, a round step apart (1, 2, 2.5 or 5 times a power of
    ten), as a plot's axis is numbered: 0, 0.5, 1, 1.5, 2 rather than 0, 0.525, 1.05, 1.58, 2.1."""
    if not high > low:
        return [low]
    least_step = (high - low) / (most - 1)
    power = 10 ** math.floor(math.log10(least_step))
    step = next(factor * power for factor in (1, 2, 2.5, 5, 10) if factor * power >= least_step)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [index * step for index in range(first, last + 1)]


def tick_label(value: float) -> str:
    """A short number for a tick: three significant digits, no exponent for everyday sizes."""
    if value == 0:
        return "0"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def bar_heights(values: Sequence[float], plot_height: int) -> list[int]:
    """Bar lengths in pixels, the largest value filling ``plot_height``."""
    top = max(max(values), 1e-12)
    return [round(value / top * plot_height) for value in values]


def bar_chart(
    values: Sequence[float], labels: Sequence[str], width: int, height: int, scale: float
) -> np.ndarray:
    """Vertical bars with their values printed above and labels below, on a common baseline."""
    chart = blank(height, width)
    _, text_height = text_size("0", scale)
    top_room, bottom_room = round(text_height * 1.8), round(text_height * 1.8)
    plot_height = height - top_room - bottom_room
    baseline = height - bottom_room
    slot = width / len(values)
    bar_width = round(slot * 0.55)
    for index, (value, label, bar) in enumerate(
        zip(values, labels, bar_heights(values, plot_height), strict=True)
    ):
        centre = round(slot * (index + 0.5))
        left = centre - bar_width // 2
        chart[baseline - bar : baseline, left : left + bar_width] = BLUE
        number = f"{value:.3g}"
        put_text(chart, number, (centre - text_size(number, scale)[0] // 2, baseline - bar - 6), scale)
        put_text(chart, label, (centre - text_size(label, scale)[0] // 2, baseline + text_height + 4), scale)
    chart[baseline : baseline + 2, :] = INK
    return chart


def resize_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    shrinking = width * height < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def fit_width(image: np.ndarray, width: int) -> np.ndarray:
    return resize_to(image, width, max(1, round(image.shape[0] * width / image.shape[1])))


def fit_height(image: np.ndarray, height: int) -> np.ndarray:
    return resize_to(image, max(1, round(image.shape[1] * height / image.shape[0])), height)


def fit_box(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scaled to fit inside width x height, keeping its aspect ratio."""
    if image.shape[1] * height > image.shape[0] * width:
        return fit_width(image, width)
    return fit_height(image, height)


def pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centred on white paper of the given size."""
    canvas = blank(height, width)
    top, left = (height - image.shape[0]) // 2, (width - image.shape[1]) // 2
    canvas[top : top + image.shape[0], left : left + image.shape[1]] = image
    return canvas


def hstack(images: Sequence[np.ndarray], gap: int = 0) -> np.ndarray:
    """Side by side, top-aligned on white, ``gap`` pixels apart (``vstack`` of the transposed images)."""
    return np.ascontiguousarray(vstack([image.swapaxes(0, 1) for image in images], gap).swapaxes(0, 1))


def vstack(images: Sequence[np.ndarray], gap: int = 0) -> np.ndarray:
    """One above the other, left-aligned on white, ``gap`` pixels apart."""
    width = max(image.shape[1] for image in images)
    parts = []
    for index, image in enumerate(images):
        if index:
            parts.append(blank(gap, width))
        filler = blank(image.shape[0], width - image.shape[1])
        parts.append(np.concatenate([image, filler], axis=1))
    return np.concatenate(parts, axis=0)


def grid(rows: Sequence[Sequence[np.ndarray]], gap: int = 6) -> np.ndarray:
    """Rows of panels, each row left to right and the rows top to bottom, ``gap`` pixels apart."""
    return vstack([hstack(panels, gap) for panels in rows], gap)


def border(image: np.ndarray, width: int, colour: Colour = PAPER) -> np.ndarray:
    return cv2.copyMakeBorder(image, width, width, width, width, cv2.BORDER_CONSTANT, value=colour)
