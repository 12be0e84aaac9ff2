"""The models ``recnet models`` lists: bundled ones and RECNet models in the Hugging Face cache."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from huggingface_hub import HFCacheInfo, constants, scan_cache_dir
from huggingface_hub.errors import CacheNotFound
from rich.filesize import decimal

from recnet_cli.files import describe_os_error
from recnet_cli.weights.card import card_calibration, card_summary, load_with_card, read_card
from recnet_cli.weights.errors import WeightsError
from recnet_cli.weights.formats import is_model_file_name, looks_like_recnet
from recnet_cli.weights.hub import HUB_DEFAULT_FILENAME, hub_cache_problem
from recnet_cli.weights.locate import bundled_files


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


def bundled_models() -> list[ModelEntry]:
    return [bundled_entry(path) for path in bundled_files()]


def bundled_entry(path: Path) -> ModelEntry:
    """A bundled model's entry; a link to nothing or a folder by a model's name is listed as damaged."""
    if not path.is_file():
        what = "a link to nothing" if path.is_symlink() and not path.exists() else "not a file"
        return ModelEntry(path.stem, "bundled", path, 0, problem=f"{path}: {what}")
    return with_card(ModelEntry(path.stem, "bundled", path, path.stat().st_size))


def with_card(entry: ModelEntry) -> ModelEntry:
    """The entry with its card's summary, or with the problem that keeps the card from being read or used
    (a damaged strength calibration)."""
    try:
        card = read_card(entry.path)
        card_calibration(card, str(entry.path))
        return replace(entry, summary=card_summary(card))
    except WeightsError as error:
        return replace(entry, problem=str(error))


def models_to_list(load: bool = True) -> tuple[list[ModelEntry], str | None]:
    """``recnet models``: the bundled models, then the RECNet files in the Hugging Face cache, and None; or,
    when that cache cannot be used (a setting naming a file: ``hub_cache_problem``), the bundled models
    and that problem, for a note. A damaged model or card is listed with its problem, and the others all
    the same; with ``load``, a model that --model cannot load too (``loadable``: seconds, with PyTorch)."""
    problem = hub_cache_problem()
    entries = bundled_models() + ([] if problem else cached_hub_models())
    return [loadable(entry) for entry in entries] if load else entries, problem


def loadable(entry: ModelEntry) -> ModelEntry:
    """The entry, or where nothing else was found wrong with it, with why --model cannot load its weights
    (NaN values in them, a checkpoint of another kind, a card of another model), as ``recnet download``
    said when it fetched them. An entry without a card (a training checkpoint, a .pth) gets the size of
    the network its weights hold."""
    if entry.problem is not None:
        return entry
    try:
        model = load_with_card(entry.path, str(entry.path))[0]
    except WeightsError as error:
        return replace(entry, problem=str(error))
    if entry.summary:
        return entry
    size = card_summary({"channels": model.channels, "blocks": model.num_blocks})
    return replace(entry, summary=f"{size}, no model card")


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
            elif not file.exists() and is_model_file_name(file):
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
