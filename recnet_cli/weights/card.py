"""Model cards: the fields that describe a model, in the .json beside it or in its safetensors metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recnet_cli.files import describe_os_error
from recnet_cli.weights.errors import WeightsError
from recnet_cli.weights.formats import (
    TRAINING_CHECKPOINT_KEY,
    is_safetensors,
    load_weights,
    safetensors_header,
)

# PyTorch takes 1.5 s to import on 2 CPU cores: resolving, downloading and listing models do without it, and
# the functions that build or read tensors import it when called.
if TYPE_CHECKING:
    from recnet_cli.autostrength import StrengthCalibration
    from recnet_cli.model import RECNet


ARCHITECTURE = ("architecture", "channels", "blocks", "parameters")  # card fields save_model fills in


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


def check_card_matches(card: dict[str, Any], model: RECNet, model_path: Path, label: str) -> None:
    """Refuses a card that describes another model than the weights (their channels or blocks): a card of
    another model, whose strength calibration is that model's."""
    held = {"channels": model.channels, "blocks": model.num_blocks}
    said = {field: card[field] for field in held if field in card}
    if all(str(value) == str(held[field]) for field, value in said.items()):  # a hand-written "8" too
        check_calibration_is_the_files(card, model_path, label)
        return
    card_path = model_path.with_suffix(".json")
    beside = card_path.is_file()
    calibration = " (its strength calibration is that model's)" if CALIBRATION_FIELD in card else ""
    raise WeightsError(
        f"{label}: its card ({card_path.name if beside else 'in the file'}) describes "
        f"{' x '.join(f'{value} {field}' for field, value in said.items())}, but the weights are "
        f"{model.channels} channels x {model.num_blocks} blocks: the card of another model{calibration}; "
        + ("replace or remove it" if beside else "save the model again")
    )


def check_calibration_is_the_files(card: dict[str, Any], model_path: Path, label: str) -> None:
    """Refuses a card beside weights that recnet saved whose strength calibration is not the one in their
    file: the card of other weights (calibrated again and shared without its new card, say)."""
    if not is_safetensors(model_path) or not model_path.with_suffix(".json").is_file():
        return
    own = card_fields(safetensors_header(model_path)[1])
    said, held = card.get(CALIBRATION_FIELD), own.get(CALIBRATION_FIELD)
    as_text = json.dumps(said, sort_keys=True) == json.dumps(held, sort_keys=True)  # a NaN is as written
    if own.get(ARCHITECTURE[0]) != "RECNet" or said == held or as_text:  # 1 and 1.0 alike
        return
    if said is None:
        differs = "no strength calibration, where the file holds one"
    elif held is not None:
        differs = "another strength calibration than the file"
    else:
        differs = "a strength calibration, where the file holds none"
    raise WeightsError(
        f"{label}: its card ({model_path.with_suffix('.json').name}) holds {differs}: the card of other "
        "weights; replace it with the card saved with them, or remove it (the file's own card is then read)"
    )


def load_with_card(model_path: Path, label: str) -> tuple[RECNet, dict[str, Any]]:
    """A weights file and its card, as ``--model`` loads them (``check_card_matches``)."""
    model = load_weights(model_path, label)
    card = read_card(model_path)
    check_card_matches(card, model, model_path, label)
    return model, card


CALIBRATION_FIELD = "auto_strength"  # the card's strength calibration (``recnet calibrate``); its scores too


def card_calibration(card: dict[str, Any], source: str) -> StrengthCalibration | None:
    """The card's ``auto_strength`` calibration (see ``recnet calibrate``); None when it has none; a
    WeightsError naming ``source`` when it is damaged."""
    if CALIBRATION_FIELD not in card:
        return None
    from recnet_cli.autostrength import CalibrationError, StrengthCalibration

    try:
        return StrengthCalibration.from_card(card[CALIBRATION_FIELD])
    except CalibrationError as error:
        raise WeightsError(f"{source}: {error}") from None


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


def readable(value: object) -> str:
    """A card value for people: a long list of numbers (a calibration's weights) only by its length, a
    mapping (a calibration's scores on one kind of pair) as its names and values."""
    if isinstance(value, list) and len(value) > 8:
        return f"{len(value)} numbers (in the .json card)"
    if isinstance(value, dict):
        return ", ".join(f"{key} {readable(item)}" for key, item in value.items())
    return str(value)


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
    if CALIBRATION_FIELD in card:
        parts.append("strength calibrated")
    return ", ".join(parts)
