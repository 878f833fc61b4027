"""The studio's server without a browser: what it lists, the one-line answers to bad uploads and requests,
a generation from an uploaded primer, and files that are never replaced."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import symusic
from conftest import make_score, scale_melody, serve_studio

from musesynth.cli import main
from musesynth.generate.midi_out import GENERATED_MARKER
from musesynth.generate.run import GenerateOptions
from musesynth.generate.sampling import Sampling
from musesynth.studio.jobs import options_from_request


def call(url: str, path: str, data: bytes | dict | None = None, headers: dict[str, str] | None = None
         ) -> tuple[int, Any]:
    body = json.dumps(data).encode() if isinstance(data, dict) else data
    if isinstance(data, dict):
        headers = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url.rstrip("/") + path, data=body, headers=headers or {},
                                 method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raw, status, ctype = exc.read(), exc.code, exc.headers.get("Content-Type", "")
    return status, json.loads(raw) if ctype.startswith("application/json") else raw


def upload(url: str, data: bytes, name: str = "my primer.mid") -> tuple[int, Any]:
    return call(url, "/api/upload", data, {"X-Filename": urllib.request.quote(name),
                                           "Content-Type": "application/octet-stream"})


def wait(url: str, job_id: int, timeout: float = 60) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        _, job = call(url, f"/api/jobs/{job_id}")
        if job["state"] in ("done", "error"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture(scope="module")
def primer_bytes() -> bytes:
    return make_score(scale_melody(7, 40)).dumps_midi()


def test_options_list_the_shipped_model_the_runs_and_the_corpus(studio_url, tiny_midi_dir):
    url, _ = studio_url
    status, o = call(url, "/api/options")
    assert status == 200
    ids = [m["id"] for m in o["models"]]
    assert ids[0] == "shipped/bach" and "run/tiny-gru" in ids
    assert len(o["corpus"]) == 12 and len(o["keys"]) == 24
    gru = call(url, "/api/model?id=run/tiny-gru")[1]
    assert gru["keyed"] is False and gru["composers"] == [] and gru["tempo"] is None and gru["infill"] is False
    assert call(url, "/api/model?id=shipped/bach")[1]["keyed"] is True
    assert call(url, "/")[1].startswith(b"<!doctype html>")


BAD_UPLOADS = [
    (b"", 400, "empty file"),
    (b"this is not midi at all", 400, "not a MIDI file"),
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0" + b"\x00" * 40, 400, "cannot use this file"),
    (make_score(scale_melody(1, 20), drum=True).dumps_midi(), 400, "as a primer: no pitched notes"),
]


@pytest.mark.parametrize("data, status, message", BAD_UPLOADS, ids=["empty", "text", "truncated", "drums"])
def test_a_bad_upload_is_one_line_and_leaves_no_file(data, status, message, studio_url):
    url, studio = studio_url
    got, body = upload(url, data)
    assert got == status and message in body["error"] and "\n" not in body["error"], body
    assert not any((studio.out_dir / "primers").glob("*"))


def test_a_midi_without_notes_is_refused(studio_url):
    """Generation reads pitched notes only: a file without them is refused at upload, not by a job."""
    url, _ = studio_url
    status, body = upload(url, symusic.Score(480).dumps_midi(), "silence.mid")
    assert status == 400 and "no pitched notes" in body["error"]


BAD_REQUESTS = [
    ({"model": "run/nope"}, "unknown model"),
    ({"model": "run/tiny-gru", "length": "many"}, "whole number"),
    ({"model": "run/tiny-gru", "length": 0}, "between 1 and"),
    ({"model": "run/tiny-gru", "temperature": "nan"}, "finite"),
    ({"model": "run/tiny-gru", "top_p": 0}, "--top-p"),
    ({"model": "run/tiny-gru", "key": "H major"}, "unknown key"),
    ({"model": "run/tiny-gru", "repeat_bias": 50}, "--repeat-bias must be a number in [-20, 20] (got 50.0)"),
    ({"model": "run/tiny-gru", "key_strength": -1}, "--key-strength must be a number in [0, 20] (got -1.0)"),
    ({"model": "run/tiny-gru", "key_strength": "firm"}, "key strength must be a number (got 'firm')"),
    ({"model": "run/tiny-gru", "ending": 30}, "--ending must be a number in [0, 20] (got 30.0)"),
    ({"model": "run/tiny-gru", "primer": "upload/../../etc/passwd"}, "primer is gone"),
    ({"model": "run/tiny-gru", "composer": "bach"}, "need a model trained on the meter encoding"),
    ({"model": "run/tiny-gru", "tempo": 90}, "need a model trained on the meter encoding"),
    ({"model": "run/tiny-gru", "particles": 2}, "--particles weighs pieces by the voice rules of a parts model"),
    ({"model": "run/tiny-gru", "particles": 65}, "--particles must be 1-64 (got 65)"),
    ({"model": "run/tiny-gru", "particles": "1.5"}, "particles must be a whole number (got '1.5')"),
]


@pytest.mark.parametrize("body, message", BAD_REQUESTS, ids=[m for _, m in BAD_REQUESTS])
def test_a_bad_generate_request_is_one_line(body, message, studio_url):
    url, studio = studio_url
    status, answer = call(url, "/api/generate", body)
    assert status == 400 and message in answer["error"] and "\n" not in answer["error"], answer
    assert studio.jobs.all() == []


def test_sampling_dials_reach_the_options():
    base = GenerateOptions(checkpoint="x")
    opt = options_from_request({"repeat_bias": "0", "key_strength": 2.5, "ending": "0"}, base)
    assert (opt.sampling.repeat_bias, opt.sampling.key_strength, opt.sampling.ending) == (0.0, 2.5, 0.0)
    assert opt.checkpoint == "x"
    assert options_from_request({"repeat_bias": "", "key_strength": None}, base).sampling == Sampling()


def test_host_paths_and_jobs_that_do_not_exist(studio_url):
    url, _ = studio_url
    assert call(url, "/api/options", headers={"Host": "evil.example:80"})[0] == 403
    assert call(url, "/nowhere")[0] == 404
    assert call(url, "/api/jobs/99")[0] == 404
    for job in ("9" * 5000, "99999999999999999999"):  # past int()'s digit limit (was a 500 and a traceback), past int64
        status, body = call(url, "/api/jobs/" + job)
        assert status == 404 and len(body["error"]) < 100, (job[:20], status, body)
    assert call(url, "/files/1/../../x")[0] == 404
    assert call(url, "/api/generate", b"{not json", {"Content-Type": "application/json"})[0] == 400


def test_a_key_for_a_model_without_keys_fails_in_the_job_with_one_line(studio_url):
    url, _ = studio_url
    _, job = call(url, "/api/generate", {"model": "run/tiny-gru", "length": 5, "key": "D major"})
    job = wait(url, job["id"])
    assert job["state"] == "error" and "key tokens" in job["error"] and "\n" not in job["error"]


def test_generate_from_an_upload_twice_keeps_both_and_replaces_nothing(studio_url, primer_bytes):
    url, studio = studio_url
    studio.out_dir.mkdir(parents=True, exist_ok=True)
    mine = studio.out_dir / "my_primer_gru_seed3_0.mid"
    mine.write_bytes(b"a user's file")  # the name the first piece would take
    _, primer = upload(url, primer_bytes)
    assert primer["notes"] == make_score(scale_melody(7, 40)).note_num()
    request = {"model": "run/tiny-gru", "primer": primer["id"], "primer_seconds": 0, "length": 30, "seed": 3}
    jobs = [wait(url, call(url, "/api/generate", request)[1]["id"]) for _ in range(2)]
    assert [j["state"] for j in jobs] == ["done", "done"], jobs
    names = {j["result"]["name"] for j in jobs}
    assert len(names) == 2 and mine.name not in names and mine.read_bytes() == b"a user's file"
    assert [j["id"] for j in call(url, "/api/jobs")[1]["jobs"]] == [2, 1]
    status, midi = call(url, jobs[0]["result"]["files"]["mid"] + "?download=1")
    out = symusic.Score.from_midi(midi)
    src = symusic.Score.from_midi(primer_bytes)
    first = sorted((n.time, n.pitch) for n in out.tracks[0].notes)[:2]
    assert status == 200 and first == sorted((n.time, n.pitch) for n in src.tracks[0].notes)[:2]
    assert [m.text for m in out.markers].count(GENERATED_MARKER) == 1
    assert call(url, jobs[0]["result"]["files"]["png"])[1][:4] == b"\x89PNG"


def test_a_corpus_piece_primes(studio_url, tiny_midi_dir):
    url, _ = studio_url
    status, piece = call(url, "/api/corpus", {"name": "a/piece01.mid"})
    assert status == 200 and piece["notes"] > 0
    assert call(url, "/api/corpus", {"name": "../secret.mid"})[0] == 400
    request = {"model": "run/tiny-gru", "primer": piece["id"], "length": 10, "repeat_bias": 0, "key_strength": "2"}
    job = wait(url, call(url, "/api/generate", request)[1]["id"])
    assert job["state"] == "done" and job["result"]["primer_tokens"] > 1
    assert (job["request"]["repeat_bias"], job["request"]["key_strength"]) == (0.0, 2.0)


def test_studio_command_errors_are_one_line(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for argv, message in [(["--port", "70000"], "--port"), (["--port", str(port)], "is in use"),
                              (["--soundfont", str(tmp_path / "no.sf2")], "soundfont not found"),
                              (["-o", "/proc/x"], "is read-only")]:
            assert main(["studio", "-o", str(tmp_path / "s"), *argv]) == 2
            err = capsys.readouterr().err
            assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "s").exists()


def test_the_page_ships_with_the_package():
    """The page and its package data ship with the package (an install from a wheel has them)."""
    from musesynth.studio.server import PAGE

    assert PAGE.is_file() and b"/api/generate" in PAGE.read_bytes()
    assert "studio/static/*" in (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()


def test_a_composer_model_offers_its_composers_and_tempo(control_url):
    url, _ = control_url
    info = call(url, "/api/model?id=run/tiny-infill")[1]
    assert info["composers"] == ["bach", "palestrina"] and info["infill"] is True and info["encoding"] == "meter"
    assert info["tempo"][0] < 60 < 180 < info["tempo"][1]
    request = {"model": "run/tiny-infill", "composer": "palestrina", "tempo": "90", "length": 30, "seed": 2}
    asked, drawn = (wait(url, call(url, "/api/generate", r)[1]["id"])
                    for r in (request, {**request, "composer": "", "tempo": ""}))
    assert asked["state"] == drawn["state"] == "done", (asked, drawn)
    assert (asked["request"]["composer"], asked["request"]["tempo"]) == ("palestrina", 90.0)
    assert asked["result"]["composer"] == "palestrina" and abs(asked["result"]["tempo"] - 90) < 3
    assert drawn["request"]["composer"] is None and drawn["result"]["composer"] in ("bach", "palestrina")


@pytest.mark.parametrize("extra, message", [
    ({"composer": "mozart"}, "unknown composer 'mozart' (known: bach, palestrina)"),
    ({"tempo": 999}, "unknown tempo 999 BPM (known: "),
    ({"tempo": "fast"}, "tempo must be a number (got 'fast')"),
], ids=["composer", "tempo", "not-a-number"])
def test_unknown_controls_are_refused_before_a_job(extra, message, control_url):
    url, studio = control_url
    status, answer = call(url, "/api/generate", {"model": "run/tiny-infill", **extra})
    assert status == 400 and message in answer["error"] and "\n" not in answer["error"], answer
    assert studio.jobs.all() == []


def test_rewriting_bars_of_a_corpus_piece_keeps_the_rest(control_url, tiny_midi_dir):
    url, studio = control_url
    _, piece = call(url, "/api/corpus", {"name": "a/piece01.mid"})
    request = {"model": "run/tiny-infill", "primer": piece["id"], "mode": "rewrite", "bars_first": 2, "bars_last": "3",
               "seed": 1, "top_k": 20}
    job = wait(url, call(url, "/api/generate", request)[1]["id"])
    assert job["state"] == "done", job
    r = job["result"]
    assert job["request"]["bars"] == r["bars"] == "2-3" and r["name"].startswith("piece01_infill2-3_gru_seed1")
    assert r["notes"] > 0 and "new_notes" in r and {"mid", "png"} <= r["files"].keys()
    assert call(url, r["files"]["png"])[1][:4] == b"\x89PNG"
    out = symusic.Score.from_midi(call(url, r["files"]["mid"] + "?download=1")[1]).to("quarter")
    src = symusic.Score(str(tiny_midi_dir / "a" / "piece01.mid")).to("quarter")
    first_bar = sorted((round(n.time, 3), n.pitch) for t in src.tracks for n in t.notes if n.time < 4)
    assert sorted((round(n.time, 3), n.pitch) for t in out.tracks for n in t.notes if n.time < 4) == first_bar


REWRITE_ERRORS = [
    ({"primer": None}, "rewriting bars needs a primer"),
    ({"mode": "remix"}, "mode must be 'continue', 'rewrite' or 'harmonize'"),
    ({"bars_first": ""}, "give the first bar to rewrite"),
    ({"bars_first": "x"}, "bars first must be a whole number (got 'x')"),
    ({"bars_first": 0}, "bars 0-3: bars count from 1"),
    ({"bars_first": 3, "bars_last": 2}, "bars 3-2: bars count from 1 and the last may not come before the first"),
    ({"bars_last": 999}, "bars 2-999: a/piece01.mid has only "),
    ({"key": "D major", "tempo": 90}, "key and tempo cannot be chosen when rewriting bars"),
    ({"top_p": 2}, "--top-p"),
]


@pytest.mark.parametrize("extra, message", REWRITE_ERRORS, ids=[m for _, m in REWRITE_ERRORS])
def test_a_bad_rewrite_is_one_line_before_a_job(extra, message, control_url):
    url, studio = control_url
    _, piece = call(url, "/api/corpus", {"name": "a/piece01.mid"})
    request = {"model": "run/tiny-infill", "primer": piece["id"], "mode": "rewrite", "bars_first": 2, "bars_last": 3}
    status, answer = call(url, "/api/generate", {**request, **extra})
    assert status == 400 and message in answer["error"] and "\n" not in answer["error"], answer
    assert studio.jobs.all() == []


def test_a_model_without_infill_tokens_cannot_rewrite(studio_url, primer_bytes):
    url, studio = studio_url
    _, primer = upload(url, primer_bytes)
    status, answer = call(url, "/api/generate", {"model": "run/tiny-gru", "primer": primer["id"], "mode": "rewrite",
                                                 "bars_first": 1})
    assert status == 400 and "run/tiny-gru was not trained for infilling" in answer["error"], answer
    assert studio.jobs.all() == []


def raw(url: str, head: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """One request over a raw socket (headers as given, nothing added); the server's status and JSON. The
    socket's timeout fails the test if the server waits for a body it was told not to read."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    with socket.create_connection((host, port), timeout=20) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def no_trace_of(studio) -> None:
    assert studio.jobs.all() == [] and studio.primers == {}
    assert not (studio.out_dir / "primers").exists() or not any((studio.out_dir / "primers").iterdir())


@pytest.mark.parametrize("path", ["/api/generate", "/api/upload", "/api/corpus"])
@pytest.mark.parametrize("headers, status", [
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": "null"}, 403),
    ({"Sec-Fetch-Site": "cross-site"}, 403),
    ({"Sec-Fetch-Site": "same-site"}, 403),  # another port of 127.0.0.1 is the same site, not the studio
    ({"Content-Type": "text/plain"}, 415),  # what a cross-site page may send without asking first
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ({"Content-Type": "multipart/form-data; boundary=x"}, 415),
], ids=["origin", "null-origin", "cross-site", "same-site", "text-plain", "form", "multipart"])
def test_requests_from_other_sites_are_refused(path, headers, status, studio_url, primer_bytes):
    url, studio = studio_url
    body = primer_bytes if path == "/api/upload" else json.dumps(
        {"model": "run/tiny-gru", "length": 4096, "name": "a/piece01.mid"}).encode()
    ctype = "application/octet-stream" if path == "/api/upload" else "application/json"
    got, answer = call(url, path, body, {"Content-Type": ctype, "X-Filename": "p.mid", **headers})
    assert got == status and "\n" not in answer["error"], answer
    no_trace_of(studio)


def test_the_studios_own_page_may_post(studio_url, primer_bytes):
    url, studio = studio_url
    port = urlsplit(url).port
    own = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
    assert call(url, "/api/corpus", {"name": "a/piece01.mid"}, own)[0] == 200
    got, primer = call(url, "/api/upload", primer_bytes, {**own, "Content-Type": "application/octet-stream"})
    assert got == 200 and primer["notes"] > 0


@pytest.mark.parametrize("length, status, message", [
    (None, 411, "Content-Length header is required"),
    ("-1", 400, "bad Content-Length '-1'"),
    ("abc", 400, "bad Content-Length 'abc'"),
    ("1e3", 400, "bad Content-Length"),
    ("1500000000", 413, "larger than 5 MB"),
    (str(10**40), 400, "bad Content-Length"),
], ids=["missing", "negative", "text", "float", "huge", "absurd"])
@pytest.mark.parametrize("path", ["/api/upload", "/api/generate"])
def test_content_length_is_checked_before_reading(path, length, status, message, studio_url):
    """No body follows the headers: a server that tried to read it would wait, and the socket time out."""
    url, studio = studio_url
    port = urlsplit(url).port
    ctype = "application/octet-stream" if path == "/api/upload" else "application/json"
    head = f"POST {path} HTTP/1.1\nHost: 127.0.0.1:{port}\nContent-Type: {ctype}"
    if length is not None:
        head += f"\nContent-Length: {length}"
    got, answer = raw(url, head)
    if path == "/api/generate" and status == 413:
        message = "larger than 65536 bytes"
    assert got == status and message in answer["error"], answer
    no_trace_of(studio)


def test_the_job_queue_is_bounded(studio_url):
    """While one job runs, MAX_PENDING more may wait; the next is refused with 429 and one line."""
    from musesynth.studio.jobs import MAX_PENDING

    url, studio = studio_url
    release = threading.Event()

    def held(job):  # the worker holds the first job until the test lets it go
        job.state = "running"
        release.wait(30)
        job.state, job.error = "error", "stopped by the test"

    studio.jobs.run = held
    try:
        first = call(url, "/api/generate", {"model": "run/tiny-gru", "length": 5})[1]
        end = time.monotonic() + 10
        while studio.jobs.get(first["id"]).state != "running" and time.monotonic() < end:
            time.sleep(0.02)
        assert [call(url, "/api/generate", {"model": "run/tiny-gru", "length": 5})[0]
                for _ in range(MAX_PENDING)] == [200] * MAX_PENDING
        status, answer = call(url, "/api/generate", {"model": "run/tiny-gru", "length": 5})
        assert status == 429 and f"{MAX_PENDING} jobs are waiting" in answer["error"], answer
        assert len(studio.jobs.all()) == MAX_PENDING + 1
    finally:
        release.set()


def test_uploads_are_bounded(studio_url, primer_bytes, monkeypatch):
    from musesynth.studio import server

    url, studio = studio_url
    monkeypatch.setattr(server, "MAX_UPLOADS", 2)
    assert [upload(url, primer_bytes)[0] for _ in range(2)] == [200, 200]
    status, answer = upload(url, primer_bytes)
    assert status == 429 and "its limit is 2 files" in answer["error"] and answer["field"] == "primer", answer
    assert len(list((studio.out_dir / "primers").iterdir())) == 2


@pytest.mark.parametrize("extra, field, message", [
    ({"length": True}, "length", "length must be a whole number (got true)"),
    ({"length": False}, "length", "length must be a whole number (got false)"),
    ({"temperature": [1]}, "temperature", "temperature must be a number (got a list)"),
    ({"top_k": {"k": 1}}, "top_k", "top k must be a whole number (got an object)"),
    ({"seed": True}, "seed", "seed must be a whole number (got true)"),
    ({"seed": -1}, "seed", "seed must be a whole number from 0 to"),
    ({"seed": 2.5}, "seed", "seed must be a whole number (got 2.5)"),
    ({"length": "1e999"}, "length", "length must be a whole number (got '1e999')"),
    ({"key": 5}, "key", "key must be text (got int)"),
    ({"composer": ["bach"]}, "composer", "composer must be text (got a list)"),
    ({"model": True}, "model", "model must be text (got true)"),
    ({"mode": 1}, "mode", "mode must be text (got int)"),
    ({"primer_seconds": -2}, "primer_seconds", "primer seconds must be from 0 (half the context) to 3600 (got -2)"),
    ({"primer_seconds": 1e30}, "primer_seconds", "primer seconds must be from 0 (half the context) to 3600"),
    ({"top_k": 10**30}, "top_k", "--top-k must be 0 (off) or a positive count"),
], ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(map(str, v.items())))
def test_fields_are_checked_by_type_with_one_line(extra, field, message, studio_url):
    url, studio = studio_url
    status, answer = call(url, "/api/generate", {"model": "run/tiny-gru", **extra})
    assert status == 400 and message in answer["error"] and "\n" not in answer["error"], answer
    assert answer["field"] == field
    assert studio.jobs.all() == []


def test_errors_name_their_field(studio_url):
    """The page shows an error beside the control it names."""
    url, _ = studio_url
    for body, field in [({"model": "run/nope"}, "model"), ({"model": "run/tiny-gru", "top_p": 0}, "top_p"),
                        ({"model": "run/tiny-gru", "key": "H major"}, "key"),
                        ({"model": "run/tiny-gru", "tempo": 90}, "composer"),
                        ({"model": "run/tiny-gru", "primer": "upload/x.mid"}, "primer")]:
        assert call(url, "/api/generate", body)[1]["field"] == field, body


def test_each_generate_takes_a_new_seed_unless_one_is_typed(studio_url):
    url, studio = studio_url
    seeds = [call(url, "/api/generate", {"model": "run/tiny-gru", "length": 3, "seed": ""})[1]["request"]["seed"]
             for _ in range(3)]
    assert len(set(seeds)) == 3 and all(isinstance(s, int) and s >= 0 for s in seeds)
    assert call(url, "/api/generate", {"model": "run/tiny-gru", "length": 3, "seed": "7"})[1]["request"]["seed"] == 7
    for job in studio.jobs.all():
        wait(url, job.id)


def test_an_opening_without_pitched_notes_is_refused_beside_its_seconds(studio_url):
    """A primer usable as a whole whose first seconds hold only drums: the job would find nothing to continue,
    so Generate is refused at once, naming the seconds box, and nothing is queued."""
    url, studio = studio_url
    drums = make_score(scale_melody(2, 30), drum=True)
    drums.tracks.append(make_score([(t + 480 * 40, d, p) for t, d, p in scale_melody(3, 30)]).tracks[0])
    status, primer = upload(url, drums.dumps_midi(), "drums first.mid")
    assert status == 200, primer
    request = {"model": "run/tiny-gru", "primer": primer["id"], "primer_seconds": 1, "length": 5}
    status, answer = call(url, "/api/generate", request)
    assert status == 400 and answer["field"] == "primer_seconds", answer
    assert answer["error"] == ("cannot use primer 'drums_first.mid': no pitched notes in its first 1 s (use more "
                               "seconds, or 0 for half the context)")
    assert studio.jobs.all() == []
    job = wait(url, call(url, "/api/generate", {**request, "primer_seconds": 0})[1]["id"])
    assert job["state"] == "done", job


def test_a_failing_job_says_why_without_server_paths(studio_url):
    """A job that fails (here: its output folder became a file) reports one line at once through /api/jobs,
    which the page's card shows; the studio's folders are not shown to the page."""
    url, studio = studio_url
    studio.out_dir.write_text("a user's file")
    job = wait(url, call(url, "/api/generate", {"model": "run/tiny-gru", "length": 5})[1]["id"])
    assert job["state"] == "error" and "is a file, not a folder" in job["error"] and "\n" not in job["error"], job
    assert str(studio.out_dir) not in job["error"] and studio.out_dir.read_text() == "a user's file"
    assert call(url, "/api/jobs")[1]["jobs"][0]["error"] == job["error"]


def test_a_client_that_goes_away_leaves_no_traceback(studio_url, capfd, monkeypatch):
    from musesynth.studio.server import Handler

    monkeypatch.setattr(Handler, "timeout", 0.5)
    url, studio = studio_url
    port = urlsplit(url).port
    stalled = socket.create_connection(("127.0.0.1", port))  # sends part of its body, then nothing
    stalled.sendall(b"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Length: 5000\r\n\r\nMThd")
    for _ in range(5):  # a request cut off mid-body, and one whose answer nobody reads
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                      b"Content-Length: 5000\r\n\r\nMThd")
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
            s.sendall(b"GET /api/options HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert call(url, "/api/options")[0] == 200
    time.sleep(1.5)
    assert stalled.recv(100) == b""  # dropped after the handler's timeout, without an answer
    stalled.close()
    assert "Traceback" not in capfd.readouterr().err
    no_trace_of(studio)


def test_a_run_without_best_pt_is_labelled_not_validated(studio_runs, tmp_path):
    from musesynth.studio.catalog import list_models

    runs = tmp_path / "runs"
    (runs / "halted").mkdir(parents=True)
    (runs / "halted" / "last.pt").write_bytes((studio_runs / "tiny-gru" / "best.pt").read_bytes())
    (runs / "empty").mkdir()
    halted = [m for m in list_models(runs) if m.id.startswith("run/")]
    assert [m.id for m in halted] == ["run/halted"]
    assert "last.pt, not validated" in halted[0].label and "no best.pt" in halted[0].note


def test_studio_says_when_its_folders_are_missing(tmp_path, capsys, monkeypatch):
    from musesynth.studio.server import StudioServer

    def stop(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(StudioServer, "serve_forever", stop)
    assert main(["studio", "--port", "0", "-o", str(tmp_path / "s"), "--runs", str(tmp_path / "nope"),
                 "--corpus-dir", str(tmp_path / "nope2")]) == 0
    err = capsys.readouterr().err
    assert f"--runs {tmp_path / 'nope'}: no such folder; only the shipped models are offered" in err
    assert f"--corpus-dir {tmp_path / 'nope2'}: no such folder; the corpus pieces are the Bach chorales" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------------- voices: harmonise, rewrite chosen voices
@pytest.fixture
def parts_url(parts_run: Path, bach_dir: Path, tmp_path: Path):
    """The studio with the tiny parts model (run/gru) and real chorales as its corpus."""
    yield from serve_studio(parts_run.parent, bach_dir, tmp_path / "studio")


def beat_rows(score: symusic.Score, track: symusic.Track) -> list[tuple[float, float, int]]:
    q = score.ticks_per_quarter
    return sorted((round(n.time / q, 4), round(n.duration / q, 4), n.pitch) for n in track.notes)


def test_harmonising_a_corpus_chorales_soprano_keeps_it_and_writes_four_tracks(parts_url, bach_dir):
    url, studio = parts_url
    name = sorted(p.relative_to(bach_dir).as_posix() for p in bach_dir.rglob("*.mid"))[0]
    _, piece = call(url, "/api/corpus", {"name": name})
    _, options = call(url, "/api/options")
    gru = next(m for m in options["models"] if m["id"] == "run/gru")
    assert gru["parts"] is True and gru["infill"] is True
    job = wait(url, call(url, "/api/generate", {"model": "run/gru", "primer": piece["id"], "mode": "harmonize",
                                                  "seed": 2})[1]["id"], timeout=120)
    assert job["state"] == "done", job
    r = job["result"]
    assert r["voices"] == ["Soprano", "Alto", "Tenor", "Bass"] and job["request"]["voices"] == "A,T,B"
    made = symusic.Score.from_midi(call(url, r["files"]["mid"] + "?download=1")[1])
    given = symusic.Score(str(bach_dir / name))
    assert [t.name for t in made.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    soprano = next(t for t in given.tracks if t.name == "Soprano" and t.note_num())
    assert beat_rows(made, made.tracks[0]) == beat_rows(given, soprano)
    assert r["melody_notes"] == soprano.note_num()


def test_a_typed_melody_is_harmonised_in_the_voices_ticked(parts_url):
    url, _ = parts_url
    job = wait(url, call(url, "/api/generate", {"model": "run/gru", "mode": "harmonize", "voices": "A,B", "seed": 1,
                                                  "melody_notes": "G4 A4 B4 C5:2 | D5 C5 B4:2 | A4:4"})[1]["id"],
               timeout=120)
    assert job["state"] == "done", job
    made = symusic.Score.from_midi(call(url, job["result"]["files"]["mid"] + "?download=1")[1])
    assert [t.name for t in made.tracks] == ["Soprano", "Alto", "Bass"]
    assert beat_rows(made, made.tracks[0]) == [(0.0, 1.0, 67), (1.0, 1.0, 69), (2.0, 1.0, 71), (3.0, 2.0, 72),
                                               (5.0, 1.0, 74), (6.0, 1.0, 72), (7.0, 2.0, 71), (9.0, 4.0, 69)]


def test_a_typed_melody_keeps_its_meter_tempo_and_pickup(parts_url):
    url, _ = parts_url
    job = wait(url, call(url, "/api/generate", {"model": "run/gru", "mode": "harmonize", "seed": 2,
                                                  "melody_notes": "3/4 bpm=100 r:2 D5 | G5 F#5 E5 | D5:3"})[1]["id"],
               timeout=120)
    assert job["state"] == "done", job
    made = symusic.Score.from_midi(call(url, job["result"]["files"]["mid"] + "?download=1")[1])
    ts = made.time_signatures[0]
    assert (ts.numerator, ts.denominator) == (3, 4) and abs(made.tempos[0].qpm - 100) < 3  # the nearest tempo bin
    assert beat_rows(made, made.tracks[0]) == [(2.0, 1.0, 74), (3.0, 1.0, 79), (4.0, 1.0, 78), (5.0, 1.0, 76),
                                               (6.0, 3.0, 74)]


HARMONIZE_ERRORS = [
    ({"melody_notes": "G4 H4"}, "melody_notes", "note 2 'H4'"),
    ({"melody_notes": "5/3 G4"}, "melody_notes", "meter '5/3'"),
    ({"melody_notes": "9/2 G4"}, "melody_notes", "meter '9/2'"),
    ({"melody_notes": "bpm=500 G4"}, "melody_notes", "tempo 'bpm=500'"),
    ({"melody_notes": "3/4 bpm=90"}, "melody_notes", "type a melody"),
    ({"melody_notes": "r r"}, "melody_notes", "only rests"),
    ({"melody_notes": "", "primer": None}, "melody_notes", "harmonising needs a melody"),
    ({"voices": "A,X"}, "voices", "voices 'X': unknown voice"),
    ({"voices": "S"}, "voices", "the melody's own voice"),
    ({"model": "shipped/bach"}, "model", "does not know parts"),
    ({"particles": 0}, "particles", "--particles must be 1-64 (got 0)"),
    ({"top_line": "yes"}, "top_line", "top line must be true or false (got 'yes')"),
]


@pytest.mark.parametrize("extra, field, message", HARMONIZE_ERRORS, ids=[m for _, _, m in HARMONIZE_ERRORS])
def test_a_bad_harmonisation_is_one_line_beside_its_control_before_a_job(extra, field, message, parts_url):
    url, studio = parts_url
    request = {"model": "run/gru", "mode": "harmonize", "melody_notes": "G4 A4 B4"}
    status, answer = call(url, "/api/generate", {**request, **extra})
    assert status == 400 and message in answer["error"] and answer["field"] == field, answer
    assert "\n" not in answer["error"] and studio.jobs.all() == []


def melody_midi_bytes(tracks: dict[str, list[int]]) -> bytes:
    """A score with one named track per entry, each a line of quarter notes."""
    score = symusic.Score(480)
    for name, pitches in tracks.items():
        t = symusic.Track(name)
        for i, p in enumerate(pitches):
            t.notes.append(symusic.Note(480 * i, 480, p, 80))
        score.tracks.append(t)
    return score.dumps_midi()


def test_an_uploaded_melody_keeps_its_own_voice_and_a_score_without_soprano_is_refused_before_a_job(parts_url):
    """An upload's melody is the voice its track names (an Alto line may be harmonised with S, T, B, not with A),
    and an upload with several tracks and none named Soprano is a field error on the page, not a failed job."""
    url, studio = parts_url
    _, alto = upload(url, melody_midi_bytes({"Alto": [62, 64, 65, 64, 62, 60, 62, 62]}), "alto line.mid")
    request = {"model": "run/gru", "mode": "harmonize", "primer": alto["id"], "seed": 1}
    status, answer = call(url, "/api/generate", {**request, "voices": "A,T,B"})
    assert status == 400 and answer["field"] == "voices" and "names Alto, the melody's own voice" in answer["error"]
    status, answer = call(url, "/api/generate", {**request, "voices": "S,T,B"})
    assert status == 200, answer
    job = wait(url, answer["id"], timeout=120)
    assert job["state"] == "done", job
    made = symusic.Score.from_midi(call(url, job["result"]["files"]["mid"] + "?download=1")[1])
    assert sorted(t.name for t in made.tracks) == ["Alto", "Bass", "Soprano", "Tenor"]
    jobs = len(studio.jobs.all())
    _, two = upload(url, melody_midi_bytes({"Flute": [72, 74], "Oboe": [67, 69]}), "duet.mid")
    status, answer = call(url, "/api/generate", {"model": "run/gru", "mode": "harmonize", "primer": two["id"]})
    assert status == 400 and answer["field"] == "primer", answer
    assert "duet.mid has several tracks with notes and none named Soprano" in answer["error"]
    assert "--" not in answer["error"] and len(studio.jobs.all()) == jobs


def test_an_uploaded_melody_with_chords_is_harmonised_from_its_top_line_when_ticked(parts_url):
    """A melody with chords fails its job in one line naming the page's box (no CLI flag); ticked, its top line is
    the melody."""
    url, _ = parts_url
    score = symusic.Score(480)
    t = symusic.Track("Melody")
    for i, p in enumerate([67, 69, 71, 72]):
        t.notes.extend([symusic.Note(480 * i, 480, p, 80), symusic.Note(480 * i, 480, p - 7, 80)])
    score.tracks.append(t)
    _, up = upload(url, score.dumps_midi(), "chords.mid")
    request = {"model": "run/gru", "mode": "harmonize", "primer": up["id"], "seed": 1}
    job = wait(url, call(url, "/api/generate", request)[1]["id"], timeout=120)
    assert job["state"] == "error" and "chords or overlapping notes" in job["error"], job
    assert "the box 'top line'" in job["error"] and "--" not in job["error"]
    job = wait(url, call(url, "/api/generate", {**request, "top_line": True})[1]["id"], timeout=120)
    assert job["state"] == "done", job
    made = symusic.Score.from_midi(call(url, job["result"]["files"]["mid"] + "?download=1")[1])
    assert [p for _, _, p in beat_rows(made, made.tracks[0])] == [67, 69, 71, 72]


def test_the_card_says_what_was_done_to_the_melody(parts_url):
    """A melody above the soprano is moved and moved back; the card's result says so (harmonize's summary)."""
    url, _ = parts_url
    _, up = upload(url, melody_midi_bytes({"Melody": [86, 88, 90, 91, 90, 88, 86, 86]}), "high.mid")
    job = wait(url, call(url, "/api/generate", {"model": "run/gru", "mode": "harmonize", "primer": up["id"],
                                                "seed": 1})[1]["id"], timeout=120)
    assert job["state"] == "done", job
    assert job["result"]["remarks"] == ["voices written 10 semitones lower and moved back with the melody (outside "
                                        "the soprano's range)"], job["result"]
    made = symusic.Score.from_midi(call(url, job["result"]["files"]["mid"] + "?download=1")[1])
    assert [p for _, _, p in beat_rows(made, made.tracks[0])] == [86, 88, 90, 91, 90, 88, 86, 86]


def test_rewriting_chosen_voices_keeps_the_others(parts_url, bach_dir):
    url, studio = parts_url
    name = sorted(p.relative_to(bach_dir).as_posix() for p in bach_dir.rglob("*.mid"))[4]
    _, piece = call(url, "/api/corpus", {"name": name})
    request = {"model": "run/gru", "primer": piece["id"], "mode": "rewrite", "bars_first": 2, "bars_last": 3,
               "voices": "A,T", "seed": 1}
    job = wait(url, call(url, "/api/generate", request)[1]["id"], timeout=120)
    assert job["state"] == "done", job
    assert job["result"]["parts"] == ["Alto", "Tenor"] and job["request"]["voices"] == "A,T"
    made = symusic.Score.from_midi(call(url, job["result"]["files"]["mid"] + "?download=1")[1])
    given = symusic.Score(str(bach_dir / name))
    for voice in ("Soprano", "Bass"):
        want = next(t for t in given.tracks if t.name == voice and t.note_num())
        assert beat_rows(made, next(t for t in made.tracks if t.name == voice)) == beat_rows(given, want)
    status, answer = call(url, "/api/generate", {**request, "voices": "A,X"})
    assert status == 400 and answer["field"] == "voices", answer
    assert "voices 'X': the piece has no such part" in answer["error"], answer


def test_particles_reach_a_piece_a_harmonisation_and_a_rewrite(parts_url, bach_dir):
    """The page's particles box: each job draws with that many SMC particles (shown with its request); empty is
    each mode's default (1 for a piece, harmonize's 4); a model without voices is refused beside the box."""
    url, studio = parts_url
    name = sorted(p.relative_to(bach_dir).as_posix() for p in bach_dir.rglob("*.mid"))[0]
    _, piece = call(url, "/api/corpus", {"name": name})
    bodies = [({"length": 60, "seed": 3, "particles": 3}, 3), ({"length": 60, "seed": 3, "particles": ""}, 1),
              ({"mode": "harmonize", "seed": 1, "particles": 2, "melody_notes": "G4 A4 B4 C5:2"}, 2),
              ({"mode": "harmonize", "seed": 1, "melody_notes": "G4 A4 B4 C5:2"}, 4),
              ({"mode": "rewrite", "primer": piece["id"], "bars_first": 2, "bars_last": 2, "voices": "A,T",
                "seed": 1, "particles": 2}, 2)]
    for body, particles in bodies:
        job = wait(url, call(url, "/api/generate", {"model": "run/gru", **body})[1]["id"], timeout=120)
        assert job["state"] == "done" and job["request"]["particles"] == particles, job
        assert studio.jobs.get(job["id"]).options.particles == particles
    status, answer = call(url, "/api/generate", {"model": "shipped/bach", "particles": 2})
    assert status == 400 and answer["field"] == "particles" and "parts model" in answer["error"], answer
