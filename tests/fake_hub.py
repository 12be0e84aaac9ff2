"""A stand-in for the Hugging Face Hub's file routes, served on 127.0.0.1, for tests that download models.

``hf_hub_download`` (huggingface_hub 2.x) only calls ``HEAD`` and ``GET`` on
``/{repo_id}/resolve/{revision}/{filename}`` (and, once a process, the list of AI agents: see
``AGENT_HARNESSES_ROUTE``). It needs ``X-Repo-Commit`` and ``ETag`` on a found file,
``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``, ``GatedRepo``) on a refusal.

Use::

    with FakeHub() as hub:
        hub.add("acme/recnet-test", "model.safetensors", data)
        point_huggingface_hub_at(monkeypatch, hub.url, tmp_path / "hf-home")
        ...  # hub.requests lists what the client asked for
"""

from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from huggingface_hub import constants

RESOLVE_ROUTE = re.compile(r"/(?P<repo_id>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)")
# huggingface_hub 2.x fetches the Hub's list of AI coding agents once a process (before the first request it
# sends, to name one in its user agent): answered with an empty list, and left out of ``requests``, since it
# comes before whichever test's first request happens to be the process's first.
AGENT_HARNESSES_ROUTE = "/api/agent-harnesses"
NO_AGENT_HARNESSES = b'{"standardEnvVars": [], "harnesses": {}}'
HUB_TIMEOUT_S = 2


def commit_of(repo_id: str, revision: str) -> str:
    """The fake commit hash (40 hex digits) a revision of a repository points at."""
    return hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()


class FakeHub:
    """In-memory repositories served over HTTP on a free port of 127.0.0.1, in a background thread."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}  # (repo_id, commit) -> {filename: content}
        self.branches: dict[tuple[str, str], str] = {}  # (repo_id, branch or tag) -> commit
        self.tokens: dict[str, str] = {}  # gated repo_id -> the token it asks for
        self.cut_files: set[tuple[str, str]] = set()  # (repo_id, filename) sent only halfway
        self.failing: dict[tuple[str, str], int] = {}  # (repo_id, filename) -> the HTTP error status it gets
        self.requests: list[str] = []  # "HEAD /acme/x/resolve/main/model.safetensors", in order
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class())
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo_id: str, filename: str, content: bytes, revision: str = "main") -> str:
        """Put a file in a revision (a branch or tag) of a repository; returns the revision's commit hash."""
        commit = commit_of(repo_id, revision)
        self.branches[repo_id, revision] = commit
        self.files.setdefault((repo_id, commit), {})[filename] = content
        return commit

    def gate(self, repo_id: str, token: str) -> None:
        """Serve ``repo_id`` only to requests carrying ``Authorization: Bearer <token>``."""
        self.tokens[repo_id] = token

    def cut(self, repo_id: str, filename: str) -> None:
        """Send half of ``filename`` and close the connection, as a dropped download does."""
        self.cut_files.add((repo_id, filename))

    def fail(self, repo_id: str, filename: str, status: int) -> None:
        """Answer every request for ``filename`` with the HTTP error ``status``, as a Hub in trouble does."""
        self.failing[repo_id, filename] = status

    def respond(self, path: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a request path, as the Hub answers it."""
        match = RESOLVE_ROUTE.fullmatch(path)
        if match is None or not any(repo == match["repo_id"] for repo, _ in self.branches):
            return error_response("RepoNotFound")
        repo_id = match["repo_id"]
        if repo_id in self.tokens and authorization != f"Bearer {self.tokens[repo_id]}":
            return error_response("GatedRepo", status=401)
        revision = unquote(match["revision"])
        commit = self.branches.get((repo_id, revision), revision)
        if (repo_id, commit) not in self.files:
            return error_response("RevisionNotFound")
        filename = unquote(match["filename"])
        if (repo_id, filename) in self.failing:
            return self.failing[repo_id, filename], {"Content-Length": "0"}, b""
        content = self.files[repo_id, commit].get(filename)
        if content is None:
            return error_response("EntryNotFound", {"X-Repo-Commit": commit})
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{hashlib.sha256(content).hexdigest()}"',
            "Content-Length": str(len(content)),
            "Content-Type": "application/octet-stream",
        }
        if (repo_id, filename) in self.cut_files:
            content = content[: len(content) // 2]
        return 200, headers, content

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self.answer(send_body=False)

            def do_GET(self) -> None:
                self.answer(send_body=True)

            def answer(self, send_body: bool) -> None:
                if self.path == AGENT_HARNESSES_ROUTE:
                    headers = {
                        "Content-Type": "application/json",
                        "Content-Length": str(len(NO_AGENT_HARNESSES)),
                    }
                    status, body = 200, NO_AGENT_HARNESSES
                else:
                    hub.requests.append(f"{self.command} {self.path}")
                    status, headers, body = hub.respond(self.path, self.headers.get("Authorization"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the requests are in ``hub.requests``."""

        return Handler

    def start(self) -> FakeHub:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down and close its port: later connections are refused."""
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def error_response(
    code: str, headers: dict[str, str] | None = None, status: int = 404
) -> tuple[int, dict[str, str], bytes]:
    return status, {"X-Error-Code": code, "Content-Length": "0", **(headers or {})}, b""


def point_huggingface_hub_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, hf_home: Path) -> None:
    """Make huggingface_hub use ``endpoint`` and a cache under ``hf_home``, online, with short timeouts.

    Sets the environment (for subprocesses) and the ``huggingface_hub.constants`` this process already read
    from it at import time. No token: the machine's own login is neither read nor sent.
    """
    point_hub_cache_at(monkeypatch, hf_home)
    settings = {
        "HF_ENDPOINT": endpoint,
        "HF_HUB_ETAG_TIMEOUT": str(HUB_TIMEOUT_S),
        "HF_HUB_DOWNLOAD_TIMEOUT": str(HUB_TIMEOUT_S),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", HUB_TIMEOUT_S)
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", HUB_TIMEOUT_S)
    set_offline(monkeypatch, False)


def point_hub_cache_at(monkeypatch: pytest.MonkeyPatch, hf_home: Path) -> None:
    """huggingface_hub's cache and login under ``hf_home`` (empty at first), for this process (the
    constants it read at import time) and for the commands it starts (the environment: HF_HOME alone, from
    which the rest follows, so that a test's own HF_HOME moves them all), with no token."""
    monkeypatch.setenv("HF_HOME", str(hf_home))
    for name in ("HF_HUB_CACHE", "HF_TOKEN_PATH", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(hf_home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(hf_home / "stored_tokens"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(hf_home / ".agent_harnesses.json"))


def set_offline(monkeypatch: pytest.MonkeyPatch, offline: bool) -> None:
    """``HF_HUB_OFFLINE``, in the environment and in the constant huggingface_hub read at import."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
