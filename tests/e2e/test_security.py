"""Safe on the open internet (issue 6), through the real gateway: API keys and HS256 JWTs
(expired, not yet valid, wrong signature, alg none / confusion), roles, tenant isolation of
jobs, outputs, cache and backend uploads, the no-auth bind rule, rate limits with their headers
(one budget shared by every reactor thread and connection), CORS, and SSRF refusals for input
image URLs (loopback, private, metadata, IPv6 loopback, a name resolving to loopback, a
redirect to a forbidden host)."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import socket
import subprocess
import time

import gw
import pngmini

S = gw.Suite()
state = {}
ADMIN = "admin-key-0123456789abcdef"
ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-0123456789abcdefgh"
SECRET = "s" * 40


def key_id(k):
    return "key:" + hashlib.sha256(k.encode()).hexdigest()[:12]


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, header=None, secret=SECRET, alg="HS256"):
    h = b64u(json.dumps(header or {"alg": alg, "typ": "JWT"}).encode())
    p = b64u(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + b64u(sig)


def req(method, path, body=None, key=None, token=None, headers=None, port=None, src=None):
    h = dict(headers or {})
    if key:
        h["X-API-Key"] = key
    if token:
        h["Authorization"] = "Bearer " + token
    c = http.client.HTTPConnection("127.0.0.1", port or state["port"], timeout=30,
                                   source_address=(src, 0) if src else None)
    data = json.dumps(body) if body is not None else None
    if data:
        h["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        j = json.loads(raw) if raw else None
    except ValueError:
        j = None
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), j


def wait(jid, key):
    end = time.time() + 60
    while time.time() < end:
        st, _, j = req("GET", "/jobs/" + jid, key=key)
        assert st == 200, (st, j)
        if j["status"] in ("succeeded", "failed", "canceled"):
            return j
        time.sleep(0.02)
    raise AssertionError("stuck")


def setup():
    state["sim"] = gw.sim()
    state["gw"] = gw.gateway({
        "COMFYUI_URL": "http://127.0.0.1:%d" % state["sim"].port,
        "COMFYUI_PROBE_INTERVAL_MS": "200",
        "API_KEYS": "%s:admin,%s:user:alice,%s:user:bob" % (ADMIN, ALICE, BOB),
        "JWT_SECRET": SECRET,
        "INPUT_URL_ALLOWED_DOMAINS": "127.0.0.1"})
    state["port"] = state["gw"].port
    end = time.time() + 20
    while req("GET", "/backends", key=ADMIN)[2]["backends"][0]["healthy"] is not True:
        assert time.time() < end
        time.sleep(0.05)


def test_credentials_required():
    st, h, j = req("GET", "/jobs")
    assert st == 401 and j["error"]["code"] == "UNAUTHORIZED", (st, j)
    assert h["www-authenticate"].startswith("Bearer")
    assert req("GET", "/health")[0] == 200 and req("GET", "/ready")[0] == 200
    assert req("GET", "/jobs", key="wrong-key-0123456789abcdef")[0] == 401
    assert req("GET", "/jobs", key=ALICE)[0] == 200
    assert req("GET", "/jobs", token=ALICE)[0] == 200  # a key as a bearer token
    st, _, j = req("GET", "/jobs", key=ALICE, token=BOB)
    assert st == 400, (st, j)  # two different credentials
    assert req("GET", "/jobs", headers={"Authorization": "Basic YTpi"})[0] == 400
    # a credential header twice: refused whatever the order (the first one used to win)
    for name, a, b in (("X-API-Key", ALICE, ADMIN), ("X-API-Key", ADMIN, ALICE),
                       ("Authorization", "Bearer " + ADMIN, "Bearer " + ALICE),
                       ("X-API-Key", ADMIN, ADMIN)):
        c = http.client.HTTPConnection("127.0.0.1", state["port"], timeout=30)
        c.putrequest("GET", "/backends")
        c.putheader(name, a)
        c.putheader(name, b)
        c.endheaders()
        r = c.getresponse()
        body = json.loads(r.read())
        c.close()
        assert r.status == 400 and body["error"]["code"] == "BAD_CREDENTIALS_HEADER", \
            (name, r.status, body)


def test_roles():
    for method, path in (("GET", "/backends"), ("GET", "/audit"),
                         ("POST", "/workflows"), ("DELETE", "/workflows/smoke")):
        st, _, j = req(method, path, {} if method == "POST" else None, key=ALICE)
        assert st == 403 and j["error"]["code"] == "FORBIDDEN", (method, path, st, j)
    assert req("GET", "/workflows", key=ALICE)[0] == 200  # users read templates
    assert req("GET", "/backends", key=ADMIN)[0] == 200
    wf = {"id": "sec_wf", "template": {"1": {"class_type": "EmptyImage", "inputs": {}},
                                       "2": {"class_type": "SaveImage",
                                             "inputs": {"images": ["1", 0]}}},
          "schema": {"type": "object", "properties": {}}}
    st, _, j = req("POST", "/workflows", wf, key=ADMIN)
    assert st == 201, (st, j)
    st, _, a = req("GET", "/audit?limit=5", key=ADMIN)
    entry = [e for e in a["entries"] if e["target"].startswith("sec_wf")][0]
    assert entry["actor"] == key_id(ADMIN) and entry["peer"].startswith("127.0.0.1:"), entry


def test_tenant_isolation():
    st, _, a = req("POST", "/jobs", {"workflowId": "smoke", "inputs": {"width": 31}}, key=ALICE)
    assert st == 202, (st, a)
    done = wait(a["jobId"], ALICE)
    url = done["outputs"][0]["url"]
    jid = a["jobId"]
    for method, path in (("GET", "/jobs/" + jid), ("POST", "/jobs/%s/cancel" % jid),
                         ("GET", "/jobs/%s/logs" % jid), ("GET", "/jobs/%s/events" % jid),
                         ("GET", "/outputs/" + jid), ("GET", url),
                         ("GET", url + "?encoding=base64")):
        st, _, j = req(method, path, key=BOB)
        assert st == 404, (method, path, st, j)  # another tenant's job does not exist
    st, _, lst = req("GET", "/jobs", key=BOB)
    assert jid not in [x["id"] for x in lst["jobs"]]
    assert req("GET", url, key=ALICE)[0] == 200
    assert req("GET", "/jobs/" + jid, key=ADMIN)[0] == 200  # admin sees every tenant
    st, _, lst = req("GET", "/jobs", key=ADMIN)
    assert jid in [x["id"] for x in lst["jobs"]]
    # the cache: alice's identical request hits, bob's does not
    st, _, a2 = req("POST", "/jobs", {"workflowId": "smoke", "inputs": {"width": 31}}, key=ALICE)
    assert st == 200 and a2["cacheHit"], (st, a2)
    st, _, b = req("POST", "/jobs", {"workflowId": "smoke", "inputs": {"width": 31}}, key=BOB)
    assert st == 202, (st, b)


def test_uploads_in_tenant_subfolders():
    png = base64.b64encode(pngmini.encode_rgb(3, 3, lambda x, y: (x, y, 9))).decode()
    g = {"1": {"class_type": "LoadImage", "inputs": {"image": png}},
         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    refs = []
    for key in (ALICE, BOB):
        st, _, j = req("POST", "/prompt", {"prompt": g}, key=key)
        assert st == 200, (st, j)
        refs.append(j["prompt"]["1"]["inputs"]["image"])
    assert refs[0] != refs[1] and refs[0].split("/")[-1] == refs[1].split("/")[-1], refs
    assert refs[0].startswith("comfygate/t-") and refs[1].startswith("comfygate/t-")


def test_jwt():
    now = int(time.time())
    ok = jwt({"sub": "carol", "role": "user", "exp": now + 300, "iat": now})
    st, _, j = req("POST", "/jobs", {"workflowId": "smoke"}, token=ok)
    assert st == 202, (st, j)
    assert req("GET", "/jobs/" + j["jobId"], key=ALICE)[0] == 404  # carol's, not alice's
    assert req("GET", "/backends", token=ok)[0] == 403
    admin = jwt({"sub": "ops", "role": "admin", "exp": now + 300})
    assert req("GET", "/backends", token=admin)[0] == 200
    bad = {
        "expired": jwt({"sub": "carol", "exp": now - 120}),
        "not_yet_valid": jwt({"sub": "carol", "exp": now + 300, "nbf": now + 120}),
        "issued_in_future": jwt({"sub": "carol", "exp": now + 900, "iat": now + 600}),
        "bad_signature": jwt({"sub": "carol", "exp": now + 300}, secret="x" * 40),
        "bad_alg": jwt({"sub": "carol", "exp": now + 300}, header={"alg": "none"}),
        "bad_alg2": jwt({"sub": "carol", "exp": now + 300}, header={"alg": "HS512"}),
        "missing_exp": jwt({"sub": "carol"}),
    }
    for name, tok in bad.items():
        st, _, j = req("GET", "/jobs", token=tok)
        assert st == 401 and j["error"]["code"] == "UNAUTHORIZED", (name, st, j)
    unsigned = b64u(b'{"alg":"none","typ":"JWT"}') + "." + b64u(
        json.dumps({"sub": "x", "exp": now + 300}).encode()) + "."
    assert req("GET", "/jobs", token=unsigned)[0] == 401


def test_no_auth_refuses_public_bind():
    env = dict(os.environ, PORT="0", HOST="0.0.0.0", STORAGE_LOCAL_PATH=gw.tempfile.mkdtemp())
    for k in ("API_KEYS", "JWT_SECRET"):
        env.pop(k, None)
    p = subprocess.run([gw.GATEWAY], env=env, capture_output=True, timeout=30)
    assert p.returncode == 2 and b"ALLOW_NO_AUTH" in p.stderr, (p.returncode, p.stderr)
    g = gw.gateway({"HOST": "0.0.0.0", "ALLOW_NO_AUTH": "true"})
    try:
        assert req("GET", "/jobs", port=g.port)[0] == 200
        assert "authentication is off" in g.tail()
    finally:
        g.stop()


def test_rate_limit_shared_across_connections_and_threads():
    g = gw.gateway({"API_KEYS": "%s:user" % ALICE, "RATE_LIMIT_MAX": "5",
                    "RATE_LIMIT_WINDOW_MS": "600000", "THREADS": "2"})
    try:
        seen = []
        for src in ("127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2", "127.0.0.3"):
            st, h, _ = req("GET", "/jobs", key=ALICE, port=g.port, src=src)  # new connection each
            assert st == 200, st
            seen.append(int(h["ratelimit-remaining"]))
            assert h["ratelimit-limit"] == "5" and "retry-after" not in h
        assert seen == [4, 3, 2, 1, 0], seen  # the key's budget, whichever thread answered
        st, h, j = req("GET", "/jobs", key=ALICE, port=g.port, src="127.0.0.4")
        assert st == 429 and j["error"]["code"] == "RATE_LIMITED", (st, j)
        assert int(h["retry-after"]) >= 1 and h["ratelimit-remaining"] == "0"
        assert int(h["ratelimit-reset"]) >= 1
        # per address: bad keys from one address run out its budget too
        codes = [req("GET", "/jobs", key="nope-0123456789abcdef", port=g.port,
                     src="127.0.0.9")[0] for _ in range(6)]
        assert codes == [401] * 5 + [429], codes
        assert req("GET", "/health", port=g.port, src="127.0.0.9")[0] == 200  # never limited
    finally:
        g.stop()


def test_cors():
    g = gw.gateway({"API_KEYS": "%s:user" % ALICE, "CORS_ORIGINS": "https://app.example.com"})
    try:
        pre = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type, x-api-key, idempotency-key"}
        st, h, _ = req("OPTIONS", "/jobs", headers=pre, port=g.port)
        assert st == 204 and h["access-control-allow-origin"] == "https://app.example.com", h
        assert "POST" in h["access-control-allow-methods"]
        assert "x-api-key" in h["access-control-allow-headers"].lower()
        pre["Origin"] = "https://evil.example.com"
        st, h, _ = req("OPTIONS", "/jobs", headers=pre, port=g.port)
        assert st == 204 and "access-control-allow-origin" not in h, h
        st, h, _ = req("GET", "/jobs", key=ALICE, port=g.port,
                       headers={"Origin": "https://app.example.com"})
        assert st == 200 and h["access-control-allow-origin"] == "https://app.example.com"
        assert "Origin" in h["vary"] and "x-request-id" in h["access-control-expose-headers"].lower()
        st, h, _ = req("GET", "/jobs", port=g.port, headers={"Origin": "https://app.example.com"})
        assert st == 401 and h["access-control-allow-origin"] == "https://app.example.com"
    finally:
        g.stop()
    env = dict(os.environ, PORT="0", CORS_ORIGINS="*", CORS_ALLOW_CREDENTIALS="true",
               STORAGE_LOCAL_PATH=gw.tempfile.mkdtemp())
    p = subprocess.run([gw.GATEWAY], env=env, capture_output=True, timeout=30)
    assert p.returncode == 2 and b"CORS" in p.stderr, p.stderr


def test_ssrf():
    srv = gw.FileServer()
    port = srv.srv.server_address[1]
    srv.files["/ok.png"] = pngmini.encode_rgb(2, 2, lambda x, y: (1, 2, 3))
    srv.files["/redir"] = srv.url("/ok.png", "127.0.0.2")

    def graph(url):
        return {"prompt": {"1": {"class_type": "LoadImage", "inputs": {"image": url}},
                           "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}}
    try:
        # refused at once: IP literals that are not public
        for url in ("http://10.1.2.3/x.png", "http://169.254.169.254/latest/meta-data",
                    "http://[::1]:%d/ok.png" % port, "http://127.0.0.2:%d/ok.png" % port,
                    "http://2130706434/x.png", "http://localhost:%d/ok.png" % port,
                    "file:///etc/passwd"):
            st, _, j = req("POST", "/prompt", graph(url), key=ADMIN)
            assert st == 400, (url, st, j)
            assert j["error"]["code"] in ("SSRF_BLOCKED", "VALIDATION_ERROR"), (url, j)
        # the allowlisted loopback receiver works
        st, _, j = req("POST", "/prompt", graph("http://127.0.0.1:%d/ok.png" % port), key=ADMIN)
        assert st == 200, (st, j)
        # a redirect from there to a forbidden host is refused at the redirect
        st, _, j = req("POST", "/prompt", graph("http://127.0.0.1:%d/redir" % port), key=ADMIN)
        assert st == 422 and j["error"]["code"] == "INPUT_FETCH_FAILED", j
        assert "SSRF_BLOCKED" in j["error"]["message"] or "redirect" in j["error"]["message"], j
        # a name that resolves to loopback is refused when it connects
        try:
            socket.getaddrinfo("ip6-localhost", 80)
            name_ok = True
        except socket.gaierror:
            name_ok = False
        if name_ok:
            st, _, j = req("POST", "/prompt", graph("http://ip6-localhost:%d/ok.png" % port),
                           key=ADMIN)
            assert st == 422 and "SSRF_BLOCKED" in j["error"]["message"], j
        # webhook_v2 to a private address is refused when the prompt is submitted
        st, _, j = req("POST", "/prompt", dict(graph("http://127.0.0.1:%d/ok.png" % port),
                                               webhook_v2="http://192.168.1.1/hook"), key=ADMIN)
        assert st == 400 and j["error"]["code"] == "SSRF_BLOCKED", j
    finally:
        srv.shutdown()


def teardown():
    st = state["gw"].stop()
    state["sim"].kill()
    assert st == 0, state["gw"].tail()


if __name__ == "__main__":
    setup()
    try:
        for t in (test_credentials_required, test_roles, test_tenant_isolation,
                  test_uploads_in_tenant_subfolders, test_jwt, test_no_auth_refuses_public_bind,
                  test_rate_limit_shared_across_connections_and_threads, test_cors, test_ssrf):
            S.run(t)
    finally:
        S.run(teardown)
    S.done()
