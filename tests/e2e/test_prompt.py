"""The ComfyUI-compatible raw-graph API, POST /prompt (issue 5), end to end against comfysim:
synchronous base64 answers, 202 with webhook_v2, the node-class allowlist, limits, ComfyUI's
own validation errors passed on, input images inline (base64) and by URL, client ids,
idempotency, and a kill -9 while a raw graph with an inline image waits in the queue."""
import base64
import hashlib
import os
import signal
import sqlite3
import time

import gw
import pngmini

S = gw.Suite()
state = {}
SECRET = "whsec_" + base64.b64encode(b"p" * 32).decode()


def smoke_graph(w=32, h=24, batch=2, color=0x336699):
    return {"1": {"class_type": "EmptyImage",
                  "inputs": {"width": w, "height": h, "batch_size": batch, "color": color}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}


def invert_graph(image):
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "i"}}}


def post(body, headers=None, port=None):
    return gw.request(port or state["port"], "POST", "/prompt", body, headers, timeout=60)


def jobs_in_db():
    db = sqlite3.connect(os.path.join(state["gw"].storage, "comfygate.db"))
    n = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    db.close()
    return n


def setup():
    state["sim"] = gw.sim("--exec-ms", "5")
    state["gw"] = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % state["sim"].port,
                              "COMFYUI_PROBE_INTERVAL_MS": "200", "CACHE_ENABLED": "false",
                              "INPUT_URL_ALLOWED_DOMAINS": "127.0.0.1", "WEBHOOK_SECRET": SECRET})
    state["port"] = state["gw"].port
    gw.wait_backends(state["port"], 1)
    state["files"] = gw.FileServer()


def test_sync_answer_has_base64_images():
    st, h, _, j = post({"prompt": smoke_graph()})
    assert st == 200, (st, j)
    assert len(j["images"]) == 2 and len(j["filenames"]) == 2, j.keys()
    st2, _, _, job = gw.request(state["port"], "GET", "/jobs/" + j["id"])
    assert st2 == 200 and job["status"] == "succeeded" and job["kind"] == "prompt", job
    for b64, name, out in zip(j["images"], j["filenames"], job["outputs"]):
        raw = base64.b64decode(b64)
        assert name == out["filename"] and hashlib.sha256(raw).hexdigest() == out["sha256"]
        w, hh, _, rows = pngmini.decode(raw)
        assert (w, hh) == (32, 24)
        assert rows[0][:3] == bytes([0x33, 0x66, 0x99]), rows[0][:3]
    assert j["prompt"]["2"]["inputs"]["filename_prefix"] == "comfygate/%s/2" % j["id"]
    st_ = j["stats"]
    assert st_["total_ms"] >= 0 and st_["attempts"] == 1 and "execution_ms" in st_["stages"]
    # ComfyUI execution time per node, with its class
    assert set(st_["nodes"]) == {"1", "2"}, st_
    assert st_["nodes"]["1"]["class_type"] == "EmptyImage" and st_["nodes"]["1"]["ms"] >= 0, st_


def test_cache_hit_answers_like_the_run():
    """The same graph again, with the cache on: the answer is the first one's outputs, and its
    prompt is the graph that ran (it used to be null)."""
    g = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % state["sim"].port,
                    "CACHE_ENABLED": "true"})
    try:
        gw.wait_backends(g.port, 1)
        first, second = [post({"prompt": smoke_graph(w=20, h=10, batch=1)}, port=g.port)
                         for _ in range(2)]
        assert first[0] == 200 and second[0] == 200, (first[0], second[0])
        a, b = first[3], second[3]
        assert b["stats"]["attempts"] == 0 and b["id"] != a["id"], b["stats"]
        assert b["prompt"] == a["prompt"] and b["prompt"]["1"]["class_type"] == "EmptyImage"
        assert b["images"] == a["images"] and b["filenames"] == a["filenames"]
    finally:
        g.stop()


def test_webhook_v2_answers_202_at_once():
    st, h, _, j = post({"prompt": smoke_graph(batch=1), "webhook_v2": "https://hooks.example.com/x"})
    assert st == 202 and j["status"] == "queued" and h["location"] == "/jobs/" + j["id"], (st, j)
    done = gw.wait_job(state["port"], j["id"])
    assert done["status"] == "succeeded" and done["webhook_v2"] == "https://hooks.example.com/x"


def test_node_class_not_allowed_403_nothing_stored():
    before = jobs_in_db()
    g = smoke_graph()
    g["3"] = {"class_type": "ExecutePythonCode", "inputs": {"code": "import os"}}
    st, _, _, j = post({"prompt": g})
    assert st == 403 and j["error"]["code"] == "NODE_CLASS_NOT_ALLOWED", (st, j)
    assert "ExecutePythonCode" in j["error"]["message"]
    assert jobs_in_db() == before


def test_bad_requests_400_nothing_stored():
    before = jobs_in_db()
    cases = [
        ({"nope": 1}, "prompt"),
        ({"prompt": {}}, "prompt"),
        ({"prompt": {"1": {"inputs": {}}}}, "class_type"),
        ({"prompt": {"1": {"class_type": "SaveImage", "inputs": {"images": ["9", 0]}}}}, "9"),
        ({"prompt": {"1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
                     "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}}},
         "cycle"),
        ({"prompt": smoke_graph(), "id": "not-a-uuid"}, "id"),
        ({"prompt": smoke_graph(), "webhook_v2": "ftp://x"}, "webhook_v2"),
        ({"prompt": smoke_graph(), "webhook": "http://x"}, "webhook_v2"),
        ({"prompt": smoke_graph(), "convert_output": {"format": "bmp"}}, "convert_output"),
        ({"prompt": invert_graph("comfygate/t-0123456789abcdef/x.png")}, "not allowed"),
        ({"prompt": invert_graph("../../etc/passwd")}, "not allowed"),
        ({"prompt": invert_graph("data:image/png;base64,AAAA" + "A" * 100)}, "PNG"),
    ]
    for body, word in cases:
        st, _, _, j = post(body)
        assert st == 400 and j["error"]["code"] == "VALIDATION_ERROR", (body, st, j)
        assert word in j["error"]["message"], (word, j)
    st, _, _, j = post({"prompt": smoke_graph(w=99999)})
    assert st == 400 and j["error"]["errors"][0]["path"].endswith("width"), j
    # numbers as strings, which ComfyUI converts (int(" 4_000 ") is 4000): the same limits
    for w, batch, where in (("4000", 1, "width"), (" 4_000 ", 1, "width"),
                            ("0" * 80 + "4000", 1, "width"), (32, "12", "batch_size"),
                            (32, "1e3", "batch_size"), ("\uff14\uff10\uff19\uff16", 1, "width"),
                            ("\u00a04096", 1, "width"), (32, "\u0664\u0660", "batch_size")):
        st, _, _, j = post({"prompt": smoke_graph(w=w, batch=batch)})
        assert st == 400 and j["error"]["errors"][0]["path"].endswith(where), (w, batch, st, j)
    st, _, _, j = post(b"{not json")
    assert st == 400
    assert jobs_in_db() == before


def test_comfyui_validation_error_passed_on():
    g = smoke_graph()
    del g["1"]["inputs"]["width"]
    st, _, _, j = post({"prompt": g})
    assert st == 400 and j["error"]["code"] == "COMFYUI_VALIDATION", (st, j)
    nodes = {e["node_id"]: e["node_errors"] for e in j["error"]["errors"]}
    assert "1" in nodes and nodes["1"]["errors"][0]["type"] == "required_input_missing", nodes


def pix(x, y):
    return (x * 20 % 256, y * 30 % 256, 77)


def test_inline_base64_image():
    png = pngmini.encode_rgb(8, 6, pix)
    for form in (base64.b64encode(png).decode(),
                 "data:image/png;base64," + base64.b64encode(png).decode()):
        st, _, _, j = post({"prompt": invert_graph(form)})
        assert st == 200, (st, j)
        name = hashlib.sha256(png).hexdigest()[:32] + ".png"
        ref = j["prompt"]["1"]["inputs"]["image"]
        assert ref.startswith("comfygate/t-") and ref.endswith("/" + name), ref
        pngmini.check_inverted(base64.b64decode(j["images"][0]), 8, 6, pix)
    # the inline image leaves the store with the job's final save (committed just after the
    # answer went out)
    db = sqlite3.connect(os.path.join(state["gw"].storage, "comfygate.db"))
    end = time.time() + 10
    while db.execute("SELECT COUNT(*) FROM job_inputs").fetchone()[0] and time.time() < end:
        time.sleep(0.02)
    assert db.execute("SELECT COUNT(*) FROM job_inputs").fetchone()[0] == 0
    db.close()


def test_image_by_url():
    png = pngmini.encode_rgb(5, 4, pix)
    state["files"].files["/in.png"] = png
    url = state["files"].url("/in.png")
    st, _, _, j = post({"prompt": invert_graph(url)})
    assert st == 200, (st, j)
    pngmini.check_inverted(base64.b64decode(j["images"][0]), 5, 4, pix)
    # not an image, and a 404: the job fails with a clear error
    state["files"].files["/text"] = b"hello, not an image"
    for path, word in (("/text", "not a PNG"), ("/missing", "404")):
        st, _, _, j = post({"prompt": invert_graph(url.replace("/in.png", path))})
        assert st == 422 and j["error"]["code"] == "INPUT_FETCH_FAILED", (st, j)
        assert word in j["error"]["message"], j


def test_input_image_dimensions_are_limited():
    """An input image's width and height, as its header declares them, are held to
    MAX_IMAGE_SIZE: a few bytes of PNG can declare a picture a backend would choke on."""
    png = bytearray(pngmini.encode_rgb(1, 1, pix))
    png[16:20] = (100000).to_bytes(4, "big")  # IHDR width (the CRC is not what is read)
    st, _, _, j = post({"prompt": invert_graph(base64.b64encode(bytes(png)).decode())})
    assert st == 400 and "MAX_IMAGE_SIZE" in j["error"]["message"], (st, j)
    assert "100000x1" in j["error"]["message"], j
    state["files"].files["/bomb.png"] = bytes(png)
    st, _, _, j = post({"prompt": invert_graph(state["files"].url("/bomb.png"))})
    assert st == 422 and j["error"]["code"] == "INPUT_FETCH_FAILED", (st, j)
    assert "MAX_IMAGE_SIZE" in j["error"]["message"], j


def test_convert_output():
    """convert_output asks the backend for /view?...&preview=<format>;<quality> (ComfyUI's own
    conversion) and keeps the converted file under its format's extension."""
    for fmt, ext, magic in (("jpeg", ".jpg", b"\xff\xd8\xff\xe0"), ("webp", ".webp", b"RIFF")):
        st, _, _, j = post({"prompt": smoke_graph(batch=1),
                            "convert_output": {"format": fmt, "options": {"quality": 80}}})
        assert st == 200, (st, j)
        raw = base64.b64decode(j["images"][0])
        assert j["filenames"][0].endswith(ext) and raw[:4] == magic, (j["filenames"], raw[:16])
        assert fmt != "webp" or raw[8:12] == b"WEBP"
        out = j["outputs"][0]
        assert out["mime"] == "image/" + fmt and out["filename"] == j["filenames"][0], out
        st, h, body, _ = gw.request(state["port"], "GET", out["url"])
        assert st == 200 and h["content-type"] == "image/" + fmt and body == raw
    st, _, _, j = post({"prompt": smoke_graph(batch=1), "convert_output": {"format": "png"}})
    assert st == 200 and j["filenames"][0].endswith(".png"), j


def test_client_id_and_conflict():
    jid = "0b9d6a7e-1111-4222-8333-444455556666"
    st, _, _, j = post({"prompt": smoke_graph(batch=1), "id": jid})
    assert st == 200 and j["id"] == jid, (st, j)
    st, _, _, j = post({"prompt": smoke_graph(batch=1), "id": jid})
    assert st == 409 and j["error"]["code"] == "JOB_EXISTS", (st, j)


def test_idempotency_key():
    body = {"prompt": smoke_graph(batch=1, color=5), "webhook_v2": "https://h.example.com/"}
    st, _, _, a = post(body, {"Idempotency-Key": "p-1"})
    st2, h, _, b = post(body, {"Idempotency-Key": "p-1"})
    assert st == st2 == 202 and a["id"] == b["id"] and h["idempotency-replayed"] == "true"
    body["prompt"]["1"]["inputs"]["color"] = 6
    st, _, _, c = post(body, {"Idempotency-Key": "p-1"})
    assert st == 422 and c["error"]["code"] == "IDEMPOTENCY_KEY_REUSE", (st, c)


def test_inline_image_survives_kill9_while_queued():
    """The image is committed with the job: a kill -9 before it runs loses nothing."""
    sim = gw.sim("--exec-ms", "400")
    g = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % sim.port, "WEBHOOK_SECRET": SECRET,
                    "COMFYUI_PROBE_INTERVAL_MS": "200", "CACHE_ENABLED": "false"})
    try:
        gw.wait_backends(g.port, 1)
        png = pngmini.encode_rgb(4, 4, pix)
        ids = []
        for i in range(3):  # one runs, two wait behind it
            st, _, _, j = post({"prompt": invert_graph(base64.b64encode(png).decode()),
                                "webhook_v2": "https://h.example.com/%d" % i}, port=g.port)
            assert st == 202, (st, j)
            ids.append(j["id"])
        g.kill(signal.SIGKILL)
        g = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % sim.port, "WEBHOOK_SECRET": SECRET,
                        "COMFYUI_PROBE_INTERVAL_MS": "200", "CACHE_ENABLED": "false"},
                       storage=g.storage)
        for jid in ids:
            done = gw.wait_job(g.port, jid, timeout=60)
            assert done["status"] == "succeeded", done
            raw = gw.request(g.port, "GET", done["outputs"][0]["url"])[2]
            pngmini.check_inverted(raw, 4, 4, pix)
    finally:
        g.stop()
        sim.kill()


def teardown():
    st = state["gw"].stop()
    state["sim"].kill()
    state["files"].shutdown()
    assert st == 0, state["gw"].tail()


if __name__ == "__main__":
    setup()
    try:
        for t in (test_sync_answer_has_base64_images, test_cache_hit_answers_like_the_run,
                  test_webhook_v2_answers_202_at_once,
                  test_node_class_not_allowed_403_nothing_stored, test_bad_requests_400_nothing_stored,
                  test_comfyui_validation_error_passed_on, test_inline_base64_image,
                  test_image_by_url, test_input_image_dimensions_are_limited,
                  test_convert_output, test_client_id_and_conflict,
                  test_idempotency_key,
                  test_inline_image_survives_kill9_while_queued):
            S.run(t)
    finally:
        S.run(teardown)
    S.done()
