"""The studio's web server: Python's ``ThreadingHTTPServer`` and one static page, on 127.0.0.1 only.

Why not Gradio: it is the field's convention, but it pulls a large dependency tree (FastAPI, uvicorn,
pandas, ...) into every install and slows CI's fresh set-up, for a page with a dozen inputs. The standard
library serves that page, a few JSON endpoints and the generated files with nothing to install, and the
page (``static/index.html``, plain HTML + JS) plays WAV with the browser's own ``<audio>``.

Endpoints: ``GET /`` the page; ``GET /api/options`` models, corpus pieces, keys, defaults; ``GET
/api/model?id=`` a model's encoding and controls (keys, composers, tempo, infill); ``POST /api/upload`` a
primer (raw bytes, name in ``X-Filename``); ``POST /api/corpus`` a corpus piece as primer; ``POST
/api/generate`` a job (``"mode": "rewrite"`` with ``bars_first``/``bars_last`` and optionally ``voices``: bars of
the primer rewritten; ``"mode": "harmonize"`` with ``voices`` and the primer or ``melody_notes`` as the melody);
``GET /api/jobs[/ID]`` state, progress and results; ``GET /files/ID/{mid,wav,png}`` a job's files.
Requests must name this server as their Host (127.0.0.1 or localhost), so a web page elsewhere cannot
drive it through DNS rebinding. A POST must come from the studio's own page or from no page at all: one
whose ``Origin`` is another site, or whose ``Sec-Fetch-Site`` says cross-site, is refused (403), and every
POST must carry a Content-Type a plain HTML form or a "simple" cross-site fetch cannot send
(``application/json``; ``application/octet-stream`` for uploads), so a browser asks first and gets no
permission. ``Content-Length`` is checked before a byte of the body is read: missing 411, not a whole
number 400, over the endpoint's limit 413. At most ``MAX_PENDING`` jobs wait (then 429) and ``MAX_UPLOADS``
uploads are kept. Every error is JSON ``{"error": one line, "field": the request field or null}``, so the
page shows it beside that control; tracebacks of bugs stay on the terminal, and a client that goes away
(a closed tab) is no error at all.
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

from musesynth.errors import BadRequest, MusesynthError
from musesynth.generate.controls import check_controls
from musesynth.generate.harmonize import HARMONIZE_TEMPERATURE, HarmonizeOptions
from musesynth.generate.infill import InfillOptions
from musesynth.generate.pipeline import require_voices
from musesynth.generate.prompt import primer_ids
from musesynth.generate.run import GenerateOptions
from musesynth.generate.sampling import Sampling
from musesynth.studio.catalog import KEYS, Corpus, ModelEntry, list_models, model_encoding, model_info
from musesynth.studio.fields import field_of
from musesynth.studio.jobs import (
    MAX_LENGTH,
    MAX_SEED,
    FieldError,
    JobQueue,
    QueueFull,
    check_sampling,
    one_line,
    options_from_request,
    page_name,
    text,
)
from musesynth.studio.melody_entry import melody_midi
from musesynth.studio.rewrite import (
    bars_from_request,
    check_harmonize,
    check_rewrite,
    harmonize_options_from_request,
    infill_options_from_request,
    mode_from_request,
    upload_melody_voice,
)
from musesynth.studio.uploads import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOADS,
    MAX_UPLOADS_BYTES,
    describe,
    encode_within_budget,
    read_upload,
    write_upload,
)

PAGE = Path(__file__).with_name("static") / "index.html"
HOST = "127.0.0.1"
JSON_LIMIT = 2**16  # a request of the page is a few hundred bytes
FILE_TYPES = {"mid": "audio/midi", "wav": "audio/wav", "png": "image/png"}
BODY_TYPES = {"/api/upload": ("application/octet-stream", "audio/midi", "audio/x-midi"),
              "/api/corpus": ("application/json",), "/api/generate": ("application/json",)}
SAME_SITE = ("same-origin", "none")  # Sec-Fetch-Site values of the studio's own page or a typed URL / tool


class RequestError(MusesynthError):
    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.field = status, field


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
    uploaded: list[int] = field(default_factory=list)  # sizes of the uploads kept, for MAX_UPLOADS(_BYTES)
    checked: set[tuple[str, str]] = field(default_factory=set)  # (primer id, model id) read within the budget
    lock: threading.Lock = field(default_factory=threading.Lock)

    def options(self) -> dict[str, Any]:
        d, s = GenerateOptions(), Sampling()
        return {
            "models": [{"id": m.id, "label": m.label, "note": m.note, **abilities(m)}
                       for m in list_models(self.runs_dir)],
            "corpus": sorted(self.corpus.pieces()), "keys": KEYS, "max_upload_bytes": MAX_UPLOAD_BYTES,
            "defaults": {"length": d.length, "temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p,
                         "repeat_bias": s.repeat_bias, "key_strength": s.key_strength, "ending": s.ending,
                         "seed": None, "max_seed": MAX_SEED, "primer_seconds": 4, "max_length": MAX_LENGTH,
                         "harmonize_temperature": HARMONIZE_TEMPERATURE},
        }

    def model(self, model_id: str) -> ModelEntry:
        for m in list_models(self.runs_dir):
            if m.id == model_id:
                return m
        raise RequestError(f"unknown model '{model_id}' (reload the page to see the current list)", field="model")

    def check_upload_room(self, size: int, filename: str, reserve: bool = False) -> None:
        """Refuse an upload past the session's bounds (before its body is read), or take its room (``reserve``)."""
        with self.lock:
            if len(self.uploaded) >= MAX_UPLOADS or sum(self.uploaded) + size > MAX_UPLOADS_BYTES:
                raise RequestError(f"{filename}: this studio keeps {len(self.uploaded)} uploads "
                                   f"({sum(self.uploaded) / 2**20:.1f} MB) already, its limit is {MAX_UPLOADS} "
                                   f"files / {MAX_UPLOADS_BYTES // 2**20} MB; restart it for new ones (or pick a "
                                   f"corpus piece)", HTTPStatus.TOO_MANY_REQUESTS, "primer")
            if reserve:
                self.uploaded.append(size)  # held while the file is checked; given back if it is refused

    def upload(self, data: bytes, filename: str, model_id: str | None = None) -> dict[str, Any]:
        """Keep an upload that the chosen model (default: the first listed) can read within the budget."""
        models = list_models(self.runs_dir)
        model = next((m for m in models if m.id == model_id), models[0] if models else None)
        enc = model_encoding(model) if model is not None else None
        self.check_upload_room(len(data), filename, reserve=True)
        try:
            with self.lock:  # free names are picked and taken under one lock
                path = write_upload(data, filename, self.out_dir / "primers")
            info = read_upload(path, filename, enc)  # up to the per-file budget: outside the lock
        except BaseException:
            with self.lock:
                self.uploaded.remove(len(data))
            raise
        primer_id = f"upload/{path.name}"
        with self.lock:
            self.primers[primer_id] = path
            if model is not None:
                self.checked.add((primer_id, model.id))
        return {"id": primer_id, **info}

    def check_primer(self, primer_id: str, model: ModelEntry) -> None:
        """A primer is read with the model's own encoding under the per-file budget once before its first job,
        so a file that model cannot use is refused now, not by a job."""
        with self.lock:
            if (primer_id, model.id) in self.checked:
                return
        name = primer_id.split("/", 1)[1]
        try:
            encode_within_budget(self.primers[primer_id], model_encoding(model))
        except MusesynthError as exc:
            raise FieldError("primer", f"{name}: cannot use this file as a primer for {model.id}: {exc}") from None
        with self.lock:
            self.checked.add((primer_id, model.id))

    def check_opening(self, primer_id: str, model: ModelEntry, seconds: float | None) -> None:
        """The primer's first ``seconds`` as the job will cut them (a file that passed the budget, so quick): an
        opening with nothing to continue (drums only, say) is refused beside the seconds box, not by a job."""
        if seconds is None:
            return
        path, name = self.primers[primer_id], primer_id.split("/", 1)[1]
        try:
            with self.lock:  # the cached encoding is shared by the request threads
                primer_ids(model_encoding(model), path, None, seconds, model_info(model)["seq_len"])[0]
        except MusesynthError as exc:
            raise FieldError("primer_seconds", f"{str(exc).replace(str(path), name)} in its first {seconds:g} s "
                             f"(use more seconds, or 0 for half the context)") from None

    def pick_corpus(self, name: str) -> dict[str, Any]:
        path = self.corpus.resolve(name)
        primer_id = f"corpus/{name}"
        with self.lock:
            self.primers[primer_id] = path
        return {"id": primer_id, **describe(path), "name": name}

    def generate(self, body: dict[str, Any]) -> dict[str, Any]:
        primer_id = text(body, "primer")
        if primer_id is not None and primer_id not in self.primers:
            raise RequestError("that primer is gone (upload it again or pick another)", field="primer")
        model = self.model(text(body, "model") or "")
        if mode_from_request(body) == "harmonize":
            return self._harmonize(body, model, primer_id)
        bars = bars_from_request(body)
        if primer_id is not None:
            self.check_primer(primer_id, model)
        if bars is not None:
            return self._rewrite(body, model, primer_id, bars)
        base = GenerateOptions(checkpoint=str(model.path), out_dir=str(self.out_dir),
                               primer=str(self.primers[primer_id]) if primer_id else None,
                               soundfont=self.soundfont, device=self.device)
        opt = options_from_request(body, base)
        check_sampling(opt.sampling, len(model_encoding(model).vocab))  # top-k against this model's vocabulary
        check_controls(model_encoding(model), opt.composer, opt.tempo)  # a one-line refusal now, not in the job
        try:
            require_voices(model_encoding(model), opt.particles)
        except BadRequest as exc:
            raise FieldError("particles", exc.worded(page_name)) from None
        if primer_id is not None:
            self.check_opening(primer_id, model, opt.primer_seconds)
        label = {"model": model.id, "primer": primer_id.split("/", 1)[1] if primer_id else None,
                 "primer_seconds": opt.primer_seconds, "length": opt.length, "key": opt.key, "seed": opt.seed,
                 "composer": opt.composer, "tempo": opt.tempo, **dials_label(opt.sampling),
                 "ending": opt.sampling.ending, "particles": opt.particles}
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
        check_sampling(opt.sampling, len(model_encoding(model).vocab))
        label = {"model": model.id, "primer": name, "mode": "rewrite", "bars": opt.bars, "seed": opt.seed,
                 "voices": opt.parts, **dials_label(opt.sampling), "particles": opt.particles}
        return self.jobs.submit(opt, label).public()

    def _harmonize(self, body: dict[str, Any], model: ModelEntry, primer_id: str | None) -> dict[str, Any]:
        """A harmonize job: the voices written under a melody, which is the primer (an upload: its one track or
        its Soprano; a corpus piece: its Soprano) or notes typed on the page (``melody_notes``)."""
        check_harmonize(model_encoding(model), model.id, model_info(model))
        typed = text(body, "melody_notes")
        data, voice = b"", 0  # the melody's voice: a typed melody and a corpus piece's are the Soprano
        if typed is not None:
            try:
                data = melody_midi(typed)
            except MusesynthError as exc:
                raise FieldError("melody_notes", str(exc)) from None
            melody, name, part = Path("typed.mid"), "typed melody", None  # written once the request is checked
        elif primer_id is not None:
            melody, name = self.primers[primer_id], primer_id.split("/", 1)[1]
            part = "Soprano" if primer_id.startswith("corpus/") else None
            if part is None:
                voice = upload_melody_voice(melody, name)
        else:
            raise FieldError("melody_notes", "harmonising needs a melody: type its notes, upload a MIDI file or pick "
                             "a corpus piece (its soprano)")
        base = HarmonizeOptions(checkpoint=str(model.path), melody=str(melody), part=part, out_dir=str(self.out_dir),
                                soundfont=self.soundfont, device=self.device)
        opt = harmonize_options_from_request(body, base, voice)
        check_sampling(opt.sampling, len(model_encoding(model).vocab))
        if typed is not None:
            self.check_upload_room(len(data), "the typed melody", reserve=True)
            with self.lock:
                opt = replace(opt, melody=str(write_upload(data, "typed.mid", self.out_dir / "primers")))
        label = {"model": model.id, "primer": name, "mode": "harmonize", "voices": opt.voices or "A,T,B",
                 "seed": opt.seed, **dials_label(opt.sampling), "particles": opt.particles}
        return self.jobs.submit(opt, label).public()


def dials_label(s: Sampling) -> dict[str, Any]:
    """The sampling dials a job's card shows (every mode's)."""
    return {"temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "repeat_bias": s.repeat_bias,
            "key_strength": s.key_strength}


def abilities(model: ModelEntry) -> dict[str, bool]:
    """What the page's modes ask of a model (rewrite: infill tokens; harmonise: parts), for its model list."""
    try:
        info = model_info(model)
    except MusesynthError:
        return {"infill": False, "parts": False}  # said when it is picked: /api/model gives the reason
    return {"infill": info["infill"], "parts": info["parts"]}


class Handler(BaseHTTPRequestHandler):
    server: StudioServer
    protocol_version = "HTTP/1.1"
    timeout = 120  # seconds a client may stall mid-request before its connection is dropped (quietly)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._guarded(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guarded(self._post)

    def _guarded(self, route: Any) -> None:
        self._body_read, self._wants_close = self.command != "POST", self.close_connection
        if not self._body_read or (self.headers.get("Content-Length") or "0").strip() != "0":
            self.close_connection = True  # until a POST's body is read (a GET's body never is), nothing follows it
        url = urlsplit(self.path)
        try:
            self._check_host()
            route(url)
        except MusesynthError as exc:
            status = getattr(exc, "status", HTTPStatus.TOO_MANY_REQUESTS if isinstance(exc, QueueFull)
                             else HTTPStatus.BAD_REQUEST)
            about = getattr(exc, "field", None) or ("primer" if url.path in ("/api/upload", "/api/corpus") else None)
            self._json({"error": one_line(str(exc)), "field": field_of(str(exc), about)}, status)
        except (ConnectionError, TimeoutError):  # the client went away or stalled: nothing to answer or report
            self.close_connection = True
        except Exception as exc:  # a bug: one line for the page, the traceback for the terminal
            traceback.print_exc(file=sys.stderr)
            self._json({"error": f"internal error: {type(exc).__name__}", "field": None},
                       HTTPStatus.INTERNAL_SERVER_ERROR)

    def _check_host(self) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if host not in ("127.0.0.1", "localhost"):
            raise RequestError("the studio answers only requests to 127.0.0.1 or localhost", HTTPStatus.FORBIDDEN)

    def _check_origin(self) -> None:
        """A POST from another site's page is refused: by its Origin, or by the browser's Sec-Fetch-Site."""
        origin = self.headers.get("Origin")
        port = self.server.server_address[1]
        if origin is not None and origin not in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
            raise RequestError(f"requests from other sites are refused (Origin: {origin[:80]})", HTTPStatus.FORBIDDEN)
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in SAME_SITE:
            raise RequestError(f"requests from other sites are refused (Sec-Fetch-Site: {site[:40]})",
                               HTTPStatus.FORBIDDEN)

    def _check_body(self, path: str, limit: int) -> int:
        """The POST's declared body length, checked (with its type and origin) before a byte is read."""
        self._check_origin()
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype not in BODY_TYPES.get(path, ()):
            raise RequestError(f"{path} takes Content-Type {' or '.join(BODY_TYPES[path])} (got {ctype or 'none'})",
                               HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        if self.headers.get("Transfer-Encoding"):
            raise RequestError("send the body with a Content-Length, not chunked", HTTPStatus.LENGTH_REQUIRED)
        text = self.headers.get("Content-Length")
        if text is None:
            raise RequestError("a Content-Length header is required", HTTPStatus.LENGTH_REQUIRED)
        text = text.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            raise RequestError(f"bad Content-Length {text[:20]!r} (a whole number of bytes, 0 or more)")
        length = int(text)
        if length > limit and path == "/api/upload":
            raise RequestError(f"a file of {length} bytes: larger than {limit // 2**20} MB; a MIDI primer is far "
                               f"smaller", HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "primer")
        if length > limit:
            raise RequestError(f"a request of {length} bytes: larger than {limit} bytes",
                               HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        return length

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
        if url.path not in BODY_TYPES:
            raise RequestError(f"no such endpoint: {url.path}", HTTPStatus.NOT_FOUND)
        if url.path == "/api/upload":
            name = unquote(self.headers.get("X-Filename") or "primer.mid")[:200]
            length = self._check_body(url.path, MAX_UPLOAD_BYTES)
            studio.check_upload_room(length, name)
            self._json(studio.upload(self._read(length), name, unquote(self.headers.get("X-Model") or "")))
        elif url.path == "/api/corpus":
            self._json(studio.pick_corpus(text(self._json_body(url.path), "name") or ""))
        else:
            self._json(studio.generate(self._json_body(url.path)))

    def _job(self, text: str) -> Any:
        job = self.server.studio.jobs.get(int(text)) if text.isascii() and text.isdigit() and len(text) <= 18 else None
        if job is None:
            raise RequestError(f"no job {text[:40]}", HTTPStatus.NOT_FOUND)
        return job

    def _read(self, length: int) -> bytes:
        data = self.rfile.read(length) if length else b""
        self._body_read, self.close_connection = True, self._wants_close
        if len(data) < length:
            raise ConnectionResetError("the client sent less than its Content-Length")
        return data

    def _json_body(self, path: str) -> dict[str, Any]:
        data = self._read(self._check_body(path, JSON_LIMIT))
        try:
            body = json.loads(data or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
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
        if self.close_connection:
            self.send_header("Connection", "close")
        if disposition:
            self.send_header("Content-Disposition", disposition)
        self.end_headers()
        self.wfile.write(data)


class StudioServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, studio: Studio, port: int = 0, verbose: bool = False) -> None:
        self.studio, self.verbose = studio, verbose
        super().__init__((HOST, port), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-request (a closed tab, a reset) is normal: no traceback on the terminal."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"
