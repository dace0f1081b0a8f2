"""STORAGE_PROVIDER=s3 end to end (issue 5, S3_*): the real gateway and comfysim with outputs
in a real S3-compatible server, s3rver (tests/js/s3_server.js), which checks the AWS Signature
Version 4 of every signed request, and of presigned URLs.

Checks that outputs land in the bucket under their keys with the right bytes, that downloads
redirect to presigned URLs the server accepts (and a tampered one it refuses), that base64
downloads and the sync POST /prompt answer read objects back from the bucket when no local copy
is left, that wrong credentials fail the job with STORAGE_ERROR naming S3's own error code, that
uploads are retried while the server is down, and that bad S3_* settings stop the gateway."""
import base64
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import threading
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import gw

S = gw.Suite()
HERE = os.path.dirname(os.path.abspath(__file__))
JS = os.path.join(HERE, "..", "js")
state = {}


class S3Server(gw.Proc):
    def __init__(self, data_dir, port=None):
        self.dir = data_dir
        self.port_file = os.path.join(data_dir, "port-%d" % time.monotonic_ns())
        self.log_path = os.path.join(data_dir, "s3rver.log")
        self.log = open(self.log_path, "ab")
        self.name = "s3rver"
        argv = ["node", os.path.join(JS, "s3_server.js"), os.path.join(data_dir, "objects"),
                self.port_file] + ([str(port)] if port else [])
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  preexec_fn=gw.die_with_parent)
        self.port = self._wait_port()


def restart_s3(port):
    """s3rver again on its old port, which an outgoing connection may hold for a moment."""
    for _ in range(50):
        try:
            return S3Server(state["s3dir"], port=port)
        except RuntimeError:
            time.sleep(0.1)
    raise AssertionError("could not restart s3rver on port %d" % port)


def s3_env(**over):
    e = {"COMFYUI_URL": "http://127.0.0.1:%d" % state["sim"].port,
         "COMFYUI_PROBE_INTERVAL_MS": "200", "CACHE_ENABLED": "false",
         "STORAGE_PROVIDER": "s3", "S3_ENDPOINT": "http://127.0.0.1:%d" % state["s3"].port,
         "S3_BUCKET": "comfygate", "S3_ACCESS_KEY_ID": "S3RVER",
         "S3_SECRET_ACCESS_KEY": "S3RVER", "S3_PREFIX": "out/", "S3_KEEP_LOCAL": "false",
         "WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"s" * 32).decode(),
         "WEBHOOK_ALLOWED_DOMAINS": "127.0.0.1"}
    e.update({k: str(v) for k, v in over.items()})
    return e


def start(**over):
    g = gw.gateway(s3_env(**over))
    gw.wait_backends(g.port, 1)
    return g


def setup():
    if not shutil.which("node") or not os.path.isdir(os.path.join(JS, "node_modules", "s3rver")):
        print("node or tests/js/node_modules missing: run scripts/deps.sh test")
        sys.exit(1)
    state["sim"] = gw.sim("--exec-ms", "5", "--step-ms", "1",
                          "--models", "checkpoints=sd_xl_base_1.0.safetensors")
    state["s3dir"] = gw.tempfile.mkdtemp(prefix="cg-s3-")
    state["s3"] = S3Server(state["s3dir"])
    state["gw"] = start()
    state["port"] = state["gw"].port


def submit_smoke(port, w=40, h=24, batch=2):
    st, _, _, j = gw.request(port, "POST", "/jobs", {
        "workflowId": "smoke", "inputs": {"width": w, "height": h, "batch_size": batch}})
    assert st == 202, (st, j)
    return gw.wait_job(port, j["jobId"])


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def presign(key, expires=60):
    """A presigned GET for key, computed here in Python: a second, independent SigV4."""
    host = "127.0.0.1:%d" % state["s3"].port
    now = datetime.datetime.now(datetime.timezone.utc)
    date, stamp = now.strftime("%Y%m%d"), now.strftime("%Y%m%dT%H%M%SZ")
    scope = "%s/us-east-1/s3/aws4_request" % date
    path = "/comfygate/" + urllib.parse.quote(key, safe="/~")
    query = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s&X-Amz-Date=%s"
             "&X-Amz-Expires=%d&X-Amz-SignedHeaders=host"
             % (urllib.parse.quote("S3RVER/" + scope, safe="~"), stamp, expires))
    creq = "GET\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD" % (path, query, host)
    sts = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (stamp, scope,
                                            hashlib.sha256(creq.encode()).hexdigest())
    k = b"AWS4S3RVER"
    for part in (date, "us-east-1", "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    return "http://%s%s?%s&X-Amz-Signature=%s" % (host, path, query, sig)


def test_outputs_land_in_the_bucket():
    done = submit_smoke(state["port"])
    assert done["status"] == "succeeded", done
    assert len(done["outputs"]) == 2
    for out in done["outputs"]:
        # the download is a redirect to a presigned URL that s3rver checks and serves
        st, h, _, _ = gw.request(state["port"], "GET", out["url"])
        assert st == 302, st
        loc = h["location"]
        assert loc.startswith("http://127.0.0.1:%d/comfygate/out/%s/" % (state["s3"].port,
                                                                        done["id"])), loc
        assert "X-Amz-Signature=" in loc and "X-Amz-Expires=3600" in loc
        st, raw = fetch(loc)
        assert st == 200, (st, raw[:200])
        assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) == out["size"]
        assert hashlib.sha256(raw).hexdigest() == out["sha256"]
        # a presigned URL with a changed signature is refused: the server really checks them
        bad = loc[:-4] + ("0000" if not loc.endswith("0000") else "1111")
        st, body = fetch(bad)
        assert st == 403 and b"SignatureDoesNotMatch" in body, (st, body[:200])
        # S3_KEEP_LOCAL=false: the staged copy is gone once the object is in the bucket
        staged = os.path.join(state["gw"].storage, "outputs", done["id"], out["filename"])
        assert not os.path.exists(staged), staged
    state["done"] = done


def test_base64_download_reads_the_object_back():
    done = state["done"]
    for out in done["outputs"]:
        st, h, _, j = gw.request(state["port"], "GET", out["url"] + "?encoding=base64")
        assert st == 200, (st, j)
        data = base64.b64decode(j["data"])
        assert hashlib.sha256(data).hexdigest() == out["sha256"] and j["mime"] == "image/png"
    # a name the job does not have is still a 404, not a fetch
    st, _, _, j = gw.request(state["port"], "GET", "/outputs/%s/nope.png?encoding=base64"
                             % done["id"])
    assert st == 404 and j["error"]["code"] == "OUTPUT_NOT_FOUND", (st, j)


def test_a_changed_object_is_not_served_as_the_output():
    """The bucket's copy no longer matches the output (changed behind the gateway's back): a
    base64 download refuses it rather than answering other bytes, and keeps no local copy."""
    done = submit_smoke(state["port"], batch=1)
    out = done["outputs"][0]
    obj = os.path.join(state["s3dir"], "objects", "comfygate", "out", done["id"],
                       out["filename"] + "._S3rver_object")
    with open(obj, "r+b") as f:
        f.seek(out["size"] // 2)
        f.write(b"\xff\xfe")
    st, _, _, j = gw.request(state["port"], "GET", out["url"] + "?encoding=base64")
    assert st == 502 and j["error"]["code"] == "STORAGE_ERROR", (st, j)
    staged = os.path.join(state["gw"].storage, "outputs", done["id"], out["filename"])
    assert not os.path.exists(staged)


def test_fetched_copies_are_removed_once_unused():
    """S3_KEEP_LOCAL=false: the copy fetched back for a base64 answer is a cache, removed once
    unused for S3_FETCHED_KEEP_SECONDS; the next answer fetches it again."""
    g = start(S3_FETCHED_KEEP_SECONDS="1")
    try:
        done = submit_smoke(g.port, batch=1)
        out = done["outputs"][0]
        staged = os.path.join(g.storage, "outputs", done["id"], out["filename"])
        assert not os.path.exists(staged)  # uploaded, then dropped
        for _ in range(2):
            st, _, _, j = gw.request(g.port, "GET", out["url"] + "?encoding=base64")
            assert st == 200 and hashlib.sha256(base64.b64decode(j["data"])).hexdigest() == \
                out["sha256"], (st, j)
            assert os.path.exists(staged)  # the fetched copy
            end = time.time() + 20
            while os.path.exists(staged):
                assert time.time() < end, "the fetched copy was never removed"
                time.sleep(0.1)
    finally:
        g.stop()


def test_copies_left_by_a_killed_gateway_are_removed():
    """A copy fetched back just before a kill -9 is no one's to remove after it: the next
    start finds it by the job's outputs and removes it once unused, like its own."""
    g = start(S3_FETCHED_KEEP_SECONDS="3600")
    try:
        done = submit_smoke(g.port, batch=1)
        out = done["outputs"][0]
        staged = os.path.join(g.storage, "outputs", done["id"], out["filename"])
        st, _, _, _ = gw.request(g.port, "GET", out["url"] + "?encoding=base64")
        assert st == 200 and os.path.exists(staged), st
        g.kill(signal.SIGKILL)
        g = gw.gateway(s3_env(S3_FETCHED_KEEP_SECONDS="1"), storage=g.storage)
        end = time.time() + 20
        while os.path.exists(staged):
            assert time.time() < end, "the copy left by the killed gateway was never removed"
            time.sleep(0.1)
        st, _, _, j = gw.request(g.port, "GET", out["url"] + "?encoding=base64")
        assert st == 200 and hashlib.sha256(base64.b64decode(j["data"])).hexdigest() == \
            out["sha256"], st
    finally:
        g.stop()


def test_sync_prompt_answers_base64_from_the_bucket():
    graph = {"1": {"class_type": "EmptyImage",
                   "inputs": {"width": 16, "height": 8, "batch_size": 3, "color": 0x112233}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                         "filename_prefix": "s3"}}}
    st, _, _, j = gw.request(state["port"], "POST", "/prompt", {"prompt": graph}, timeout=60)
    assert st == 200, (st, j)
    assert len(j["images"]) == 3
    st, _, _, job = gw.request(state["port"], "GET", "/jobs/" + j["id"])
    by_name = {o["filename"]: o for o in job["outputs"]}
    for name, img in zip(j["filenames"], j["images"]):
        raw = base64.b64decode(img)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        assert hashlib.sha256(raw).hexdigest() == by_name[name]["sha256"]


def test_slow_sync_prompt_reader_outlives_the_copies():
    """A sync /prompt answer of two 12 MB images read slowly: the copies fetched back for it
    are removed (S3_FETCHED_KEEP_SECONDS=1) while the client has read only the start, and
    the answer still arrives whole, since it opened every image before the first byte."""
    graph = {"4": {"class_type": "CheckpointLoaderSimple",
                   "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
             "5": {"class_type": "EmptyLatentImage",
                   "inputs": {"width": 2048, "height": 2048, "batch_size": 2}},
             "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "noise", "clip": ["4", 1]}},
             "3": {"class_type": "KSampler", "inputs": {
                 "seed": 7, "steps": 1, "cfg": 7.0, "sampler_name": "euler",
                 "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0],
                 "negative": ["6", 0], "latent_image": ["5", 0]}},
             "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
             "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0],
                                                         "filename_prefix": "slow"}}}
    sim = gw.sim("--png-level", "0", "--models", "checkpoints=sd_xl_base_1.0.safetensors")
    g = gw.gateway(s3_env(S3_FETCHED_KEEP_SECONDS="1",
                          COMFYUI_URL="http://127.0.0.1:%d" % sim.port))
    try:
        gw.wait_backends(g.port, 1)
        c = http.client.HTTPConnection("127.0.0.1", g.port, timeout=120)
        c.request("POST", "/prompt", json.dumps({"prompt": graph}),
                  {"Content-Type": "application/json"})
        resp = c.getresponse()
        assert resp.status == 200, resp.status
        head = resp.read(65536)  # then the client stalls, the gateway blocked mid-image
        jid = head.split(b'"id":"', 1)[1][:36].decode()  # the answer starts with the job id
        d = os.path.join(g.storage, "outputs", jid)
        end = time.time() + 30
        while os.path.isdir(d) and [n for n in os.listdir(d) if n.endswith(".png")]:
            assert time.time() < end, ("copies never removed", os.listdir(d))
            time.sleep(0.1)
        body = json.loads(head + resp.read())
        _, _, _, job = gw.request(g.port, "GET", "/jobs/" + jid)
        by_name = {o["filename"]: o for o in job["outputs"]}
        assert len(body["images"]) == 2 and len(by_name) == 2, (len(body["images"]), by_name)
        for name, img in zip(body["filenames"], body["images"]):
            raw = base64.b64decode(img)
            assert len(raw) > 12 << 20 and hashlib.sha256(raw).hexdigest() == \
                by_name[name]["sha256"], (name, len(raw))
    finally:
        g.stop()
        sim.kill()


class Hooks(http.server.BaseHTTPRequestHandler):
    got = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hooks.got.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_webhook_inlines_images_read_back_from_the_bucket():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        graph = {"1": {"class_type": "EmptyImage",
                       "inputs": {"width": 10, "height": 6, "batch_size": 2, "color": 0x778899}},
                 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                             "filename_prefix": "wh"}}}
        url = "http://127.0.0.1:%d/hook" % srv.server_address[1]
        st, _, _, j = gw.request(state["port"], "POST", "/prompt",
                                 {"prompt": graph, "webhook_v2": url})
        assert st == 202, (st, j)
        end = time.time() + 30
        while not Hooks.got and time.time() < end:
            time.sleep(0.02)
        assert Hooks.got, "no webhook"
        hook = Hooks.got[0]
        assert hook["type"] == "prompt.complete", hook["type"]
        data = hook["data"]
        assert data["images_inlined"] is True and len(data["images"]) == 2, data.keys()
        st, _, _, job = gw.request(state["port"], "GET", "/jobs/" + j["id"])
        by_name = {o["filename"]: o for o in job["outputs"]}
        for name, img in zip(data["filenames"], data["images"]):
            assert hashlib.sha256(base64.b64decode(img)).hexdigest() == by_name[name]["sha256"]
    finally:
        srv.shutdown()


def test_large_outputs_stream_both_ways():
    """Megabyte outputs: the upload reads the staged file through the ring in several
    buffers (the transfer pausing in between) and the fetch-back streams into a file_sink."""
    st, _, _, j = gw.request(state["port"], "POST", "/jobs", {
        "workflowId": "sdxl_realism_v1",
        "inputs": {"prompt": "noise", "steps": 1, "width": 2048, "height": 2048, "seed": 7}})
    assert st == 202, (st, j)
    done = gw.wait_job(state["port"], j["jobId"])
    assert done["status"] == "succeeded", done
    out = done["outputs"][0]
    assert out["size"] > 4 * 256 * 1024, out["size"]  # more than four read buffers
    st, h, _, _ = gw.request(state["port"], "GET", out["url"])
    st, raw = fetch(h["location"])
    assert st == 200 and hashlib.sha256(raw).hexdigest() == out["sha256"]
    st, _, _, b = gw.request(state["port"], "GET", out["url"] + "?encoding=base64")
    assert st == 200 and base64.b64decode(b["data"]) == raw


def test_keep_local_serves_the_staged_copy():
    g = start(S3_KEEP_LOCAL="true", S3_PUBLIC_URL="https://cdn.example.test/media/")
    try:
        done = submit_smoke(g.port, batch=1)
        assert done["status"] == "succeeded", done
        out = done["outputs"][0]
        staged = os.path.join(g.storage, "outputs", done["id"], out["filename"])
        with open(staged, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == out["sha256"]
        # S3_PUBLIC_URL: a plain link under the public base, no signature
        st, h, _, _ = gw.request(g.port, "GET", out["url"])
        assert st == 302 and h["location"] == "https://cdn.example.test/media/out/%s/%s" % (
            done["id"], out["filename"]), h.get("location")
        # and the object is in the bucket all the same; unsigned, the server refuses it
        key = "out/%s/%s" % (done["id"], out["filename"])
        st, raw = fetch(presign(key))
        assert st == 200 and hashlib.sha256(raw).hexdigest() == out["sha256"], (st, raw[:200])
        st, _ = fetch("http://127.0.0.1:%d/comfygate/%s" % (state["s3"].port, key))
        assert st == 403
    finally:
        g.stop()


def test_shared_store_instances_read_the_bucket():
    """SHARED_STORE with a data directory per instance: a worker runs the job and uploads its
    outputs; the API instance, which has no local copy and no backends of its own, answers a
    sync /prompt with the images read back from the bucket."""
    db = "sqlite:" + os.path.join(gw.tempfile.mkdtemp(prefix="cg-s3db-"), "comfygate.db")
    common = {"SHARED_STORE": "true", "SHARED_POLL_MS": "50", "DATABASE_URL": db,
              "S3_KEEP_LOCAL": "true"}
    env = s3_env(**common)
    del env["COMFYUI_URL"]
    api = gw.Proc([gw.GATEWAY], env=dict(env, PORT="0", THREADS="2",
                                         STORAGE_LOCAL_PATH=gw.tempfile.mkdtemp(prefix="cg-a-"),
                                         WORKFLOWS_DIR=os.path.abspath(gw.WORKFLOWS)), name="api")
    worker = gw.Proc([gw.GATEWAY, "worker"],
                     env=dict(s3_env(**common), PORT="0", THREADS="2",
                              STORAGE_LOCAL_PATH=gw.tempfile.mkdtemp(prefix="cg-w-"),
                              WORKFLOWS_DIR=os.path.abspath(gw.WORKFLOWS)), name="worker")
    try:
        gw.wait_backends(worker.port, 1)
        graph = {"1": {"class_type": "EmptyImage",
                       "inputs": {"width": 12, "height": 12, "batch_size": 2, "color": 0x445566}},
                 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                             "filename_prefix": "sh"}}}
        st, _, _, j = gw.request(api.port, "POST", "/prompt", {"prompt": graph}, timeout=60)
        assert st == 200, (st, j)
        st, _, _, job = gw.request(api.port, "GET", "/jobs/" + j["id"])
        assert job["instance"] != "" and len(job["outputs"]) == 2, job
        by_name = {o["filename"]: o for o in job["outputs"]}
        for name, img in zip(j["filenames"], j["images"]):
            assert hashlib.sha256(base64.b64decode(img)).hexdigest() == by_name[name]["sha256"]
            # the API instance had no copy: it fetched one into its own staging directory
            assert os.path.exists(os.path.join(api.env["STORAGE_LOCAL_PATH"], "outputs",
                                               j["id"], name))
            st, h, _, _ = gw.request(api.port, "GET", by_name[name]["url"])
            assert st == 302 and fetch(h["location"])[0] == 200
    finally:
        worker.kill()
        api.kill()


def test_wrong_secret_fails_the_job_with_storage_error():
    g = start(S3_SECRET_ACCESS_KEY="not-the-secret")
    try:
        done = submit_smoke(g.port, batch=1)
        assert done["status"] == "failed", done
        assert done["error"]["code"] == "STORAGE_ERROR", done["error"]
        assert "SignatureDoesNotMatch" in done["error"]["message"], done["error"]
        assert done["outputs"] == []
    finally:
        g.stop()


# temporary credentials, as tests/js/s3_server.js expects them for key STSKEY
STS_TOKEN = "IQoJb3JpZ2luX2VjE/+=" + "FwoGZXIvYXdzEJr//////////wEaDM+" * 30 + "=="


def test_session_token_of_temporary_credentials():
    """S3_SESSION_TOKEN (STS credentials): uploads, fetches back and presigned URLs carry the
    token, signed; the server refuses requests of that key without the right one."""
    g = start(S3_ACCESS_KEY_ID="STSKEY", S3_SECRET_ACCESS_KEY="STSSECRET",
              S3_SESSION_TOKEN=STS_TOKEN)
    try:
        done = submit_smoke(g.port, batch=1)
        assert done["status"] == "succeeded", done
        out = done["outputs"][0]
        st, h, _, _ = gw.request(g.port, "GET", out["url"])
        assert st == 302 and "X-Amz-Security-Token=" in h["location"], (st, h)
        st, raw = fetch(h["location"])
        assert st == 200 and hashlib.sha256(raw).hexdigest() == out["sha256"], st
        q = urllib.parse.urlencode({"X-Amz-Security-Token": "forged"})[len("X-Amz-Security-Token="):]
        forged = h["location"].replace(
            urllib.parse.quote(STS_TOKEN, safe="-_.~"), q)
        assert forged != h["location"]
        st, body = fetch(forged)
        assert st == 403 and b"InvalidToken" in body, (st, body[:200])
        st, _, _, b = gw.request(g.port, "GET", out["url"] + "?encoding=base64")
        assert st == 200 and hashlib.sha256(base64.b64decode(b["data"])).hexdigest() == \
            out["sha256"], st
    finally:
        g.stop()
    g = start(S3_ACCESS_KEY_ID="STSKEY", S3_SECRET_ACCESS_KEY="STSSECRET",
              S3_SESSION_TOKEN=STS_TOKEN[:-4] + "AAA=")
    try:
        done = submit_smoke(g.port, batch=1)
        assert done["status"] == "failed" and "InvalidToken" in done["error"]["message"], done
    finally:
        g.stop()


def test_uploads_are_retried_while_the_store_is_down():
    port = state["s3"].port
    g = start(S3_MAX_ATTEMPTS="8")
    try:
        state["s3"].stop()
        st, _, _, j = gw.request(g.port, "POST", "/jobs", {
            "workflowId": "smoke", "inputs": {"width": 8, "height": 8, "batch_size": 1}})
        assert st == 202, (st, j)
        time.sleep(1.0)  # a few refused attempts (100, 200, 400 ms apart)
        state["s3"] = restart_s3(port)
        done = gw.wait_job(g.port, j["jobId"], timeout=60)
        assert done["status"] == "succeeded", done
        out = done["outputs"][0]
        st, h, _, _ = gw.request(g.port, "GET", out["url"])
        st, raw = fetch(h["location"])
        assert st == 200 and hashlib.sha256(raw).hexdigest() == out["sha256"]
        st, _, _, logs = gw.request(g.port, "GET", "/jobs/%s/logs" % done["id"])
        assert st == 200
    finally:
        g.stop()


def test_kill9_while_uploading():
    """The store hangs (SIGSTOP) while an output is being uploaded and the gateway is killed
    with SIGKILL: after a restart the job is re-attached, its output uploaded, and it succeeds
    with every object in the bucket."""
    g = start()
    storage = g.storage
    s3pid = state["s3"].p.pid
    os.kill(s3pid, signal.SIGSTOP)
    try:
        st, _, _, j = gw.request(g.port, "POST", "/jobs", {
            "workflowId": "smoke", "inputs": {"width": 30, "height": 10, "batch_size": 2}})
        assert st == 202, (st, j)
        jdir = os.path.join(storage, "outputs", j["jobId"])
        end = time.time() + 20
        while time.time() < end and len([n for n in (os.listdir(jdir) if os.path.isdir(jdir)
                                                      else []) if n.endswith(".png")]) < 2:
            time.sleep(0.02)
        time.sleep(0.2)  # the PUTs are out, and hang
        st, _, _, mid = gw.request(g.port, "GET", "/jobs/" + j["jobId"])
        assert mid["status"] == "running" and mid["outputs"] == [], mid
        g.kill()
    finally:
        os.kill(s3pid, signal.SIGCONT)
    g2 = gw.gateway(s3_env(), storage=storage)
    try:
        gw.wait_backends(g2.port, 1)
        done = gw.wait_job(g2.port, j["jobId"], timeout=60)
        assert done["status"] == "succeeded" and len(done["outputs"]) == 2, done
        for out in done["outputs"]:
            st, h, _, _ = gw.request(g2.port, "GET", out["url"])
            st, raw = fetch(h["location"])
            assert st == 200 and hashlib.sha256(raw).hexdigest() == out["sha256"]
    finally:
        g2.stop()


def test_bad_settings_stop_the_gateway():
    cases = [({"S3_BUCKET": ""}, "S3_BUCKET"),
             ({"S3_ENDPOINT": "ftp://127.0.0.1:1"}, "S3_ENDPOINT"),
             ({"S3_URL_TTL_SECONDS": "0"}, "S3_URL_TTL_SECONDS"),
             ({"S3_FORCE_PATH_STYLE": "maybe"}, "S3_FORCE_PATH_STYLE"),
             ({"S3_BUCKET": "Bad_Bucket"}, "S3_BUCKET"),
             ({"S3_PREFIX": "a/../b/"}, "S3_PREFIX"),
             ({"S3_SESSION_TOKEN": "two words"}, "S3_SESSION_TOKEN"),
             ({"STORAGE_PROVIDER": "gcs"}, "STORAGE_PROVIDER")]
    for over, name in cases:
        env = dict(os.environ)
        env.update(s3_env(**over))
        env.update({"PORT": "0", "STORAGE_LOCAL_PATH": gw.tempfile.mkdtemp(prefix="cg-data-"),
                    "WORKFLOWS_DIR": os.path.abspath(gw.WORKFLOWS)})
        p = subprocess.run([gw.GATEWAY], env=env, capture_output=True, timeout=30)
        err = p.stderr.decode()
        assert p.returncode == 2, (over, p.returncode, err)
        assert name in err, (over, err)


if __name__ == "__main__":
    try:
        setup()
        for t in [test_outputs_land_in_the_bucket, test_base64_download_reads_the_object_back,
                  test_a_changed_object_is_not_served_as_the_output,
                  test_fetched_copies_are_removed_once_unused,
                  test_copies_left_by_a_killed_gateway_are_removed,
                  test_sync_prompt_answers_base64_from_the_bucket,
                  test_slow_sync_prompt_reader_outlives_the_copies,
                  test_webhook_inlines_images_read_back_from_the_bucket,
                  test_large_outputs_stream_both_ways,
                  test_keep_local_serves_the_staged_copy,
                  test_shared_store_instances_read_the_bucket,
                  test_wrong_secret_fails_the_job_with_storage_error,
                  test_session_token_of_temporary_credentials,
                  test_uploads_are_retried_while_the_store_is_down,
                  test_kill9_while_uploading,
                  test_bad_settings_stop_the_gateway]:
            S.run(t)
    finally:
        for k in ("gw", "s3", "sim"):
            if k in state:
                state[k].kill()
    S.done()
