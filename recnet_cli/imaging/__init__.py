"""Reading and writing photos with their metadata: the file-system edge of recnet.

JPEG, PNG, TIFF, WebP and BMP always; AVIF where Pillow was built with it (its wheels are); HEIF (.heic,
.heif, .hif: iPhones, Fujifilm cameras) where the optional pillow-heif is installed (``pip install
pillow-heif``), whose Pillow plugin recnet registers on first use.

The model sees float32 RGB in [0, 1]. Everything else a photographer cares about travels beside the pixels and
is written back: bit depth (16-bit PNG/TIFF stay 16-bit; 10- and 12-bit HEIF are written as 10-bit HEIF or
16-bit PNG/TIFF), a HEIF's chroma subsampling (Fujifilm's 4:2:2 stays 4:2:2), a lossless WebP's losslessness,
alpha (kept, at the output's depth), EXIF (orientation applied to the pixels on read, written as 1 in place:
the rest of the block, maker notes included, is kept byte for byte, but for the link to the thumbnail of the
uncorrected photo), the ICC profile (or a HEIF's nclx colour description, or a PNG's gAMA, cHRM, sRGB and cICP
chunks: as they are to outputs in their own format, as an ICC profile to others where one can say it; where an
output cannot hold the profile, BMP, the colours are converted to sRGB), the DPI and the XMP packet (ratings,
keywords, captions; its orientation written as 1 too), with the extended XMP that a JPEG's packet names (what
did not fit in its 64 KB segment) to JPEG outputs.

Grayscale photos stay grayscale: the model sees the grey replicated to RGB and the corrected result is
written as grey again (ITU-R 601 luma, as Pillow's "L" conversion), except where a grey mode is missing
or few readers open it (``colour.no_grey_mode``): WebP, AVIF with transparency, a 16-bit TIFF with
transparency. Palette and CMYK photos are written as RGB. A CMYK photo's colours (a print workflow's JPEG
or TIFF) are converted to sRGB through its ICC profile (U.S. Web Coated SWOP, Coated FOGRA39...) by
LittleCMS as it is read, so the model sees the colours the print shows, and the output is sRGB; one
without a profile, or with one LittleCMS cannot use, gets Pillow's plain conversion (R = 255 - C - K...),
uncalibrated, with a note (``Photo.uncalibrated_cmyk_notice``). 16-bit CMYK TIFFs are refused.

The modules: ``read`` and ``write``; ``photo`` (a decoded photo, what an output carries); ``formats`` (what
recnet reads and writes, by extension and signature, and what each format holds); ``pixels`` (codes to floats
and back); ``colour`` (ICC profiles, nclx and PNG colour chunks, sRGB and CMYK conversion); ``metadata``
(EXIF, XMP, IPTC-IIM, resolution); ``notices`` (what an output loses); ``arrow`` (decoded samples out of
Pillow's memory); ``errors``. What the rest of recnet uses is here, in ``__all__``. Importing the package
silences OpenCV's log and Pillow's warnings for the process (below), lets Pillow open pictures of any size
where the memory it may use is known (``read.USABLE_MEMORY``), and has it hold each in one block of memory
(``arrow.SINGLE_BLOCK_BYTES``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import warnings

import cv2

from recnet_cli.imaging.colour import (
    colour_loss_notice,
    hdr_curve,
    nclx_icc_profile,
    shown_in_srgb,
    srgb_conversion,
)
from recnet_cli.imaging.errors import (
    FREE_MEMORY_ADVICE,
    ImageReadError,
    ImageWriteError,
    OutputExistsError,
    PhotoFileError,
    faults_fail_alone,
    out_of_host_memory,
)
from recnet_cli.imaging.formats import (
    ALPHA_FORMATS,
    AVIF_SUPPORTED,
    FORMAT_NAMES,
    HEIF_EXTENSIONS,
    HEIF_SUPPORTED,
    IMAGE_EXTENSIONS,
    OUTPUT_CHOICES,
    OUTPUT_EXTENSIONS,
    QUALITY_FORMATS,
    READABLE,
    conversion_needed,
    conversion_remedy,
    enable_heif,
    format_for,
    has_supported_signature,
    install_hint,
    names_unsupported_image,
    size_problem,
)
from recnet_cli.imaging.notices import (
    alpha_loss_notice,
    depth_loss_notice,
    extended_xmp_loss_notice,
    metadata_loss_notice,
    output_notices,
)
from recnet_cli.imaging.photo import Photo
from recnet_cli.imaging.pixels import BT601_LUMA, fit_size
from recnet_cli.imaging.read import check_pixels_fit, header_megapixels, header_size, read_photo
from recnet_cli.imaging.write import (
    atomic_output,
    check_output_size,
    kept_from_overwrite,
    mark_written,
    write_photo,
    write_png16,
    write_rgb8,
    written_by_recnet,
)

__all__ = [
    "ALPHA_FORMATS",
    "AVIF_SUPPORTED",
    "BT601_LUMA",
    "FORMAT_NAMES",
    "FREE_MEMORY_ADVICE",
    "HEIF_EXTENSIONS",
    "HEIF_SUPPORTED",
    "IMAGE_EXTENSIONS",
    "OUTPUT_CHOICES",
    "OUTPUT_EXTENSIONS",
    "QUALITY_FORMATS",
    "READABLE",
    "ImageReadError",
    "ImageWriteError",
    "OutputExistsError",
    "Photo",
    "PhotoFileError",
    "alpha_loss_notice",
    "atomic_output",
    "check_output_size",
    "check_pixels_fit",
    "colour_loss_notice",
    "conversion_needed",
    "conversion_remedy",
    "depth_loss_notice",
    "enable_heif",
    "extended_xmp_loss_notice",
    "faults_fail_alone",
    "fit_size",
    "format_for",
    "has_supported_signature",
    "hdr_curve",
    "header_megapixels",
    "header_size",
    "install_hint",
    "kept_from_overwrite",
    "mark_written",
    "metadata_loss_notice",
    "names_unsupported_image",
    "nclx_icc_profile",
    "out_of_host_memory",
    "output_notices",
    "read_photo",
    "shown_in_srgb",
    "size_problem",
    "srgb_conversion",
    "write_photo",
    "write_png16",
    "write_rgb8",
    "written_by_recnet",
]

# OpenCV logs what it makes of damaged files to stderr ("readHeader IHDR chunk shall be first"); recnet
# says in one line of its own which file is damaged and why. OpenCV 5 sets the level in cv2.utils.logging,
# OpenCV 4 in cv2.setLogLevel (0: silent).
if hasattr(cv2.utils, "logging"):
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
else:
    cv2.setLogLevel(0)


def silence_libtiff_errors() -> None:
    """Stops the libtiff that Pillow loaded from writing its errors on a damaged TIFF to stderr
    ("LZWDecode: Not enough data at scanline 0", "Using code not yet in table"): Pillow silences its
    warnings, not its errors, and recnet says in one line of its own which file is damaged. Found in the
    process's memory map (Pillow's C module, which the modules above import, loads it), so on Linux; elsewhere
    the lines stay."""
    with contextlib.suppress(OSError), open("/proc/self/maps", "rb") as maps:  # bytes: any file's name
        mapped = {os.fsdecode(parts[5].strip()) for line in maps if len(parts := line.split(maxsplit=5)) == 6}
        for library in (path for path in mapped if os.path.basename(path).startswith("libtiff")):
            with contextlib.suppress(OSError, AttributeError):  # not loadable again, or not libtiff's
                ctypes.CDLL(library).TIFFSetErrorHandler(None)


silence_libtiff_errors()
# Pillow warns about images between MAX_IMAGE_PIXELS and twice that (above, it raises) and about damaged
# metadata; neither may stop or clutter a batch. The filter is set once for the process: a
# ``catch_warnings`` around each read is not thread-safe, and a GPU batch reads several photos at once
# (threads leaving it out of order left "ignore all warnings" behind for the whole process).
warnings.filterwarnings("ignore", module=r"PIL\.")
