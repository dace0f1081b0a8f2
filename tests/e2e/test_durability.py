"""Nothing accepted is ever lost (issue 5): a child gateway is killed with SIGKILL at chosen
points — jobs queued, running, downloading outputs, the backend restarted meanwhile — then
started again on the same data directory, and every job is checked one by one: it is there,
it finishes exactly once, its outputs are whole, and the backend ran each prompt only once."""
import base64
import glob
import hashlib
import http.client
import os
import shutil
import signal
import subprocess
import threading
import time

import gw
import pngmini

S = gw.Suite()


def start(sim, storage=None, **env):
    e = {"COMFYUI_URL": "http://127.0.0.1:%d" % sim.port, "COMFYUI_PROBE_INTERVAL_MS": "200",
         "COMFYUI_POLL_MS": "50", "CACHE_ENABLED": "false"}
    e.update({k: str(v) for k, v in env.items()})
    g = gw.gateway(e, storage=storage)
    gw.wait_backends(g.port, 1)
    return g


def job(g, jid):
    st, _, _, j = gw.request(g.port, "GET", "/jobs/" + jid)
    assert st == 200, (st, j)
    return j


def wait_for(pred, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    raise AssertionError("timed out waiting for " + what)


def sim_history(sim):
    st, _, _, h = gw.request(sim.port, "GET", "/history")
    assert st == 200
    return h


def outputs_whole(g, j):
    """Every listed output downloads, with the size and SHA-256 the job lists; no temporary
    file is left in the job's directory."""
    assert j["outputs"], j
    for o in j["outputs"]:
        st, _, raw, _ = gw.request(g.port, "GET", o["url"])
        assert st == 200 and len(raw) == o["size"], (st, o)
        assert hashlib.sha256(raw).hexdigest() == o["sha256"], o
    d = os.path.join(g.storage, "outputs", j["id"])
    leftovers = [n for n in os.listdir(d) if ".part-" in n]
    assert not leftovers, leftovers


def test_accepted_burst_survives_kill_while_queued():
    """Every job that got a 202 exists after a kill -9, queued ones run, each runs once."""
    sim = gw.sim("--exec-ms", "40")
    g = start(sim)
    accepted, lock = [], threading.Lock()

    def client(n):
        for i in range(n):
            st, _, _, j = gw.request(g.port, "POST", "/jobs",
                                     {"workflowId": "smoke", "inputs": {"width": 16 + i}})
            if st == 202:
                with lock:
                    accepted.append(j["jobId"])

    threads = [threading.Thread(target=client, args=(6,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 24, accepted
    g.kill(signal.SIGKILL)  # most are still queued, one is running
    g2 = start(sim, storage=g.storage)
    try:
        for jid in accepted:
            j = gw.wait_job(g2.port, jid, timeout=60)
            assert j["status"] == "succeeded", j
            outputs_whole(g2, j)
        # the simulator ran each accepted job's prompt exactly once
        prompts = [h for h in sim_history(sim).values()]
        per_job = {}
        for h in prompts:
            prefix = h["prompt"][2]["2"]["inputs"]["filename_prefix"]
            per_job[prefix.split("/")[1]] = per_job.get(prefix.split("/")[1], 0) + 1
        assert sorted(per_job) == sorted(accepted), (len(per_job), len(accepted))
        assert set(per_job.values()) == {1}, per_job
    finally:
        g2.stop()
        sim.kill()


def test_running_job_is_reattached():
    """Killed while the backend runs the job: after the restart the same prompt is followed to
    its end on the same backend — not submitted again, the attempt not counted twice."""
    sim = gw.sim("--exec-ms", "700")
    g = start(sim)
    try:
        _, _, _, r = gw.request(g.port, "POST", "/jobs", {"workflowId": "smoke"})
        jid = r["jobId"]
        j = wait_for(lambda: (lambda x: x if x["status"] == "running" and x.get("promptId")
                              else None)(job(g, jid)), "running")
        pid = j["promptId"]
        # it really is on the backend
        wait_for(lambda: gw.request(sim.port, "GET", "/queue")[3]["queue_running"], "sim running")
        g.kill(signal.SIGKILL)
        g = start(sim, storage=g.storage)
        done = gw.wait_job(g.port, jid, timeout=60)
        assert done["status"] == "succeeded", done
        assert done["promptId"] == pid and done["attempts"] == 1, done
        outputs_whole(g, done)
        h = sim_history(sim)
        assert list(h) == [pid], list(h)  # ran once, the prompt we had
        st, _, _, logs = gw.request(g.port, "GET", "/jobs/%s/logs" % jid)
        assert any("re-attached" in l["message"] for l in logs["logs"]), logs
    finally:
        g.stop()
        sim.kill()


def test_kill_while_downloading_outputs():
    """Killed while an output is being fetched: no half-written file ever appears under its
    name; after the restart the job finishes with whole outputs and no temporary files."""
    sim = gw.sim("--view-delay-ms", "1500")
    g = start(sim)
    try:
        _, _, _, r = gw.request(g.port, "POST", "/jobs", {"workflowId": "smoke",
                                                          "inputs": {"batch_size": 2}})
        jid = r["jobId"]
        j = wait_for(lambda: (lambda x: x if x.get("promptId") else None)(job(g, jid)), "prompt")
        # the backend finished it; the gateway is now waiting on the slow /view
        wait_for(lambda: sim_history(sim).get(j["promptId"]), "sim history")
        d = os.path.join(g.storage, "outputs", jid)
        wait_for(lambda: os.path.isdir(d) and any(".part-" in n for n in os.listdir(d)),
                 "a download in progress")
        g.kill(signal.SIGKILL)
        finals = [n for n in os.listdir(d) if ".part-" not in n]
        assert finals == [], finals  # nothing under a final name before its rename
        g = start(sim, storage=g.storage)
        done = gw.wait_job(g.port, jid, timeout=60)
        assert done["status"] == "succeeded" and len(done["outputs"]) == 2, done
        outputs_whole(g, done)
        assert len(sim_history(sim)) == 1
    finally:
        g.stop()
        sim.kill()


def test_backend_lost_the_prompt_meanwhile():
    """Gateway killed mid-run, and the backend restarts empty before the gateway is back: the
    lost prompt is detected and the job runs again elsewhere, the lost attempt counted."""
    sim = gw.sim("--exec-ms", "1500")
    port = sim.port
    g = start(sim)
    try:
        _, _, _, r = gw.request(g.port, "POST", "/jobs", {"workflowId": "smoke"})
        jid = r["jobId"]
        wait_for(lambda: gw.request(sim.port, "GET", "/queue")[3]["queue_running"], "sim running")
        first_pid = job(g, jid)["promptId"]
        g.kill(signal.SIGKILL)
        sim.kill()
        sim = gw.sim_on(port, "--exec-ms", "20")
        g = start(sim, storage=g.storage)
        done = gw.wait_job(g.port, jid, timeout=60)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2 and done["promptId"] != first_pid, done
        outputs_whole(g, done)
        assert list(sim_history(sim)) == [done["promptId"]]
    finally:
        g.stop()
        sim.kill()


def pix(x, y):
    return (x * 40 % 256, y * 50 % 256, 99)


def image_job_restarted(image, after_kill=None, exec_ms=1500):
    """A raw graph whose LoadImage takes `image` (base64, or a URL), killed with SIGKILL while
    the backend runs it; after_kill(sim) may change things (and return a new simulator) before
    the gateway starts again. (gateway, simulator, job id, prompt id before the kill)."""
    sim = gw.sim("--exec-ms", str(exec_ms))
    env = {"INPUT_URL_ALLOWED_DOMAINS": "127.0.0.1"}
    g = start(sim, **env)
    try:
        graph = {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
                 "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
                 "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0],
                                                             "filename_prefix": "inv"}}}

        def sync_prompt():  # its answer is cut short by the kill
            try:
                gw.request(g.port, "POST", "/prompt", {"prompt": graph}, timeout=60)
            except (OSError, http.client.HTTPException):
                pass
        threading.Thread(target=sync_prompt, daemon=True).start()
        wait_for(lambda: gw.request(sim.port, "GET", "/queue")[3]["queue_running"], "sim running")
        jid = gw.request(g.port, "GET", "/jobs")[3]["jobs"][0]["id"]
        first_pid = job(g, jid)["promptId"]
        g.kill(signal.SIGKILL)
        sim = (after_kill and after_kill(sim)) or sim
        g = start(sim, storage=g.storage, **env)
        return g, sim, jid, first_pid
    except BaseException:
        g.stop()
        sim.kill()
        raise


def lose_prompt(sim):
    """The backend restarts empty: the prompt is lost."""
    port = sim.port
    sim.kill()
    return gw.sim_on(port, "--exec-ms", "20")


def move_backend(sim):
    """The backend is gone: another one, at another address, takes its place."""
    sim.kill()
    return gw.sim("--exec-ms", "20")


def job_logs(g, jid):
    return [l["message"] for l in gw.request(g.port, "GET", "/jobs/%s/logs" % jid)[3]["logs"]]


def test_raw_graph_with_input_images_survives_kill():
    """A raw graph's input images are loaded again after a restart: its prompt is re-attached
    (inline image; or a URL that is gone by then — needed only if the prompt was lost), a
    prompt the backend lost (or whose backend is gone) runs again with its image fetched and
    uploaded again, and one whose image is gone too fails with a clear error."""
    files = gw.FileServer()
    png = pngmini.encode_rgb(6, 5, pix)
    url = files.url("/in.png")
    cases = [  # image, what happens while the gateway is down, the image served after that
        (base64.b64encode(png).decode(), None, None),
        (url, None, None),
        (url, lose_prompt, png),
        (url, move_backend, png),
        (url, lose_prompt, None)]
    try:
        for k, (image, after_kill, served_after) in enumerate(cases):
            files.files["/in.png"] = png

            def change(sim, after_kill=after_kill, served_after=served_after):
                files.files.pop("/in.png")
                if served_after:
                    files.files["/in.png"] = served_after
                return after_kill and after_kill(sim)
            g, sim, jid, pid = image_job_restarted(image, change)
            try:
                done = gw.wait_job(g.port, jid, timeout=60)
                logs, hist = job_logs(g, jid), list(sim_history(sim))
                if k == 4:  # lost, and nothing to run it again with
                    assert done["status"] == "failed", (k, done)
                    assert any("needed only if its prompt was lost" in m for m in logs), logs
                    continue
                assert done["status"] == "succeeded", (k, done)
                outputs_whole(g, done)
                _, _, raw, _ = gw.request(g.port, "GET", done["outputs"][0]["url"])
                pngmini.check_inverted(raw, 6, 5, pix)
                if after_kill:  # ran again, the lost attempt counted
                    assert done["promptId"] != pid and done["attempts"] == 2, (k, done, pid)
                    assert hist == [done["promptId"]], (k, hist)
                else:
                    assert done["promptId"] == pid and done["attempts"] == 1, (k, done, pid)
                    assert hist == [pid], (k, hist)
                    assert any("re-attached" in m for m in logs), (k, logs)
                    assert k == 0 or any("needed only if its prompt" in m for m in logs), logs
            finally:
                g.stop()
                sim.kill()
    finally:
        files.shutdown()


def test_cancel_while_a_reattached_job_loads_its_images():
    """Canceled while its input image is fetched again after a restart: the prompt that still
    runs on the backend is interrupted there, and the job ends canceled."""
    files = gw.FileServer()
    files.files["/in.png"] = pngmini.encode_rgb(6, 5, pix)

    def slow(sim):
        files.delay = 8  # the fetch after the restart hangs: the cancel comes during it
    try:
        g, sim, jid, pid = image_job_restarted(files.url("/in.png"), slow, exec_ms=6000)
        try:
            st, _, _, r = gw.request(g.port, "POST", "/jobs/%s/cancel" % jid)
            assert st == 200, (st, r)
            done = gw.wait_job(g.port, jid, timeout=30)
            assert done["status"] == "canceled", done
            # ComfyUI checks for an interrupt as each node starts (6 s apart here)
            hist = wait_for(lambda: sim_history(sim).get(pid), "prompt ended on the backend")
            kinds = [m[0] for m in hist["status"]["messages"]]
            assert "execution_interrupted" in kinds, kinds
        finally:
            g.stop()
            sim.kill()
    finally:
        files.delay = 0
        files.shutdown()


def test_finished_jobs_unchanged_by_restart():
    """A finished job reads back the same after a kill -9: status, outputs, attempts."""
    sim = gw.sim()
    g = start(sim)
    try:
        _, _, _, r = gw.request(g.port, "POST", "/jobs", {"workflowId": "smoke"})
        before = gw.wait_job(g.port, r["jobId"])
        g.kill(signal.SIGKILL)
        g = start(sim, storage=g.storage)
        after = job(g, r["jobId"])
        for k in ("status", "outputs", "attempts", "promptId", "inputs", "workflowHash"):
            assert after[k] == before[k], (k, before[k], after[k])
        outputs_whole(g, after)
        assert len(sim_history(sim)) == 1
    finally:
        g.stop()
        sim.kill()


def slow_store_writes(pid, usec):
    """Attaches strace to every thread of pid, delaying each pwrite64 (SQLite's WAL writes: the
    gateway's own file and socket I/O goes through io_uring) by usec. Returns the strace
    process once it traces every thread."""
    p = subprocess.Popen(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=pwrite64",
                          "-e", "inject=pwrite64:delay_enter=%d" % usec, "-p", str(pid)],
                         preexec_fn=gw.die_with_parent)

    def traced():
        for st in glob.glob("/proc/%d/task/*/status" % pid):
            try:
                with open(st) as f:
                    text = f.read()
            except FileNotFoundError:  # a thread that just ended (curl's resolver, say)
                continue
            # io_uring's kernel workers (iou-wrk-*, iou-sqp-*) cannot be traced
            if "\nName:\tiou-" not in "\n" + text and "TracerPid:\t%d\n" % p.pid not in text:
                return False
        return True
    wait_for(traced, "strace attached")
    return p


def read_statuses(port, jid, out, key):
    """The statuses one event stream of the job tells, up to its end."""
    out[key] = []
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        c.request("GET", "/jobs/%s/events" % jid)
        resp = c.getresponse()
        while True:
            line = resp.readline()
            if not line:
                out[key].append("EOF")
                return
            if line.startswith(b"data:") and b'"status":"' in line:
                status = line.split(b'"status":"', 1)[1].split(b'"', 1)[0].decode()
                out[key].append(status)
                if status in ("succeeded", "failed", "canceled"):
                    return
    except Exception as ex:  # noqa: BLE001 - recorded, and fails the check below
        out[key].append("error: %s" % type(ex).__name__)


def stop_all(tracer, g, sim):
    if tracer:
        tracer.kill()
        tracer.wait()
    g.stop()
    sim.kill()


def slowed_job(headers=None, exec_ms=5, **env):
    """A gateway whose store writes are slowed by strace (300 ms per pwrite64), and a job
    submitted to it: (comfysim, gateway, strace, job id)."""
    if not shutil.which("strace"):
        raise AssertionError("strace is missing: run scripts/deps.sh test")
    sim = gw.sim("--exec-ms", str(exec_ms))
    g = start(sim, **env)
    tracer = slow_store_writes(g.p.pid, 300000)
    _, _, _, r = gw.request(g.port, "POST", "/jobs", {"workflowId": "smoke"}, headers=headers)
    return sim, g, tracer, r["jobId"]


def test_end_announced_only_once_durable():
    """The end of a job reaches clients only after its final row is committed. The store's
    writes are slowed (strace delays SQLite's pwrite64); the moment the job's event stream
    says `succeeded`, the gateway is killed with SIGKILL. Started again, with the backend
    frozen so nothing can be re-attached meanwhile, the job must read back succeeded at once
    with its outputs — never back to running, never finishing a second time."""
    sim, g, tracer, jid = slowed_job()
    try:
        out = {}
        read_statuses(g.port, jid, out, "stream")  # returns the moment the end is told
        g.kill(signal.SIGKILL)  # at once: the end was announced, so it must be on disk
        seen = out["stream"]
        tracer.kill()
        tracer.wait()
        tracer = None
        assert seen[-1] == "succeeded", seen
        os.kill(sim.p.pid, signal.SIGSTOP)
        try:
            g = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % sim.port,
                            "CACHE_ENABLED": "false"}, storage=g.storage)
            after = job(g, jid)
            assert after["status"] == "succeeded", (after["status"], after.get("outputs"))
            assert len(after["outputs"]) == 1 and after["attempts"] == 1, after
        finally:
            os.kill(sim.p.pid, signal.SIGCONT)
        outputs_whole(g, after)
        assert len(sim_history(sim)) == 1
    finally:
        stop_all(tracer, g, sim)


def end_told_then_kill(how):
    """Kills the gateway with SIGKILL the moment one kind of read tells the end of a job whose
    final row is being written slowly, restarts it, and returns the job as it reads back, with
    the status that read told: "list" polls GET /jobs, "replay" repeats the submit with its
    Idempotency-Key, "cancel" cancels a job queued behind another (MAX_CONCURRENCY=1)."""
    key = {"Idempotency-Key": "durable-replay-%d" % os.getpid()} if how == "replay" else None
    sim, g, tracer, jid = slowed_job(key, exec_ms=10000 if how == "cancel" else 5,
                                     MAX_CONCURRENCY=1)
    try:
        if how == "cancel":
            _, _, _, r = gw.request(g.port, "POST", "/jobs", {"workflowId": "smoke",
                                                              "inputs": {"width": 7}})
            jid = r["jobId"]
        end = time.time() + 30
        told = None
        while not told and time.time() < end:
            if how == "list":
                st, _, _, r = gw.request(g.port, "GET", "/jobs?limit=5")
                told = [j["status"] for j in r["jobs"] if j["id"] == jid and
                        j["status"] in ("succeeded", "failed", "canceled")]
            elif how == "replay":
                st, _, _, r = gw.request(g.port, "POST", "/jobs", {"workflowId": "smoke"},
                                         headers=key)
                told = [r["status"]] if r["status"] in ("succeeded", "failed") else None
            else:
                st, _, _, r = gw.request(g.port, "POST", "/jobs/%s/cancel" % jid)
                assert st == 200 and r["status"] == "canceled", (st, r)
                told = [r["status"]]
            time.sleep(0.01)
        g.kill(signal.SIGKILL)  # at once: what was told must be on disk
        tracer.kill()
        tracer.wait()
        tracer = None
        assert told, "%s never told the end" % how
        os.kill(sim.p.pid, signal.SIGSTOP)  # nothing re-attached or re-run meanwhile
        try:
            g = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % sim.port,
                            "CACHE_ENABLED": "false"}, storage=g.storage)
            return job(g, jid), told[0]
        finally:
            os.kill(sim.p.pid, signal.SIGCONT)
    finally:
        stop_all(tracer, g, sim)


def test_no_read_tells_an_end_before_it_is_durable():
    """The job list, an idempotent repeat and a cancel answer about a job whose end is being
    stored only once it is stored: killed right after, the job reads back as they told."""
    wrong = []
    for how in ("list", "replay", "cancel"):
        after, told = end_told_then_kill(how)
        if after["status"] != told:
            wrong.append((how, told, after["status"]))
    assert not wrong, wrong


def test_every_listener_hears_the_end():
    """While the end waits for the store (writes slowed by strace), new event streams keep
    opening: the first listener and every later one, including those that had to wait for
    the end to be durable, get the final status."""
    sim, g, tracer, jid = slowed_job()
    try:
        out = {}
        first = threading.Thread(target=read_statuses, args=(g.port, jid, out, "first"),
                                 daemon=True)
        first.start()
        threads = [first]
        while first.is_alive() and len(threads) < 300:
            time.sleep(0.03)
            t = threading.Thread(target=read_statuses,
                                 args=(g.port, jid, out, "l%d" % len(threads)), daemon=True)
            t.start()
            threads.append(t)
        end = time.time() + 40  # a stream that missed the end only times out
        for t in threads:
            t.join(max(0.01, end - time.time()))
        assert len(threads) > 5, len(threads)  # some streams opened while the end waited
        unheard = {k: v for k, v in list(out.items()) if not v or v[-1] != "succeeded"}
        assert not unheard, (len(unheard), list(unheard.items())[:5])
    finally:
        stop_all(tracer, g, sim)


for t in [test_accepted_burst_survives_kill_while_queued, test_running_job_is_reattached,
          test_kill_while_downloading_outputs, test_backend_lost_the_prompt_meanwhile,
          test_finished_jobs_unchanged_by_restart, test_end_announced_only_once_durable,
          test_every_listener_hears_the_end, test_no_read_tells_an_end_before_it_is_durable,
          test_raw_graph_with_input_images_survives_kill,
          test_cancel_while_a_reattached_job_loads_its_images]:
    S.run(t)
S.done()
