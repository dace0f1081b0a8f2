"""Several gateways on one store (SHARED_STORE, issue 5's `comfygate worker`): `serve`
instances take jobs and answer every read; `worker` processes claim queued jobs from the store,
best priority first, run them on their backends and hold them with a lease. Checked for real:
jobs submitted to one instance run on the workers and read back everywhere (status, outputs,
logs, the list, Server-Sent Events, a synchronous /prompt), cancels reach the worker that runs
the job, a worker killed with SIGKILL mid-job has its job taken over and re-attached by the
other, and idempotency keys and the result cache hold across instances."""
import base64
import hashlib
import http.client
import http.server
import json
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

import gw

S = gw.Suite()
state = {}
LEASE = "1500"


def instance(role, storage, sims=(), **env):
    e = {"SHARED_STORE": "true", "JOB_LEASE_MS": LEASE, "SHARED_POLL_MS": "50",
         "COMFYUI_PROBE_INTERVAL_MS": "200", "COMFYUI_POLL_MS": "50", "CACHE_ENABLED": "false"}
    if sims:
        e["COMFYUI_URLS"] = ",".join("http://127.0.0.1:%d" % s.port for s in sims)
    e.update({k: str(v) for k, v in env.items()})
    argv = [gw.GATEWAY] + ([role] if role == "worker" else [])
    full = {"PORT": "0", "THREADS": "2", "WORKFLOWS_DIR": os.path.abspath(gw.WORKFLOWS),
            "LOG_LEVEL": "info", "ACCESS_LOG": "false", "STORAGE_LOCAL_PATH": storage}
    full.update(e)
    p = gw.Proc(argv, env=full, name=role)
    p.storage = storage
    if sims:
        gw.wait_backends(p.port, len(sims))
    return p


def setup():
    state["data"] = tempfile.mkdtemp(prefix="cg-shared-")
    args = ("--exec-ms", "150", "--step-ms", "20", "--models",
            "checkpoints=sd_xl_base_1.0.safetensors")
    state["sims"] = [gw.sim(*args), gw.sim(*args)]
    state["api"] = instance("serve", state["data"])
    state["w1"] = instance("worker", state["data"], [state["sims"][0]])
    state["w2"] = instance("worker", state["data"], [state["sims"][1]])


def api():
    return state["api"].port


def submit(body, port=None, headers=None):
    st, h, _, j = gw.request(port or api(), "POST", "/jobs", body, headers)
    return st, h, j


def test_jobs_run_on_workers_and_read_back():
    ids = []
    for i in range(6):
        st, _, j = submit({"workflowId": "smoke", "inputs": {"width": 20 + i}})
        assert st == 202, (st, j)
        ids.append(j["jobId"])
    ran_on = set()
    for jid in ids:
        done = gw.wait_job(api(), jid, timeout=60)
        assert done["status"] == "succeeded", done
        ran_on.add(done["instance"])
        for o in done["outputs"]:  # served by the API instance from the shared directory
            st, _, raw, _ = gw.request(api(), "GET", o["url"])
            assert st == 200 and hashlib.sha256(raw).hexdigest() == o["sha256"]
        st, _, _, logs = gw.request(api(), "GET", "/jobs/%s/logs" % jid)
        assert st == 200 and any("dispatched" in l["message"] for l in logs["logs"]), logs
    assert len(ran_on) == 2, ran_on  # both workers took some
    # the workers answer operations only
    st, _, _, _ = gw.request(state["w1"].port, "GET", "/jobs/" + ids[0])
    assert st == 404
    assert gw.request(state["w1"].port, "GET", "/health")[0] == 200
    # the list comes from the store, newest first, with a working cursor
    st, _, _, page = gw.request(api(), "GET", "/jobs?limit=4")
    assert st == 200 and [j["id"] for j in page["jobs"]] == ids[::-1][:4], page
    st, _, _, page2 = gw.request(api(), "GET", "/jobs?limit=4&cursor=" + page["next_cursor"])
    assert [j["id"] for j in page2["jobs"]][:2] == ids[::-1][4:6], page2


def test_events_and_sync_prompt_through_the_store():
    st, _, j = submit({"workflowId": "sdxl_realism_v1",
                       "inputs": {"prompt": "p", "steps": 6, "width": 256, "height": 256}})
    assert st == 202, j
    c = http.client.HTTPConnection("127.0.0.1", api(), timeout=60)
    c.request("GET", "/jobs/%s/events" % j["jobId"])
    r = c.getresponse()
    assert r.status == 200
    events = []
    buf = b""
    while True:
        line = r.readline()
        if not line:
            break
        if line.startswith(b"event: "):
            ev = line[7:].strip().decode()
        elif line.startswith(b"data: "):
            events.append((ev, json.loads(line[6:])))
            if ev == "status" and events[-1][1]["status"] in ("succeeded", "failed", "canceled"):
                break
    c.close()
    kinds = [e[0] for e in events]
    assert kinds[0] == "status" and "progress" in kinds and "output" in kinds, kinds
    assert events[-1][1]["status"] == "succeeded", events[-1]
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8,
                                                          "batch_size": 1, "color": 1}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    st, _, _, ans = gw.request(api(), "POST", "/prompt", {"prompt": graph}, timeout=60)
    assert st == 200 and base64.b64decode(ans["images"][0])[:4] == b"\x89PNG", (st, ans)


def test_cancel_reaches_the_worker():
    # a long job on each worker, then one waiting in the store
    long = {"workflowId": "sdxl_realism_v1",
            "inputs": {"prompt": "p", "steps": 100, "width": 256, "height": 256}}
    subs = [submit(long) for _ in range(2)] + [submit(dict(long, priority=-1))]
    assert all(x[0] == 202 for x in subs), subs
    running = [x[2]["jobId"] for x in subs[:2]]
    waiting = subs[2][2]["jobId"]
    end = time.time() + 30
    while time.time() < end:
        sts = [gw.request(api(), "GET", "/jobs/" + x)[3]["status"] for x in running]
        if sts == ["running", "running"]:
            break
        time.sleep(0.05)
    st, _, _, j = gw.request(api(), "POST", "/jobs/%s/cancel" % waiting)
    assert st == 200 and j["status"] == "canceled", j  # nobody held it: at once
    for x in running:
        st, _, _, j = gw.request(api(), "POST", "/jobs/%s/cancel" % x)
        assert st == 200, (st, j)
    for x in running:
        done = gw.wait_job(api(), x, timeout=30)
        assert done["status"] == "canceled", done
    st, _, _, j = gw.request(api(), "POST", "/jobs/%s/cancel" % waiting)
    assert st == 409


def test_worker_killed_mid_job_is_taken_over():
    """A worker dies with SIGKILL while its job runs: once its lease lapses, another worker
    (one with the same backend) takes the job over and re-attaches to the prompt, which ran once."""
    w3 = instance("worker", state["data"], state["sims"])  # has both backends
    try:
        st, _, j = submit({"workflowId": "sdxl_realism_v1",
                           "inputs": {"prompt": "p", "steps": 40, "width": 256, "height": 256}})
        jid = j["jobId"]
        end = time.time() + 30
        job = None
        while time.time() < end:
            job = gw.request(api(), "GET", "/jobs/" + jid)[3]
            if job["status"] == "running" and job.get("promptId") and job.get("instance"):
                break
            time.sleep(0.02)
        victim = [n for n in ("w1", "w2") if
                  sum(b["in_flight"] for b in
                      gw.request(state[n].port, "GET", "/backends")[3]["backends"])]
        if not victim:  # w3 took it: kill w3 and let w1/w2 (each with that backend) take over
            victim_proc = w3
        else:
            victim_proc = state[victim[0]]
        first_instance, pid = job["instance"], job["promptId"]
        victim_proc.kill(signal.SIGKILL)
        done = gw.wait_job(api(), jid, timeout=60)
        assert done["status"] == "succeeded", done
        assert done["instance"] != first_instance, done  # another instance finished it
        assert done["promptId"] == pid and done["attempts"] == 1, done  # re-attached, not re-run
        st, _, _, logs = gw.request(api(), "GET", "/jobs/%s/logs" % jid)
        assert any("re-attached" in l["message"] for l in logs["logs"]), logs
        runs = sum(1 for s_ in state["sims"]
                   if pid in gw.request(s_.port, "GET", "/history")[3])
        assert runs == 1
        if victim_proc is not w3:  # give the dead one's place back for the next tests
            name = victim[0]
            state[name] = instance("worker", state["data"],
                                   [state["sims"][0 if name == "w1" else 1]])
    finally:
        if w3.p.poll() is None:
            w3.stop()


def test_idempotency_and_cache_across_instances():
    api2 = instance("serve", state["data"], CACHE_ENABLED="true")
    try:
        body = {"workflowId": "smoke", "inputs": {"width": 77, "color": 3}}
        st, _, a = submit(body, headers={"Idempotency-Key": "k-shared"})
        st2, h, b = submit(body, port=api2.port, headers={"Idempotency-Key": "k-shared"})
        assert st == 202 and st2 == 202 and a["jobId"] == b["jobId"], (a, b)
        assert h.get("idempotency-replayed") == "true"
        st, _, c = submit(dict(body, inputs={"width": 78}), port=api2.port,
                          headers={"Idempotency-Key": "k-shared"})
        assert st == 422, c
        done = gw.wait_job(api2.port, a["jobId"], timeout=60)
        assert done["status"] == "succeeded"
        # the same request at the other instance with the cache on: a hit on the worker's output
        st, _, hit = submit(body, port=api2.port)
        assert st == 202 or st == 200, hit
    finally:
        api2.stop()


def teardown():
    try:
        for name in ("api", "w1", "w2"):
            st = state[name].stop()
            assert st == 0, state[name].tail()
    finally:
        for s in state["sims"]:
            s.kill()


def wait_status(port, path, want, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        st, _, _, j = gw.request(port, "GET", path)
        if st == want:
            return j
        time.sleep(0.05)
    raise AssertionError("%s did not answer %d at port %d" % (path, want, port))


def test_workflow_changes_reach_every_serve_instance():
    """A workflow created, updated and deleted at one serve instance is served by another
    within a moment (the store is re-read when it changed), not only after its restart; a job
    submitted at the second instance pins the version it sees."""
    other = instance("serve", state["data"])
    try:
        body = {"id": "shared_wf", "schema": {"type": "object", "properties": {
                    "w": {"type": "integer", "minimum": 8, "maximum": 64, "default": 8}}},
                "template": {"1": {"class_type": "EmptyImage",
                                   "inputs": {"width": "{{w}}", "height": 8, "batch_size": 1,
                                              "color": 0}},
                             "2": {"class_type": "SaveImage",
                                   "inputs": {"images": ["1", 0], "filename_prefix": "s"}}}}
        st, _, _, j = gw.request(api(), "POST", "/workflows", body)
        assert st == 201, (st, j)
        got = wait_status(other.port, "/workflows/shared_wf", 200)
        assert got["version"] == 1 and got["hash"] == j["hash"], got
        st, _, j2 = submit({"workflowId": "shared_wf", "inputs": {"w": 12}}, port=other.port)
        assert st == 202, (st, j2)
        done = gw.wait_job(other.port, j2["jobId"], timeout=60)
        assert done["status"] == "succeeded" and done["workflowVersion"] == 1, done
        # a new version made at the other instance is the latest here too
        body["template"]["1"]["inputs"]["height"] = 16
        st, _, _, v2 = gw.request(other.port, "PUT", "/workflows/shared_wf", body)
        assert st == 201 and v2["version"] == 2, (st, v2)
        end = time.time() + 20
        while gw.request(api(), "GET", "/workflows/shared_wf")[3]["version"] != 2:
            assert time.time() < end, "version 2 never reached the first instance"
            time.sleep(0.05)
        # and a deletion is seen everywhere
        st, _, _, _ = gw.request(api(), "DELETE", "/workflows/shared_wf")
        assert st == 204
        wait_status(other.port, "/workflows/shared_wf", 404)
        st, _, j3 = submit({"workflowId": "shared_wf", "inputs": {}}, port=other.port)
        assert st == 404, (st, j3)
    finally:
        other.kill()


class Hooks(http.server.BaseHTTPRequestHandler):
    got = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hooks.got.append((self.headers["webhook-id"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_dead_instance_webhooks_are_taken_over():
    """A worker dies for good (SIGKILL, never started again) while the end webhook of a job it
    ran keeps failing (the receiver is down). Once it has not been seen alive for three leases,
    another instance takes the pending delivery over and sends it, under the same webhook-id."""
    data = tempfile.mkdtemp(prefix="cg-shared-wh-")
    wh = {"WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"h" * 32).decode(),
          "WEBHOOK_ALLOWED_DOMAINS": "127.0.0.1", "WEBHOOK_RETRY_BASE_MS": "100",
          "WEBHOOK_RETRY_MAX_MS": "300", "WEBHOOK_MAX_ATTEMPTS": "100"}
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there until the receiver starts below
    serve = instance("serve", data, **wh)
    w1 = instance("worker", data, [state["sims"][0]], **wh)
    srv = None
    try:
        st, _, j = submit({"workflowId": "smoke",
                           "callbackUrl": "http://127.0.0.1:%d/hook" % port}, port=serve.port)
        assert st == 202, (st, j)
        done = gw.wait_job(serve.port, j["jobId"], timeout=60)
        assert done["status"] == "succeeded", done
        db = sqlite3.connect(os.path.join(data, "comfygate.db"))

        def delivery():
            return db.execute("SELECT msg_id, status, attempts, instance FROM webhook_deliveries"
                              " WHERE job_id = ?", (j["jobId"],)).fetchone()
        end = time.time() + 20
        while not (delivery() and delivery()[2] >= 1):  # it has failed at least once
            assert time.time() < end, delivery()
            time.sleep(0.05)
        msg_id, status, _, owner = delivery()
        assert status == "pending" and owner == done["instance"], delivery()
        w1.kill(signal.SIGKILL)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Hooks)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        end = time.time() + 30
        while not any(h[0] == msg_id for h in Hooks.got):
            assert time.time() < end, ("never delivered", delivery())
            time.sleep(0.05)
        hook = [h for h in Hooks.got if h[0] == msg_id][0][1]
        assert hook["type"] == "job.succeeded" and hook["data"]["id"] == j["jobId"], hook
        end = time.time() + 10
        while delivery()[1] != "delivered":
            assert time.time() < end, delivery()
            time.sleep(0.05)
        assert delivery()[3] != owner  # another instance's now
        db.close()
    finally:
        if srv:
            srv.shutdown()
        w1.kill()
        serve.kill()


if __name__ == "__main__":
    setup()
    try:
        for t in (test_jobs_run_on_workers_and_read_back, test_events_and_sync_prompt_through_the_store,
                  test_cancel_reaches_the_worker, test_worker_killed_mid_job_is_taken_over,
                  test_idempotency_and_cache_across_instances,
                  test_workflow_changes_reach_every_serve_instance,
                  test_dead_instance_webhooks_are_taken_over):
            S.run(t)
    finally:
        S.run(teardown)
    S.done()
