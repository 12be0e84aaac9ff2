"""Models on the Hugging Face Hub: references, downloads into its cache, one-line errors for what fails."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
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
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import validate_repo_id

from recnet_cli import __version__
from recnet_cli.files import error_line, file_kind, first_line, nearest_existing
from recnet_cli.weights.card import card_calibration, load_with_card
from recnet_cli.weights.errors import ModelNotFoundError, WeightsError
from recnet_cli.weights.formats import (
    MODEL_SUFFIXES,
    is_safetensors,
    model_suffix,
    unknown_file_type,
)
from recnet_cli.wording import counted, listed, shell_word

HUB_DEFAULT_FILENAME = "model.safetensors"


HUB_REF_FORMAT = "org/name[@revision][:file]"
SHORT_COMMIT = re.compile(r"[0-9a-f]{7,39}")


HUB_REVISION, HUB_FILENAME = re.compile(r"[^:@]+"), re.compile(r"[^:]+")
HUB_REF = re.compile(
    rf"(?P<repo_id>\w[\w.-]*/\w[\w.-]*)(?:@(?P<revision>{HUB_REVISION.pattern}))?"
    rf"(?::(?P<filename>{HUB_FILENAME.pattern}))?"
)


# A model's address on the Hub's website (its page, or a file's: huggingface.co/org/name/blob/REV/FILE) or
# as an hf:// URL (hf://org/name@REV/FILE), which is not how recnet names it (``hub_ref_of_address``)
HUB_WEB_ADDRESS = re.compile(
    r"(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/(?:models/)?(?P<repo_id>[\w.-]+/[\w.-]+)"
    r"(?:/(?:blob|resolve|tree)/(?P<revision>[^/?#]+)(?:/(?P<filename>[^?#]+))?)?/?(?:[?#].*)?"
)
HF_URL = re.compile(
    r"hf://(?:models/)?(?P<repo_id>[\w.-]+/[\w.-]+)(?:@(?P<revision>[^/]+))?(?:/(?P<filename>.+))?"
)


# huggingface_hub's log line for each retry of a request ("Retrying in 1s [Retry 1/5].") and of a download
# ("Error while downloading from URL: REASON\nTrying to resume download..."); its warning of a disk too full
HUB_RETRY_LOG = re.compile(r"^Retrying in |Trying to resume download", re.MULTILINE)


HUB_LOW_DISK_WARNING = re.compile(
    r"Not enough free disk space to download the file\. The expected file size is: (?P<size>[\d.]+ MB)\."
    r".* only has (?P<free>[\d.]+ MB) free disk space"
)


ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\] ")  # "[Errno 111] Connection refused", as httpx words it


SHA256 = re.compile(r"[0-9a-f]{64}")  # an LFS file's ETag on the Hub: its content's sha256


ONLINE_ONCE = "download it once while online, and later runs find it there offline"


LOGIN_COMMAND = "hf auth login"  # huggingface_hub 1.0 and later ship `hf`, not `huggingface-cli`


TOKEN_ADVICE = f"set HF_TOKEN to a token that can read it, or log in with {LOGIN_COMMAND}"


@dataclass(frozen=True)
class HubRef:
    text: str
    repo_id: str
    revision: str | None
    filename: str


def hub_ref_of_address(text: str) -> str | None:
    """The Hub reference (``org/name[@revision][:file]``) that a web address of the Hub or an ``hf://`` URL
    names, to suggest in its place; None for any other text."""
    match = HUB_WEB_ADDRESS.fullmatch(text) or HF_URL.fullmatch(text)
    if match is None:
        return None
    revision, filename = (unquote(part) if part else part for part in (match["revision"], match["filename"]))
    at = "" if revision in (None, "main") else f"@{revision}"
    file = "" if filename in (None, HUB_DEFAULT_FILENAME) else f":{filename}"
    return f"{match['repo_id']}{at}{file}"


def not_a_hub_ref(text: str) -> str:
    """What to say of a text that names no Hub model: the reference to type for a Hub address, else the
    form a reference takes."""
    if ref := hub_ref_of_address(text):
        return f"{text}: name a Hub model as {shell_word(ref)}, not by its address"
    return f"{text}: not a Hub reference ({HUB_REF_FORMAT})"


def parse_hub_ref(text: str) -> HubRef | None:
    """``org/name[@revision][:file]``, or None when the text is not shaped like one (``dir/x.pth`` is not)."""
    match = HUB_REF.fullmatch(text)
    if match is None or match["repo_id"].lower().endswith(MODEL_SUFFIXES):
        return None
    return HubRef(text, match["repo_id"], match["revision"], match["filename"] or HUB_DEFAULT_FILENAME)


def joined_hub_ref(ref: str, filename: str | None, revision: str | None) -> str:
    """``org/name@revision:file`` from ``recnet download``'s REPO, FILE and --revision, as ``hf download``
    takes them; a ValueError where REPO names its file or revision too."""
    if filename is None and revision is None:
        return ref
    match = HUB_REF.fullmatch(ref)
    if match is None:
        raise ValueError(f"{ref}: not a Hub repository (org/name), which FILE and --revision are of")
    if revision is not None and not HUB_REVISION.fullmatch(revision):
        raise ValueError(f"--revision {revision}: recnet cannot name a revision with : or @ in it")
    if filename is not None and not HUB_FILENAME.fullmatch(filename):
        raise ValueError(f"{filename}: recnet cannot name a file with : in it")
    if filename is not None and match["filename"]:
        raise ValueError(f"{ref} {filename}: name the file once, as FILE or after a colon (org/name:FILE)")
    if revision is not None and match["revision"]:
        raise ValueError(f"{ref} --revision {revision}: name the revision once, as --revision or after @")
    revision, filename = revision or match["revision"], filename or match["filename"]
    return match["repo_id"] + (f"@{revision}" if revision else "") + (f":{filename}" if filename else "")


def hub_ref_problem(ref: HubRef) -> str | None:
    """Why a Hub reference names no model, found without asking the Hub (for --dry-run too): a repository
    name the Hub refuses, or a file that is not a model's (``org/name:config.json``)."""
    try:
        validate_repo_id(ref.repo_id)
    except HFValidationError as error:
        return f"{ref.text}: not a valid Hub name ({first_line(error)})"
    file = PurePosixPath(ref.filename)
    if file.is_absolute() or ".." in file.parts:  # the Hub client refuses it, asking the owner to rename it
        return f"{ref.text}: {ref.filename} names no file inside the repository (give its path there)"
    suffix = model_suffix(file)
    name, _, revision = ref.filename.rpartition("@")  # org/name:file@v1, not a file named with an @
    if ref.revision is None and name.lower().endswith(MODEL_SUFFIXES) and suffix not in MODEL_SUFFIXES:
        return f"{ref.text}: the revision goes before the file: {ref.repo_id}@{revision}:{name}"
    return None if suffix in MODEL_SUFFIXES else f"{ref.text}: {unknown_file_type(suffix)}"


def download(ref: str, on_cached_copy: Callable[[str], None] = lambda why: None) -> Path:
    """``recnet download``: fetch a Hub model (and its card) into the Hugging Face cache; its local path.

    A reference that can name no model (``hub_ref_problem``: ``org/name:config.json``) is refused before
    anything is fetched. A file that ``--model`` cannot load (not RECNet's weights, cut short, with a
    damaged card) is refused once downloaded, with ``--model``'s reason, and stays in the cache as
    ``--model`` leaves it (``recnet models`` ignores a file that is not RECNet's weights, and lists a damaged
    one with its problem). Where the Hub could not be asked and the cache's copy is the answer,
    ``on_cached_copy`` is told why."""
    hub_ref = parse_hub_ref(ref)
    if hub_ref is None:
        raise WeightsError(not_a_hub_ref(ref))
    path = fetch_from_hub(hub_ref, on_cached_copy=on_cached_copy)
    try:
        check_fetched(path, hub_ref)
    except WeightsError:  # the cache's copy may be what is damaged (a download cut short): fetched again
        cached = os.stat(path)
        path = fetch_from_hub(hub_ref, again=True)
        fetched = os.stat(path)
        try:
            check_fetched(path, hub_ref)
        except WeightsError as error:
            if (fetched.st_ino, fetched.st_mtime_ns) != (cached.st_ino, cached.st_mtime_ns):
                raise  # the Hub's own copy
            raise unfetchable_copy(error, path) from None
    return path


def unfetchable_copy(error: WeightsError, path: Path) -> WeightsError:
    """``error``, of the cache's copy of the model at ``path`` or of its card, with why it cannot be fetched
    again now; the copy is named by its folder, which holds both."""
    again = (
        "it cannot be fetched again while HF_HUB_OFFLINE is set: unset it and run recnet download again"
        if constants.is_offline_mode()
        else "the Hub cannot be reached to fetch it again: run recnet download again online"
    )
    return WeightsError(f"{error}; that is the cache's copy (in {path.parent}), and {again}")


def check_fetched(path: Path, ref: HubRef) -> None:
    """Refuses a fetched file that --model cannot load, with its reason: loaded as --model loads it, so that
    a file that is not RECNet's weights, one cut short or a damaged card (its strength calibration too)
    fails now, not offline later."""
    card_calibration(load_with_card(path, ref.text)[1], ref.text)


def fetch_from_hub(
    ref: HubRef, again: bool = False, on_cached_copy: Callable[[str], None] = lambda why: None
) -> Path:
    """The cached file of a Hub reference, downloaded when the Hub has it and the cache does not (or
    ``again``, with its card, in place of the cache's copy, where the Hub can be reached). Where the Hub is
    not asked (HF_HUB_OFFLINE), gives no answer or refuses (``hub_silence``), the cache's copy is the answer,
    and ``on_cached_copy`` is told why."""
    if problem := hub_ref_problem(ref):
        raise WeightsError(problem)
    if problem := hub_cache_problem():
        raise WeightsError(f"{ref.text}: {problem}")
    ref = dataclasses.replace(ref, revision=cached_commit(ref.repo_id, ref.revision))
    with hub_chatter_held() as chatter:
        silence, fetching = None, ref
        try:
            silence = None if constants.is_offline_mode() else hub_silence(ref)
            offline = constants.is_offline_mode() or (silence is not None and not refused(silence))
            path = hub_download(ref, ref.filename, offline, again)
            if is_safetensors(path):
                fetching = card_of(ref)
                fetch_card(fetching, offline, again)
        except WeightsError:
            raise
        except Exception as error:  # huggingface_hub raises many types; all become one line for the user
            raise hub_error(fetching, error, chatter, silence) from error
    if offline or silence is not None:  # refused, yet a path: huggingface_hub took the cache's copy
        unasked = "HF_HUB_OFFLINE is set" if silence is None else unreached(silence)
        on_cached_copy(f"{unasked}, so this is the cache's copy, not checked against the Hub")
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


def card_of(ref: HubRef) -> HubRef:
    """The reference to a model's card, ``<stem>.json`` beside it."""
    return dataclasses.replace(ref, filename=str(PurePosixPath(ref.filename).with_suffix(".json")))


def fetch_card(card: HubRef, offline: bool, again: bool = False) -> None:
    """The model card is optional: a repository without one (where the Hub says so, or offline, the cache
    holds none) is fine. A card the Hub did not give fails the download: it holds the strength
    calibration, so a model fetched without it would run at another strength."""
    try:
        hub_download(card, card.filename, offline, again)
    except LocalEntryNotFoundError as error:
        if not offline:  # the Hub failed to answer for the card, and the cache has no copy
            raise WeightsError(
                f"{card.text}: its card {card.filename}, which holds its strength calibration, could not be "
                f"fetched: {unreached(error.__cause__ or error)}; try again"
            ) from error
    except EntryNotFoundError:
        pass  # the Hub has none


def cached_commit(repo_id: str, revision: str | None) -> str | None:
    """A commit's short hash (as ``recnet models`` shows it) made whole where one snapshot of the repository
    in the cache begins with it, as git takes one (the cache, offline, finds a commit by its whole hash
    only); any other revision (a branch, a tag, a whole hash, one the cache does not hold) as it is. One
    that begins several cached commits is refused, as git refuses it."""
    if revision is None or not SHORT_COMMIT.fullmatch(revision):
        return revision
    try:
        snapshots = os.scandir(cached_repository(repo_id) / "snapshots")
        matching = [entry.name for entry in snapshots if entry.name.startswith(revision)]
    except OSError:  # nothing of the repository cached
        return revision
    if len(matching) > 1:
        commits = listed(sorted(commit[:12] for commit in matching))
        raise WeightsError(
            f"{repo_id}@{revision}: {revision} begins {len(matching)} commits in the cache ({commits}); give "
            "more of its characters"
        )
    return matching[0] if matching else revision


def cached_repository(repo_id: str) -> Path:
    """The Hub cache's folder of a model repository (``models--org--name``), whether it exists or not."""
    return Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")


def pinned_commit(repo_id: str, revision: str) -> str | None:
    """The whole commit that ``revision`` named when the cache last fetched it: a short hash of a cached
    commit made whole, a branch or a tag as the cache recorded it; None where the cache has no record."""
    try:
        whole = cached_commit(repo_id, revision)
    except WeightsError:  # a short hash of several cached commits
        return None
    if whole != revision:
        return whole
    try:
        return (cached_repository(repo_id) / "refs" / revision).read_text().strip() or None
    except (OSError, ValueError):
        return None


def hub_download(ref: HubRef, filename: str, offline: bool, again: bool = False) -> Path:
    """The cached file, downloaded where the cache lacks it, or ``again`` (online) in place of its copy."""
    return Path(
        hf_hub_download(
            ref.repo_id,
            filename,
            revision=ref.revision,
            local_files_only=offline,
            force_download=again and not offline,
            library_name="recnet",
            library_version=__version__,
        )
    )


def cached_copy_damaged(ref: HubRef, cached: Path) -> bool | None:
    """Whether the cache's copy of the model ``ref`` at ``cached``, or of its card beside it, is not the
    Hub's file (``differs_from_hubs``); None where the model's could not be checked."""
    model = differs_from_hubs(ref, cached)
    if model is not False:  # True, or None: the Hub gave no answer, and would give none for the card
        return model
    card = cached.with_suffix(".json")
    return card.is_file() and differs_from_hubs(card_of(ref), card) is True


def differs_from_hubs(ref: HubRef, cached: Path) -> bool | None:
    """Whether ``cached``, the cache's copy of ``ref``, is not the Hub's file byte for byte: another size, or
    another sha256 where the Hub gives one (an LFS file's ETag). None where the Hub is not asked (offline)
    or gives no answer; False where the copy cannot be read (its own error says so)."""
    if constants.is_offline_mode():
        return None
    url = hf_hub_url(ref.repo_id, ref.filename, revision=ref.revision)
    try:
        hub = get_hf_file_metadata(url, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except Exception:  # no answer (see hub_silence)
        return None
    try:
        if hub.size is not None and hub.size != cached.stat().st_size:
            return True
        if hub.etag and SHA256.fullmatch(hub.etag):
            digest = hashlib.sha256()
            with cached.open("rb") as file:  # hashlib.file_digest is Python 3.11's
                for chunk in iter(lambda: file.read(2**20), b""):
                    digest.update(chunk)
            return digest.hexdigest() != hub.etag
    except OSError:
        pass  # a copy that cannot be read: its own error says so
    return False


def hub_silence(ref: HubRef) -> Exception | None:
    """Why the Hub gives no usable answer for ``ref``, from one HEAD request without retries, so that an
    unreachable Hub falls back to the cache at once: no answer at all, a server error, a page that is not the
    Hub's (a captive portal, a proxy's), or a refusal (``refused``: no such repository, a token refused),
    which the download reports where the cache has no copy. None when it answered.

    (``hf_hub_download`` itself retries a connection failure for about 25 s when the file is not cached,
    and takes the cache's copy without a word where the Hub refuses or answers with another page.)
    """
    url = hf_hub_url(ref.repo_id, ref.filename, revision=ref.revision)
    try:
        metadata = get_hf_file_metadata(url, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except Exception as error:  # connection refused, DNS failure, timeout, proxy error, an HTTP error
        return error
    if metadata.commit_hash is None or metadata.etag is None:  # what every Hub answer carries
        return FileMetadataError(f"{url}: not an answer of the Hub (no commit or ETag header)")
    return None


def refused(silence: Exception | None) -> bool:
    """Whether the Hub refused (HTTP 4xx) rather than failed to answer: the download asks it again, to say
    why where the cache has no copy."""
    return isinstance(silence, HfHubHTTPError) and silence.response.status_code < 500


_REFUSALS = (  # what the Hub's refusals say, by huggingface_hub's error for each (a subclass before its base)
    (GatedRepoError, "a gated repository"),
    (RepositoryNotFoundError, "no such repository: deleted, renamed or private"),
    (RevisionNotFoundError, "no such revision"),
    (EntryNotFoundError, "no such file"),
)


def unreached(silence: Exception) -> str:
    """What ``hub_silence`` found, in words: ``the Hub at URL answered HTTP 503``, ``cannot reach the Hub at
    URL (connection refused)``."""
    if isinstance(silence, HfHubHTTPError):
        said = next((f" ({what})" for kind, what in _REFUSALS if isinstance(silence, kind)), "")
        return f"the Hub at {constants.ENDPOINT} answered HTTP {silence.response.status_code}{said}"
    if isinstance(silence, FileMetadataError):  # a captive portal, a proxy's page, HF_ENDPOINT set amiss
        return f"{constants.ENDPOINT} does not answer as a Hugging Face Hub (check HF_ENDPOINT and any proxy)"
    if not (why := setting_at_fault(silence)):
        why = ERRNO_PREFIX.sub("", first_line(silence)) or type(silence).__name__
        why = why[0].lower() + why[1:] if why[1:2].islower() else why  # Connection refused, in a sentence
    return f"cannot reach the Hub at {constants.ENDPOINT} ({why})"


def setting_at_fault(silence: Exception) -> str | None:
    """The setting that kept a request from going out at all (an address without http://, a token a header
    cannot carry), or None."""
    if not constants.ENDPOINT.startswith(("http://", "https://")):
        return "HF_ENDPOINT lacks http:// or https://"
    if isinstance(silence, UnicodeEncodeError):  # httpx sends headers in ASCII
        return "the Hub token holds a character a request cannot carry: check HF_TOKEN or log in again"
    return None


def hub_error(
    ref: HubRef, error: Exception, chatter: HubChatter, silence: Exception | None = None
) -> WeightsError:
    """A one-line error for a failed Hub download, saying what to do about it (and how many times
    huggingface_hub retried, if it did); ``silence``: why the Hub was not asked (``hub_silence``)."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        sizes = f" ({chatter.low_disk})" if chatter.low_disk else ""
        return WeightsError(
            f"{ref.text}: no room for it in the Hugging Face cache {constants.HF_HUB_CACHE}{sizes}; free some"
            " space, or set HF_HUB_CACHE to a folder on a disk with room"
        )
    failure = hub_failure(ref, error, silence)
    if chatter.retries:
        return type(failure)(f"{failure}; retried {counted(chatter.retries, 'time')}")
    return failure


def hub_failure(ref: HubRef, error: Exception, silence: Exception | None = None) -> WeightsError:
    """``hub_error``'s line, from the exception and why the Hub was not asked."""
    name = ref.text
    if denied := access_failure(ref, error):
        return denied
    if isinstance(error, RepositoryNotFoundError):
        token = sent_token_source(error)
        unread = f", or the token {token} cannot read it" if token else f" (if it is private, {TOKEN_ADVICE})"
        return ModelNotFoundError(f"{name}: no such repository on the Hub{unread}")
    if isinstance(error, RevisionNotFoundError):
        return ModelNotFoundError(f"{name}: revision {ref.revision} not found in {ref.repo_id} on the Hub")
    if isinstance(error, LocalEntryNotFoundError):
        return ModelNotFoundError(f"{name}: {not_cached_reason(error.__cause__ or silence)}")
    if isinstance(error, EntryNotFoundError):
        at = "" if ref.revision is None else f"@{ref.revision}"
        another = (
            f" (for another of its files: {ref.repo_id}{at}:FILE)"
            if ref.filename == HUB_DEFAULT_FILENAME
            else ""
        )
        return ModelNotFoundError(
            f"{name}: file {ref.filename} not found in {ref.repo_id}{at} on the Hub{another}"
        )
    if isinstance(error, HfHubHTTPError) and error.response.status_code == 401:  # a private repository
        return WeightsError(
            f"{name}: the Hub asks for a token to read {ref.repo_id} (HTTP 401); {TOKEN_ADVICE}"
        )
    if isinstance(error, HfHubHTTPError):
        return WeightsError(f"{name}: the Hub answered HTTP {error.response.status_code} for {ref.filename}")
    if isinstance(error, HFValidationError):
        return WeightsError(f"{name}: not a valid Hub name ({first_line(error)})")
    if isinstance(error, OSError) and error.filename is not None:  # the cache cannot be read or written
        return WeightsError(f"{name}: download failed ({error_line(error)})")
    return WeightsError(f"{name}: download failed ({type(error).__name__}: {first_line(error)})")


def access_failure(ref: HubRef, error: Exception) -> WeightsError | None:
    """``hub_failure``'s line where the Hub refused access: a gated repository, or a token it refused (HTTP
    401 or 403); None for other failures."""
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
    return None


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
    # as the client reads them: the first variable set (blank or not), then stripped; blank, the saved login
    variable = "HF_TOKEN" if os.environ.get("HF_TOKEN") else "HUGGING_FACE_HUB_TOKEN"
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
    """Why a model is neither downloaded nor cached; ``cause``: the Hub's answer, or why there was none."""
    if constants.is_offline_mode():
        return (
            "HF_HUB_OFFLINE is set and the model is not in the local cache (unset it to download the model)"
        )
    not_cached = f"and the model is not in the local cache ({constants.HF_HUB_CACHE})"
    if isinstance(cause, HfHubHTTPError | FileMetadataError):  # the Hub answered, or a page that is not its
        return f"{unreached(cause)} {not_cached}"
    if not isinstance(cause, Exception):
        return f"cannot reach the Hub at {constants.ENDPOINT} {not_cached}; {ONLINE_ONCE}"
    return f"{unreached(cause)} {not_cached}" + ("" if setting_at_fault(cause) else f"; {ONLINE_ONCE}")


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
