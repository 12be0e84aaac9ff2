"""Reading weight files: this project's .safetensors and PyTorch checkpoints (the authors' .pth/.pt, a
Lightning .ckpt, the Hub's .bin, an older .pth.tar), safely. The architecture is read from the state dict's
shapes and key names, as spandrel does; the weights load strictly."""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from PIL import Image
from safetensors import SafetensorError, safe_open

from recnet_cli.files import describe_os_error, first_line
from recnet_cli.weights.errors import WeightsError
from recnet_cli.wording import listed, plural

# PyTorch takes 1.5 s to import on 2 CPU cores: resolving, downloading and listing models do without it, and
# the functions that build or read tensors import it when called.
if TYPE_CHECKING:
    from torch import Tensor

    from recnet_cli.model import RECNet


# The model files recnet reads, by their names' ends: ``.bin`` as the Hub names PyTorch's (pytorch_model.bin),
# ``.pth.tar`` as older research code named its checkpoints
MODEL_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin", ".pth.tar")


def model_suffix(path: PurePath) -> str:
    """A file's type as ``MODEL_SUFFIXES`` name them: its suffix, lowercased, or ``.pth.tar`` whole."""
    last_two = "".join(path.suffixes[-2:]).lower()
    return last_two if last_two == ".pth.tar" else path.suffix.lower()


def is_model_file_name(path: PurePath) -> bool:
    """Whether a file's name ends as the model files recnet reads do (``MODEL_SUFFIXES``)."""
    return model_suffix(path) in MODEL_SUFFIXES


def model_stem(path: PurePath) -> str:
    """A model file's name without its type (``model_suffix``): ``run`` of ``run.pth.tar``."""
    return path.name[: len(path.name) - len(model_suffix(path))]


# Checkpoints may wrap the state dict, beside an optimizer's state or an epoch: the EMA weights win when both
# are present (BasicSR style), then the keys common training scripts save it under (as spandrel unwraps).
CHECKPOINT_WRAPPERS = ("params_ema", "params-ema", "params", "model_state_dict", "state_dict", "model", "net")


# A `recnet train` checkpoint (train/loop.py) holds the model's tensors under model., beside the optimizer's
# and the RNG states; its metadata is the run's state, not a model card (nor is a checkpoint.json beside it).
TRAINING_CHECKPOINT_KEY = "model.extract.weight"


FIRST_LAYER_KEY = "extract.weight"  # the network's first layer: where it is, its names are
BLOCK_KEY = re.compile(r"dualprocess\.conv(\d+)\.")
CAT_KEY = "dualprocess.cat.weight"  # the 1x1 convolution that joins the blocks: blocks x channels in


# torch.save writes a zip archive; before PyTorch 1.6 it wrote a pickle, which starts with its protocol (2-5)
ZIP_SIGNATURE = b"PK\x03\x04"


PICKLE_SIGNATURE = re.compile(rb"\x80[\x02-\x05]")


SAFETENSORS_HEADER_LIMIT = 100_000_000  # bytes; the format's own limit


LEGACY_PICKLES = 4  # such a pickled file: magic number, protocol, system information, the object; then data
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER: such a file's first pickle


# The tensor whose name marks RECNet weights: bare, after DataParallel's module. or in a training checkpoint
RECNET_KEY = re.compile(r"(?:(?:module|_orig_mod|model)\.)*extract\.weight")
# What wrappers put before a model's tensor names: DataParallel's, torch.compile's (see ``bare_names``)
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


# What PyTorch's safe unpickler names when a pickle wants more than tensors: "GLOBAL __main__.Net was not an
# allowed global", or for a module it blocks outright "unsupported GLOBAL posix.system whose module posix is
# blocked"
UNSAFE_GLOBAL = re.compile(r"GLOBAL (\S+) (?:was not an allowed global|whose module \S+ is blocked)")


WHAT_RECNET_READS = "recnet reads .safetensors, or a .pth/.pt/.ckpt/.bin/.pth.tar state dict"
# Why a checkpoint whose end is missing (a zip archive without its directory, a pickle that stops) fails.
CUT_SHORT = "its end is missing; copy or download it again"


def load_weights(path: Path, label: str) -> RECNet:
    """A RECNet built from the file's own shapes, loaded strictly; errors start with ``label``."""
    import torch

    from recnet_cli.model import RECNet

    state_dict = read_state_dict(path, label)
    channels, blocks = infer_architecture(state_dict, label)
    with torch.device("meta"):  # the shapes it needs, checked before a byte is allocated for them
        check_state_dict(RECNet(channels, blocks).state_dict(), state_dict, label)
    check_dtypes(state_dict, label)
    check_dense(state_dict, label)
    check_finite(state_dict, label)
    model = RECNet(channels, blocks)
    model.load_state_dict(state_dict)
    return model.eval()


def read_state_dict(path: Path, label: str) -> dict[str, Tensor]:
    """The model's tensors in the file: taken out of a checkpoint's wrapper (``params_ema``, ``state_dict``)
    or a training checkpoint (without the optimizer's), and without the prefixes wrappers add to their
    names (``bare_names``)."""
    suffix = model_suffix(path)
    if suffix == ".safetensors":
        tensors = training_checkpoint_model(read_safetensors(path, label))
    elif suffix in MODEL_SUFFIXES:
        tensors = unwrap_checkpoint(read_checkpoint(path, label), label)
    else:
        raise WeightsError(f"{label}: {unknown_file_type(suffix)}")
    return bare_names(tensors)


def bare_names(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The tensors without the prefixes wrappers add to their names: DataParallel's ``module.`` and
    torch.compile's ``_orig_mod.`` (any number of them), and a Lightning module's ``model.``, where every
    name has it or the network's first layer is found only under it: then the names without it are the
    module's other parts (its loss's network, say), left out."""

    def bare(name: str) -> str:
        while name.startswith(WRAPPER_PREFIXES):
            name = name.partition(".")[2]
        return name

    tensors = {bare(name): tensor for name, tensor in tensors.items()}
    under = {name[len("model.") :]: value for name, value in tensors.items() if name.startswith("model.")}
    # the network under model., beside the module's other parts
    beside = FIRST_LAYER_KEY not in tensors and FIRST_LAYER_KEY in map(bare, under)
    if under and (len(under) == len(tensors) or beside):
        return bare_names(under)
    return tensors


def is_safetensors(path: Path) -> bool:
    """Whether ``path`` names a safetensors file, the only kind with a card (``MODEL.SAFETENSORS`` too)."""
    return path.suffix.lower() == ".safetensors"


def unknown_file_type(suffix: str) -> str:
    return f"unknown model file type {suffix!r} (expected {', '.join(MODEL_SUFFIXES)})"


@contextlib.contextmanager
def open_safetensors(path: Path, framework: str) -> Iterator[Any]:
    """safetensors' ``safe_open``, which takes only names that are valid UTF-8: a file named otherwise (a
    Latin-1 ``caf\\xe9.safetensors``) is opened through its /proc/self/fd entry where the system has one."""
    if is_utf8(path) or not os.path.isdir("/proc/self/fd"):
        with safe_open(path, framework=framework) as file:
            yield file
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        with safe_open(f"/proc/self/fd/{descriptor}", framework=framework) as file:
            yield file
    finally:
        os.close(descriptor)


def is_utf8(path: Path) -> bool:
    """Whether a file's name is valid UTF-8 (on Linux, names are bytes: a Latin-1 one is not)."""
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_safetensors(path: Path, label: str) -> dict[str, Tensor]:
    check_readable(path, label)
    try:
        with open_safetensors(path, "pt") as file:
            return {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118 (not a dict)
    except SafetensorError as error:
        raise WeightsError(f"{label}: {safetensors_problem(path, error)}") from error


def safetensors_problem(path: Path, error: Exception) -> str:
    """Why a ``.safetensors`` file does not load, said as what the file is where its first bytes tell
    (``foreign_file``; a PyTorch checkpoint under that name), or as cut short where its header says it
    should be longer."""
    size = path.stat().st_size
    if size == 0:
        return "empty file"
    if not_weights := foreign_file(path):
        return not_weights
    with path.open("rb") as file:
        head = file.read(8)
    if head.startswith(ZIP_SIGNATURE) or PICKLE_SIGNATURE.match(head):
        return f"a PyTorch checkpoint (torch.save), not a safetensors file: rename it {model_stem(path)}.pth"
    length = int.from_bytes(head, "little")
    if len(head) < 8 or (length <= SAFETENSORS_HEADER_LIMIT and 8 + length > size):  # cut in its header
        return f"cut short or damaged: {CUT_SHORT}"
    with contextlib.suppress(Exception):  # no readable header: safetensors' own words
        if safetensors_data_end(path) > size:
            return f"cut short or damaged: {CUT_SHORT}"
    return f"not a valid safetensors file ({first_line(error)})"


def foreign_file(path: Path) -> str | None:
    """What a file that should hold weights holds instead, where its first bytes tell: a Git LFS pointer
    (a clone without git-lfs), a web page (the Hub's page of the file, not the file, or a server's error
    page), an image, an archive to unpack, or other text (a model card, an error message); None otherwise."""
    with path.open("rb") as file:
        head = file.read(512)
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()  # a UTF-8 byte order mark, and blank lines
    if text.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the weights: fetch them (git lfs pull in the clone)"
    if text.startswith(b"<"):  # HTML, or a server's XML error
        return (
            "a web page, not the weights (the page that shows the file, or a server's error? download the "
            "file itself: on the Hub, its resolve/ address, not blob/)"
        )
    if head.startswith(b"\x1f\x8b") or (head.startswith(ZIP_SIGNATURE) and not is_pytorch_zip(path)):
        return "an archive, not the weights: unpack it"
    with contextlib.suppress(Exception), Image.open(path) as image:  # Pillow raises more than OSError
        return f"a {image.format} image, not weights"
    if b"\0" not in head and (line := printable_line(head)):
        return f'a text file, not weights (it begins "{line}")'
    return None


def is_pytorch_zip(path: Path) -> bool:
    """Whether a zip archive is ``torch.save``'s (``pytorch_archive``)."""
    return pytorch_archive(zip_member_names(path))


def pytorch_archive(members: set[str] | None) -> bool:
    """Whether a zip archive of these ``members`` (``zip_member_names``) is ``torch.save``'s, or
    ``torch.jit.save``'s: its pickle, ``data.pkl``, in its one folder. A damaged archive counts: torch.load
    says how it is damaged."""
    return members is None or "data.pkl" in members


def zip_member_names(file: Path | BinaryIO) -> set[str] | None:
    """The names of the files in a zip archive, without their folders; None for a damaged archive."""
    try:
        with zipfile.ZipFile(file) as archive:
            return {PurePosixPath(name).name for name in archive.namelist()}
    except Exception:  # zipfile raises more than BadZipFile
        return None


def printable_line(head: bytes) -> str | None:
    """The first line of text that ``head`` begins with, shortened, or None where it is not text."""
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if len(head) - error.start > 3:  # not a character cut at the end of the bytes read: not text
            return None
        text = head[: error.start].decode("utf-8-sig")
    line = text.strip().split("\n")[0].strip()
    if not line or not line.isprintable():
        return None
    return line if len(line) <= 40 else f"{line[:40]}…"


def safetensors_data_end(path: Path) -> int:
    """Where a safetensors file's tensors end, by its header: its length."""
    length, header = raw_header(path)
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    return 8 + length + max(ends, default=0)


def check_readable(path: Path, label: str) -> None:
    """Refuses a file that cannot be opened, with the reason: safetensors says "No such file or directory"
    (an OSError without the file's name) for any file it cannot open, one without permission too."""
    try:
        path.open("rb").close()
    except OSError as error:
        raise WeightsError(f"{label}: cannot read it ({describe_os_error(error)})") from error


def training_checkpoint_model(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The model's tensors when these are a ``recnet train`` checkpoint (model, optimizer and RNG
    sections), so a run stopped early can be used as it stands; other files' tensors unchanged."""
    return section(tensors, "model.") if TRAINING_CHECKPOINT_KEY in tensors else tensors


def section(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The tensors whose names begin with ``prefix``, by their names after it: a training checkpoint's
    model (``model.``) or optimizer (``optimizer.``)."""
    return {key.removeprefix(prefix): value for key, value in tensors.items() if key.startswith(prefix)}


def read_checkpoint(path: Path, label: str, kind: str = "RECNet checkpoint") -> object:
    """``torch.load`` that never runs code from the file. A file it would have to run code for (a TorchScript
    archive, a pickle of objects other than tensors and containers) is refused in one line that says what
    recnet reads instead (never PyTorch's advice to load it with ``weights_only=False``)."""
    import torch

    try:
        with path.open("rb") as file:
            head = file.read(len(ZIP_SIGNATURE))
            members = zip_member_names(file) if head == ZIP_SIGNATURE else None
    except OSError as error:
        raise WeightsError(f"{label}: cannot read it ({describe_os_error(error)})") from error
    if not head:
        raise WeightsError(f"{label}: empty file")
    # torch.jit.save's archive holds its code beside a constants.pkl, which torch.save never writes (as
    # torch.serialization._is_torchscript_zip tells them apart)
    torchscript = members is not None and "constants.pkl" in members
    if not ((head == ZIP_SIGNATURE and pytorch_archive(members)) or PICKLE_SIGNATURE.match(head)):
        raise WeightsError(f"{label}: {checkpoint_problem(path)}")
    not_safe = f"not a {kind} recnet can read safely"
    if torchscript:
        raise WeightsError(
            f"{label}: a TorchScript archive (code, not weights), {not_safe}; {WHAT_RECNET_READS}"
        )
    try:
        # PyTorch's words while it reads a file ("Detected pickle protocol 4", "TypedStorage is deprecated", a
        # quantized tensor's deprecation) are noise: the file is then loaded, or refused in one line.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged file raises KeyError, RuntimeError, EOFError, zip errors, ...
        # A zip archive keeps its directory at its end; an old-style (pickled) one stops mid-stream, where
        # the unpickler may meet anything: a half-written name it takes for code, an index out of range.
        cut = isinstance(error, EOFError) or "unexpected EOF" in str(error)
        cut = cut or (head == ZIP_SIGNATURE and not zipfile.is_zipfile(path))
        if cut or (head != ZIP_SIGNATURE and not legacy_pickles_whole(path)):
            reason = f"cut short or damaged: {CUT_SHORT}"
        elif isinstance(error, pickle.UnpicklingError) and "Weights only load failed" in str(error):
            raise WeightsError(
                f"{label}: {not_safe} ({unsafe_pickle_reason(error)}); {WHAT_RECNET_READS}"
            ) from error
        elif isinstance(error, pickle.UnpicklingError):
            reason = first_line(error)
        else:
            reason = f"{type(error).__name__}: {first_line(error)}"
        raise WeightsError(f"{label}: not a readable PyTorch checkpoint ({reason})") from error


def legacy_pickles_whole(path: Path) -> bool:
    """Whether a pickled file holds its pickles whole, read by ``pickletools`` (which runs nothing): one
    saved before PyTorch 1.6 (its first pickle PyTorch's magic number) all of them, ``LEGACY_PICKLES`` and
    the list of its tensors' storages; any other pickle its first."""
    try:
        with path.open("rb") as file, mapped(file) as data:
            magic = False
            for _, arg, _ in pickletools.genops(data):  # the whole first pickle, not up to the magic number
                magic = magic or arg == LEGACY_MAGIC
            if not magic:
                return True
            for _ in range(LEGACY_PICKLES):
                for _ in pickletools.genops(data):
                    pass
    except Exception:  # damaged: pickletools says "not enough data in stream", a byte no opcode has, ...
        return False
    return True


def mapped(file: BinaryIO) -> mmap.mmap:
    """A file's bytes as ``pickletools`` reads them, mapped: a damaged length field asks for gigabytes, which
    a mapping's ``read`` does not set aside, as a file's does, before finding the few bytes left."""
    return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


def checkpoint_problem(path: Path) -> str:
    """Why a file named as a PyTorch checkpoint that is neither a zip archive nor a pickle is none: what it
    is, where that can be told."""
    if not_weights := foreign_file(path):
        return not_weights
    with contextlib.suppress(Exception):
        header_names(path)
        return f"a safetensors file, not a PyTorch checkpoint: rename it {model_stem(path)}.safetensors"
    return "not a PyTorch checkpoint (torch.save writes a zip archive or a pickle)"


def unsafe_pickle_reason(error: pickle.UnpicklingError) -> str:
    """Why PyTorch's safe unpickler refused a file, from its long message: the object it would have had to
    import and call (``a pickle that would run code: __main__.Net``), or the unpickler's own complaint."""
    message = str(error)
    if match := UNSAFE_GLOBAL.search(message):
        return f"a pickle that would run code: {match[1]}"
    complaint = message.partition("WeightsUnpickler error:")[2].strip()
    return f"a pickle the safe loader cannot read: {complaint.splitlines()[0]}" if complaint else "a pickle"


def unwrap_checkpoint(checkpoint: object, label: str) -> dict[str, Tensor]:
    """The state dict, bare or inside one of the ``CHECKPOINT_WRAPPERS`` (``params_ema``, ``state_dict``,
    ``model``, ...)."""
    from torch import Tensor

    if isinstance(checkpoint, dict):
        wrapped = (checkpoint[key] for key in CHECKPOINT_WRAPPERS if isinstance(checkpoint.get(key), dict))
        checkpoint = next(wrapped, checkpoint)
    if not (
        isinstance(checkpoint, dict)
        and all(isinstance(key, str) and isinstance(value, Tensor) for key, value in checkpoint.items())
    ):
        raise WeightsError(
            f"{label}: not a RECNet checkpoint (expected a state_dict of tensors{found_keys(checkpoint)})"
        )
    return checkpoint


def found_keys(checkpoint: object) -> str:
    """What a checkpoint that is not a state dict holds instead, for its error: where some of a dict's
    values are tensors, the keys of the others (``; epoch (int) is not a tensor``), else its keys."""
    from torch import Tensor

    if not isinstance(checkpoint, dict):
        return ""
    others = [
        f"{key} ({type(value).__name__})"
        for key, value in checkpoint.items()
        if not isinstance(value, Tensor)
    ]
    if 0 < len(others) < len(checkpoint):
        return f"; {listed(sorted(others))} {'is not a tensor' if len(others) == 1 else 'are not tensors'}"
    return describe_keys("; found", sorted(map(str, checkpoint)))


def infer_architecture(state_dict: dict[str, Tensor], label: str) -> tuple[int, int]:
    """(channels, blocks): the width of ``extract``, and the number of ``dualprocess.convN`` blocks, or one
    more where ``dualprocess.cat`` joins one more (so that a block whose keys are all missing is named as
    missing)."""
    extract = state_dict.get(FIRST_LAYER_KEY)
    blocks = {match[1] for key in state_dict if (match := BLOCK_KEY.match(key))}
    if extract is None or extract.ndim != 4 or not blocks:
        raise WeightsError(f"{label}: not a RECNet state_dict (no extract.weight and dualprocess.convN keys)")
    from recnet_cli.model.recnet import width_problem

    channels = extract.shape[0]
    if problem := width_problem(channels):  # the model built for it would fail on the first photo
        raise WeightsError(f"{label}: not a RECNet checkpoint of a supported layout: {problem}")
    joined = state_dict.get(CAT_KEY)
    if joined is not None and joined.ndim == 4 and joined.shape[1] == channels * (len(blocks) + 1):
        return channels, len(blocks) + 1  # a block whose keys are all missing (not a count the file makes up)
    return channels, len(blocks)


def check_dtypes(state_dict: dict[str, Tensor], label: str) -> None:
    """Refuses tensors of a type weights are not stored in (integers, booleans, float8): a model loaded from
    them computes nothing of use."""
    import torch

    stored_in = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
    other = sorted(key for key, tensor in state_dict.items() if tensor.dtype not in stored_in)
    if other:
        dtype = str(state_dict[other[0]].dtype).removeprefix("torch.")
        raise WeightsError(
            f"{label}: {describe_keys(f'{dtype} values in', other)}; RECNet's weights are float32, float16, "
            "bfloat16 or float64"
        )


def check_dense(state_dict: dict[str, Tensor], label: str) -> None:
    """Refuses tensors that are not plain arrays of values: sparse ones, and those of PyTorch's meta device,
    which have a shape and no values (a model saved before its weights were loaded into it)."""
    import torch

    sparse = sorted(key for key, tensor in state_dict.items() if tensor.layout != torch.strided)
    if sparse:
        layout = str(state_dict[sparse[0]].layout).removeprefix("torch.")
        raise WeightsError(
            f"{label}: {describe_keys(f'{layout} tensors in', sparse)}; RECNet's weights are dense tensors"
        )
    empty = sorted(key for key, tensor in state_dict.items() if tensor.is_meta)
    if empty:
        raise WeightsError(
            f"{label}: {describe_keys('tensors without values (on the meta device) in', empty)}; save the "
            "model once its weights are loaded"
        )


def check_finite(state_dict: dict[str, Tensor], label: str) -> None:
    """Refuses weights holding NaN or infinity: such a model turns every photo black or into NaN."""
    import torch

    non_finite = sorted(key for key, tensor in state_dict.items() if not torch.isfinite(tensor).all())
    if non_finite:
        raise WeightsError(
            f"{label}: damaged weights: {describe_keys('NaN or infinite values in', non_finite)}"
        )


def check_state_dict(expected: dict[str, Tensor], found: dict[str, Tensor], label: str) -> None:
    """Strict loading: every key present, none extra, every shape equal; the error names the keys."""
    missing = sorted(expected.keys() - found.keys())
    if missing:
        raise WeightsError(f"{label}: {describe_keys('missing', missing)}")
    unexpected = sorted(found.keys() - expected.keys())
    if unexpected:
        raise WeightsError(f"{label}: {describe_keys('unexpected', unexpected)}")
    for key, tensor in expected.items():
        if found[key].shape != tensor.shape:
            file_shape, model_shape = tuple(found[key].shape), tuple(tensor.shape)
            raise WeightsError(f"{label}: shape mismatch for {key}: file {file_shape} vs model {model_shape}")


def describe_keys(kind: str, keys: list[str]) -> str:
    """``missing key a`` / ``missing keys a, b, c, and 4 more``."""
    return f"{kind} {plural('key', len(keys))} {listed(keys)}"


def safetensors_header(path: Path) -> tuple[list[str], dict[str, str]]:
    """A safetensors file's tensor names and metadata, read from its header alone."""
    check_readable(path, str(path))
    try:
        with open_safetensors(path, "numpy") as file:
            return list(file.keys()), file.metadata() or {}
    except SafetensorError as error:
        raise WeightsError(f"{path}: {safetensors_problem(path, error)}") from error


def looks_like_recnet(path: Path) -> bool:
    """Whether a file holds RECNet's weights, judged by its tensors' names without reading the tensors: a
    safetensors file's header (so one cut short after it is still known, and listed as damaged), a PyTorch
    checkpoint's pickle. A file that cannot be read so is not."""
    suffix = model_suffix(path)  # as read_state_dict takes it
    try:
        if suffix == ".safetensors":
            names = header_names(path)
        elif suffix in MODEL_SUFFIXES:
            names = pickled_strings(path)
        else:
            return False
    except Exception:  # damaged, or not what its name says: zip and pickle readers raise any kind
        return False
    return any(RECNET_KEY.fullmatch(name) for name in names)


def header_names(path: Path) -> list[str]:
    """The tensor names in a safetensors file's header (``raw_header``)."""
    return [name for name in raw_header(path)[1] if name != "__metadata__"]


def raw_header(path: Path) -> tuple[int, dict[str, Any]]:
    """A safetensors file's header and its length, read as the format lays it out (the length in 8 bytes,
    little-endian, then JSON), whether or not the tensors after it are whole."""
    with path.open("rb") as file:
        length = int.from_bytes(file.read(8), "little")
        if length > SAFETENSORS_HEADER_LIMIT:
            raise ValueError(f"a header of {length} bytes")
        return length, json.loads(file.read(length))


def pickled_strings(path: Path) -> list[str]:
    """The strings in a PyTorch checkpoint's pickle, the state dict's keys among them, read by
    ``pickletools`` (which runs nothing) without the tensors' data: ``data.pkl`` in the zip archive
    torch.save writes, or the pickles before the data in a file saved before PyTorch 1.6. Empty for a file
    that is neither."""
    with path.open("rb") as file:
        head = file.read(len(ZIP_SIGNATURE))
        file.seek(0)
        if head == ZIP_SIGNATURE:
            with zipfile.ZipFile(file) as archive:
                return strings_in(
                    [archive.read(name) for name in archive.namelist() if name.endswith("/data.pkl")]
                )
        if PICKLE_SIGNATURE.match(head):
            with mapped(file) as data:
                return strings_in([data] * LEGACY_PICKLES)  # each pass of genops reads the next pickle
        return []


def strings_in(pickles: list[bytes] | list[mmap.mmap]) -> list[str]:
    """The strings in these pickles, read by ``pickletools``."""
    return [arg for pickled in pickles for _, arg, _ in pickletools.genops(pickled) if isinstance(arg, str)]
