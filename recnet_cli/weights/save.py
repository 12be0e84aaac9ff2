"""Saving a model in this project's format: .safetensors, with its card as .json and .md beside it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recnet_cli.atomicfile import bears_mark, changed_since_written, write_atomic
from recnet_cli.files import describe_os_error, file_kind, nearest_existing
from recnet_cli.weights.card import ARCHITECTURE, architecture_card, flat_fields, readable
from recnet_cli.weights.errors import WeightsError
from recnet_cli.weights.formats import is_safetensors, safetensors_header
from recnet_cli.weights.locate import weights_dir

# PyTorch takes 1.5 s to import on 2 CPU cores: resolving, downloading and listing models do without it, and
# the functions that build or read tensors import it when called.
if TYPE_CHECKING:
    from recnet_cli.model import RECNet


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
        card_md: card_bytes(card_markdown(path, full_card)),
    }
    if not overwrite and (existing := next(filter(os.path.lexists, files), None)):
        raise WeightsError(f"{path}: not written, since {existing} exists (use --overwrite)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for file, data in files.items():
            try:  # the cards marked: one edited since is the user's (``edited_card``)
                write_atomic(file, data, overwrite=overwrite, marked=file != weights)
            except FileExistsError:  # made between the check and the write
                raise WeightsError(f"{path}: not written in full, since {file} exists") from None
    except OSError as error:
        raise WeightsError(f"{path}: cannot write the model ({describe_os_error(error)})") from error


def model_files(path: Path) -> tuple[Path, Path, Path]:
    """The files ``save_model`` writes for the model ``path``: it, and its card as ``.json`` and ``.md``."""
    return path, path.with_suffix(".json"), path.with_suffix(".md")


def foreign_card(path: Path) -> Path | None:
    """A card beside the model ``path`` that recnet did not write (a file of the user's with its name, or a
    link), which even --overwrite keeps: the model's own file is the one -o names; None when there is none."""
    return next((card for card in model_files(path)[1:] if os.path.lexists(card) and not is_card(card)), None)


def edited_card(path: Path) -> Path | None:
    """A card of recnet's beside the model ``path`` that was changed since recnet wrote it (a note added, a
    field changed), which even --overwrite keeps: one whose mark says so (``changed_since_written``); or a
    JSON card without a mark (from a recnet that marked no cards, or saved by an editor that replaces the
    file) whose fields are not those the model file holds. None when there is none."""
    weights, card_json, card_md = model_files(path)
    if edited := next((card for card in (card_json, card_md) if changed_since_written(card)), None):
        return edited
    if not is_card(card_json) or bears_mark(card_json) or not is_saved_model(weights):
        return None
    fields = flat_fields(json.loads(card_json.read_bytes()))
    return card_json if fields != safetensors_header(weights)[1] else None


def is_saved_model(path: Path) -> bool:
    """Whether ``path`` is a model as ``save_model`` writes them (its metadata names the architecture): not a
    training checkpoint, another network's weights or any other file, which -o may name by mistake."""
    if os.path.islink(path) or not os.path.isfile(path):  # a FIFO would block the read; a link is kept
        return False
    try:
        return safetensors_header(path)[1].get(ARCHITECTURE[0]) == "RECNet"
    except WeightsError:
        return False


def is_card(path: Path) -> bool:
    """Whether ``path`` is a card as ``save_model`` writes them: JSON with the architecture's fields, or the
    card for people, which starts with the model's name and how to use it."""
    if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > CARD_SIZE_LIMIT:
        return False
    try:
        data = path.read_bytes()
        if path.suffix.lower() == ".md":
            return data.startswith(card_bytes(card_opening(path.stem)))
        card = json.loads(data)
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return False
    return isinstance(card, dict) and card.get(ARCHITECTURE[0]) == "RECNet"


CARD_SIZE_LIMIT = 2**20  # a card of a few kilobytes, with a calibration's numbers; a larger file is another


def card_bytes(text: str) -> bytes:
    """The card for people (``card_markdown``) as written: UTF-8, a name's undecodable bytes escaped."""
    return text.encode("utf-8", "backslashreplace")


def card_opening(name: str) -> str:
    """How the card for people of the model ``name`` begins: its heading, then the start of how to use it."""
    return f"# {name}\n\nRECNet weights "


def card_markdown(path: Path, card: dict[str, Any]) -> str:
    """The card for people of the model saved at ``path``, starting with how to use it."""
    name = path.stem
    if path.parent.resolve() == weights_dir().resolve():
        usage = f"bundled with `recnet`: use them with `--model {name}`."
    else:
        usage = f"for `recnet`: use them with `--model path/to/{path.name}` (this file's path)."
    lines = [card_opening(name) + usage, ""]
    for key, value in card.items():
        if isinstance(value, dict):
            lines.append(f"- **{key}**:")
            lines.extend(f"  - {sub_key}: {readable(sub_value)}" for sub_key, sub_value in value.items())
        else:
            lines.append(f"- **{key}**: {value}")
    return "\n".join(lines) + "\n"
