"""Signed webhooks end to end (issue 6): the real gateway, comfysim, and a real receiver in
Node.js that verifies every delivery with the npm `standardwebhooks` library (and X-Signature
with node's crypto). Event filters, order, retries under one webhook-id, giving up, the raw
graphs' prompt.complete / prompt.failed, SSRF and configuration refusals, and kill -9 while a
delivery is under way: the event still arrives, once."""
import base64
import hashlib
import json
import os
import shutil
import signal
import sys
import time

import gw

S = gw.Suite()
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
HERE = os.path.dirname(os.path.abspath(__file__))
JS = os.path.join(HERE, "..", "js")
state = {}


class Receiver(gw.Proc):
    def __init__(self):
        self.logfile = os.path.join(gw.tempfile.mkdtemp(prefix="cg-rx-"), "rx.jsonl")
        open(self.logfile, "w").close()
        pf = self.logfile + ".port"
        self.dir = os.path.dirname(self.logfile)
        self.port_file = pf
        self.log_path = os.path.join(self.dir, "node.log")
        self.log = open(self.log_path, "wb")
        self.name = "receiver"
        self.p = gw.subprocess.Popen(["node", os.path.join(JS, "webhook_receiver.js"), SECRET, pf,
                                      self.logfile], stdout=self.log, stderr=gw.subprocess.STDOUT,
                                      preexec_fn=gw.die_with_parent)
        self.port = self._wait_port()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def records(self):
        # The receiver appends one line per delivery while we read: a line
        # without its newline is still being written and is left for later.
        with open(self.logfile) as f:
            return [json.loads(l) for l in f if l.endswith("\n") and l.strip()]


def start_gateway(storage=None, **env):
    e = {"COMFYUI_URL": "http://127.0.0.1:%d" % state["sim"].port,
         "COMFYUI_PROBE_INTERVAL_MS": "200", "CACHE_ENABLED": "false",
         "WEBHOOK_SECRET": SECRET, "WEBHOOK_ALLOWED_DOMAINS": "127.0.0.1",
         "WEBHOOK_RETRY_BASE_MS": "50", "WEBHOOK_RETRY_MAX_MS": "400",
         "WEBHOOK_TIMEOUT_MS": "10000"}
    e.update({k: str(v) for k, v in env.items()})
    g = gw.gateway(e, storage=storage)
    gw.wait_backends(g.port, 1)
    return g


def setup():
    if not shutil.which("node") or not os.path.isdir(os.path.join(JS, "node_modules",
                                                                  "standardwebhooks")):
        print("node or tests/js/node_modules missing: run scripts/deps.sh test")
        sys.exit(1)
    state["sim"] = gw.sim("--exec-ms", "5", "--step-ms", "5",
                          "--models", "checkpoints=sd_xl_base_1.0.safetensors")
    state["rx"] = Receiver()
    state["gw"] = start_gateway()


def for_job(jid, want, timeout=30):
    """Records whose body is about job jid, once `want` of them have come."""
    end = time.time() + timeout
    while time.time() < end:
        recs = [r for r in state["rx"].records()
                if json.loads(r["body"])["data"].get("id") == jid]
        if len(recs) >= want:
            return recs
        time.sleep(0.02)
    raise AssertionError("only %d webhook(s) for %s" % (len(recs), jid))


def check_signed(r):
    assert r["verified"], r["verifyError"]
    assert r["xsigOk"] and r["contentType"] == "application/json", r
    assert r["id"].startswith("msg_") and r["userAgent"].startswith("comfygate/"), r
    assert r["expect"] is None


def post_job(body):
    st, _, _, j = gw.request(state["gw"].port, "POST", "/jobs", body)
    assert st == 202, (st, j)
    return j["jobId"]


def test_events_in_order_verified():
    jid = post_job({"workflowId": "smoke", "inputs": {"batch_size": 2},
                    "callbackUrl": state["rx"].url("/all"),
                    "webhookEvents": ["queued", "running", "output", "completed"]})
    recs = for_job(jid, 5)
    for r in recs:
        check_signed(r)
    types = [json.loads(r["body"])["type"] for r in recs]
    assert types == ["job.queued", "job.running", "job.output", "job.output", "job.succeeded"], types
    final = json.loads(recs[-1]["body"])
    assert final["data"]["status"] == "succeeded" and len(final["data"]["outputs"]) == 2
    assert final["timestamp"].endswith("Z")
    job = gw.wait_job(state["gw"].port, jid)
    assert job["callbackUrl"] == state["rx"].url("/all")
    assert job["webhookEvents"] == ["queued", "running", "output", "completed"]
    end = time.time() + 10
    while sum(1 for d in job["webhooks"] if d["status"] == "delivered") < 5 and time.time() < end:
        time.sleep(0.02)
        job = gw.request(state["gw"].port, "GET", "/jobs/" + jid)[3]
    assert [d["event"] for d in job["webhooks"]] == types, job["webhooks"]
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in job["webhooks"])


def test_default_is_completed_only_and_cancel():
    jid = post_job({"workflowId": "smoke", "callbackUrl": state["rx"].url("/default")})
    recs = for_job(jid, 1)
    time.sleep(0.3)  # nothing else may follow: give a stray event a chance to show
    recs = for_job(jid, 1)
    assert [json.loads(r["body"])["type"] for r in recs] == ["job.succeeded"], recs
    # a job canceled while queued: job.canceled
    st, _, _, j = gw.request(state["gw"].port, "POST", "/jobs",
                             {"workflowId": "sdxl_realism_v1", "priority": -5,
                              "inputs": {"prompt": "x", "steps": 150, "width": 256, "height": 256},
                              "callbackUrl": state["rx"].url("/c")})
    jids = [post_job({"workflowId": "smoke", "priority": 9}) for _ in range(3)]
    gw.request(state["gw"].port, "POST", "/jobs/%s/cancel" % j["jobId"])
    r = for_job(j["jobId"], 1)[0]
    check_signed(r)
    assert json.loads(r["body"])["type"] == "job.canceled", r["body"]
    for x in jids:
        gw.wait_job(state["gw"].port, x)


def test_retries_keep_one_id_then_give_up():
    jid = post_job({"workflowId": "smoke",
                    "callbackUrl": state["rx"].url("/r?fail=500&times=2")})
    recs = for_job(jid, 3)
    assert [r["answer"] for r in recs] == ["500", "500", "204"], recs
    assert len({r["id"] for r in recs}) == 1 and all(r["verified"] for r in recs)
    assert len({r["body"] for r in recs}) == 1  # the same bytes every time
    # 429 with Retry-After, then delivered
    jid = post_job({"workflowId": "smoke",
                    "callbackUrl": state["rx"].url("/ra?fail=429&times=1&ra=1")})
    recs = for_job(jid, 2)
    assert [r["answer"] for r in recs] == ["429", "204"]
    # 410: refused by the receiver, not retried; the job itself is unaffected
    jid = post_job({"workflowId": "smoke", "callbackUrl": state["rx"].url("/gone?fail=410&times=9")})
    for_job(jid, 1)
    end = time.time() + 10
    while True:
        job = gw.request(state["gw"].port, "GET", "/jobs/" + jid)[3]
        d = job.get("webhooks", [{}])[-1]
        if d.get("status") == "failed" or time.time() > end:
            break
        time.sleep(0.02)
    assert job["status"] == "succeeded" and d["status"] == "failed" and d["attempts"] == 1, job
    assert d["last_status"] == 410


def test_prompt_complete_and_failed():
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 8,
                                                          "batch_size": 1, "color": 7}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    st, _, _, j = gw.request(state["gw"].port, "POST", "/prompt",
                             {"prompt": graph, "webhook_v2": state["rx"].url("/p")})
    assert st == 202, (st, j)
    r = for_job(j["id"], 1)[0]
    check_signed(r)
    body = json.loads(r["body"])
    assert body["type"] == "prompt.complete", body["type"]
    data = body["data"]
    png = base64.b64decode(data["images"][0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and data["filenames"][0].endswith(".png")
    assert hashlib.sha256(png).hexdigest() == data["outputs"][0]["sha256"]
    assert data["stats"]["attempts"] == 1
    del graph["1"]["inputs"]["width"]  # ComfyUI refuses it: prompt.failed with node_errors
    st, _, _, j = gw.request(state["gw"].port, "POST", "/prompt",
                             {"prompt": graph, "webhook_v2": state["rx"].url("/p")})
    r = for_job(j["id"], 1)[0]
    body = json.loads(r["body"])
    assert body["type"] == "prompt.failed" and body["data"]["error"]["code"] == "COMFYUI_VALIDATION"
    assert "1" in body["data"]["error"]["node_errors"]


def test_refusals():
    port = state["gw"].port
    for url, code in (("http://10.0.0.1/h", "SSRF_BLOCKED"), ("http://169.254.169.254/x", "SSRF_BLOCKED"),
                      ("ftp://x.example.com/", "VALIDATION_ERROR"),
                      ("http://u:p@h.example.com/", "VALIDATION_ERROR")):
        st, _, _, j = gw.request(port, "POST", "/jobs", {"workflowId": "smoke", "callbackUrl": url})
        assert st == 400 and j["error"]["code"] == code, (url, st, j)
    st, _, _, j = gw.request(port, "POST", "/jobs", {"workflowId": "smoke", "callbackUrl":
                                                     state["rx"].url(), "webhookEvents": ["start"]})
    assert st == 400 and "webhookEvents" in j["error"]["message"], j
    g = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % state["sim"].port})
    try:
        st, _, _, j = gw.request(g.port, "POST", "/jobs", {"workflowId": "smoke",
                                                           "callbackUrl": state["rx"].url()})
        assert st == 400 and "WEBHOOK_SECRET" in j["error"]["message"], j
    finally:
        g.stop()
    env = dict(os.environ, PORT="0", WEBHOOK_SECRET="whsec_short",
               STORAGE_LOCAL_PATH=gw.tempfile.mkdtemp())
    p = gw.subprocess.run([gw.GATEWAY], env=env, capture_output=True, timeout=30)
    assert p.returncode == 2 and b"WEBHOOK_SECRET" in p.stderr, p.stderr


def test_hung_receivers_never_hold_every_slot():
    """Two receivers that never answer, each up to its own cap (4 here), would hold every
    one of the 8 slots: a quarter stays for receivers with nothing under way, so a healthy
    receiver's event still goes out at once, not after the 60 s timeout."""
    hung = [Receiver(), Receiver()]
    g = start_gateway(WEBHOOK_MAX_INFLIGHT="8", WEBHOOK_MAX_INFLIGHT_PER_HOST="4",
                      WEBHOOK_TIMEOUT_MS="60000")
    try:
        for rx in hung:
            for _ in range(6):
                st, _, _, j = gw.request(g.port, "POST", "/jobs", {
                    "workflowId": "smoke", "callbackUrl": rx.url("/h?fail=hang&times=1000")})
                assert st == 202, (st, j)
        end = time.time() + 30  # both hung receivers hold all the slots they may
        while sum(len(rx.records()) for rx in hung) < 6 and time.time() < end:
            time.sleep(0.05)
        time.sleep(1)  # and any more they could take
        assert sum(len(rx.records()) for rx in hung) == 6, [len(rx.records()) for rx in hung]
        st, _, _, j = gw.request(g.port, "POST", "/jobs", {"workflowId": "smoke",
                                                           "callbackUrl": state["rx"].url("/ok")})
        jid = j["jobId"]
        recs = for_job(jid, 1, timeout=30)  # 60 s if it had to wait for a hung one
        assert recs[0]["answer"] == "204", recs
    finally:
        g.kill(signal.SIGKILL)  # a stop would wait for the hung attempts
        for rx in hung:
            rx.stop()


def test_kill9_while_delivering():
    """The first attempt hangs at the receiver; the gateway is killed meanwhile. After the
    restart the same event (same webhook-id) is delivered, and only once."""
    g = state["gw"]
    jid = post_job({"workflowId": "smoke", "callbackUrl": state["rx"].url("/k?fail=hang&times=1")})
    first = for_job(jid, 1)[0]
    assert first["answer"] == "hang"
    g.kill(signal.SIGKILL)
    state["gw"] = start_gateway(storage=g.storage)
    recs = for_job(jid, 2)
    assert recs[1]["answer"] == "204" and recs[1]["id"] == first["id"], recs
    time.sleep(0.5)  # a second copy, if any, would come now
    assert len(for_job(jid, 2)) == 2


def test_kill9_before_the_end_event_is_stored():
    """Killed right after the job finished: the end event is enqueued again at start-up under
    the job's own webhook-id, so it arrives whether or not it was stored — as one event: if
    the kill fell between the receiver's answer and the gateway noting it, the receiver gets
    it again with the same webhook-id (at-least-once; receivers dedupe on it)."""
    g = state["gw"]
    jid = post_job({"workflowId": "smoke", "callbackUrl": state["rx"].url("/e")})
    gw.wait_job(g.port, jid)
    g.kill(signal.SIGKILL)
    state["gw"] = start_gateway(storage=g.storage)
    time.sleep(0.5)
    recs = for_job(jid, 1)
    assert len({r["id"] for r in recs}) == 1, recs
    assert all(json.loads(r["body"])["type"] == "job.succeeded" for r in recs), recs
    deliveries = gw.request(state["gw"].port, "GET", "/jobs/" + jid)[3]["webhooks"]
    assert [d["event"] for d in deliveries] == ["job.succeeded"], deliveries


def teardown():
    st = state["gw"].stop()
    state["sim"].kill()
    state["rx"].stop()
    assert st == 0, state["gw"].tail()


if __name__ == "__main__":
    setup()
    try:
        for t in (test_events_in_order_verified, test_default_is_completed_only_and_cancel,
                  test_retries_keep_one_id_then_give_up, test_prompt_complete_and_failed,
                  test_refusals, test_hung_receivers_never_hold_every_slot,
                  test_kill9_while_delivering,
                  test_kill9_before_the_end_event_is_stored):
            S.run(t)
    finally:
        S.run(teardown)
    S.done()
