"""Find, load and save RECNet weights: local files, bundled models and models on the Hugging Face Hub.

A ``--model`` value is, in this order of precedence:

1. an existing file: ``.safetensors`` (this project's format, with a model card beside it) or PyTorch
   checkpoints: the authors' ``.pth``/``.pt``, a Lightning ``.ckpt``, a ``.bin``, a ``.pth.tar``;
2. a bundled model name: ``weights/<name>.safetensors`` at the repository root (the environment variable
   ``RECNET_WEIGHTS_DIR`` names another folder); without ``--model`` the default ``recnet-mixed`` is used;
   an existing folder otherwise is an error (a run folder is not a model: name its model file);
3. a Hub reference ``org/name[@revision][:file]``; without ``:file`` the repository's ``model.safetensors``
   (and its card ``model.json``, when present) is used. Downloads go through ``huggingface_hub`` and its
   cache, so ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ``HF_TOKEN`` and ``HF_ENDPOINT`` apply, and a
   cached model loads without network.

The architecture (channels, blocks) is read from the state dict's shapes and key names, as spandrel does, and
the weights then load strictly: a missing, unexpected or misshapen tensor is an error naming the key.

``locate`` resolves a ``--model`` value, ``hub`` fetches from the Hub, ``formats`` reads weight files,
``card`` reads model cards, ``save`` writes a model with its card, ``listing`` finds the models ``recnet
models`` lists; this module loads a model and re-exports what the commands use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recnet_cli.weights.card import card_calibration, load_with_card
from recnet_cli.weights.errors import ModelNotFoundError, WeightsError
from recnet_cli.weights.formats import is_safetensors
from recnet_cli.weights.hub import cached_copy_damaged, download, unfetchable_copy
from recnet_cli.weights.listing import ModelEntry, models_to_list
from recnet_cli.weights.locate import ModelLocation, resolve
from recnet_cli.weights.save import foreign_card, model_files, save_model

# PyTorch takes 1.5 s to import on 2 CPU cores: resolving, downloading and listing models do without it, and
# the functions that build or read tensors import it when called.
if TYPE_CHECKING:
    from recnet_cli.autostrength import StrengthCalibration
    from recnet_cli.model import RECNet

__all__ = [
    "LoadedModel",
    "ModelEntry",
    "ModelNotFoundError",
    "WeightsError",
    "download",
    "foreign_card",
    "is_safetensors",
    "load_model",
    "model_files",
    "models_to_list",
    "save_model",
    "strength_calibration",
]


@dataclass
class LoadedModel:
    model: RECNet  # float32, eval mode, on the CPU
    source: str  # what to show the user (see ``ModelLocation``)
    path: Path
    card: dict[str, Any] = field(default_factory=dict)
    reference: str = ""  # a --model value naming these very weights from any folder (see ``ModelLocation``)


def load_model(ref: str | None = None) -> LoadedModel:
    """Resolve ``--model`` (None: the bundled default) and load it: float32, eval mode, CPU. A Hub model
    that fails to load because the cache's copy of it or its card is not the Hub's (cut short by a disk
    fault) is fetched again (``download``) and loaded from the new copy."""
    location = resolve(ref)
    try:
        return load_location(location)
    except WeightsError as error:
        if location.pinned is None:
            raise  # not the Hub's
        damaged = cached_copy_damaged(location.pinned, location.path)
        if damaged is None:  # offline, or the Hub out of reach
            raise unfetchable_copy(error, location.path) from None
        if not damaged:
            raise  # the Hub's own file
    download(location.reference)  # the same commit's file, fetched again in place of the damaged copy
    return load_location(location)


def load_location(location: ModelLocation) -> LoadedModel:
    model, card = load_with_card(location.path, location.source)
    return LoadedModel(model, location.source, location.path, card, location.reference)


def strength_calibration(loaded: LoadedModel) -> StrengthCalibration | None:
    """The card's ``auto_strength`` calibration (see ``recnet calibrate``); None when it has none."""
    return card_calibration(loaded.card, loaded.source)
