"""What the user should know of what an output loses of its photo: the colours' profile or description,
metadata (an IPTC record that XMP does not mirror too), extended XMP, text, transparency, bit depth."""

from __future__ import annotations

from rich.filesize import decimal

from recnet_cli.imaging.colour import colour_loss_notice
from recnet_cli.imaging.formats import ALPHA_FORMATS, FORMAT_NAMES, METADATA_FORMATS, written_bits
from recnet_cli.imaging.metadata import exif_holds_resolution, iptc_left_out_of_xmp, left_out, metadata_blocks
from recnet_cli.imaging.photo import Photo
from recnet_cli.imaging.pixels import shows_through
from recnet_cli.imaging.text import COMMENT_KEYWORD, text_for
from recnet_cli.wording import in_words


def metadata_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What the user should know of the metadata an output in ``output_format`` goes without; None when
    all of it goes."""
    names = left_out(photo, output_format)
    if output_format == "JPEG" and "EXIF" not in names and exif_holds_resolution(photo.exif, photo.dpi):
        names = [name for name in names if name != "resolution"]
    if not names:
        return None
    sizes = {name: decimal(len(block)) for name, block in metadata_blocks(photo).items() if block}
    sizes["resolution"] = f"{max(photo.dpi or (0,)):,.0f} dpi"
    what = in_words([f"{name} ({sizes[name]})" for name in names], "and")
    them = "them" if len(names) > 1 else "it"
    keeper = "TIFF" if {"resolution", "IPTC record"} & set(names) else "PNG or TIFF"  # PNG holds neither
    return f"its {what} cannot go into {FORMAT_NAMES[output_format][0]}: left out; {keeper} keeps {them}"


def extended_xmp_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What the user should know when an output in ``output_format`` goes without the photo's extended XMP,
    which recnet copies to JPEG outputs only: other formats hold one XMP packet, and merging the two is an
    XMP toolkit's job; None otherwise."""
    if photo.extended_xmp is None or output_format not in METADATA_FORMATS - {"JPEG"}:
        return None
    size = decimal(len(photo.extended_xmp))
    return (
        f"its extended XMP ({size}, what did not fit in the JPEG's XMP segment) is left out of "
        f"{FORMAT_NAMES[output_format][0]}; a JPEG output keeps it"
    )


def iptc_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What the user should know when an output in ``output_format`` (PNG, WebP, AVIF, HEIF: no place for
    IPTC-IIM) goes without what the photo's IPTC record holds and its XMP does not mirror; None otherwise
    (tools that write both, as Lightroom and Photo Mechanic do, lose nothing)."""
    if output_format not in METADATA_FORMATS - {"JPEG", "TIFF"}:
        return None
    if not (names := iptc_left_out_of_xmp(photo.iptc, photo.xmp)):
        return None
    them = "them" if len(names) > 1 else "it"
    return (
        f"its IPTC record's {in_words(names, 'and')} cannot go into {FORMAT_NAMES[output_format][0]}, and "
        f"its XMP does not hold {them}: left out; JPEG or TIFF keeps {them}"
    )


def text_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What the user should know when an output in ``output_format`` goes without some of the photo's text
    (a PNG's Title or Author, a JPEG's comment): PNG holds all of it, JPEG comments only; None otherwise."""
    _, left = text_for(photo.text, output_format)
    if not left:
        return None
    them = "them" if len(left) > 1 else "it"
    # a JPEG holds comments, but not one it has just left out (too long for a segment, or not text)
    keeper = "JPEG or PNG" if set(left) == {COMMENT_KEYWORD} and output_format != "JPEG" else "PNG"
    if photo.source_format == "PNG":
        what = f"PNG text {in_words(list(dict.fromkeys(left)), 'and')}"
    else:
        what = "comment" if len(left) == 1 else f"{len(left)} comments"
    return f"its {what} cannot go into {FORMAT_NAMES[output_format][0]}: left out; {keeper} keeps {them}"


def appended_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What the user should know when the photo's file held more than its picture (an HDR gain map, a
    motion photo's video), which an output in any format goes without; None otherwise."""
    if not photo.appended:
        return None
    what, verb = in_words(list(photo.appended), "and"), "are" if len(photo.appended) > 1 else "is"
    return f"its {what} {verb} left out: the output holds the corrected picture alone"


def alpha_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What the user should know when an output in ``output_format`` goes without the photo's transparency;
    None when it keeps it, or when there is none to see (an alpha channel opaque all over, as many programs
    write, loses nothing: ``shows_through``)."""
    if output_format in ALPHA_FORMATS or not shows_through(photo.alpha):
        return None
    return (
        f"its transparency (alpha channel) cannot go into {FORMAT_NAMES[output_format][0]}: left out, so "
        "the colours under its transparent areas show; PNG or TIFF keeps it"
    )


def depth_loss_notice(photo: Photo, output_format: str) -> str | None:
    """What the user should know when an output in ``output_format`` holds fewer bits per sample than the
    photo (a 16-bit TIFF as JPEG, a 12-bit HEIF as HEIF); None when it holds them all."""
    bits = written_bits(photo.bit_depth, output_format)
    if bits >= photo.bit_depth:
        return None
    return (
        f"its {photo.bit_depth}-bit samples are written at {bits} bits in {FORMAT_NAMES[output_format][0]}; "
        f"PNG or TIFF keeps all {photo.bit_depth}"
    )


def output_notices(photo: Photo, output_format: str) -> list[str]:
    """What the user should know of what an output in ``output_format`` loses of the photo: its colours'
    profile or description, metadata, extended XMP, text, transparency and bit depth."""
    describers = (
        colour_loss_notice,
        metadata_loss_notice,
        iptc_loss_notice,
        extended_xmp_loss_notice,
        text_loss_notice,
        appended_loss_notice,
        alpha_loss_notice,
        depth_loss_notice,
    )
    return [notice for describe in describers if (notice := describe(photo, output_format))]
