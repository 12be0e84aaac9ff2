"""Where a --model value points: a file, a bundled model, or a Hub reference (downloaded first)."""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from recnet_cli.files import file_kind
from recnet_cli.weights.errors import ModelNotFoundError, WeightsError
from recnet_cli.weights.formats import (
    MODEL_SUFFIXES,
    is_model_file_name,
    model_stem,
    model_suffix,
    unknown_file_type,
)
from recnet_cli.weights.hub import (
    HUB_DEFAULT_FILENAME,
    HUB_REF_FORMAT,
    HubRef,
    fetch_from_hub,
    hub_ref_of_address,
    hub_ref_problem,
    not_a_hub_ref,
    parse_hub_ref,
)
from recnet_cli.wording import listed

WEIGHTS_DIR_ENV = "RECNET_WEIGHTS_DIR"


DEFAULT_MODEL = "recnet-mixed"


@dataclass(frozen=True)
class ModelLocation:
    path: Path
    source: str  # what to show the user: the path, the bundled name or the Hub reference
    # A --model value that names these very weights from any folder (what --json gives): a file's absolute
    # path, a bundled model's name, a Hub reference pinned to the commit fetched
    reference: str
    pinned: HubRef | None = None  # a Hugging Face cache's file: the reference it was fetched by, pinned


def weights_dir() -> Path:
    """The bundled models' folder, or ``$RECNET_WEIGHTS_DIR``: ``weights/`` of the source checkout recnet
    runs from (installed or not: not another checkout's, that an editable install would give), or the
    package data of an installed wheel."""
    override = os.environ.get(WEIGHTS_DIR_ENV)
    if override:
        return Path(override)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() or importlib.util.find_spec(
        "recnet_cli.weights_bundle"
    ) is None:
        return checkout / "weights"
    return Path(str(importlib.resources.files("recnet_cli.weights_bundle")))


def weights_dir_problem() -> str | None:
    """Why the folder RECNET_WEIGHTS_DIR names holds no models recnet can list: it is no folder (mistyped,
    or a model file named in place of its folder); None where it is one, or the variable is not set."""
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    if not folder or os.path.isdir(folder):
        return None
    what = "no such folder" if not os.path.lexists(folder) else f"{file_kind(folder)}, not a folder"
    return f"{WEIGHTS_DIR_ENV} names {folder}: {what}, so no bundled models are read"


def set_by_environment() -> str:
    """``, in the folder RECNET_WEIGHTS_DIR names``, where it names the bundled models' folder; else
    nothing."""
    return f", in the folder {WEIGHTS_DIR_ENV} names" if os.environ.get(WEIGHTS_DIR_ENV) else ""


def bundled_path(name: str) -> Path:
    return weights_dir() / f"{name}{MODEL_SUFFIXES[0]}"


def bundled_model(ref: str) -> Path | None:
    """The file of the bundled model that ``ref`` names (a bare name, such as recnet-mixed), or None: a path
    (``/tmp/mine``, ``../x``) names no bundled model, even where a file of that name is there."""
    path = bundled_path(ref)
    return path if Path(ref).name == ref and os.path.isfile(path) else None


def bundled_files() -> list[Path]:
    return sorted(weights_dir().glob(f"*{MODEL_SUFFIXES[0]}"))


def resolve(ref: str | None) -> ModelLocation:
    """Where the model named by ``--model`` is on disk, downloading a Hub reference first."""
    if ref is None:
        return default_model()
    path = Path(ref)
    if os.path.isfile(path):  # os.path's tests say False for a name too long; Path's raise
        return ModelLocation(path, ref, os.path.abspath(path))
    if bundled := bundled_model(ref):
        return ModelLocation(bundled, f"{ref} (bundled)", ref)
    if os.path.isdir(path):
        raise ModelNotFoundError(f"{ref}: a folder, not a model file{model_files_hint(path)}")
    hub_ref = parse_hub_ref(ref)
    if hub_ref is not None:
        try:
            cached = fetch_from_hub(hub_ref)
        except WeightsError as error:
            if file := next(filter(os.path.isfile, (ref + suffix for suffix in MODEL_SUFFIXES)), None):
                raise type(error)(f"{error}; to use the file {file}, name it with its extension") from error
            raise
        pinned = pinned_reference(hub_ref, cached)
        return ModelLocation(cached, ref, pinned.text, pinned)
    if hub_ref_of_address(ref):
        raise ModelNotFoundError(not_a_hub_ref(ref))
    if is_model_file_name(path):
        # what was meant may be beside it: a run's checkpoint.safetensors, before its final.safetensors
        stem = model_stem(path)
        named = f" (the bundled model's name is {stem})" if bundled_model(stem) else ""
        folder = "its folder" if path.parent != Path() else "the current folder"
        raise ModelNotFoundError(f"{ref}: file not found{named or model_files_hint(path.parent, folder)}")
    bundled = ", ".join(path.stem for path in bundled_files()) or f"none yet{set_by_environment()}"
    raise ModelNotFoundError(
        f"{ref}: not a model file, a bundled model name (bundled: {bundled})"
        f" or a Hub reference ({HUB_REF_FORMAT})"
    )


def pinned_reference(ref: HubRef, cached: Path) -> HubRef:
    """``org/name@commit[:file]``: the Hub reference ``ref`` pinned to the commit of its cached file (in the
    cache's ``snapshots/<commit>/<file>``)."""
    commit = cached.parents[len(PurePosixPath(ref.filename).parts) - 1].name
    file = "" if ref.filename == HUB_DEFAULT_FILENAME else f":{ref.filename}"
    return replace(ref, text=f"{ref.repo_id}@{commit}{file}", revision=commit)


def reference_problem(ref: str) -> str | None:
    """Why ``--model`` names no model, found without downloading or loading one (for --dry-run): None when
    it names a model file of a type recnet reads or a bundled model, or a Hub reference that may name one
    (not looked up: ``hub_ref_problem``)."""
    if not os.path.exists(ref) and (hub_ref := parse_hub_ref(ref)) is not None:
        return hub_ref_problem(hub_ref)
    try:
        suffix = model_suffix(resolve(ref).path)
    except ModelNotFoundError as error:
        return str(error)
    return None if suffix in MODEL_SUFFIXES else f"{ref}: {unknown_file_type(suffix)}"


def model_files_hint(folder: Path, holder: str = "it") -> str:
    """`` (it holds a.safetensors, b.pth)``: the model files in ``folder``, if any, said of ``holder``: "it"
    for a folder given as ``--model``, "its folder" or "the current folder" for a model file not there."""
    try:
        names = sorted(path.name for path in folder.iterdir() if is_model_file_name(path))
    except OSError:  # an unreadable folder: the error says enough without the hint
        return ""
    return f" ({holder} holds {listed(names)})" if names else ""


def default_model() -> ModelLocation:
    path = bundled_path(DEFAULT_MODEL)
    if not path.is_file():
        missing = f"{path} does not exist{set_by_environment()}"
        raise ModelNotFoundError(
            f"no bundled default model is present yet ({missing}); pass one with --model "
            "path/to/model.safetensors or --model org/name (a Hugging Face Hub repository)"
        )
    return ModelLocation(path, f"{DEFAULT_MODEL} (bundled)", DEFAULT_MODEL)
