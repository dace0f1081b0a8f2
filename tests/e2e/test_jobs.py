"""Jobs API end to end: the real gateway against a real comfysim (issue 4)."""
import base64
import hashlib
import json
import os
import sqlite3
import threading
import time
import http.client

import gw

SDXL = "checkpoints=sd_xl_base_1.0.safetensors,v1-5-pruned-emaonly.safetensors"
S = gw.Suite()
state = {}


def setup():
    state["sim"] = gw.sim("--models", SDXL, "--exec-ms", "20", "--step-ms", "5")
    state["gw"] = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % state["sim"].port,
                              "COMFYUI_PROBE_INTERVAL_MS": "200"})
    state["port"] = state["gw"].port
    gw.wait_backends(state["port"], 1)


def submit(body, headers=None, port=None):
    return gw.request(port or state["port"], "POST", "/jobs", body, headers)


def sim_view(job, out):
    # the simulator's own copy of the file, fetched directly
    q = "/view?filename=%s&subfolder=comfygate/%s&type=output" % (out["filename"], job["id"])
    st, _, raw, _ = gw.request(state["sim"].port, "GET", q)
    assert st == 200, st
    return raw


def test_submit_poll_download():
    st, h, _, j = submit({"workflowId": "smoke", "inputs": {"width": 48, "height": 32,
                                                            "batch_size": 2}})
    assert st == 202 and j["status"] in ("queued", "running"), (st, j)
    assert h["location"] == "/jobs/" + j["jobId"]
    done = gw.wait_job(state["port"], j["jobId"])
    assert done["status"] == "succeeded", done
    assert done["workflowVersion"] == 1 and len(done["workflowHash"]) == 64
    assert len(done["outputs"]) == 2
    for out in done["outputs"]:
        st, h, raw, _ = gw.request(state["port"], "GET", out["url"])
        assert st == 200 and raw[:8] == b"\x89PNG\r\n\x1a\n", st
        assert h["content-type"] == "image/png"
        assert hashlib.sha256(raw).hexdigest() == out["sha256"]
        assert len(raw) == out["size"]
        assert raw == sim_view(done, out), "bytes differ from what the simulator wrote"
        # width/height really come from the inputs: PNG IHDR
        assert int.from_bytes(raw[16:20], "big") == 48 and int.from_bytes(raw[20:24], "big") == 32
        st, h2, part, _ = gw.request(state["port"], "GET", out["url"], headers={"Range": "bytes=0-7"})
        assert st == 206 and part == raw[:8]
        st, _, _, _ = gw.request(state["port"], "GET", out["url"],
                                 headers={"If-None-Match": h["etag"]})
        assert st == 304
    st, _, _, lst = gw.request(state["port"], "GET", "/outputs/" + done["id"])
    assert st == 200 and len(lst["outputs"]) == 2
    state["done"] = done


def test_base64_download():
    done = state["done"]
    out = done["outputs"][0]
    st, h, raw, j = gw.request(state["port"], "GET", out["url"] + "?encoding=base64")
    assert st == 200 and h["content-type"].startswith("application/json"), st
    assert j["filename"] == out["filename"] and j["mime"] == "image/png"
    assert base64.b64decode(j["data"]) == sim_view(done, out)
    st, _, _, j = gw.request(state["port"], "GET", out["url"] + "?encoding=hex")
    assert st == 400 and j["error"]["code"] == "VALIDATION_ERROR"


def http10(path):
    """GET path as an HTTP/1.0 client: (head lines, body read until the server closes)."""
    import socket
    s = socket.create_connection(("127.0.0.1", state["port"]), timeout=30)
    s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % path.encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return [l.lower() for l in head.decode().split("\r\n")], body


def test_streams_to_http10_clients_are_not_chunked():
    """HTTP/1.0 has no chunked coding: a streamed answer (a base64 download, an event stream)
    goes out as is and the connection's close ends it."""
    done = state["done"]
    out = done["outputs"][0]
    for path in (out["url"] + "?encoding=base64", "/jobs/%s/events" % done["id"]):
        head, body = http10(path)
        assert head[0].startswith("http/1.1 200"), head
        assert not any(l.startswith("transfer-encoding") for l in head), head
        assert "connection: close" in head, head
        if "base64" in path:
            assert base64.b64decode(json.loads(body)["data"]) == sim_view(done, out)
        else:
            assert body.startswith(b"event: status\n") and b'"succeeded"' in body, body[:200]


def test_sdxl_progress_over_sse():
    st, _, _, j = submit({"workflowId": "sdxl_realism_v1",
                          "inputs": {"prompt": "a lighthouse", "width": 512, "height": 512,
                                     "steps": 8, "seed": 7}})
    assert st == 202, j
    c = http.client.HTTPConnection("127.0.0.1", state["port"], timeout=30)
    c.request("GET", "/jobs/%s/events" % j["jobId"])
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
    events = []
    ev = None
    for line in r:
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            ev = line[7:]
        elif line.startswith("data: "):
            events.append((ev, json.loads(line[6:])))
    c.close()
    kinds = [e for e, _ in events]
    assert kinds[0] == "status" and kinds[-1] == "status", kinds
    assert events[-1][1]["status"] == "succeeded", events[-1]
    steps = [d["step"] for e, d in events if e == "progress" and d.get("steps") == 8]
    assert steps and max(steps) >= 7, ("no sampler progress", kinds)
    assert "output" in kinds
    done = gw.wait_job(state["port"], j["jobId"])
    assert done["inputs"]["seed"] == 7 and done["inputs"]["cfg"] == 7.0
    out = done["outputs"][0]
    st, _, raw, _ = gw.request(state["port"], "GET", out["url"])
    assert int.from_bytes(raw[16:20], "big") == 512


def test_missing_seed_is_drawn_and_reported():
    st, _, _, j = submit({"workflowId": "sdxl_realism_v1", "inputs": {"prompt": "x", "steps": 1,
                                                                      "width": 256, "height": 256}})
    done = gw.wait_job(state["port"], j["jobId"])
    assert isinstance(done["inputs"]["seed"], int), done["inputs"]


def test_cache_hit():
    body = {"workflowId": "smoke", "inputs": {"width": 20, "height": 20, "color": 255}}
    st, _, _, j = submit(body)
    first = gw.wait_job(state["port"], j["jobId"])
    assert first["status"] == "succeeded" and not first["cacheHit"]
    st, _, _, hit = submit(body)
    assert st == 200 and hit["cacheHit"] and hit["status"] == "succeeded", (st, hit)
    assert hit["id"] != first["id"]
    assert [o["sha256"] for o in hit["outputs"]] == [o["sha256"] for o in first["outputs"]]
    st, _, raw, _ = gw.request(state["port"], "GET", hit["outputs"][0]["url"])
    assert st == 200 and hashlib.sha256(raw).hexdigest() == hit["outputs"][0]["sha256"]
    # the storage provider's keys: the hit points at the objects of the job it shares
    db = sqlite3.connect(os.path.join(state["gw"].storage, "comfygate.db"))
    keys = dict(db.execute("SELECT job_id, storage_key FROM outputs WHERE job_id IN (?, ?)",
                           (first["id"], hit["id"])).fetchall())
    db.close()
    name = first["outputs"][0]["filename"]
    assert keys[first["id"]] == "outputs/%s/%s" % (first["id"], name), keys
    assert keys[hit["id"]] == keys[first["id"]], keys
    # other inputs: no hit
    st, _, _, j = submit({"workflowId": "smoke", "inputs": {"width": 21, "height": 20, "color": 255}})
    assert st == 202


def test_idempotency():
    body = {"workflowId": "smoke", "inputs": {"width": 8}}
    h = {"Idempotency-Key": "order-1234"}
    st, _, _, a = submit(body, h)
    assert st == 202
    st, hh, _, b = submit(body, h)
    assert st == 202 and b["jobId"] == a["jobId"] and hh.get("idempotency-replayed") == "true"
    st, _, _, c = submit({"workflowId": "smoke", "inputs": {"width": 9}}, h)
    assert st == 422 and c["error"]["code"] == "IDEMPOTENCY_KEY_REUSE", c
    # metadata.requestId works the same way
    body2 = {"workflowId": "smoke", "metadata": {"requestId": "r-1"}}
    st, _, _, x = submit(body2)
    st, hh, _, y = submit(body2)
    assert x["jobId"] == y["jobId"] and hh.get("idempotency-replayed") == "true"


def test_bad_inputs_store_nothing():
    port = state["port"]
    before = len(gw.request(port, "GET", "/jobs?limit=1000")[3]["jobs"])
    cases = [
        ({"workflowId": "sdxl_realism_v1", "inputs": {}}, 400, "/prompt"),          # missing
        ({"workflowId": "sdxl_realism_v1", "inputs": {"prompt": 5}}, 400, "/prompt"),  # type
        ({"workflowId": "sdxl_realism_v1", "inputs": {"prompt": "a", "steps": 999}}, 400, "/steps"),
        ({"workflowId": "nope"}, 404, None),
        ({"workflowId": "smoke", "inputs": {"nosuch": 1}}, 400, "/nosuch"),       # unknown input
        ({"workflowId": "smoke", "inputs": {"width": 4000}}, 400, "/1/inputs/width"),  # MAX_IMAGE_SIZE
        ({"workflowId": "smoke", "inputs": {"batch_size": 16}}, 400, "/1/inputs/batch_size"),
        ({"inputs": {}}, 400, None),
        ({"workflowId": "smoke", "priority": "high"}, 400, None),
        # version pins: integers 1..1000000 only (4294967297 used to run version 1)
        ({"workflowId": "smoke", "workflowVersion": 4294967297}, 400, None),
        ({"workflowId": "smoke", "workflowVersion": 0}, 400, None),
        ({"workflowId": "smoke", "workflowVersion": "1"}, 400, None),
        ({"workflowId": "smoke", "workflowVersion": 1.0}, 400, None),
        ({"workflowId": "smoke", "workflowVersion": True}, 400, None),
        ({"workflowId": "smoke", "workflowVersion": 999}, 404, None),
    ]
    for body, code, path in cases:
        st, _, _, j = submit(body)
        assert st == code, (body, st, j)
        assert j["error"]["requestId"]
        if path:
            paths = [e["path"] for e in j["error"]["errors"]]
            assert path in paths, (body, paths)
    for raw in (b"{not json", b"[1,2]", b"\xff\xfe", b"[" * 5000 + b"]" * 5000):
        st, _, _, j = gw.request(port, "POST", "/jobs", raw)
        assert st == 400 and j["error"]["code"] == "VALIDATION_ERROR", (raw[:10], st, j)
    st, _, _, j = gw.request(port, "POST", "/jobs", b'{"workflowId":"smoke","x":"' +
                             b"a" * (10 << 20) + b'"}')
    assert st == 413, st
    after = len(gw.request(port, "GET", "/jobs?limit=1000")[3]["jobs"])
    assert after == before, (before, after)


def test_list_filters_and_cursor():
    port = state["port"]
    st, _, _, page = gw.request(port, "GET", "/jobs?limit=2&status=succeeded")
    assert st == 200 and len(page["jobs"]) == 2 and page["next_cursor"]
    st, _, _, page2 = gw.request(port, "GET", "/jobs?limit=2&status=succeeded&cursor=" +
                                 page["next_cursor"])
    ids1 = {j["id"] for j in page["jobs"]}
    assert ids1.isdisjoint({j["id"] for j in page2["jobs"]})
    st, _, _, w = gw.request(port, "GET", "/jobs?workflowId=sdxl_realism_v1&limit=100")
    assert w["jobs"] and all(j["workflowId"] == "sdxl_realism_v1" for j in w["jobs"])
    # unreadable values (a bad escape, too long) are refused, not taken as absent
    for bad in ("limit=0", "status=done", "after=x", "cursor=-1", "limit=%zz", "status=%00",
                "workflowId=" + "w" * 200, "before=" + "9" * 40):
        st, _, _, j = gw.request(port, "GET", "/jobs?" + bad)
        assert st == 400 and j["error"]["code"] == "VALIDATION_ERROR", (bad, st, j)
    st, _, _, j = gw.request(port, "GET", "/workflows/smoke?version=%zz")
    assert st == 400 and j["error"]["code"] == "VALIDATION_ERROR", (st, j)
    url = page["jobs"][0]["outputs"][0]["url"]  # of a succeeded job
    st, _, _, e = gw.request(port, "GET", url + "?encoding=%zz")
    assert st == 400 and e["error"]["code"] == "VALIDATION_ERROR", (st, e)


def test_priorities_reorder_and_cancel():
    # a slow backend of its own, so a backlog builds up
    sim = gw.sim("--exec-ms", "150")
    g = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % sim.port, "CACHE_ENABLED": "false"})
    try:
        gw.wait_backends(g.port, 1)
        ids = []
        for prio, w in ((0, 1), (0, 2), (5, 3), (9, 4), (5, 5)):
            st, _, _, j = submit({"workflowId": "smoke", "priority": prio, "inputs": {"width": w}},
                                 port=g.port)
            assert st == 202
            ids.append(j["jobId"])
        # queued → canceled at once
        st, _, _, c = gw.request(g.port, "POST", "/jobs/%s/cancel" % ids[1])
        assert st == 200 and c["status"] == "canceled", c
        st, _, _, c = gw.request(g.port, "POST", "/jobs/%s/cancel" % ids[1])
        assert st == 409 and c["error"]["code"] == "JOB_FINISHED"
        jobs = [gw.wait_job(g.port, i) for i in ids]
        ran = sorted((j for j in jobs if j["status"] == "succeeded"),
                     key=lambda j: j["timings"]["started_at"])
        order = [ids.index(j["id"]) for j in ran]
        assert order == [0, 3, 2, 4], order  # first one was already running
        # running → interrupted on the backend
        st, _, _, j = submit({"workflowId": "smoke", "inputs": {"width": 99}}, port=g.port)
        gw.wait_job(g.port, j["jobId"], want=("running",))
        st, _, _, c = gw.request(g.port, "POST", "/jobs/%s/cancel" % j["jobId"])
        assert st == 200
        end = gw.wait_job(g.port, j["jobId"])
        assert end["status"] == "canceled", end
    finally:
        g.stop()
        sim.kill()


def test_queue_full_429():
    sim = gw.sim("--exec-ms", "2000")
    g = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % sim.port, "MAX_QUEUE": "2",
                    "CACHE_ENABLED": "false"})
    try:
        gw.wait_backends(g.port, 1)
        codes = [submit({"workflowId": "smoke", "inputs": {"width": i + 1}}, port=g.port)
                 for i in range(5)]
        statuses = [c[0] for c in codes]
        assert statuses.count(429) >= 2, statuses
        full = [c for c in codes if c[0] == 429][0]
        assert full[3]["error"]["code"] == "QUEUE_FULL" and full[1]["retry-after"]
    finally:
        g.stop()
        sim.kill()


def test_max_concurrency():
    """MAX_CONCURRENCY=1 with two idle backends: the jobs still run one at a time (their
    execution intervals, as both simulators recorded them, never overlap)."""
    sims = [gw.sim("--exec-ms", "150"), gw.sim("--exec-ms", "150")]
    g = gw.gateway({"COMFYUI_URLS": ",".join("http://127.0.0.1:%d" % s.port for s in sims),
                    "MAX_CONCURRENCY": "1", "CACHE_ENABLED": "false",
                    "COMFYUI_PROBE_INTERVAL_MS": "200"})
    try:
        gw.wait_backends(g.port, 2)
        ids = [submit({"workflowId": "smoke", "inputs": {"width": 10 + i}}, port=g.port)[3]["jobId"]
               for i in range(4)]
        done = [gw.wait_job(g.port, x) for x in ids]
        assert all(d["status"] == "succeeded" for d in done), done
        spans = []
        for s_ in sims:
            for h in gw.request(s_.port, "GET", "/history")[3].values():
                ts = {m[0]: m[1]["timestamp"] for m in h["status"]["messages"]}
                spans.append((ts["execution_start"], ts["execution_success"]))
        spans.sort()
        assert len(spans) == 4
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans
    finally:
        g.stop()
        for s_ in sims:
            s_.kill()


def test_timeout():
    sim = gw.sim("--models", SDXL, "--fault", "hang")
    g = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % sim.port, "COMFYUI_TIMEOUT_MS": "400"})
    try:
        gw.wait_backends(g.port, 1)
        st, _, _, j = submit({"workflowId": "sdxl_realism_v1",
                              "inputs": {"prompt": "x", "steps": 2, "width": 256, "height": 256}},
                             port=g.port)
        done = gw.wait_job(g.port, j["jobId"])
        assert done["status"] == "failed" and done["error"]["code"] == "COMFYUI_TIMEOUT", done
        # the backend was told: its queue is empty again
        _, _, _, q = gw.request(sim.port, "GET", "/queue")
        deadline = time.time() + 5
        while (q["queue_running"] or q["queue_pending"]) and time.time() < deadline:
            time.sleep(0.05)
            _, _, _, q = gw.request(sim.port, "GET", "/queue")
        assert not q["queue_running"] and not q["queue_pending"], q
    finally:
        g.stop()
        sim.kill()


def test_privacy_mode():
    sim = gw.sim()
    g = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % sim.port, "PRIVACY_MODE": "true"})
    try:
        gw.wait_backends(g.port, 1)
        st, _, _, j = submit({"workflowId": "smoke", "inputs": {"width": 16}}, port=g.port)
        done = gw.wait_job(g.port, j["jobId"])
        assert done["status"] == "succeeded", done
        raw = gw.request(g.port, "GET", done["outputs"][0]["url"])[2]
        orig = gw.request(sim.port, "GET", "/view?filename=%s&subfolder=comfygate/%s&type=output"
                          % (done["outputs"][0]["filename"], done["id"]))[2]
        assert b"tEXt" in orig and b"tEXt" not in raw and raw[:8] == orig[:8]
        assert len(raw) < len(orig)
        # the database keeps neither the rendered graph nor text inputs once the job is done
        db = sqlite3.connect(os.path.join(g.storage, "comfygate.db"))
        end = time.time() + 10
        row = None
        while time.time() < end:
            row = db.execute("SELECT graph, inputs FROM jobs WHERE id = ?", (done["id"],)).fetchone()
            if row[0] is None:
                break
            time.sleep(0.02)
        db.close()
        assert row[0] is None, row
    finally:
        g.stop()
        sim.kill()


def teardown():
    st = state["gw"].stop()
    state["sim"].kill()
    assert st == 0, state["gw"].tail()


if __name__ == "__main__":
    setup()
    try:
        for t in (test_submit_poll_download, test_base64_download,
                  test_streams_to_http10_clients_are_not_chunked, test_sdxl_progress_over_sse,
                  test_missing_seed_is_drawn_and_reported, test_cache_hit, test_idempotency,
                  test_bad_inputs_store_nothing, test_list_filters_and_cursor,
                  test_priorities_reorder_and_cancel, test_queue_full_429, test_max_concurrency,
                  test_timeout,
                  test_privacy_mode):
            S.run(t)
    finally:
        S.run(teardown)
    S.done()
