"""The jobs API over TLS end to end: the real gateway with TLS_CERT_FILE/TLS_KEY_FILE (a CA and
a certificate made here with the openssl tool) against a real comfysim. Covers what the C
integration tests cannot reach without jobs: an output file (read through the ring and
encrypted instead of spliced), its base64 form (streamed as it is encoded), and Server-Sent
Events, all over TLS with the chain and host name verified by Python's ssl module."""
import base64
import hashlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time

import gw

S = gw.Suite()
state = {}
SDXL = "checkpoints=sd_xl_base_1.0.safetensors"


def openssl(cwd, *args):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_certs():
    d = tempfile.mkdtemp(prefix="cg-tls-")
    openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=e2e CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    with open(os.path.join(d, "leaf.cnf"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl(d, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key",
            "-out", "srv.csr", "-subj", "/CN=localhost")
    openssl(d, "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "leaf.cnf", "-out", "srv.pem")
    with open(os.path.join(d, "chain.pem"), "w") as out:
        for name in ("srv.pem", "ca.pem"):
            with open(os.path.join(d, name)) as f:
                out.write(f.read())
    return d


def conn(timeout=30):
    return http.client.HTTPSConnection("localhost", state["port"], timeout=timeout,
                                       context=state["ctx"])


def request(method, path, body=None, headers=None):
    c = conn()
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body)
        h["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        j = json.loads(raw) if raw else None
    except ValueError:
        j = None
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), raw, j


def wait_job(job_id, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        st, _, _, j = request("GET", "/jobs/" + job_id)
        assert st == 200, (st, j)
        if j["status"] in ("succeeded", "failed", "canceled"):
            return j
        time.sleep(0.02)
    raise AssertionError("job %s not finished" % job_id)


def setup():
    state["certs"] = make_certs()
    ctx = ssl.create_default_context(cafile=os.path.join(state["certs"], "ca.pem"))
    ctx.set_alpn_protocols(["http/1.1"])
    state["ctx"] = ctx
    # uncompressed PNGs: a 1024x1024 output is 3 MiB, many base64 chunks and TLS records
    state["sim"] = gw.sim("--models", SDXL, "--exec-ms", "20", "--step-ms", "5",
                          "--png-level", "0")
    state["gw"] = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % state["sim"].port,
                              "COMFYUI_PROBE_INTERVAL_MS": "200",
                              "TLS_CERT_FILE": os.path.join(state["certs"], "chain.pem"),
                              "TLS_KEY_FILE": os.path.join(state["certs"], "srv.key")})
    state["port"] = state["gw"].port
    end = time.time() + 20
    while time.time() < end:
        st, _, _, j = request("GET", "/backends")
        if st == 200 and any(b["healthy"] and b["capabilities"] for b in j["backends"]):
            return
        time.sleep(0.05)
    raise AssertionError("backend not healthy")


def test_tls_session_is_tls12_http11():
    c = conn()
    c.request("GET", "/health")
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["ok"] is True
    assert c.sock.version() == "TLSv1.2", c.sock.version()
    assert c.sock.selected_alpn_protocol() == "http/1.1"
    assert c.sock.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256", c.sock.cipher()
    c.close()


def test_output_file_and_base64():
    st, _, _, j = request("POST", "/jobs", {"workflowId": "smoke",
                                            "inputs": {"width": 1024, "height": 1024}})
    assert st == 202, (st, j)
    done = wait_job(j["jobId"])
    assert done["status"] == "succeeded", done
    out = done["outputs"][0]
    assert out["size"] > 3 << 20, out["size"]
    st, h, raw, _ = request("GET", out["url"])
    assert st == 200 and h["content-type"] == "image/png"
    assert len(raw) == out["size"] and hashlib.sha256(raw).hexdigest() == out["sha256"]
    st, _, part, _ = request("GET", out["url"], headers={"Range": "bytes=100000-2200000"})
    assert st == 206 and part == raw[100000:2200001]
    st, _, _, _ = request("GET", out["url"], headers={"If-None-Match": h["etag"]})
    assert st == 304
    st, h, body, b64 = request("GET", out["url"] + "?encoding=base64")
    assert st == 200 and h.get("transfer-encoding") == "chunked", h
    assert b64["mime"] == "image/png" and b64["size"] == out["size"]
    assert base64.b64decode(b64["data"]) == raw


def test_sse_over_tls():
    st, _, _, j = request("POST", "/jobs", {"workflowId": "sdxl_realism_v1",
                                            "inputs": {"prompt": "a lighthouse", "width": 256,
                                                       "height": 256, "steps": 8, "seed": 7}})
    assert st == 202, j
    c = conn()
    c.request("GET", "/jobs/%s/events" % j["jobId"])
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
    events, ev = [], None
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
    assert "progress" in kinds and "output" in kinds, kinds


def test_plain_http_is_refused():
    c = http.client.HTTPConnection("127.0.0.1", state["port"], timeout=10)
    try:
        c.request("GET", "/health")
        r = c.getresponse()
        raise AssertionError("plain HTTP answered %d on the TLS port" % r.status)
    except (http.client.HTTPException, ConnectionError, OSError):
        pass
    finally:
        c.close()
    st, _, _, j = request("GET", "/health")
    assert st == 200 and j["ok"] is True


def teardown():
    st = state["gw"].stop()
    state["sim"].kill()
    shutil.rmtree(state["certs"], ignore_errors=True)
    assert st == 0, state["gw"].tail()


if __name__ == "__main__":
    if shutil.which("openssl") is None:
        print("SKIP: the openssl tool is not installed")
        raise SystemExit(77)
    setup()
    try:
        for t in (test_tls_session_is_tls12_http11, test_output_file_and_base64, test_sse_over_tls,
                  test_plain_http_is_refused):
            S.run(t)
    finally:
        S.run(teardown)
    S.done()
