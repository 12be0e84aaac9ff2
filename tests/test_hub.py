"""Hub references, for real: huggingface_hub downloads from a fake Hub on 127.0.0.1 into a temporary cache."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import huggingface_hub
import huggingface_hub.file_download
import pytest
import torch
from fake_hub import FakeHub, commit_of, error_response, point_huggingface_hub_at, set_offline
from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError
from safetensors.torch import save as safetensors_bytes

from recnet_cli.model import RECNet
from recnet_cli.weights import (
    LoadedModel,
    ModelNotFoundError,
    WeightsError,
    download,
    load_model,
    models_to_list,
    save_model,
    strength_calibration,
)
from recnet_cli.weights import hub as hub_module
from recnet_cli.weights.hub import HubRef, joined_hub_ref
from recnet_cli.weights.locate import reference_problem
from recnet_cli.wording import listed

REPO = "acme/recnet-test"
REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN_ADVICE = "set HF_TOKEN to a token that can read it, or log in with hf auth login"
BAD_TOKEN = "hf_expired_token"


@pytest.fixture
def hf_home(tmp_path: Path) -> Path:
    return tmp_path / "hf-home"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, hf_home: Path) -> Iterator[FakeHub]:
    with FakeHub() as hub:
        point_huggingface_hub_at(monkeypatch, hub.url, hf_home)
        yield hub


def seeded_model(seed: int) -> RECNet:
    torch.manual_seed(seed)
    return RECNet(4, 2).eval()


def publish(
    hub: FakeHub,
    model: RECNet,
    folder: Path,
    filename: str = "model.safetensors",
    card: dict[str, object] | None = None,
) -> None:
    """Save ``model`` with save_model and put it on ``acme/recnet-test`` (with its JSON card, given one)."""
    revision = folder.name
    path = folder / filename
    save_model(model, path, card or {})
    hub.add(REPO, filename, path.read_bytes(), revision)
    if card:
        card_path = path.with_suffix(".json")
        hub.add(REPO, card_path.name, card_path.read_bytes(), revision)


@pytest.fixture
def published(hub: FakeHub, tmp_path: Path) -> dict[str, RECNet]:
    """The models on ``acme/recnet-test``, by the names the tests use.

    main: model.safetensors with its card model.json, other.safetensors without a card;
    tag v1: model.safetensors, and an authors' checkpoint extra.pth.
    """
    models = {name: seeded_model(seed) for seed, name in enumerate(("main", "other", "v1", "v1-extra"))}
    publish(hub, models["main"], tmp_path / "main", card={"training_data": "main data"})
    publish(hub, models["other"], tmp_path / "main", "other.safetensors")
    publish(hub, models["v1"], tmp_path / "v1")
    checkpoint = tmp_path / "v1" / "extra.pth"
    torch.save({"params": {f"module.{k}": v for k, v in models["v1-extra"].state_dict().items()}}, checkpoint)
    hub.add(REPO, "extra.pth", checkpoint.read_bytes(), revision="v1")
    return models


def assert_same_model(loaded: LoadedModel, expected: RECNet) -> None:
    image = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.equal(loaded.model(image), expected(image))


def load_error(ref: str, kind: type[WeightsError] = WeightsError) -> str:
    with pytest.raises(kind) as caught:
        load_model(ref)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("ref", "model", "revision", "filename"),
    [
        (REPO, "main", "main", "model.safetensors"),
        (f"{REPO}@v1", "v1", "v1", "model.safetensors"),
        (f"{REPO}:other.safetensors", "other", "main", "other.safetensors"),
        (f"{REPO}@v1:extra.pth", "v1-extra", "v1", "extra.pth"),
    ],
)
def test_load_model_downloads_from_the_hub(
    hub: FakeHub,
    published: dict[str, RECNet],
    hf_home: Path,
    ref: str,
    model: str,
    revision: str,
    filename: str,
) -> None:
    loaded = load_model(ref)

    assert_same_model(loaded, published[model])
    assert loaded.source == ref
    assert loaded.path.parent.name == commit_of(REPO, revision)
    pinned = f"{REPO}@{commit_of(REPO, revision)}" + (
        "" if filename == "model.safetensors" else f":{filename}"
    )
    assert loaded.reference == pinned  # what --json gives, naming these very weights
    assert_same_model(load_model(pinned), published[model])
    assert loaded.path.is_relative_to(hf_home / "hub")
    assert f"GET /{REPO}/resolve/{revision}/{filename}" in hub.requests


def test_a_model_in_a_folder_of_its_repository_is_pinned_by_its_path(
    hub: FakeHub, published: dict[str, RECNet], tmp_path: Path
) -> None:
    commit = hub.add(
        REPO, "runs/best/model.safetensors", (tmp_path / "main" / "model.safetensors").read_bytes()
    )
    loaded = load_model(f"{REPO}:runs/best/model.safetensors")
    assert loaded.reference == f"{REPO}@{commit}:runs/best/model.safetensors"
    assert_same_model(load_model(loaded.reference), published["main"])


def test_card_comes_from_the_repository(hub: FakeHub, published: dict[str, RECNet]) -> None:
    assert load_model(REPO).card["training_data"] == "main data"
    assert load_model(f"{REPO}:other.safetensors").card["channels"] == 4  # no other.json: the metadata


def test_cached_model_loads_with_the_hub_down_and_offline(
    hub: FakeHub, published: dict[str, RECNet], monkeypatch: pytest.MonkeyPatch
) -> None:
    load_model(REPO)
    hub.stop()

    waits = waits_between_retries(monkeypatch)
    loaded = load_model(REPO)
    assert waits == []  # no retries with back-off (they take ~25 s)
    assert_same_model(loaded, published["main"])
    set_offline(monkeypatch, True)
    loaded = load_model(REPO)
    assert_same_model(loaded, published["main"])
    assert loaded.card["training_data"] == "main data"


def test_a_cached_commit_loads_by_the_short_hash_that_models_shows(
    hub: FakeHub, published: dict[str, RECNet], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `recnet models` shows `hub cache @ 0123abcd`; offline, only the whole hash found the cached model
    commit = commit_of(REPO, "v1")
    load_model(f"{REPO}@v1")
    hub.stop()
    set_offline(monkeypatch, True)
    shown = next(entry for entry in models_to_list()[0] if entry.revision == commit).row()[1]
    assert shown == f"hub cache @ {commit[:8]}"
    for short in (commit[:8], commit[:7]):
        assert_same_model(load_model(f"{REPO}@{short}"), published["v1"])
    assert "not in the local cache" in load_error(f"{REPO}@{commit[:6]}", ModelNotFoundError)  # too short
    # A hash that begins two cached commits is refused, as git refuses it (offline, it said "not cached")
    other = commit[:8] + ("1" if commit[8] == "0" else "0") * 32  # parts from it at the 9th character
    (Path(constants.HF_HUB_CACHE) / "models--acme--recnet-test" / "snapshots" / other).mkdir()
    short, both = commit[:7], listed(sorted([commit[:12], other[:12]]))
    assert load_error(f"{REPO}@{short}") == (
        f"{REPO}@{short}: {short} begins 2 commits in the cache ({both}); give more of its characters"
    )
    assert_same_model(load_model(f"{REPO}@{commit[:9]}"), published["v1"])


def test_hub_down_and_nothing_cached_fails_fast_with_one_line(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.stop()

    waits = waits_between_retries(monkeypatch)
    message = load_error(REPO, ModelNotFoundError)

    assert waits == []  # no retries with back-off (they take ~25 s)
    assert message.startswith(
        f"{REPO}: cannot reach the Hub at {hub.url} (connection refused) and the model is not in the local "
        "cache"
    )
    assert message.endswith("; download it once while online, and later runs find it there offline")


def test_a_setting_that_keeps_every_request_in_says_which(
    hub: FakeHub, hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both said "cannot reach the Hub" and to download the model once online, which they would not let happen
    not_cached = f"and the model is not in the local cache ({hf_home / 'hub'})"
    monkeypatch.setenv("HF_TOKEN", "hf_abc\u2026")  # a token pasted with an ellipsis
    assert load_error(REPO, ModelNotFoundError) == (
        f"{REPO}: cannot reach the Hub at {hub.url} (the Hub token holds a character a request cannot carry: "
        f"check HF_TOKEN or log in again) {not_cached}"
    )
    monkeypatch.delenv("HF_TOKEN")
    address = hub.url.removeprefix("http://")
    point_huggingface_hub_at(monkeypatch, address, hf_home)
    assert load_error(REPO, ModelNotFoundError) == (
        f"{REPO}: cannot reach the Hub at {address} (HF_ENDPOINT lacks http:// or https://) {not_cached}"
    )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((403, {"Content-Length": "0"}, b""), "the Hub at {url} answered HTTP 403"),
        ((503, {"Content-Length": "0"}, b""), "the Hub at {url} answered HTTP 503"),  # not out of reach
        (
            (200, {"Content-Length": "6", "Content-Type": "text/html"}, b"<html>"),  # a captive portal
            "{url} does not answer as a Hugging Face Hub (check HF_ENDPOINT and any proxy)",
        ),
    ],
    ids=["forbidden", "server-error", "not-a-hub"],
)
def test_a_hub_that_answers_without_the_model_is_not_said_to_be_out_of_reach(
    hub: FakeHub, hf_home: Path, answer: tuple[int, dict[str, str], bytes], reason: str
) -> None:
    hub.respond = lambda path, authorization: answer  # type: ignore[method-assign]

    message = load_error(REPO, ModelNotFoundError)

    not_cached = f"and the model is not in the local cache ({hf_home / 'hub'})"
    assert message == f"{REPO}: {reason.format(url=hub.url)} {not_cached}"


def test_offline_and_nothing_cached_sends_no_request(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    set_offline(monkeypatch, True)

    message = load_error(REPO, ModelNotFoundError)

    reason = "HF_HUB_OFFLINE is set and the model is not in the local cache (unset it to download the model)"
    assert message == f"{REPO}: {reason}"
    assert hub.requests == []


def test_a_file_named_as_the_hub_reference_with_an_extension_is_suggested(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --model runs/p (or train --init runs/p) reads as the Hub's runs/p: runs/p.safetensors may be meant
    set_offline(monkeypatch, True)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acme").mkdir()
    save_model(RECNet(), tmp_path / "acme" / "calibrated.safetensors", {})
    message = load_error("acme/calibrated", ModelNotFoundError)
    assert message.endswith(
        "not in the local cache (unset it to download the model); to use the file "
        "acme/calibrated.safetensors, name it with its extension"
    )
    assert load_error("acme/other", ModelNotFoundError).endswith("(unset it to download the model)")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("acme/missing", f"acme/missing: no such repository on the Hub (if it is private, {TOKEN_ADVICE})"),
        (f"{REPO}@v9", f"{REPO}@v9: revision v9 not found in {REPO} on the Hub"),
        (
            f"{REPO}:nope.safetensors",
            f"{REPO}:nope.safetensors: file nope.safetensors not found in {REPO} on the Hub",
        ),
        (  # the revision named where the file is not (it said only the repository)
            f"{REPO}@v1:other.safetensors",
            f"{REPO}@v1:other.safetensors: file other.safetensors not found in {REPO}@v1 on the Hub",
        ),
        (
            "acme/checkpoints-only",
            "acme/checkpoints-only: file model.safetensors not found in acme/checkpoints-only on the Hub (for"
            " another of its files: acme/checkpoints-only:FILE)",
        ),
    ],
)
def test_hub_refusals_are_one_line_errors(
    hub: FakeHub, published: dict[str, RECNet], ref: str, message: str
) -> None:
    hub.add("acme/checkpoints-only", "a.pth", b"")
    assert load_error(ref, ModelNotFoundError) == message
    assert hub.requests


@pytest.mark.parametrize(
    ("typed", "ref"),
    [
        ("https://huggingface.co/acme/recnet-test", REPO),
        ("https://huggingface.co/acme/recnet-test/", REPO),
        ("hf://acme/recnet-test", REPO),
        ("https://huggingface.co/acme/recnet-test/blob/main/model.safetensors", REPO),
        (
            "https://huggingface.co/acme/recnet-test/resolve/v1/extra.pth?download=true",
            f"{REPO}@v1:extra.pth",
        ),
        ("https://hf.co/acme/recnet-test/tree/v1", f"{REPO}@v1"),
        ("huggingface.co/acme/recnet-test", REPO),
        ("hf://acme/recnet-test/model.safetensors", REPO),
        ("hf://acme/recnet-test@v1/extra.pth", f"{REPO}@v1:extra.pth"),
        (
            "https://huggingface.co/acme/recnet-test/resolve/refs%2Fpr%2F1/extra.pth",
            f"{REPO}@refs/pr/1:extra.pth",
        ),
        ("https://huggingface.co/acme/recnet-test/blob/main/my%20model.pth", f"'{REPO}:my model.pth'"),
    ],
)
def test_a_hub_address_is_answered_with_the_reference_to_type(typed: str, ref: str) -> None:
    # They were "not a model file, a bundled model name or a Hub reference", or "file not found"
    assert load_error(typed, ModelNotFoundError) == f"{typed}: name a Hub model as {ref}, not by its address"
    with pytest.raises(WeightsError) as caught:
        download(typed)
    assert str(caught.value) == f"{typed}: name a Hub model as {ref}, not by its address"


def test_a_file_typed_before_its_revision_is_shown_in_order() -> None:
    message = f"{REPO}:extra.pth@v1: the revision goes before the file: {REPO}@v1:extra.pth"
    assert load_error(f"{REPO}:extra.pth@v1") == message  # it was "unknown model file type '.pth@v1'"
    # A file whose name holds an @ is a file's name (a checkpoint's step, say)
    named = hub_module.parse_hub_ref(f"{REPO}:ckpt@5000.safetensors")
    assert named is not None and hub_module.hub_ref_problem(named) is None


def test_a_file_with_an_at_after_a_named_revision_is_not_said_to_be_out_of_order() -> None:
    # The revision is already named: suggesting org/name@v2:extra.pth would drop the v1 that was typed
    assert load_error(f"{REPO}@v1:extra.pth@v2") == (
        f"{REPO}@v1:extra.pth@v2: unknown model file type '.pth@v2' (expected .safetensors, .pth, .pt, .ckpt,"
        " .bin, .pth.tar)"
    )


def test_a_cache_that_cannot_be_used_is_named_as_other_errors_name_a_file(
    hub: FakeHub, published: dict[str, RECNet], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    notes = cache / "models--acme--recnet-test"  # where the repository's folder should be made
    cache.mkdir()
    notes.write_text("mine")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    assert load_error(REPO) == f"{REPO}: download failed ({notes / 'blobs'}: not a folder)"


def test_a_cache_that_is_a_file_is_named_before_any_request(
    hub: FakeHub, tmp_path: Path, monkeypatch
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(notes))
    reason = f"the Hugging Face cache {notes} is a file, not a folder; set HF_HUB_CACHE to one"
    assert load_error(REPO) == f"{REPO}: {reason}"
    assert hub.requests == [] and notes.read_text() == "mine"


@pytest.mark.parametrize("typed", ["{notes}", "~/notes.txt"])  # huggingface_hub expands the ~
def test_hf_home_naming_a_file_is_named_before_any_request(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, typed: str
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", typed.format(notes=notes))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)  # HF_HOME alone, as a user sets it
    for name, path in [
        ("HF_HOME", notes),
        ("HF_HUB_CACHE", notes / "hub"),
        ("HF_TOKEN_PATH", notes / "token"),
    ]:
        monkeypatch.setattr(constants, name, str(path))  # as huggingface_hub derives them from HF_HOME

    reason = f"HF_HOME {notes} is a file, not a folder, so the Hugging Face cache cannot be read there"
    assert load_error(REPO) == f"{REPO}: {reason}; set HF_HOME to a folder"
    assert hub.requests == [] and notes.read_text() == "mine"


def test_hf_hub_cache_under_a_file_names_hf_hub_cache_as_the_setting_to_change(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    cache = notes / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))  # HF_HOME, elsewhere, has no say in where the cache is
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))

    assert load_error(REPO) == (
        f"{REPO}: the Hugging Face cache {cache} cannot be made: {notes} is a file, not a folder; set"
        " HF_HUB_CACHE to a folder"
    )
    assert hub.requests == [] and notes.read_text() == "mine"


def test_a_card_cut_short_on_the_way_is_a_one_line_error(hub: FakeHub, published: dict[str, RECNet]) -> None:
    hub.cut(REPO, "model.json")  # the model itself arrives whole

    assert load_error(REPO).startswith(f"{REPO}: download failed (RemoteProtocolError: ")


def waits_between_retries(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """huggingface_hub's waits between retries (1 s, then 2, 4, 8 and 8 s), skipped: the list fills with
    the seconds each would have taken."""
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    return waits


@pytest.fixture
def no_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    waits_between_retries(monkeypatch)


def hub_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What huggingface_hub logged (its retries and resumed downloads print to the terminal)."""
    return [record.getMessage() for record in caplog.records if record.name.startswith("huggingface_hub")]


def failing_after_the_first_request(hub: FakeHub, status: int) -> None:
    """The Hub answers recnet's first request (is it reachable?) and ``status`` from then on."""
    answered = hub.respond
    hub.respond = lambda path, authorization: (  # type: ignore[method-assign]
        answered(path, authorization) if len(hub.requests) == 1 else (status, {"Content-Length": "0"}, b"")
    )


@pytest.mark.parametrize("status", [429, 503])
def test_retried_requests_are_not_logged_and_the_error_counts_them(
    hub: FakeHub,
    published: dict[str, RECNet],
    hf_home: Path,
    caplog: pytest.LogCaptureFixture,
    no_back_off: None,
    status: int,
) -> None:
    failing_after_the_first_request(hub, status)

    message = load_error(REPO, ModelNotFoundError)

    not_cached = f"and the model is not in the local cache ({hf_home / 'hub'})"
    assert message == f"{REPO}: the Hub at {hub.url} answered HTTP {status} {not_cached}; retried 5 times"
    assert hub_log(caplog) == []  # "HTTP Error 503 thrown while requesting HEAD ...", "Retrying in 1s ..."


def test_a_download_cut_short_again_and_again_is_one_line_without_the_resumes(
    hub: FakeHub, published: dict[str, RECNet], caplog: pytest.LogCaptureFixture, no_back_off: None
) -> None:
    hub.cut(REPO, "model.safetensors")

    message = load_error(REPO)

    assert message.startswith(f"{REPO}: download failed (RemoteProtocolError: peer closed connection")
    assert message.endswith("; retried 5 times")
    assert hub_log(caplog) == []  # "Error while downloading from ...\nTrying to resume download...", 5 times


def test_a_download_resumed_after_a_dropped_connection_loads_without_a_word(
    hub: FakeHub, published: dict[str, RECNet], caplog: pytest.LogCaptureFixture, no_back_off: None
) -> None:
    hub.cut(REPO, "model.safetensors")
    answered = hub.respond

    def cut_once(path: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        answer = answered(path, authorization)
        if hub.requests[-1].startswith("GET") and path.endswith("/model.safetensors"):
            hub.cut_files.clear()  # the next try gets it whole
        return answer

    hub.respond = cut_once  # type: ignore[method-assign]
    loaded = load_model(REPO)

    assert_same_model(loaded, published["main"])
    assert [request.split()[0] for request in hub.requests].count("GET") >= 3  # the model twice, the card
    assert hub_log(caplog) == []


def test_the_low_disk_space_warning_is_left_to_the_failure_it_foretells(
    hub: FakeHub, published: dict[str, RECNet], hf_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = 1000  # bytes, as shutil.disk_usage says of every disk
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - free, free)
    )

    with warnings.catch_warnings(record=True) as caught:  # the disk had room after all: nothing said
        warnings.simplefilter("always")
        assert_same_model(load_model(REPO), published["main"])
    assert [str(warning.message) for warning in caught] == []  # "Not enough free disk space to download ..."

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(huggingface_hub.file_download, "http_get", disk_full)
    ref = f"{REPO}:other.safetensors"
    size = (tmp_path / "main" / "other.safetensors").stat().st_size
    sizes = f"the file is {size / 1e6:.2f} MB, {free / 1e6:.2f} MB free"
    assert load_error(ref) == (
        f"{ref}: no room for it in the Hugging Face cache {hf_home / 'hub'} ({sizes}); free some space,"
        " or set HF_HUB_CACHE to a folder on a disk with room"
    )


def test_recnet_says_nothing_before_its_error_when_a_download_keeps_breaking(
    hub: FakeHub, published: dict[str, RECNet]
) -> None:
    """The command as run, with huggingface_hub's own logging set up (and 5 s of its back-off)."""
    hub.cut(REPO, "model.safetensors")

    result = subprocess.run(
        [sys.executable, "-m", "recnet_cli", "download", REPO],
        cwd=REPO_ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {REPO}: download failed (RemoteProtocolError: ")
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("; retried 5 times\n")


def test_gated_repository_needs_hf_token(
    hub: FakeHub, published: dict[str, RECNet], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.gate(REPO, "hf_test_token")

    assert load_error(REPO) == (
        f"{REPO}: the Hub repository is gated; accept its terms on the Hub, then set HF_TOKEN to a token"
        " that can read it, or log in with hf auth login"
    )
    monkeypatch.setenv("HF_TOKEN", "hf_other_account")
    assert load_error(REPO) == (
        f"{REPO}: the Hub repository is gated and the token from HF_TOKEN has no access to it yet; accept"
        " its terms on the Hub with that token's account"
    )
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    assert_same_model(load_model(REPO), published["main"])


def refusing(status: int, **headers: str) -> Callable[[str, str | None], tuple[int, dict[str, str], bytes]]:
    """A Hub that answers every request with ``status``, as the Hub refuses a token or asks for one."""
    return lambda path, authorization: (status, {"Content-Length": "0", **headers}, b"")


INVALID_TOKEN = {"X-Error-Message": "Invalid credentials in Authorization header"}  # the Hub's 401 for one


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (refusing(401), f"the Hub asks for a token to read {REPO} (HTTP 401); {TOKEN_ADVICE}"),
        (  # the Hub's answer to a request without a token for a private repository, or a missing one
            refusing(401, **{"X-Error-Code": "RepoNotFound"}),
            f"no such repository on the Hub (if it is private, {TOKEN_ADVICE})",
        ),
    ],
    ids=["plain", "repo-not-found"],
)
def test_a_401_without_a_token_says_how_to_give_one(
    hub: FakeHub, published: dict[str, RECNet], answer: Callable[..., object], reason: str
) -> None:
    hub.respond = answer  # type: ignore[method-assign]

    assert load_error(REPO) == f"{REPO}: {reason}"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            refusing(401, **INVALID_TOKEN),
            f"the Hub refused the token from HF_TOKEN (HTTP 401: invalid or expired); set HF_TOKEN to a"
            f" token that can read {REPO}",
        ),
        (
            refusing(401, **{"X-Error-Code": "RepoNotFound"}),
            f"the Hub refused the token from HF_TOKEN (HTTP 401: invalid or expired); set HF_TOKEN to a"
            f" token that can read {REPO}",
        ),
        (
            refusing(403, **{"X-Error-Message": "Forbidden: the token may not read this repository"}),
            f"the Hub refused the token from HF_TOKEN for {REPO} (HTTP 403); set HF_TOKEN to a token that"
            f" can read {REPO}",
        ),
        (  # a valid token that the repository is not shared with
            refusing(404, **{"X-Error-Code": "RepoNotFound"}),
            "no such repository on the Hub, or the token from HF_TOKEN cannot read it",
        ),
    ],
    ids=["401-invalid", "401-repo-not-found", "403", "404-repo-not-found"],
)
def test_a_refused_token_is_named_by_where_it_came_from(
    hub: FakeHub,
    published: dict[str, RECNet],
    monkeypatch: pytest.MonkeyPatch,
    answer: Callable[..., object],
    reason: str,
) -> None:
    sent: list[str | None] = []
    hub.respond = lambda path, authorization: sent.append(authorization) or answer(path, authorization)  # type: ignore[method-assign]
    monkeypatch.setenv("HF_TOKEN", BAD_TOKEN)

    assert load_error(REPO) == f"{REPO}: {reason}"
    assert sent and set(sent) == {f"Bearer {BAD_TOKEN}"}


def test_a_refused_saved_login_says_to_log_in_again(
    hub: FakeHub, published: dict[str, RECNet], hf_home: Path
) -> None:
    hf_home.mkdir(parents=True, exist_ok=True)
    (hf_home / "token").write_text(BAD_TOKEN)  # where hf auth login saves it (HF_TOKEN_PATH)
    hub.respond = refusing(401, **INVALID_TOKEN)  # type: ignore[method-assign]

    assert load_error(REPO) == (
        f"{REPO}: the Hub refused the token of the saved login ({hf_home / 'token'}) (HTTP 401: invalid or"
        f" expired); log in again with hf auth login, or set HF_TOKEN to a token that can read {REPO}"
    )


def test_a_refused_token_from_the_older_variable_is_named_by_it(
    hub: FakeHub, published: dict[str, RECNet], hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # huggingface_hub still reads HUGGING_FACE_HUB_TOKEN where HF_TOKEN is not set
    hf_home.mkdir(parents=True, exist_ok=True)
    (hf_home / "token").write_text("hf_saved_login")
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", BAD_TOKEN)
    sent: list[str | None] = []
    answer = refusing(401, **INVALID_TOKEN)
    hub.respond = lambda path, authorization: sent.append(authorization) or answer(path, authorization)  # type: ignore[method-assign]

    assert load_error(REPO) == (
        f"{REPO}: the Hub refused the token from HUGGING_FACE_HUB_TOKEN (HTTP 401: invalid or expired); set"
        f" HF_TOKEN to a token that can read {REPO}"
    )
    assert set(sent) == {f"Bearer {BAD_TOKEN}"}


def test_a_blank_hf_token_hides_the_older_variable_and_the_saved_login_is_sent_and_named(
    hub: FakeHub, published: dict[str, RECNet], hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client takes HF_TOKEN when set, blank or not, and strips it: blank, it falls to the saved login
    hf_home.mkdir(parents=True, exist_ok=True)
    (hf_home / "token").write_text("hf_saved_login")
    monkeypatch.setenv("HF_TOKEN", " ")
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", BAD_TOKEN)
    sent: list[str | None] = []
    answer = refusing(401, **INVALID_TOKEN)
    hub.respond = lambda path, authorization: sent.append(authorization) or answer(path, authorization)  # type: ignore[method-assign]

    assert load_error(REPO).startswith(
        f"{REPO}: the Hub refused the token of the saved login ({hf_home / 'token'}) (HTTP 401"
    )
    assert set(sent) == {"Bearer hf_saved_login"}


def test_a_refused_token_is_named_as_the_oidc_exchange_s_where_hf_oidc_resource_is_set(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In CI the exchanged token is sent, whatever HF_TOKEN holds: naming HF_TOKEN would send the user there
    hub.respond = refusing(401, **INVALID_TOKEN)  # type: ignore[method-assign]
    url = huggingface_hub.hf_hub_url(REPO, "model.safetensors")
    with pytest.raises(HfHubHTTPError) as refused:
        huggingface_hub.get_hf_file_metadata(url, token=BAD_TOKEN)
    monkeypatch.setenv("HF_TOKEN", "hf_unused")
    monkeypatch.setenv("HF_OIDC_RESOURCE", REPO)

    assert hub_module.sent_token_source(refused.value) == "from the OIDC exchange for HF_OIDC_RESOURCE"


def test_download_prefetches_the_model_and_its_card(
    hub: FakeHub, published: dict[str, RECNet], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = download(REPO)

    assert path.is_file() and path.with_suffix(".json").is_file()
    hub.stop()
    set_offline(monkeypatch, True)
    loaded = load_model(REPO)
    assert loaded.path == path
    assert loaded.card["training_data"] == "main data"


@pytest.mark.parametrize("status", [403, 500])
def test_a_card_the_hub_does_not_give_fails_the_download(
    hub: FakeHub, published: dict[str, RECNet], status: int, no_back_off: None
) -> None:
    # Fetched without its card, the model would run without its strength calibration, at another strength.
    hub.fail(REPO, "model.json", status)
    with pytest.raises(WeightsError) as caught:
        download(REPO)
    assert str(caught.value).startswith(
        f"{REPO}: its card model.json, which holds its strength calibration, could not be fetched: the Hub at"
        f" {hub.url} answered HTTP {status}"
    )
    assert load_error(REPO) == str(caught.value)  # --model too
    del hub.failing[REPO, "model.json"]
    assert load_model(REPO).card["training_data"] == "main data"


@pytest.mark.parametrize(
    ("ref", "filename", "content", "reason"),
    [
        (
            "acme/llm",
            "model.safetensors",
            safetensors_bytes({"lm_head.weight": torch.zeros(2)}),
            "not a RECNet state_dict (no extract.weight and dualprocess.convN keys)",
        ),
        (
            "acme/llm:notes.pt",
            "notes.pt",
            b"not a checkpoint",
            'a text file, not weights (it begins "not a checkpoint")',
        ),
        (
            "acme/llm:config.json",
            "config.json",
            b'{"model_type": "llama"}',
            # as --model says
            "unknown model file type '.json' (expected .safetensors, .pth, .pt, .ckpt, .bin, .pth.tar)",
        ),
    ],
    ids=["other-weights", "not-a-checkpoint", "not-a-model-file"],
)
def test_download_refuses_a_file_that_is_not_a_recnet_model(
    hub: FakeHub, hf_home: Path, ref: str, filename: str, content: bytes, reason: str
) -> None:
    hub.add("acme/llm", filename, content)

    with pytest.raises(WeightsError) as caught:
        download(ref)

    assert str(caught.value) == f"{ref}: {reason}"
    # Left in huggingface_hub's cache, as --model leaves it (recnet models does not list it); a file no model
    # is kept in is not fetched at all.
    snapshot = hf_home / "hub" / "models--acme--llm" / "snapshots" / commit_of("acme/llm", "main")
    assert (snapshot / filename).is_file() is filename.endswith((".safetensors", ".pt"))
    assert reference_problem(ref) == (str(caught.value) if filename.endswith(".json") else None)  # --dry-run
    assert load_error(ref) == str(caught.value)  # the same reason as --model's


def test_download_refuses_a_model_cut_short_or_with_a_damaged_card(
    hub: FakeHub, published: dict[str, RECNet], tmp_path: Path
) -> None:
    whole = (tmp_path / "main" / "model.safetensors").read_bytes()
    hub.add("acme/cut", "model.safetensors", whole[: len(whole) // 2])  # its header whole, half its tensors
    hub.add("acme/card", "model.safetensors", whole)
    hub.add("acme/card", "model.json", b'{"steps": 1')
    # weights without a card in their file (converted from the authors'), whose only card is the one beside
    unsaved = safetensors_bytes(published["main"].state_dict())
    hub.add("acme/calibration", "model.safetensors", unsaved)
    hub.add("acme/calibration", "model.json", b'{"auto_strength": {"features": "exposure-v1", "bias": NaN}}')

    # All were said to be fetched, for a model that --model cannot load and recnet models lists as damaged
    for ref, reason in [
        ("acme/cut", "acme/cut: cut short or damaged: its end is missing"),
        ("acme/card", "model.json: not a valid model card"),
        ("acme/calibration", "acme/calibration: unusable auto_strength calibration"),
    ]:
        with pytest.raises(WeightsError) as caught:
            download(ref)
        assert reason in str(caught.value)
        with pytest.raises(WeightsError) as loading:  # as correct's --model, with --strength auto
            strength_calibration(load_model(ref))
        assert str(loading.value) == str(caught.value)
    listed = {entry.name: entry.problem for entry in models_to_list()[0]}
    assert "unusable auto_strength calibration" in listed["acme/calibration"]


def test_download_and_model_fetch_again_a_copy_damaged_in_the_cache(
    hub: FakeHub, published: dict[str, RECNet], tmp_path: Path
) -> None:
    whole = (tmp_path / "main" / "model.safetensors").read_bytes()
    hub.add("acme/kept", "model.safetensors", whole)
    cached = download("acme/kept")
    cached.resolve().write_bytes(whole[: len(whole) // 2])  # a disk fault, a copy cut short

    assert download("acme/kept").read_bytes() == whole  # the Hub's copy is whole: fetched again
    cached.resolve().write_bytes(whole[: len(whole) // 2])
    # --model said `not a valid safetensors file` until recnet download was run
    assert_same_model(load_model("acme/kept"), published["main"])
    assert cached.read_bytes() == whole
    card = (tmp_path / "main" / "model.json").read_bytes()
    hub.add("acme/kept", "model.json", card)
    download("acme/kept")
    cached.with_suffix(".json").resolve().write_bytes(card[: len(card) // 2])  # the card's copy cut short
    assert_same_model(load_model("acme/kept"), published["main"])
    assert cached.with_suffix(".json").read_bytes() == card


def test_a_card_copy_cut_short_is_fetched_again_where_the_hub_gives_no_sha256_of_it(
    hub: FakeHub, published: dict[str, RECNet], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Hub keeps a small file such as a card in git, not LFS: its ETag is the git blob's sha1, so the
    # copy's size is all that tells it from the Hub's
    whole = (tmp_path / "main" / "model.safetensors").read_bytes()
    card = (tmp_path / "main" / "model.json").read_bytes()
    hub.add("acme/kept", "model.safetensors", whole)
    hub.add("acme/kept", "model.json", card)
    respond = hub.respond

    def git_etag_for_cards(path: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = respond(path, authorization)
        if path.endswith(".json") and "ETag" in headers:
            headers = {**headers, "ETag": f'"{hashlib.sha1(b"blob " + card).hexdigest()}"'}
        return status, headers, body

    monkeypatch.setattr(hub, "respond", git_etag_for_cards)
    cached = download("acme/kept")
    cached.with_suffix(".json").resolve().write_bytes(card[: len(card) // 2])

    assert_same_model(load_model("acme/kept"), published["main"])
    assert cached.with_suffix(".json").read_bytes() == card


def test_a_hub_model_that_fails_to_load_as_the_hub_has_it_is_not_fetched_again(
    hub: FakeHub, published: dict[str, RECNet], tmp_path: Path
) -> None:
    # Every --model run fetched the whole file again, though the Hub's own copy was the broken one
    hub.add("acme/llm", "model.safetensors", safetensors_bytes({"lm_head.weight": torch.zeros(2)}))
    for _ in range(2):
        assert load_error("acme/llm").startswith("acme/llm: not a RECNet state_dict")
    assert sum(request.startswith("GET /acme/llm/resolve/") for request in hub.requests) == 1


def test_a_hub_that_gives_no_answer_is_asked_once_of_a_model_that_fails_to_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The card was asked after the model, so a load failure on a network that drops packets waited twice
    asked: list[str] = []

    def no_answer(ref: HubRef, cached: Path) -> None:
        asked.append(ref.filename)

    monkeypatch.setattr(hub_module, "differs_from_hubs", no_answer)
    (tmp_path / "model.json").write_text("{}")
    ref = HubRef(REPO, REPO, "main", "model.safetensors")
    assert hub_module.cached_copy_damaged(ref, tmp_path / "model.safetensors") is None  # not known
    assert asked == ["model.safetensors"]


def test_download_offline_of_a_copy_damaged_in_the_cache_says_it_could_not_fetch_it_again(
    hub: FakeHub, published: dict[str, RECNet], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It said only the damage, as if the Hub's own file were broken
    whole = (tmp_path / "main" / "model.safetensors").read_bytes()
    hub.add("acme/kept", "model.safetensors", whole)
    cached = download("acme/kept")
    cached.resolve().write_bytes(whole[: len(whole) // 2])
    card = (tmp_path / "main" / "model.json").read_bytes()
    for name, content in (("model.safetensors", whole), ("model.json", card)):
        hub.add("acme/carded", name, content)
    carded = download("acme/carded")
    carded.with_suffix(".json").resolve().write_bytes(card[: len(card) // 2])  # its card's copy cut short
    hub.stop()
    for offline, again in (  # HF_HUB_OFFLINE, or a Hub that does not answer
        (
            True,
            "it cannot be fetched again while HF_HUB_OFFLINE is set: unset it and run recnet download again",
        ),
        (False, "the Hub cannot be reached to fetch it again: run recnet download again online"),
    ):
        set_offline(monkeypatch, offline)
        with pytest.raises(WeightsError) as caught:
            download("acme/kept")
        assert str(caught.value).startswith("acme/kept: cut short or damaged: its end is missing")
        assert str(caught.value).endswith(f"; that is the cache's copy (in {cached.parent}), and {again}")
        assert load_error("acme/kept") == str(caught.value)  # --model said only the damage
        # The card's copy: named by the error, the folder it shares with the model by the rest (it named
        # the model's file)
        damaged_card = load_error("acme/carded")
        assert damaged_card.startswith(f"{carded.with_suffix('.json')}: not a valid model card")
        assert damaged_card.endswith(f"; that is the cache's copy (in {carded.parent}), and {again}")


PORTAL_PAGE = b"<html>Log in to the hotel's network</html>"


@pytest.mark.parametrize("answer", ["offline", "503", "portal", "repository gone"])
def test_download_says_when_the_cache_answered_for_the_hub(
    hub: FakeHub, published: dict[str, RECNet], monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    # It printed the cached copy's path as if fetched: a user whose main had moved believed it up to date.
    # A captive portal's page, or the repository gone from the Hub, gave that still (huggingface_hub takes
    # the cache's copy without a word).
    said: list[str] = []
    download(REPO, on_cached_copy=said.append)
    assert said == []  # asked the Hub
    answers = {
        "503": (503, {"Content-Length": "0"}, b""),
        "portal": (200, {"Content-Type": "text/html", "Content-Length": str(len(PORTAL_PAGE))}, PORTAL_PAGE),
        "repository gone": error_response("RepoNotFound"),
    }
    why = {
        "offline": "HF_HUB_OFFLINE is set",
        "503": f"the Hub at {hub.url} answered HTTP 503",
        "portal": f"{hub.url} does not answer as a Hugging Face Hub (check HF_ENDPOINT and any proxy)",
        "repository gone": f"the Hub at {hub.url} answered HTTP 404 (no such repository: deleted, renamed or "
        "private)",
    }[answer]
    if answer == "offline":
        set_offline(monkeypatch, True)
    else:
        hub.respond = lambda path, authorization: answers[answer]  # type: ignore[method-assign]
    assert download(REPO, on_cached_copy=said.append) == download(REPO)
    assert said == [f"{why}, so this is the cache's copy, not checked against the Hub"]


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (  # a failure to answer, not a refusal
            (500, {"Content-Length": "0"}, b""),
            "the Hub at {url} answered HTTP 500",
        ),
        (  # a web server that is not the Hub gives an ETag, but no commit
            (200, {"ETag": '"abc123"', "Content-Length": "0"}, b""),
            "{url} does not answer as a Hugging Face Hub (check HF_ENDPOINT and any proxy)",
        ),
    ],
    ids=["500", "etag-without-commit"],
)
def test_download_says_the_cache_answered_where_the_hub_fails_or_is_another_server(
    hub: FakeHub,
    published: dict[str, RECNet],
    answer: tuple[int, dict[str, str], bytes],
    why: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cached = download(REPO)
    said: list[str] = []
    hub.respond = lambda path, authorization: answer  # type: ignore[method-assign]
    hub.requests.clear()
    waits = waits_between_retries(monkeypatch)

    assert download(REPO, on_cached_copy=said.append) == cached
    assert said == [f"{why.format(url=hub.url)}, so this is the cache's copy, not checked against the Hub"]
    assert len(hub.requests) == 1 and waits == []  # the cache's copy at once, with no retries


def test_download_takes_the_file_and_revision_as_hf_download_does() -> None:
    assert joined_hub_ref(REPO, None, None) == REPO
    assert joined_hub_ref(REPO, "extra.pth", "v1") == f"{REPO}@v1:extra.pth"
    assert joined_hub_ref(f"{REPO}@v1", "extra.pth", None) == f"{REPO}@v1:extra.pth"
    assert joined_hub_ref(f"{REPO}:extra.pth", None, "v1") == f"{REPO}@v1:extra.pth"
    with pytest.raises(ValueError, match=r"^acme/recnet-test:a\.pth b\.pth: name the file once, as FILE or "):
        joined_hub_ref(f"{REPO}:a.pth", "b.pth", None)
    with pytest.raises(ValueError, match=r"^acme/recnet-test@v1 --revision v2: name the revision once"):
        joined_hub_ref(f"{REPO}@v1", None, "v2")
    for given, said in (  # a string that parsed back otherwise: org/x@a:b took b for the file
        ((REPO, None, "a:b"), "--revision a:b: recnet cannot name a revision with : or @ in it"),
        ((REPO, None, "v1@x"), "--revision v1@x: recnet cannot name a revision with : or @ in it"),
        ((REPO, "a:b.pth", None), "a:b.pth: recnet cannot name a file with : in it"),
        (
            ("./x.pth", "b.pth", None),
            "./x.pth: not a Hub repository (org/name), which FILE and --revision are of",
        ),
    ):
        with pytest.raises(ValueError) as refused:
            joined_hub_ref(*given)
        assert str(refused.value) == said


def test_download_takes_a_model_whose_suffix_is_in_capitals(
    hub: FakeHub, published: dict[str, RECNet], tmp_path: Path
) -> None:
    hub.add(REPO, "MODEL.SAFETENSORS", (tmp_path / "main" / "model.safetensors").read_bytes())

    assert download(f"{REPO}:MODEL.SAFETENSORS").name == "MODEL.SAFETENSORS"
    assert_same_model(load_model(f"{REPO}:MODEL.SAFETENSORS"), published["main"])
    assert f"{REPO}:MODEL.SAFETENSORS" in [entry.name for entry in models_to_list()[0]]


def test_environment_variables_alone_point_recnet_at_the_hub(
    hub: FakeHub, published: dict[str, RECNet], hf_home: Path
) -> None:
    """A fresh process reads HF_ENDPOINT and HF_HOME (set by the fixture) when huggingface_hub is imported."""
    code = "from recnet_cli.weights import download; print(download('acme/recnet-test'))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(hf_home / "hub")
    assert f"GET /{REPO}/resolve/main/model.safetensors" in hub.requests
