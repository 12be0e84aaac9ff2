"""Find, load and save RECNet weights: local files, bundled models and models on the Hugging Face Hub.

A ``--model`` value is, in this order of precedence:

1. an existing file: ``.safetensors`` (this project's format, with a model card beside it) or the authors'
   ``.pth``/``.pt`` checkpoints;
2. a bundled model name: ``weights/<name>.safetensors`` at the repository root (the environment variable
   ``RECNET_WEIGHTS_DIR`` names another folder); without ``--model`` the default ``recnet-mixed`` is used;
   an existing folder otherwise is an error (a run folder is not a model: name its model file);
3. a Hub reference ``org/name[@revision][:file]``; without ``:file`` the repository's ``model.safetensors``
   (and its card ``model.json``, when present) is used. Downloads go through ``huggingface_hub`` and its
   cache, so ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ``HF_TOKEN`` and ``HF_ENDPOINT`` apply, and a
   cached model loads without network.

The architecture (channels, blocks) is read from the state dict's shapes and key names, as spandrel does, and
the weights then load strictly: a missing, unexpected or misshapen tensor is an error naming the key.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.resources
import importlib.util
import json
import logging
import os
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from huggingface_hub import (
    HFCacheInfo,
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    scan_cache_dir,
)
from huggingface_hub.errors import (
    CacheNotFound,
    DisabledRepoError,
    EntryNotFoundError,
    FileMetadataError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from rich.filesize import decimal
from safetensors import SafetensorError, safe_open

from recnet_cli import __version__
from recnet_cli.atomicfile import write_atomic
from recnet_cli.files import (
    describe_os_error,
    error_line,
    file_kind,
    first_line,
    nearest_existing,
)
from recnet_cli.wording import counted, listed, plural

# PyTorch takes 1.5 s to import on 2 CPU cores: resolving, downloading and listing models do without it, and
# the functions that build or read tensors import it when called.
if TYPE_CHECKING:
    from torch import Tensor

    from recnet_cli.autostrength import StrengthCalibration
    from recnet_cli.model import RECNet

WEIGHTS_DIR_ENV = "RECNET_WEIGHTS_DIR"
DEFAULT_MODEL = "recnet-mixed"
HUB_DEFAULT_FILENAME = "model.safetensors"
MODEL_SUFFIXES = (".safetensors", ".pth", ".pt")
HUB_REF_FORMAT = "org/name[@revision][:file]"
# Authors' checkpoints may wrap the state dict; the EMA weights win when both are present (BasicSR style).
CHECKPOINT_WRAPPERS = ("params_ema", "params", "state_dict")
ARCHITECTURE = ("architecture", "channels", "blocks", "parameters")  # card fields save_model fills in
# A `recnet train` checkpoint (train/loop.py) holds the model's tensors under model., beside the optimizer's
# and the RNG states; its metadata is the run's state, not a model card (nor is a checkpoint.json beside it).
TRAINING_CHECKPOINT_KEY = "model.extract.weight"

HUB_REF = re.compile(r"(?P<repo_id>\w[\w.-]*/\w[\w.-]*)(?:@(?P<revision>[^:@]+))?(?::(?P<filename>[^:]+))?")
BLOCK_KEY = re.compile(r"dualprocess\.conv(\d+)\.")
# torch.save writes a zip archive; before PyTorch 1.6 it wrote a pickle, which starts with its protocol (2-5)
ZIP_SIGNATURE = b"PK\x03\x04"
PICKLE_SIGNATURE = re.compile(rb"\x80[\x02-\x05]")
SAFETENSORS_HEADER_LIMIT = 100_000_000  # bytes; the format's own limit
LEGACY_PICKLES = 4  # such a pickled file: magic number, protocol, system information, the object; then data
# The tensor whose name marks RECNet weights: bare, after DataParallel's module. or in a training checkpoint
RECNET_KEY = re.compile(r"(?:module\.|model\.)?extract\.weight")
# What PyTorch's safe unpickler names when a pickle wants more than tensors: "GLOBAL __main__.Net was not an
# allowed global", or for a module it blocks outright "unsupported GLOBAL posix.system whose module posix is
# blocked"
UNSAFE_GLOBAL = re.compile(r"GLOBAL (\S+) (?:was not an allowed global|whose module \S+ is blocked)")
WHAT_RECNET_READS = "recnet reads .safetensors, or a .pth/.pt state dict"
# huggingface_hub's log line for each retry of a request ("Retrying in 1s [Retry 1/5].") and of a download
# ("Error while downloading from URL: REASON\nTrying to resume download..."); its warning of a disk too full
HUB_RETRY_LOG = re.compile(r"^Retrying in |Trying to resume download", re.MULTILINE)
HUB_LOW_DISK_WARNING = re.compile(
    r"Not enough free disk space to download the file\. The expected file size is: (?P<size>[\d.]+ MB)\."
    r".* only has (?P<free>[\d.]+ MB) free disk space"
)
LOGIN_COMMAND = "hf auth login"  # huggingface_hub 1.0 and later ship `hf`, not `huggingface-cli`
TOKEN_ADVICE = f"set HF_TOKEN to a token that can read it, or log in with {LOGIN_COMMAND}"


class WeightsError(Exception):
    """A model that cannot be found, fetched, read or saved; the message is one line naming it."""


class ModelNotFoundError(WeightsError):
    """No model file, bundled model or Hub file answers to the reference."""


@dataclass(frozen=True)
class ModelLocation:
    path: Path
    source: str  # what to show the user: the path, the bundled name or the Hub reference


@dataclass
class LoadedModel:
    model: RECNet  # float32, eval mode, on the CPU
    source: str
    path: Path
    card: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelEntry:
    name: str  # the value to pass to --model
    origin: str  # "bundled" or "hub cache"
    path: Path
    size: int  # bytes
    revision: str = ""  # the Hub commit hash, empty for bundled models
    summary: str = ""  # highlights of the model card
    problem: str | None = None  # why the model cannot be used (a damaged file or card): a one-line error

    def as_dict(self) -> dict[str, Any]:
        """The entry for ``recnet models --json``."""
        return asdict(self) | {"path": str(self.path)}

    def row(self) -> tuple[str, str, str, str]:
        """name, where, size, about: a row of the ``recnet models`` table."""
        where = f"{self.origin} @ {self.revision[:8]}" if self.revision else self.origin
        about = "damaged (see the error below)" if self.problem else self.summary
        return self.name, where, decimal(self.size), about


@dataclass(frozen=True)
class HubRef:
    text: str
    repo_id: str
    revision: str | None
    filename: str


# ---- resolving a --model value ----


def weights_dir() -> Path:
    """The bundled models' folder, or ``$RECNET_WEIGHTS_DIR``: ``weights/`` of the source checkout recnet
    runs from (installed or not: not another checkout's, that an editable install would give), or the
    package data of an installed wheel."""
    override = os.environ.get(WEIGHTS_DIR_ENV)
    if override:
        return Path(override)
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() or importlib.util.find_spec(
        "recnet_cli.weights_bundle"
    ) is None:
        return checkout / "weights"
    return Path(str(importlib.resources.files("recnet_cli.weights_bundle")))


def bundled_path(name: str) -> Path:
    return weights_dir() / f"{name}{MODEL_SUFFIXES[0]}"


def bundled_files() -> list[Path]:
    return sorted(weights_dir().glob(f"*{MODEL_SUFFIXES[0]}"))


def parse_hub_ref(text: str) -> HubRef | None:
    """``org/name[@revision][:file]``, or None when the text is not shaped like one (``dir/x.pth`` is not)."""
    match = HUB_REF.fullmatch(text)
    if match is None or match["repo_id"].lower().endswith(MODEL_SUFFIXES):
        return None
    return HubRef(text, match["repo_id"], match["revision"], match["filename"] or HUB_DEFAULT_FILENAME)


def resolve(ref: str | None) -> ModelLocation:
    """Where the model named by ``--model`` is on disk, downloading a Hub reference first."""
    if ref is None:
        return default_model()
    path = Path(ref)
    if os.path.isfile(path):  # os.path's tests say False for a name too long; Path's raise
        return ModelLocation(path, ref)
    if path.name == ref and os.path.isfile(bundled_path(ref)):
        return ModelLocation(bundled_path(ref), f"{ref} (bundled)")
    if os.path.isdir(path):
        raise ModelNotFoundError(f"{ref}: a folder, not a model file{model_files_hint(path)}")
    hub_ref = parse_hub_ref(ref)
    if hub_ref is not None:
        return ModelLocation(fetch_from_hub(hub_ref), ref)
    if path.suffix.lower() in MODEL_SUFFIXES:
        raise ModelNotFoundError(f"{ref}: file not found")
    bundled = ", ".join(path.stem for path in bundled_files()) or "none yet"
    raise ModelNotFoundError(
        f"{ref}: not a model file, a bundled model name (bundled: {bundled})"
        f" or a Hub reference ({HUB_REF_FORMAT})"
    )


def model_files_hint(folder: Path, shown: int = 3) -> str:
    """`` (it holds a.safetensors, b.pth)``: the model files in a folder given as ``--model``, if any."""
    try:
        names = sorted(path.name for path in folder.iterdir() if path.suffix.lower() in MODEL_SUFFIXES)
    except OSError:  # an unreadable folder: the error says enough without the hint
        return ""
    return f" (it holds {listed(names, shown)})" if names else ""


def default_model() -> ModelLocation:
    path = bundled_path(DEFAULT_MODEL)
    if not path.is_file():
        raise ModelNotFoundError(
            f"no bundled default model is present yet ({path} does not exist); pass one with"
            " --model path/to/model.safetensors or --model org/name (a Hugging Face Hub repository)"
        )
    return ModelLocation(path, f"{DEFAULT_MODEL} (bundled)")


# ---- the Hugging Face Hub ----


def download(ref: str) -> Path:
    """``recnet download``: fetch a Hub model (and its card) into the Hugging Face cache; its local path.

    A file that is not RECNet's weights (as ``looks_like_recnet`` judges the cache for ``recnet models``) is
    refused once downloaded, and stays in the cache as ``--model`` leaves it; ``recnet models`` ignores it.
    So is one that ``--model`` cannot load (a file cut short, a damaged card), with its error."""
    hub_ref = parse_hub_ref(ref)
    if hub_ref is None:
        raise WeightsError(f"{ref}: not a Hub reference ({HUB_REF_FORMAT})")
    path = fetch_from_hub(hub_ref)
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise WeightsError(f"{ref}: {unknown_file_type(suffix)}")
    if not looks_like_recnet(path):
        raise WeightsError(
            f"{ref}: not a RECNet model (no extract.weight tensor found in {hub_ref.filename})"
        )
    # Loaded as --model loads it, so that a file cut short or a damaged card fails now, not offline later
    load_weights(path, ref)
    read_card(path)
    return path


def fetch_from_hub(ref: HubRef) -> Path:
    """The cached file of a Hub reference, downloaded when the Hub has it and the cache does not."""
    if problem := hub_cache_problem():
        raise WeightsError(f"{ref.text}: {problem}")
    with hub_chatter_held() as chatter:
        try:
            offline = constants.is_offline_mode() or not hub_reachable(ref)
            path = hub_download(ref, ref.filename, offline)
            if is_safetensors(path):
                fetch_card(ref, offline)
        except Exception as error:  # huggingface_hub raises many types; all become one line for the user
            raise hub_error(ref, error, chatter) from error
    return path


@dataclass
class HubChatter:
    """What huggingface_hub said while recnet downloaded, held back from the terminal: how many times it
    retried a request or resumed a download, and its warning of too little disk space (the sizes)."""

    retries: int = 0
    low_disk: str | None = None  # "the file is 0.79 MB, 0.20 MB free"

    def log(self, record: logging.LogRecord) -> bool:
        """A logging filter that holds every record back, counting the retries."""
        self.retries += bool(HUB_RETRY_LOG.search(record.getMessage()))
        return False

    def warning(self, message: str) -> bool:
        """Holds the low disk space warning back, keeping its sizes; False for any other warning."""
        match = HUB_LOW_DISK_WARNING.search(message)
        if match:
            self.low_disk = f"the file is {match['size']}, {match['free']} free"
        return match is not None


@contextlib.contextmanager
def hub_chatter_held() -> Iterator[HubChatter]:
    """huggingface_hub's log lines (each retry of a request, each resumed download: ten lines for one
    download that keeps breaking) and its low disk space warning, held back while recnet downloads: the
    one-line error says what came of them. ``HF_HUB_VERBOSITY`` set: nothing is held back."""
    chatter = HubChatter()
    if os.environ.get("HF_HUB_VERBOSITY"):
        yield chatter
        return
    loggers = [
        logger
        for name, logger in list(logging.root.manager.loggerDict.items())
        if isinstance(logger, logging.Logger) and (name + ".").startswith("huggingface_hub.")
    ]
    with warnings.catch_warnings():
        warnings.filterwarnings("always", message=HUB_LOW_DISK_WARNING.pattern, category=UserWarning)
        show = warnings.showwarning

        def shown(message: Warning | str, category: type[Warning], *where: Any, **more: Any) -> None:
            if not chatter.warning(str(message)):
                show(message, category, *where, **more)

        warnings.showwarning = shown
        for logger in loggers:
            logger.addFilter(chatter.log)
        try:
            yield chatter
        finally:
            for logger in loggers:
                logger.removeFilter(chatter.log)


def fetch_card(ref: HubRef, offline: bool) -> None:
    """The model card ``<stem>.json`` is optional: a repository without one is fine."""
    with contextlib.suppress(EntryNotFoundError, HfHubHTTPError):
        hub_download(ref, str(PurePosixPath(ref.filename).with_suffix(".json")), offline)


def hub_download(ref: HubRef, filename: str, offline: bool) -> Path:
    return Path(
        hf_hub_download(
            ref.repo_id,
            filename,
            revision=ref.revision,
            local_files_only=offline,
            library_name="recnet",
            library_version=__version__,
        )
    )


def hub_reachable(ref: HubRef) -> bool:
    """One HEAD request without retries, so that an unreachable Hub falls back to the cache at once.

    (``hf_hub_download`` itself retries a connection failure for about 25 s when the file is not cached.)
    """
    url = hf_hub_url(ref.repo_id, ref.filename, revision=ref.revision)
    try:
        get_hf_file_metadata(url, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except HfHubHTTPError as error:
        return error.response.status_code < 500  # the Hub answered: the download reports what it said
    except Exception:  # no answer at all: connection refused, DNS failure, timeout, proxy error
        return False
    return True


def hub_error(ref: HubRef, error: Exception, chatter: HubChatter) -> WeightsError:
    """A one-line error for a failed Hub download, saying what to do about it (and how many times
    huggingface_hub retried, if it did)."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        sizes = f" ({chatter.low_disk})" if chatter.low_disk else ""
        return WeightsError(
            f"{ref.text}: no room for it in the Hugging Face cache {constants.HF_HUB_CACHE}{sizes}; free some"
            " space, or set HF_HUB_CACHE to a folder on a disk with room"
        )
    failure = hub_failure(ref, error)
    if chatter.retries:
        return type(failure)(f"{failure}; retried {counted(chatter.retries, 'time')}")
    return failure


def hub_failure(ref: HubRef, error: Exception) -> WeightsError:
    """``hub_error``'s line, from the exception alone."""
    name = ref.text
    answer = error.__cause__ if isinstance(error, LocalEntryNotFoundError) else error
    token = sent_token_source(answer) if isinstance(answer, HfHubHTTPError) else None
    if isinstance(error, GatedRepoError):
        if token is not None:
            return WeightsError(
                f"{name}: the Hub repository is gated and the token {token} has no access to it yet; accept"
                " its terms on the Hub with that token's account"
            )
        return WeightsError(
            f"{name}: the Hub repository is gated; accept its terms on the Hub, then {TOKEN_ADVICE}"
        )
    if (
        token is not None
        and isinstance(answer, HfHubHTTPError)
        and not isinstance(answer, DisabledRepoError)
        and answer.response.status_code in (401, 403)
    ):
        return WeightsError(f"{name}: {token_refused(ref, token, answer.response.status_code)}")
    if isinstance(error, RepositoryNotFoundError):
        if token is not None:
            return ModelNotFoundError(
                f"{name}: no such repository on the Hub, or the token {token} cannot read it"
            )
        return ModelNotFoundError(f"{name}: no such repository on the Hub (if it is private, {TOKEN_ADVICE})")
    if isinstance(error, RevisionNotFoundError):
        return ModelNotFoundError(f"{name}: revision {ref.revision} not found in {ref.repo_id} on the Hub")
    if isinstance(error, LocalEntryNotFoundError):
        return ModelNotFoundError(f"{name}: {not_cached_reason(error.__cause__)}")
    if isinstance(error, EntryNotFoundError):
        return ModelNotFoundError(f"{name}: file {ref.filename} not found in {ref.repo_id} on the Hub")
    if isinstance(error, HfHubHTTPError) and error.response.status_code == 401:  # a private repository
        return WeightsError(
            f"{name}: the Hub asks for a token to read {ref.repo_id} (HTTP 401); {TOKEN_ADVICE}"
        )
    if isinstance(error, HfHubHTTPError):
        return WeightsError(f"{name}: the Hub answered HTTP {error.response.status_code}")
    if isinstance(error, HFValidationError):
        return WeightsError(f"{name}: not a valid Hub name ({first_line(error)})")
    if isinstance(error, OSError) and error.filename is not None:  # the cache cannot be read or written
        return WeightsError(f"{name}: download failed ({error_line(error)})")
    return WeightsError(f"{name}: download failed ({type(error).__name__}: {first_line(error)})")


def sent_token_source(answer: HfHubHTTPError) -> str | None:
    """Where the token the refused request carried came from, as the Hub client looks for one (``from
    HF_TOKEN``, ``of the saved login (path)``); None when it carried none."""
    try:
        sent = answer.response.request.headers.get("authorization")
    except (AttributeError, RuntimeError):  # an error made without a request (httpx raises RuntimeError)
        return None
    if not sent:
        return None
    if os.environ.get("HF_OIDC_RESOURCE"):  # a CI's short-lived token takes precedence
        return "from the OIDC exchange for HF_OIDC_RESOURCE"
    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(variable, "").strip():
            return f"from {variable}"
    return f"of the saved login ({constants.HF_TOKEN_PATH})"


def token_refused(ref: HubRef, token: str, status: int) -> str:
    """The Hub refused the token sent: 401, invalid or expired; 403, it may not read the repository."""
    advice = f"set HF_TOKEN to a token that can read {ref.repo_id}"
    if token.startswith("of the saved login"):
        advice = f"log in again with {LOGIN_COMMAND}, or {advice}"
    if status == 401:
        return f"the Hub refused the token {token} (HTTP 401: invalid or expired); {advice}"
    return f"the Hub refused the token {token} for {ref.repo_id} (HTTP 403); {advice}"


def not_cached_reason(cause: BaseException | None) -> str:
    """Why a model is neither downloaded nor cached; ``cause``: the Hub's answer, when there was one."""
    if constants.is_offline_mode():
        return (
            "HF_HUB_OFFLINE is set and the model is not in the local cache (unset it to download the model)"
        )
    if isinstance(cause, HfHubHTTPError):
        return (
            f"the Hub at {constants.ENDPOINT} answered HTTP {cause.response.status_code}"
            f" and the model is not in the local cache ({constants.HF_HUB_CACHE})"
        )
    if isinstance(cause, FileMetadataError):  # a captive portal, a proxy's page, HF_ENDPOINT set amiss
        return (
            f"{constants.ENDPOINT} does not answer as a Hugging Face Hub (check HF_ENDPOINT and any proxy)"
            f" and the model is not in the local cache ({constants.HF_HUB_CACHE})"
        )
    return (
        f"cannot reach the Hub at {constants.ENDPOINT} and the model is not in the local cache"
        f" ({constants.HF_HUB_CACHE}); download it once while online, and later runs find it there offline"
    )


# ---- reading weights ----


def load_model(ref: str | None = None) -> LoadedModel:
    """Resolve ``--model`` (None: the bundled default) and load it: float32, eval mode, CPU."""
    location = resolve(ref)
    return LoadedModel(
        model=load_weights(location.path, location.source),
        source=location.source,
        path=location.path,
        card=read_card(location.path),
    )


def strength_calibration(loaded: LoadedModel) -> StrengthCalibration | None:
    """The card's ``auto_strength`` calibration (see ``recnet calibrate``); None when it has none."""
    from recnet_cli.autostrength import CalibrationError, StrengthCalibration

    if "auto_strength" not in loaded.card:
        return None
    try:
        return StrengthCalibration.from_card(loaded.card["auto_strength"])
    except CalibrationError as error:
        raise WeightsError(f"{loaded.source}: {error}") from None


def load_weights(path: Path, label: str) -> RECNet:
    """A RECNet built from the file's own shapes, loaded strictly; errors start with ``label``."""
    from recnet_cli.model import RECNet

    state_dict = read_state_dict(path, label)
    channels, blocks = infer_architecture(state_dict, label)
    model = RECNet(channels, blocks)
    check_state_dict(model.state_dict(), state_dict, label)
    check_finite(state_dict, label)
    model.load_state_dict(state_dict)
    return model.eval()


def read_state_dict(path: Path, label: str) -> dict[str, Tensor]:
    """The model's tensors in the file: taken out of a checkpoint's wrapper (``params_ema``, ``state_dict``)
    or a training checkpoint (without the optimizer's), and without the ``module.`` prefix DataParallel
    adds."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        tensors = training_checkpoint_model(read_safetensors(path, label))
    elif suffix in MODEL_SUFFIXES:
        tensors = unwrap_checkpoint(read_checkpoint(path, label), label)
    else:
        raise WeightsError(f"{label}: {unknown_file_type(suffix)}")
    return {key.removeprefix("module."): tensor for key, tensor in tensors.items()}


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
        if path.stat().st_size == 0:
            raise WeightsError(f"{label}: empty file") from error
        raise WeightsError(f"{label}: not a valid safetensors file ({first_line(error)})") from error


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
    if TRAINING_CHECKPOINT_KEY not in tensors:
        return tensors
    return {key.removeprefix("model."): value for key, value in tensors.items() if key.startswith("model.")}


def read_checkpoint(path: Path, label: str, kind: str = "RECNet checkpoint") -> object:
    """``torch.load`` that never runs code from the file. A file it would have to run code for (a TorchScript
    archive, a pickle of objects other than tensors and containers) is refused in one line that says what
    recnet reads instead (never PyTorch's advice to load it with ``weights_only=False``)."""
    import torch

    try:
        with path.open("rb") as file:
            head = file.read(len(ZIP_SIGNATURE))
            torchscript = head == ZIP_SIGNATURE and is_torchscript(file)
    except OSError as error:
        raise WeightsError(f"{label}: cannot read it ({describe_os_error(error)})") from error
    if not head:
        raise WeightsError(f"{label}: empty file")
    if head != ZIP_SIGNATURE and not PICKLE_SIGNATURE.match(head):
        raise WeightsError(f"{label}: not a PyTorch checkpoint (torch.save writes a zip archive or a pickle)")
    not_safe = f"not a {kind} recnet can read safely"
    if torchscript:
        raise WeightsError(
            f"{label}: a TorchScript archive (code, not weights), {not_safe}; {WHAT_RECNET_READS}"
        )
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4 ...", before loading or failing: noise
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" not in str(error):
            raise WeightsError(f"{label}: not a readable PyTorch checkpoint ({first_line(error)})") from error
        raise WeightsError(
            f"{label}: {not_safe} ({unsafe_pickle_reason(error)}); {WHAT_RECNET_READS}"
        ) from error
    except Exception as error:  # a damaged file raises KeyError, RuntimeError, EOFError, zip errors, ...
        raise WeightsError(
            f"{label}: not a readable PyTorch checkpoint ({type(error).__name__}: {first_line(error)})"
        ) from error


def is_torchscript(file: BinaryIO) -> bool:
    """Whether a zip archive is ``torch.jit.save``'s: its code beside a ``constants.pkl``, which
    ``torch.save`` never writes (as ``torch.serialization._is_torchscript_zip`` tells them apart)."""
    try:
        with zipfile.ZipFile(file) as archive:
            return any(PurePosixPath(name).name == "constants.pkl" for name in archive.namelist())
    except Exception:  # a damaged archive (zipfile raises more than BadZipFile): torch.load says how
        return False


def unsafe_pickle_reason(error: pickle.UnpicklingError) -> str:
    """Why PyTorch's safe unpickler refused a file, from its long message: the object it would have had to
    import and call (``a pickle that would run code: __main__.Net``), or the unpickler's own complaint."""
    message = str(error)
    if match := UNSAFE_GLOBAL.search(message):
        return f"a pickle that would run code: {match[1]}"
    complaint = message.partition("WeightsUnpickler error:")[2].strip()
    return f"a pickle the safe loader cannot read: {complaint.splitlines()[0]}" if complaint else "a pickle"


def unwrap_checkpoint(checkpoint: object, label: str) -> dict[str, Tensor]:
    """The state dict, bare or inside ``params_ema``, ``params`` or ``state_dict``."""
    from torch import Tensor

    if isinstance(checkpoint, dict):
        wrapped = (checkpoint[key] for key in CHECKPOINT_WRAPPERS if isinstance(checkpoint.get(key), dict))
        checkpoint = next(wrapped, checkpoint)
    if not (isinstance(checkpoint, dict) and all(isinstance(value, Tensor) for value in checkpoint.values())):
        raise WeightsError(f"{label}: not a RECNet checkpoint (expected a state_dict of tensors)")
    return checkpoint


def infer_architecture(state_dict: dict[str, Tensor], label: str) -> tuple[int, int]:
    """(channels, blocks): the width of ``extract`` and the number of ``dualprocess.convN`` blocks."""
    extract = state_dict.get("extract.weight")
    blocks = {match[1] for key in state_dict if (match := BLOCK_KEY.match(key))}
    if extract is None or extract.ndim != 4 or not blocks:
        raise WeightsError(f"{label}: not a RECNet state_dict (no extract.weight and dualprocess.convN keys)")
    return extract.shape[0], len(blocks)


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


def describe_keys(kind: str, keys: list[str], shown: int = 3) -> str:
    """``missing key a`` / ``missing keys a, b, c (and 4 more)``."""
    more = f" (and {len(keys) - shown} more)" if len(keys) > shown else ""
    return f"{kind} {plural('key', len(keys))} {', '.join(keys[:shown])}{more}"


def read_card(model_path: Path) -> dict[str, Any]:
    """The card of a ``.safetensors`` model: ``<stem>.json`` beside it, else its metadata (``card_fields``). A
    training checkpoint has none: its metadata holds the run's counters and Adam's settings (and a
    ``checkpoint.json`` beside it is no card)."""
    if not is_safetensors(model_path):
        return {}
    keys, metadata = safetensors_header(model_path)
    if TRAINING_CHECKPOINT_KEY in keys:
        return {}
    card_path = model_path.with_suffix(".json")
    if not card_path.is_file():
        return card_fields(metadata)
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except OSError as error:
        raise WeightsError(f"{card_path}: cannot read the model card ({describe_os_error(error)})") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WeightsError(f"{card_path}: not a valid model card ({error})") from error
    if not isinstance(card, dict):
        raise WeightsError(f"{card_path}: not a valid model card (not a JSON object)")
    return card


def safetensors_header(path: Path) -> tuple[list[str], dict[str, str]]:
    """A safetensors file's tensor names and metadata, read from its header alone."""
    check_readable(path, str(path))
    try:
        with open_safetensors(path, "numpy") as file:
            return list(file.keys()), file.metadata() or {}
    except SafetensorError as error:
        raise WeightsError(f"{path}: not a valid safetensors file ({first_line(error)})") from error


# ---- saving in this project's format ----


def save_model(model: RECNet, path: Path, card: dict[str, Any], *, overwrite: bool = True) -> None:
    """Write ``path`` (safetensors), ``<stem>.json`` (the card) and ``<stem>.md`` (the card for people).

    The card gains the architecture fields (taken from the model); its flat fields also go into the
    safetensors metadata. Each file is written atomically; without ``overwrite``, none is written if one
    of them exists (made while a command ran, say).
    """
    import torch
    from safetensors.torch import save as safetensors_bytes

    if not is_safetensors(path):
        raise WeightsError(f"{path}: models are saved as .safetensors")
    full_card = architecture_card(model) | {
        key: value for key, value in card.items() if key not in ARCHITECTURE
    }
    tensors = {
        key: value.detach().to("cpu", torch.float32).contiguous() for key, value in model.state_dict().items()
    }
    nearest = nearest_existing(path.parent)
    if not nearest.is_dir():
        raise WeightsError(f"{path}: cannot write the model ({nearest} is {file_kind(nearest)})")
    weights, card_json, card_md = model_files(path)
    files = {
        weights: safetensors_bytes(tensors, metadata=flat_fields(full_card)),
        card_json: (json.dumps(full_card, indent=2) + "\n").encode(),
        card_md: card_markdown(path, full_card).encode("utf-8", "backslashreplace"),
    }
    if not overwrite and (existing := next(filter(os.path.lexists, files), None)):
        raise WeightsError(f"{path}: not written, since {existing} exists (use --overwrite)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for file, data in files.items():
            try:
                write_atomic(file, data, overwrite=overwrite)
            except FileExistsError:  # made between the check and the write
                raise WeightsError(f"{path}: not written in full, since {file} exists") from None
    except OSError as error:
        raise WeightsError(f"{path}: cannot write the model ({describe_os_error(error)})") from error


def model_files(path: Path) -> tuple[Path, Path, Path]:
    """The files ``save_model`` writes for the model ``path``: it, and its card as ``.json`` and ``.md``."""
    return path, path.with_suffix(".json"), path.with_suffix(".md")


def architecture_card(model: RECNet) -> dict[str, Any]:
    from recnet_cli.model import parameter_count

    values = ("RECNet", model.channels, model.num_blocks, parameter_count(model))
    return dict(zip(ARCHITECTURE, values, strict=True))


def flat_fields(card: dict[str, Any]) -> dict[str, str]:
    """The card's fields as strings, for the safetensors metadata: scalars as text, mappings as JSON."""
    fields = {
        key: str(value).encode("utf-8", "backslashreplace").decode()  # a name's undecodable byte: \\udce9
        for key, value in card.items()
        if isinstance(value, str | int | float | bool)
    }
    return fields | {key: json.dumps(value) for key, value in card.items() if isinstance(value, dict)}


def card_fields(metadata: dict[str, str]) -> dict[str, Any]:
    """The card that ``flat_fields`` made ``metadata`` of, as the JSON card has it: numbers, true or false
    and mappings as they were, not as text (text that reads as a number, such as a name "2024", is read as
    one)."""
    return {key: card_value(text) for key, text in metadata.items()}


def card_value(text: str) -> Any:
    if text in ("True", "False"):  # str() of a bool
        return text == "True"
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float | dict) else text


def card_markdown(path: Path, card: dict[str, Any]) -> str:
    """The card for people of the model saved at ``path``, starting with how to use it."""
    name = path.stem
    if path.parent.resolve() == weights_dir().resolve():
        usage = f"RECNet weights bundled with `recnet`: use them with `--model {name}`."
    else:
        usage = (
            f"RECNet weights for `recnet`: use them with `--model path/to/{path.name}` (this file's path)."
        )
    lines = [f"# {name}", "", usage, ""]
    for key, value in card.items():
        if isinstance(value, dict):
            lines.append(f"- **{key}**:")
            lines.extend(f"  - {sub_key}: {readable(sub_value)}" for sub_key, sub_value in value.items())
        else:
            lines.append(f"- **{key}**: {value}")
    return "\n".join(lines) + "\n"


def readable(value: object) -> str:
    """A card value for people: a long list of numbers (a calibration's weights) only by its length."""
    if isinstance(value, list) and len(value) > 8:
        return f"{len(value)} numbers (in the .json card)"
    return str(value)


# ---- listing ----


def bundled_models() -> list[ModelEntry]:
    return [bundled_entry(path) for path in bundled_files()]


def bundled_entry(path: Path) -> ModelEntry:
    """A bundled model's entry; a link to nothing or a folder by a model's name is listed as damaged."""
    if not path.is_file():
        what = "a link to nothing" if path.is_symlink() and not path.exists() else "not a file"
        return ModelEntry(path.stem, "bundled", path, 0, problem=f"{path}: {what}")
    return with_card(ModelEntry(path.stem, "bundled", path, path.stat().st_size))


def with_card(entry: ModelEntry) -> ModelEntry:
    """The entry with its card's summary, or with the problem that keeps the card from being read."""
    try:
        return replace(entry, summary=card_summary(read_card(entry.path)))
    except WeightsError as error:
        return replace(entry, problem=str(error))


def hub_cache_problem() -> str | None:
    """Why the Hugging Face cache cannot hold models: something other than a folder where it goes, or where
    a folder above it goes (``HF_HOME`` naming a file); named by the variable that points there, if one
    does."""
    cache = Path(constants.HF_HUB_CACHE)
    blocker = cache if os.path.lexists(cache) else nearest_existing(cache)
    if os.path.isdir(blocker):
        return None
    kind = file_kind(blocker)
    variable = next((name for name in ("HF_HUB_CACHE", "HF_HOME") if names_path(name, blocker)), None)
    if variable is not None:
        return (
            f"{variable} {blocker} is {kind}, not a folder, so the Hugging Face cache cannot be read there;"
            f" set {variable} to a folder"
        )
    if blocker == cache:
        return f"the Hugging Face cache {cache} is {kind}, not a folder; set HF_HUB_CACHE to one"
    variable = "HF_HUB_CACHE" if os.environ.get("HF_HUB_CACHE") else "HF_HOME"
    return (
        f"the Hugging Face cache {cache} cannot be made: {blocker} is {kind}, not a folder;"
        f" set {variable} to a folder"
    )


def names_path(variable: str, path: Path) -> bool:
    """Whether the environment variable is set to ``path`` (as huggingface_hub reads it: ``~`` expanded)."""
    value = os.environ.get(variable)
    return bool(value) and os.path.abspath(os.path.expanduser(value)) == os.path.abspath(path)


def models_to_list() -> tuple[list[ModelEntry], str | None]:
    """``recnet models``: the bundled models, then the RECNet files in the Hugging Face cache, and None; or,
    when that cache cannot be used (a setting naming a file: ``hub_cache_problem``), the bundled models
    and that problem, for a note. A damaged model or card is listed with its problem, and the others all
    the same."""
    if problem := hub_cache_problem():
        return bundled_models(), problem
    return bundled_models() + cached_hub_models(), None


def cached_hub_models() -> list[ModelEntry]:
    try:
        cache = scan_cache_dir(constants.HF_HUB_CACHE)
    except CacheNotFound:
        return []
    except OSError as error:  # a folder or file in the cache unreadable: named as other errors name a file
        where, why = error.filename or constants.HF_HUB_CACHE, describe_os_error(error)
        raise WeightsError(f"{os.fsdecode(where)}: cannot read the Hugging Face cache ({why})") from None
    entries = [with_card(entry) for entry in cached_file_entries(cache) if looks_like_recnet(entry.path)]
    scanned = {repo.repo_path for repo in cache.repos}
    for repo_path in sorted(Path(constants.HF_HUB_CACHE).glob("models--*")):
        if repo_path not in scanned:
            entries += unscanned_repo_entries(repo_path)
    return entries


def cached_file_entries(cache: HFCacheInfo) -> Iterator[ModelEntry]:
    """Every file of the cached model repositories, by repository, commit and path."""
    for repo in sorted(cache.repos, key=lambda repo: repo.repo_id):
        if repo.repo_type == "model":
            for revision in sorted(repo.revisions, key=lambda revision: revision.commit_hash):
                for file in sorted(revision.files, key=lambda file: file.file_path):
                    path, size = file.file_path, file.size_on_disk
                    yield cached_entry(repo.repo_id, revision.refs, revision.snapshot_path, path, size)


def cached_entry(repo_id: str, refs: frozenset[str], snapshot: Path, file: Path, size: int) -> ModelEntry:
    """A cached file's entry, without its card's summary; its snapshot folder is named by its commit."""
    name = cached_ref(repo_id, refs, snapshot.name, file.relative_to(snapshot).as_posix())
    return ModelEntry(name=name, origin="hub cache", path=file, size=size, revision=snapshot.name)


def unscanned_repo_entries(repo_path: Path) -> list[ModelEntry]:
    """The RECNet files of a cached repository that huggingface_hub's scan gave up on, as it does for the
    whole repository when one file's data is missing: the intact files as usual, and a missing model file
    as damaged when its card, or another RECNet file of the repository, says it is RECNet's."""
    repo_id = repo_path.name.removeprefix("models--").replace("--", "/")
    refs = cached_refs(repo_path / "refs")
    intact, missing = [], []
    for snapshot in sorted(path for path in (repo_path / "snapshots").glob("*") if path.is_dir()):
        for file in sorted(path for path in snapshot.rglob("*") if not path.is_dir()):
            size = file.stat().st_size if file.exists() else 0
            entry = cached_entry(repo_id, refs.get(snapshot.name, frozenset()), snapshot, file, size)
            if file.exists() and looks_like_recnet(file):
                intact.append(with_card(entry))
            elif not file.exists() and file.suffix.lower() in MODEL_SUFFIXES:
                problem = f"{file}: its data is missing from the Hugging Face cache (recnet download gets it)"
                missing.append((replace(entry, problem=problem), file.with_suffix(".json").exists()))
    return intact + [entry for entry, has_card in missing if has_card or intact]


def cached_refs(refs_folder: Path) -> dict[str, frozenset[str]]:
    """A cached repository's refs (``main``, ``v1``, ``refs/pr/1``) by the commit each names."""
    refs: dict[str, set[str]] = {}
    for ref in sorted(refs_folder.rglob("*")):
        if ref.is_file():
            with contextlib.suppress(OSError, UnicodeDecodeError):
                refs.setdefault(ref.read_text().strip(), set()).add(ref.relative_to(refs_folder).as_posix())
    return {commit: frozenset(names) for commit, names in refs.items()}


def cached_ref(repo_id: str, refs: frozenset[str], commit_hash: str, filename: str) -> str:
    """The shortest Hub reference that names this cached file."""
    ref = repo_id if "main" in refs else f"{repo_id}@{min(refs, default=commit_hash)}"
    return ref if filename == HUB_DEFAULT_FILENAME else f"{ref}:{filename}"


def looks_like_recnet(path: Path) -> bool:
    """Whether a file holds RECNet's weights, judged by its tensors' names without reading the tensors: a
    safetensors file's header (so one cut short after it is still known, and listed as damaged), a PyTorch
    checkpoint's pickle. A file that cannot be read so is not."""
    suffix = path.suffix.lower()  # as read_state_dict takes it
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
    """The tensor names in a safetensors file's header, read as the format lays it out (its length in 8
    bytes, little-endian, then JSON), whether or not the tensors after it are whole."""
    with path.open("rb") as file:
        length = int.from_bytes(file.read(8), "little")
        if length > SAFETENSORS_HEADER_LIMIT:
            raise ValueError(f"a header of {length} bytes")
        return [name for name in json.loads(file.read(length)) if name != "__metadata__"]


def pickled_strings(path: Path) -> list[str]:
    """The strings in a PyTorch checkpoint's pickle, the state dict's keys among them, read by
    ``pickletools`` (which runs nothing) without the tensors' data: ``data.pkl`` in the zip archive
    torch.save writes, or the pickles before the data in a file saved before PyTorch 1.6. Empty for a file
    that is neither."""
    with path.open("rb") as file:
        head = file.read(len(ZIP_SIGNATURE))
        file.seek(0)
        pickles: list[bytes | BinaryIO]
        if head == ZIP_SIGNATURE:
            with zipfile.ZipFile(file) as archive:
                pickles = [archive.read(name) for name in archive.namelist() if name.endswith("/data.pkl")]
        elif PICKLE_SIGNATURE.match(head):
            pickles = [file] * LEGACY_PICKLES  # each pass of genops reads the file's next pickle
        else:
            return []
        return [
            arg for pickled in pickles for _, arg, _ in pickletools.genops(pickled) if isinstance(arg, str)
        ]


def card_summary(card: dict[str, Any]) -> str:
    """A short line from a model card: size, training steps, validation score beside the input's, and
    whether --strength auto has a calibration to use."""
    parts = []
    if "channels" in card and "blocks" in card:
        parts.append(f"{card['channels']} channels x {card['blocks']} blocks")
    if isinstance(card.get("steps"), int):
        parts.append(f"{card['steps']:,} steps")
    if all(isinstance(card.get(key), float | int) for key in ("val_psnr", "val_identity_psnr")):
        parts.append(f"validation {card['val_psnr']:.2f} dB (input {card['val_identity_psnr']:.2f} dB)")
    if "auto_strength" in card:
        parts.append("strength calibrated")
    return ", ".join(parts)
