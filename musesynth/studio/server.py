"""The studio's web server: Python's ``ThreadingHTTPServer`` and one static page, on 127.0.0.1 only.

Why not Gradio: it is the field's convention, but it pulls a large dependency tree (FastAPI, uvicorn,
pandas, ...) into every install and slows CI's fresh set-up, for a page with a dozen inputs. The standard
library serves that page, a few JSON endpoints and the generated files with nothing to install, and the
page (``static/index.html``, plain HTML + JS) plays WAV with the browser's own ``<audio>``.

Endpoints: ``GET /`` the page; ``GET /api/options`` models, corpus pieces, keys, defaults; ``GET
/api/model?id=`` a model's encoding and controls (keys, composers, tempo, infill); ``POST /api/upload`` a
primer (raw bytes, name in ``X-Filename``); ``POST /api/corpus`` a corpus piece as primer; ``POST
/api/generate`` a job (``"mode": "rewrite"`` with ``bars_first``/``bars_last``: bars of the primer
rewritten); ``GET /api/jobs[/ID]`` state, progress and results; ``GET /files/ID/{mid,wav,png}`` a job's files.
Requests must name this server as their Host (127.0.0.1 or localhost), so a web page elsewhere cannot
drive it through DNS rebinding. Every error is JSON ``{"error": one line}``; tracebacks stay on the
terminal.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from musesynth.errors import MusesynthError
from musesynth.generate.controls import check_controls
from musesynth.generate.infill import InfillOptions
from musesynth.generate.run import GenerateOptions
from musesynth.generate.sampling import Sampling
from musesynth.studio.catalog import KEYS, Corpus, ModelEntry, list_models, model_encoding, model_info
from musesynth.studio.jobs import MAX_LENGTH, JobQueue, options_from_request
from musesynth.studio.rewrite import bars_from_request, check_rewrite, infill_options_from_request
from musesynth.studio.uploads import MAX_UPLOAD_BYTES, describe, save_upload

PAGE = Path(__file__).with_name("static") / "index.html"
HOST = "127.0.0.1"
DRAIN_LIMIT = 64 * 2**20  # an oversized upload is read (and dropped) up to this, so the browser sees the answer
FILE_TYPES = {"mid": "audio/midi", "wav": "audio/wav", "png": "image/png"}


class RequestError(MusesynthError):
    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Studio:
    """The studio's state: where it writes, what it lists, the primers it accepted and its jobs."""

    out_dir: Path
    runs_dir: Path
    corpus: Corpus
    soundfont: str | None = None
    device: str = "auto"
    jobs: JobQueue = field(default_factory=JobQueue)
    primers: dict[str, Path] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def options(self) -> dict[str, Any]:
        d, s = GenerateOptions(), Sampling()
        return {
            "models": [{"id": m.id, "label": m.label} for m in list_models(self.runs_dir)],
            "corpus": sorted(self.corpus.pieces()), "keys": KEYS, "max_upload_bytes": MAX_UPLOAD_BYTES,
            "defaults": {"length": d.length, "temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p,
                         "repeat_bias": s.repeat_bias, "key_strength": s.key_strength, "ending": s.ending,
                         "seed": d.seed, "primer_seconds": 4, "max_length": MAX_LENGTH},
        }

    def model(self, model_id: str) -> ModelEntry:
        for m in list_models(self.runs_dir):
            if m.id == model_id:
                return m
        raise RequestError(f"unknown model '{model_id}' (reload the page to see the current list)")

    def upload(self, data: bytes, filename: str) -> dict[str, Any]:
        with self.lock:  # free names are picked and taken under one lock
            path, info = save_upload(data, filename, self.out_dir / "primers")
            primer_id = f"upload/{path.name}"
            self.primers[primer_id] = path
        return {"id": primer_id, **info}

    def pick_corpus(self, name: str) -> dict[str, Any]:
        path = self.corpus.resolve(name)
        primer_id = f"corpus/{name}"
        with self.lock:
            self.primers[primer_id] = path
        return {"id": primer_id, **describe(path), "name": name}

    def generate(self, body: dict[str, Any]) -> dict[str, Any]:
        primer_id = body.get("primer") or None
        if primer_id is not None and primer_id not in self.primers:
            raise RequestError("that primer is gone (upload it again or pick another)")
        model = self.model(str(body.get("model", "")))
        bars = bars_from_request(body)
        if bars is not None:
            return self._rewrite(body, model, primer_id, bars)
        base = GenerateOptions(checkpoint=str(model.path), out_dir=str(self.out_dir),
                               primer=str(self.primers[primer_id]) if primer_id else None,
                               soundfont=self.soundfont, device=self.device)
        opt = options_from_request(body, base)
        check_controls(model_encoding(model), opt.composer, opt.tempo)  # a one-line refusal now, not in the job
        label = {"model": body.get("model"), "primer": primer_id.split("/", 1)[1] if primer_id else None,
                 "primer_seconds": opt.primer_seconds, "length": opt.length, "key": opt.key, "seed": opt.seed,
                 "composer": opt.composer, "tempo": opt.tempo,
                 "temperature": opt.sampling.temperature, "top_k": opt.sampling.top_k, "top_p": opt.sampling.top_p,
                 "repeat_bias": opt.sampling.repeat_bias, "key_strength": opt.sampling.key_strength,
                 "ending": opt.sampling.ending}
        return self.jobs.submit(replace(opt, num_samples=1), label).public()

    def _rewrite(self, body: dict[str, Any], model: ModelEntry, primer_id: str | None, bars: tuple[int, int]
                 ) -> dict[str, Any]:
        """An infill job: bars of the primer rewritten by a model trained with infill tokens."""
        primer = self.primers[primer_id] if primer_id else None
        name = primer_id.split("/", 1)[1] if primer_id else ""
        check_rewrite(body, model_encoding(model), model.id, primer, name, bars)
        base = InfillOptions(checkpoint=str(model.path), input=str(primer), out_dir=str(self.out_dir),
                             soundfont=self.soundfont, device=self.device)
        opt = infill_options_from_request(body, bars, base)
        s = opt.sampling
        label = {"model": model.id, "primer": name, "mode": "rewrite", "bars": opt.bars, "seed": opt.seed,
                 "temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "repeat_bias": s.repeat_bias,
                 "key_strength": s.key_strength}
        return self.jobs.submit(opt, label).public()


class Handler(BaseHTTPRequestHandler):
    server: StudioServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._guarded(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guarded(self._post)

    def _guarded(self, route: Any) -> None:
        try:
            self._check_host()
            route(urlsplit(self.path))
        except RequestError as exc:
            self._json({"error": str(exc)}, exc.status)
        except MusesynthError as exc:
            self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # a bug: one line for the page, the traceback for the terminal
            traceback.print_exc(file=sys.stderr)
            self._json({"error": f"internal error: {type(exc).__name__}"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def _check_host(self) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if host not in ("127.0.0.1", "localhost"):
            raise RequestError("the studio answers only requests to 127.0.0.1 or localhost", HTTPStatus.FORBIDDEN)

    def _get(self, url: Any) -> None:
        studio, parts = self.server.studio, url.path.strip("/").split("/")
        if url.path in ("/", "/index.html"):
            self._send(PAGE.read_bytes(), "text/html; charset=utf-8")
        elif url.path == "/api/options":
            self._json(studio.options())
        elif url.path == "/api/model":
            self._json(model_info(studio.model(parse_qs(url.query).get("id", [""])[0])))
        elif url.path == "/api/jobs":
            self._json({"jobs": [j.public() for j in reversed(studio.jobs.all())]})
        elif len(parts) == 3 and parts[:2] == ["api", "jobs"]:
            self._json(self._job(parts[2]).public())
        elif len(parts) == 3 and parts[0] == "files" and parts[2] in FILE_TYPES:
            self._file(self._job(parts[1]).file(parts[2]), parts[2], "download" in parse_qs(url.query))
        else:
            raise RequestError(f"no such page: {url.path}", HTTPStatus.NOT_FOUND)

    def _post(self, url: Any) -> None:
        studio = self.server.studio
        if url.path == "/api/upload":
            name = unquote(self.headers.get("X-Filename") or "primer.mid")
            self._json(studio.upload(self._body(MAX_UPLOAD_BYTES, name), name))
        elif url.path == "/api/corpus":
            self._json(studio.pick_corpus(str(self._json_body().get("name", ""))))
        elif url.path == "/api/generate":
            self._json(studio.generate(self._json_body()))
        else:
            raise RequestError(f"no such endpoint: {url.path}", HTTPStatus.NOT_FOUND)

    def _job(self, text: str) -> Any:
        job = self.server.studio.jobs.get(int(text)) if text.isdigit() else None
        if job is None:
            raise RequestError(f"no job {text}", HTTPStatus.NOT_FOUND)
        return job

    def _body(self, limit: int, name: str = "request") -> bytes:
        """The request body; one over ``limit`` is drained (so the browser reads the answer) and refused."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise RequestError("bad Content-Length") from None
        if length > limit:
            self.close_connection = True
            left = min(length, DRAIN_LIMIT)
            while left > 0 and (chunk := self.rfile.read(min(left, 2**20))):
                left -= len(chunk)
            raise RequestError(f"{name}: larger than {limit // 2**20} MB; a MIDI primer is far smaller",
                               HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self._body(2**16) or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise RequestError("the request is not JSON") from None
        if not isinstance(body, dict):
            raise RequestError("the request must be a JSON object")
        return body

    def _file(self, path: Path | None, kind: str, download: bool) -> None:
        if path is None or not path.is_file():
            raise RequestError(f"this job has no {kind} file", HTTPStatus.NOT_FOUND)
        disposition = f'attachment; filename="{path.name}"' if download else None
        self._send(path.read_bytes(), FILE_TYPES[kind], disposition)

    def _json(self, obj: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(json.dumps(obj).encode(), "application/json", status=status)

    def _send(self, data: bytes, ctype: str, disposition: str | None = None,
              status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if disposition:
            self.send_header("Content-Disposition", disposition)
        self.end_headers()
        self.wfile.write(data)


class StudioServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, studio: Studio, port: int = 0, verbose: bool = False) -> None:
        self.studio, self.verbose = studio, verbose
        super().__init__((HOST, port), Handler)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"
