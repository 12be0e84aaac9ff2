"""A decoded photo, and the metadata an output of it carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recnet_cli.imaging.pixels import filled_where_hidden
from recnet_cli.imaging.text import Text
from recnet_cli.wording import in_words


@dataclass(frozen=True)
class Metadata:
    """What an output carries: EXIF (orientation 1), the ICC profile, the resolution, XMP (ratings,
    keywords, captions; orientation 1) and its extended XMP (JPEG only), the IPTC-IIM record (captions,
    credits; JPEG and TIFF only), a HEIF's nclx colour description and chroma subsampling (HEIF only), a
    PNG's colour chunks (PNG only), whether a WebP's picture is lossless (WebP only), and text (PNG text
    chunks, JPEG comments)."""

    exif: bytes | None = None
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    xmp: bytes | None = None
    iptc: bytes | None = None
    nclx: dict[str, Any] | None = None  # a HEIF's colour description where it has no ICC profile
    chroma: int | None = None  # a HEIF's chroma subsampling (420, 422, 444); None: the encoder's 4:2:0
    extended_xmp: bytes | None = None  # what the XMP packet holds past a JPEG's segment (HasExtendedXMP)
    png_colour: tuple[tuple[bytes, bytes], ...] = ()  # a PNG's cICP, sRGB, gAMA and cHRM chunks: (type, data)
    lossless: bool = False  # a WebP written lossless, as its source was
    text: Text = ()  # a PNG's text chunks or a JPEG's comments, in the output's terms (``text.text_for``)


@dataclass
class Photo:
    """A decoded photo: RGB pixels for the model plus everything needed to write it back faithfully."""

    pixels: np.ndarray  # H x W x 3 float32 RGB in [0, 1], orientation applied
    alpha: np.ndarray | None  # H x W, uint8 or uint16 like the source (uint16 for 10- or 12-bit HEIF)
    bit_depth: int  # bits per sample: 8 or 16, or 10 or 12 (HEIF)
    grayscale: bool
    exif: bytes | None  # with orientation 1 and the pixels' size; None when the source had no EXIF
    icc_profile: bytes | None
    dpi: tuple[float, float] | None
    source_format: str  # Pillow's name: "JPEG", "PNG", "TIFF", "WEBP", "BMP", "AVIF", "HEIF"
    frames: int = 1  # pages of a TIFF, frames of an animated PNG or WebP: only the first is read
    xmp: bytes | None = None  # the XMP packet, with orientation 1; None when the source had none
    extended_xmp: bytes | None = None  # a JPEG's extended XMP, which its packet names, with orientation 1
    iptc: bytes | None = None  # the IPTC-IIM record of a JPEG or TIFF (what Photo Mechanic, Bridge write)
    nclx: dict[str, Any] | None = None  # a HEIF's colour description (primaries, transfer) in place of ICC
    chroma: int | None = None  # a colour HEIF's chroma subsampling: 420, 422 (Fujifilm) or 444
    damaged_metadata: tuple[str, ...] = ()  # what could not be read ("EXIF"), and is not copied
    png_colour: tuple[tuple[bytes, bytes], ...] = ()  # a PNG's cICP, sRGB, gAMA and cHRM chunks: (type, data)
    lossless: bool = False  # a lossless WebP (its picture VP8L): a WebP written of it is lossless too
    text: Text = ()  # a PNG's text chunks (Title, Author...) or a JPEG's comments (``text.copied_text``)
    appended: tuple[str, ...] = ()  # what followed the picture in its file ("HDR gain map"), left out
    # why a CMYK photo's colours were converted without its profile ("without a colour profile")
    uncalibrated_cmyk: str | None = None
    unusable_profile: str | None = None  # why its ICC profile, left out, says nothing of its colours
    end_marker_missing: bool = False  # a JPEG read with the end marker (EOI) its file lacks put back

    @property
    def pixels_to_correct(self) -> np.ndarray:
        """``pixels``, those that the alpha channel hides entirely filled in from the visible ones around them
        (``pixels.filled_where_hidden``): what the model corrects."""
        return filled_where_hidden(self.pixels, self.alpha)

    @property
    def megapixels(self) -> float:
        return self.pixels.shape[0] * self.pixels.shape[1] / 1e6

    @property
    def unread_frames_notice(self) -> str | None:
        """What the user should know when the file holds more pictures than the one read."""
        if self.frames == 1:
            return None
        kind = "pages" if self.source_format == "TIFF" else "frames"
        return f"has {self.frames} {kind}; only the first is used"

    @property
    def damaged_metadata_notice(self) -> str | None:
        """What the user should know when some of the file's metadata was damaged and is not copied."""
        if not self.damaged_metadata:
            return None
        names = list(self.damaged_metadata)
        verb, pronoun = ("are", "them") if len(names) > 1 else ("is", "it")
        return f"its {in_words(names, 'and')} {verb} damaged: the output goes without {pronoun}"

    @property
    def unusable_profile_notice(self) -> str | None:
        """What the user should know when the file's ICC profile cannot say what its colours are."""
        if self.unusable_profile is None:
            return None
        return f"its embedded colour profile {self.unusable_profile}: the output goes without it"

    @property
    def uncalibrated_cmyk_notice(self) -> str | None:
        """What the user should know when a CMYK photo's colours were converted without its profile."""
        if self.uncalibrated_cmyk is None:
            return None
        converted = "its colours were converted to RGB uncalibrated, and may be off"
        return f"a CMYK photo {self.uncalibrated_cmyk}: {converted}"

    @property
    def end_marker_notice(self) -> str | None:
        """What the user should know when the file lacks its JPEG end marker, which it was read with."""
        if not self.end_marker_missing:
            return None
        return "it ends without its JPEG end marker: its picture is whole all the same"

    def reading_notices(self, metadata: bool = True) -> list[str]:
        """What the user should know of how the file was read: of its unread frames, of the JPEG end marker
        it lacks, of its damaged metadata and an ICC profile that says nothing of its colours (both left out
        with ``metadata=False``, for a reader that copies none) and of CMYK colours converted without their
        profile."""
        damaged = self.damaged_metadata_notice if metadata else None
        profile = self.unusable_profile_notice if metadata else None
        notices = (self.unread_frames_notice, self.end_marker_notice, damaged, profile)
        return [n for n in (*notices, self.uncalibrated_cmyk_notice) if n]
