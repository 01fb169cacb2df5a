"""Getting models over the local server, over real loopback HTTP: the hub (a Hugging Face-
compatible hub on loopback), downloads and their controls, uploads (streamed, refused, cut off,
cancelled, and one of 1 GB), quantizing, and the transfers in the status and the event stream."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from llm_desktop.core.demo import spec_for_size, write_demo_model
from llm_desktop.core.engine import Engine
from llm_desktop.core.events import ProgressEvent, Stage
from llm_desktop.core.gguf_header import read_gguf
from llm_desktop.core.library import ModelLibrary
from llm_desktop.core.transfers import Transfers
from llm_desktop.server import getting
from llm_desktop.server.app import ServerConfig
from llm_desktop.server.runner import ServerThread
from tests.helpers.fake_hub import Status, Throttle
from tests.server.conftest import GATED_REPO, REPO, SPLIT_REPO

TIMEOUT = httpx.Timeout(60.0)
UPLOAD_LIMIT = 64 * 1024 * 1024
WAIT_S = 60.0


class Served:
    def __init__(self, server: ServerThread, models: Path, cache: Path):
        self.server = server
        self.models = models
        self.cache = cache
        self.client = httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {server.config.token}"},
            timeout=TIMEOUT,
        )

    def transfer(self, key: str) -> dict | None:
        for view in self.client.get("/api/transfers").json()["transfers"]:
            if view["key"] == key:
                return view
        return None

    def wait(self, key: str, *stages: str) -> dict:
        """The transfer's view once its stage is one of `stages`."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            view = self.transfer(key)
            if view is not None and view["stage"] in stages:
                return view
            time.sleep(0.05)
        raise AssertionError(f"{key} never reached {stages}: {self.transfer(key)}")

    def models_listed(self) -> dict[str, dict]:
        models = self.client.get("/api/llm/models").json()["models"]
        return {Path(model["path"]).name: model for model in models}


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def served(tmp_path, hub, monkeypatch, no_leaked_processes):
    """The server as `llm-desktop serve` runs it, with the transfers service it makes itself
    (its restart list under XDG_DATA_HOME, so under the test's folder)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    models, cache = tmp_path / "models", tmp_path / "cache"
    models.mkdir()
    cache.mkdir()
    engine = Engine(warm_hosts=0)
    library = ModelLibrary([models, cache], include_known=False)
    server = ServerThread(engine, library, config=ServerConfig(upload_limit=UPLOAD_LIMIT)).start()
    assert server.state.transfers.downloads.state_file.is_relative_to(tmp_path)
    served = Served(server, models, cache)
    yield served
    served.client.close()
    server.stop()
    engine.shutdown()


# -- the hub ---------------------------------------------------------------------------------


def test_a_search_lists_gguf_repositories_in_the_servers_words(served):
    answer = served.client.get("/api/hub/search", params={"q": "acme"}).json()
    assert {hit["repo_id"] for hit in answer["hits"]} == {REPO, SPLIT_REPO, GATED_REPO}
    view = answer["view"]
    assert view["summary"] == "3 repositories for “acme”"
    by_repo = {hit["repo_id"]: hit for hit in view["hits"]}
    assert by_repo[GATED_REPO]["gated"] and by_repo[GATED_REPO]["gated_label"] == "Gated"
    assert "HF_TOKEN" in by_repo[GATED_REPO]["gated_hint"]
    assert by_repo[REPO]["open"]["label"] == "Show models"
    assert by_repo[REPO]["href"] == "/?q=acme&repo=acme%2FTiny-GGUF#hub-repo"
    nothing = served.client.get("/api/hub/search", params={"q": "no-such-thing"}).json()
    assert nothing["hits"] == []
    assert nothing["view"]["summary"] == "No GGUF repositories match “no-such-thing”"


def test_a_repository_lists_each_model_with_its_size_and_a_download(served, hub_files):
    view = served.client.get("/api/hub/repo", params={"id": REPO}).json()["view"]
    assert view["title"] == REPO and view["summary"].startswith("2 GGUF models · commit ")
    by_file = {model["file"]: model for model in view["models"]}
    q8 = by_file["Tiny-Q8_0.gguf"]
    assert q8["reference"] == f"{REPO}:Tiny-Q8_0.gguf"
    assert q8["quantization"] == "Q8_0"
    size = hub_files["Tiny-Q8_0.gguf"].stat().st_size
    assert q8["size_text"] == f"{size / 1e6:.1f} MB"
    assert q8["button"]["label"] == "Download" and q8["button"]["action"] == "download"
    assert q8["fit"]["text"] == "Checking fit…" and q8["fit_pending"], "read by /api/hub/fit"
    recommended = [model["file"] for model in view["models"] if model["recommended"]]
    assert len(recommended) == 1, "the one `pull` would take, as in the app"
    split = served.client.get("/api/hub/repo", params={"id": SPLIT_REPO}).json()["view"]
    (model,) = split["models"]
    assert model["facts"].endswith(" in 2 files"), "the parts of a split model are one model"


def test_the_fit_of_a_hub_model_is_read_from_its_remote_header(served):
    answer = served.client.get(
        "/api/hub/fit", params={"repo": REPO, "file": "Tiny-Q8_0.gguf"}
    ).json()
    assert answer["reference"] == f"{REPO}:Tiny-Q8_0.gguf"
    assert answer["verdict"]["verdict"] == "cpu"  # no GPU on this machine
    assert answer["badge"]["text"] == "CPU only"
    assert answer["badge"]["summary"] == answer["verdict"]["summary"]


def test_hub_failures_are_named_with_their_status(served, hub):
    def refusal(path, **params):
        response = served.client.get(path, params=params)
        return response.status_code, response.json()["error"]["kind"]

    assert refusal("/api/hub/repo", id="acme/none") == (404, "not_found")
    assert refusal("/api/hub/fit", repo=GATED_REPO, file="Gated-Q8_0.gguf") == (401, "unauthorized")
    gated = served.client.get(
        "/api/hub/fit", params={"repo": GATED_REPO, "file": "Gated-Q8_0.gguf"}
    )
    badge = gated.json()["badge"]  # the page shows why the fit is unknown in the app's words
    assert badge["text"] == "Fit unknown" and badge["summary"] == gated.json()["error"]["message"]
    hub.inject("Tiny-F16.gguf", Status(429, retry_after=1))
    assert refusal("/api/hub/fit", repo=REPO, file="Tiny-F16.gguf") == (429, "rate_limited")
    hub.clear_faults()
    hub.stop()  # the hub is unreachable now
    assert refusal("/api/hub/search", q="acme") == (502, "network")
    assert refusal("/api/hub/repo", id="acme/Other-GGUF") == (502, "network")
    assert refusal("/api/hub/repo", id="not a repo") == (400, "bad_repo")
    assert refusal("/api/hub/fit", repo=REPO) == (400, "bad_model")


# -- downloads -------------------------------------------------------------------------------


def test_a_download_started_over_the_api_becomes_a_model_that_loads(served):
    answer = served.client.post("/api/downloads", json={"reference": f"{REPO}:Tiny-Q8_0.gguf"})
    assert answer.status_code == 202
    key = answer.json()["key"]
    assert key == f"download:{REPO}:Tiny-Q8_0.gguf"
    view = served.wait(key, "complete", "failed")
    assert view["stage"] == "complete", view
    assert [a["id"] for a in view["actions"]] == ["load", "dismiss"]
    # The new file is in the library (the server scanned again when it arrived), with Load.
    listed = served.models_listed()["Tiny-Q8_0.gguf"]
    assert [a["id"] for a in listed["view"]["actions"]] == ["load"]
    assert listed["path"] == view["result_path"]
    model = served.client.post("/api/transfers/load", json={"key": key}).json()["model"]
    assert model == listed["id"]
    loaded = served.client.post("/api/llm/load", json={"model": model}).json()
    assert loaded["stage"] == "complete", loaded
    served.client.post("/api/llm/unload", json={"model": model})
    served.server.state.engine.wait(model, 30.0)
    assert served.client.post("/api/transfers/dismiss", json={"key": key}).json() == {
        "dismissed": True
    }
    assert served.transfer(key) is None


def test_pause_resume_cancel_and_discard_over_the_api(served, hub, hub_files):
    hub.inject("Tiny-F16.gguf", Throttle(2_000_000))  # about 6 s for its 12 MB
    key = served.client.post("/api/downloads", json={"reference": f"{REPO}:Tiny-F16.gguf"}).json()[
        "key"
    ]
    moving = served.wait(key, "downloading")
    assert [a["id"] for a in moving["actions"]] == ["pause", "cancel"]
    assert served.client.post("/api/transfers/pause", json={"key": key}).json() == {"ok": True}
    paused = served.wait(key, "paused")
    assert [a["id"] for a in paused["actions"]] == ["resume", "cancel"]
    assert served.client.post("/api/transfers/resume", json={"key": key}).json() == {"ok": True}
    served.wait(key, "downloading")
    while (view := served.transfer(key))["stage"] == "downloading" and not view["amount_text"]:
        time.sleep(0.05)
    # Cancel, keeping the bytes: the question had offered it.
    assert view["cancel_question"]["keep"]["id"] == "cancel"
    assert served.client.post("/api/transfers/cancel", json={"key": key}).json() == {"ok": True}
    cancelled = served.wait(key, "cancelled")
    assert [a["id"] for a in cancelled["actions"]] == ["resume", "discard"]
    blobs = served.cache / "models--acme--Tiny-GGUF" / "blobs"
    assert [name for name in files_in(blobs) if name.endswith(".incomplete")], "bytes kept"
    # Delete them.
    assert served.client.post("/api/transfers/discard", json={"key": key}).json() == {"ok": True}
    assert not [name for name in files_in(blobs) if name.endswith(".incomplete")]
    unknown = served.client.post("/api/transfers/pause", json={"key": "download:nothing"})
    assert (unknown.status_code, unknown.json()["error"]["kind"]) == (404, "unknown_transfer")


def test_the_status_and_the_event_streams_snapshot_list_the_transfers(served, hub):
    hub.inject("Tiny-F16.gguf", Throttle(1_000_000))
    key = served.client.post("/api/downloads", json={"reference": f"{REPO}:Tiny-F16.gguf"}).json()[
        "key"
    ]
    served.wait(key, "downloading")
    status = served.client.get("/api/llm/status").json()
    assert [view["key"] for view in status["transfers"]] == [key]
    assert key not in status["models"], "a transfer is not a model"
    token = served.server.config.token
    with served.client.stream("GET", "/api/llm/events", params={"token": token}) as response:
        lines = response.iter_lines()
        assert next(lines) == "event: snapshot"
        snapshot = json.loads(next(lines).removeprefix("data: "))
        assert [view["key"] for view in snapshot["transfers"]] == [key]
        # Then the transfer's own events, each with its row's view.
        for line in lines:
            if line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                assert event["model"] == key and event["view"]["key"] == key
                assert event["view"]["kind_word"] == "Download"
                break
    served.client.post("/api/transfers/cancel", json={"key": key, "keep": False})
    served.wait(key, "cancelled")


# -- uploads ---------------------------------------------------------------------------------


def test_a_generated_gguf_uploaded_becomes_a_model(served, upload_model):
    data = upload_model.read_bytes()
    answer = served.client.post("/api/uploads", params={"name": "sent.gguf"}, content=data)
    assert answer.status_code == 201, answer.text
    path = Path(answer.json()["path"])
    assert path == served.models / "sent.gguf"
    assert files_in(served.models) == ["sent.gguf"]
    assert path.read_bytes() == data
    view = served.transfer(answer.json()["key"])
    assert view["stage"] == "complete" and [a["id"] for a in view["actions"]] == ["load", "dismiss"]
    listed = served.models_listed()["sent.gguf"]
    assert listed["error"] is None and [a["id"] for a in listed["view"]["actions"]] == ["load"]
    # The same file again, in two steps (the page's way): named first, then sent.
    start = served.client.post("/api/uploads/start", json={"name": "sent.gguf", "size": len(data)})
    assert start.status_code == 201
    key = start.json()["key"]
    assert served.transfer(key)["stage"] == "connecting"
    sent = served.client.post(f"/api/uploads/{key}", content=data)
    assert sent.status_code == 201 and sent.json()["path"].endswith("sent-2.gguf")
    assert files_in(served.models) == ["sent-2.gguf", "sent.gguf"]


def test_a_file_that_is_not_a_gguf_is_refused_and_leaves_nothing(served):
    answer = served.client.post(
        "/api/uploads", params={"name": "notes.gguf"}, content=b"not a model\n" * 100_000
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["kind"] == "invalid_model"
    assert "GGUF signature" in answer.json()["error"]["message"]
    assert served.transfer(answer.json()["key"])["stage"] == "failed"
    assert files_in(served.models) == []
    wrong_name = served.client.post("/api/uploads", params={"name": "model.bin"}, content=b"GGUF")
    assert wrong_name.status_code == 422 and files_in(served.models) == []


def test_an_upload_over_the_limit_is_refused_before_a_byte_is_kept(served):
    too_big = UPLOAD_LIMIT + 1
    start = served.client.post("/api/uploads/start", json={"name": "huge.gguf", "size": too_big})
    assert start.status_code == 413
    assert start.json()["error"]["kind"] == "too_large"
    assert "accepts files up to 67.1 MB" in start.json()["error"]["message"]

    # The single request: the server answers as soon as it has the headers, before the body.
    sock = raw_upload(served, "/api/uploads?name=huge.gguf", b"GGUF", too_big)
    status, body = answer_of(sock)
    assert (status, body["error"]["kind"]) == (413, "too_large")
    assert files_in(served.models) == []


def raw_upload(served: Served, path: str, data: bytes, size: int) -> socket.socket:
    """Start a POST whose body says `size` bytes and send only `data` of them."""
    sock = socket.create_connection(("127.0.0.1", served.server.port))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{served.server.port}\r\n"
        f"Authorization: Bearer {served.server.config.token}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
    )
    sock.sendall(head.encode() + data)
    return sock


def answer_of(sock: socket.socket) -> tuple[int, dict]:
    """The status and JSON body the server answered on a raw upload's socket."""
    sock.settimeout(WAIT_S)
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = json.loads(response.read())
    sock.close()
    return response.status, body


def wait_for_bytes(served: Served, minimum: int) -> None:
    """Until the upload's partial file (a hidden name) holds `minimum` bytes."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        partial = [p for p in served.models.iterdir() if p.name.endswith(".uploading")]
        if partial and partial[0].stat().st_size >= minimum:
            return
        time.sleep(0.02)
    raise AssertionError(f"the upload never held {minimum} bytes")


def the_upload(served: Served) -> dict:
    transfers = served.client.get("/api/transfers").json()["transfers"]
    (view,) = [view for view in transfers if view["op"] == "upload"]
    return view


def test_a_client_that_goes_away_mid_body_leaves_nothing(served, upload_model):
    data = upload_model.read_bytes()
    sock = raw_upload(served, "/api/uploads?name=cut.gguf", data[: len(data) // 2], len(data))
    wait_for_bytes(served, 4 << 20)
    sock.close()
    key = the_upload(served)["key"]
    view = served.wait(key, "cancelled", "failed")
    assert view["stage"] == "cancelled", view
    assert view["detail"] == "Upload of cut.gguf cancelled; nothing was kept"
    assert files_in(served.models) == []


def test_cancel_stops_an_upload_mid_body_and_leaves_nothing(served, upload_model):
    data = upload_model.read_bytes()
    key = served.client.post(
        "/api/uploads/start", json={"name": "stopped.gguf", "size": len(data)}
    ).json()["key"]
    sock = raw_upload(served, f"/api/uploads/{key}", data[: len(data) // 2], len(data))
    wait_for_bytes(served, 4 << 20)
    # The client sends nothing more: Cancel ends the upload at once anyway.
    assert served.client.post("/api/transfers/cancel", json={"key": key}).json() == {"ok": True}
    status, body = answer_of(sock)
    assert (status, body["error"]["kind"]) == (409, "cancelled"), body
    assert served.wait(key, "cancelled")["stage"] == "cancelled"
    assert files_in(served.models) == []


def test_an_upload_named_but_never_sent_expires(served, monkeypatch):
    monkeypatch.setattr(getting, "UPLOAD_START_TTL_S", 0.2)
    key = served.client.post("/api/uploads/start", json={"name": "idle.gguf", "size": 10}).json()[
        "key"
    ]
    view = served.wait(key, "cancelled")
    assert view["detail"] == "Upload of idle.gguf cancelled; nothing was kept"
    late = served.client.post(f"/api/uploads/{key}", content=b"GGUF\x03\x00\x00\x00\x00\x00")
    assert late.status_code == 404
    assert files_in(served.models) == []


@pytest.mark.slow
def test_a_1_gb_upload_shows_its_rate_and_ends_a_model_that_loads(tmp_path, monkeypatch, capsys):
    """A generated ~1 GB GGUF through POST /api/uploads: UPLOADING events with a rate and an
    ETA arrive on the event stream while it streams to disk, it ends COMPLETE, and the real
    engine loads the file. Prints the throughput measured here."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    source = write_demo_model(tmp_path / "source" / "big-upload.gguf", spec_for_size(1024))
    size = source.stat().st_size
    assert size > 1_000_000_000
    models = tmp_path / "models"
    models.mkdir()
    engine = Engine(warm_hosts=0)
    server = ServerThread(engine, ModelLibrary([models], include_known=False)).start()
    token = server.config.token
    events: list[ProgressEvent] = []
    import threading

    def follow() -> None:
        with httpx.stream(
            "GET", f"{server.base_url}/api/llm/events", params={"token": token}, timeout=TIMEOUT
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and '"op":"upload"' in line:
                    events.append(ProgressEvent.from_json(line.removeprefix("data: ")))
                    if events[-1].is_terminal:
                        return

    follower = threading.Thread(target=follow, name="follow-upload")
    follower.start()
    try:

        def chunks():
            with open(source, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk

        started = time.monotonic()
        answer = httpx.post(
            f"{server.base_url}/api/uploads",
            params={"name": "big-upload.gguf", "token": token},
            content=chunks(),
            headers={"Content-Length": str(size)},
            timeout=httpx.Timeout(600.0),
        )
        elapsed = time.monotonic() - started
        assert answer.status_code == 201, answer.text
        follower.join(WAIT_S)
        uploading = [e for e in events if e.stage is Stage.UPLOADING]
        assert len(uploading) >= 2, [e.stage for e in events]
        assert all(e.bytes_total == size for e in uploading)
        assert [e.bytes_done for e in uploading] == sorted(e.bytes_done for e in uploading)
        rated = [e for e in uploading if e.rate_bps]
        assert rated and all(e.eta_s is not None for e in rated)
        assert events[-1].stage is Stage.COMPLETE and events[-1].bytes_done == size
        path = Path(answer.json()["path"])
        assert path.stat().st_size == size
        assert read_gguf(path, tensors=True).tensor_count > 0
        headers = {"Authorization": f"Bearer {token}"}
        listed = httpx.get(f"{server.base_url}/api/llm/models", headers=headers).json()["models"]
        (model,) = [m for m in listed if m["path"] == str(path)]
        loaded = httpx.post(
            f"{server.base_url}/api/llm/load",
            json={"model": model["id"]},
            headers=headers,
            timeout=httpx.Timeout(300.0),
        ).json()
        assert loaded["stage"] == "complete", loaded
        with capsys.disabled():
            print(
                f"\n1 GB upload: {size / 1e6:.0f} MB in {elapsed:.2f} s = "
                f"{size / 1e6 / elapsed:.0f} MB/s (server's last rate "
                f"{rated[-1].rate_bps / 1e6:.0f} MB/s)"
            )
    finally:
        follower.join(WAIT_S)
        server.stop()
        engine.shutdown()


# -- quantizing and an app's own transfers service ---------------------------------------------


def test_quantize_over_the_api_makes_a_model(served, tiny_model):
    (served.models / "tiny.gguf").write_bytes(tiny_model.read_bytes())
    model = served.models_listed()["tiny.gguf"]["id"]
    bad = served.client.post("/api/quantize", json={"model": model, "type": "Q9_Z"})
    assert bad.status_code == 400 and bad.json()["error"]["kind"] == "bad_type"
    answer = served.client.post("/api/quantize", json={"model": model, "type": "Q8_0"})
    assert answer.status_code == 202
    view = served.wait(answer.json()["key"], "complete", "failed")
    assert view["stage"] == "complete", view
    assert view["kind_word"] == "Quantize"
    assert "tiny-Q8_0.gguf" in served.models_listed()


def test_an_apps_own_transfers_service_is_used_and_tells_the_server_of_new_models(
    tmp_path, hub, no_leaked_processes
):
    models = tmp_path / "app-models"
    models.mkdir()
    engine = Engine(warm_hosts=0)
    library = ModelLibrary([models, tmp_path / "cache"], include_known=False)
    added: list[str] = []
    box: dict = {}

    def model_added(path: str) -> None:  # what the app's controller does
        added.append(path)
        box["server"].state.model_added(path)

    transfers = Transfers(
        engine.bus, models_dir=models, state_dir=tmp_path / "state", on_model_added=model_added
    )
    config = ServerConfig(upload_limit=1000)  # lower than the service's own
    server = ServerThread(engine, library, config=config, transfers=transfers)
    box["server"] = server
    server.start()
    try:
        assert server.state.transfers is transfers and not server.state.owns_transfers
        served = Served(server, models, tmp_path / "cache")
        key = served.client.post("/api/downloads", json={"reference": REPO}).json()["key"]
        assert served.wait(key, "complete", "failed")["stage"] == "complete"
        assert added and Path(added[0]).name == "Tiny-Q8_0.gguf"
        # The server's store knows the model without being asked to scan.
        titles = {view.path for view in server.state.store.views()}
        assert added[0] in titles
        # The server's upload limit holds for the service it was given.
        refused = served.client.post("/api/uploads/start", json={"name": "a.gguf", "size": 2000})
        assert (refused.status_code, refused.json()["error"]["kind"]) == (413, "too_large")
        served.client.close()
    finally:
        server.stop()
        transfers.shutdown()
        engine.shutdown()


def test_the_pages_new_scripts_and_styles_are_served(served):
    for path, kind in (
        ("/static/js/getmodels.js", "text/javascript"),
        ("/static/js/transfers.js", "text/javascript"),
        ("/static/css/get-models.css", "text/css"),
    ):
        response = served.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(kind), path
    page = served.client.get("/").text
    assert '<link rel="stylesheet" href="/static/css/get-models.css">' in page
