"""Helpers for the end-to-end tests: the real comfygate binary and real comfysim processes on
127.0.0.1, driven over HTTP with the standard library only.

Every process is started by these helpers and ended by PID; nothing else is touched."""
import ctypes
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

GATEWAY = os.environ.get("COMFYGATE_BIN", "build/comfygate")
SIM = os.environ.get("COMFYSIM_BIN", "build/src/sim/comfysim")
WORKFLOWS = os.environ.get("WORKFLOWS_DIR", "workflows")


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when the test that started it dies (a meson timeout,
    Ctrl-C), so no gateway or comfysim outlives its test."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Proc:
    """A child process that writes its bound port to a file."""

    def __init__(self, argv, env=None, name="proc", port_flag=False):
        self.dir = tempfile.mkdtemp(prefix="cg-e2e-")
        self.port_file = os.path.join(self.dir, "port")
        if port_flag:
            argv = argv + ["--port-file", self.port_file]
        self.log_path = os.path.join(self.dir, name + ".log")
        self.log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env["PORT_FILE"] = self.port_file
        self.argv = argv
        self.env = full_env
        self.name = name
        self.p = subprocess.Popen(argv, env=full_env, stdout=self.log, stderr=subprocess.STDOUT,
                                  cwd=self.dir, preexec_fn=die_with_parent)
        self.port = self._wait_port()

    def _wait_port(self, timeout=20.0):
        end = time.time() + timeout
        while time.time() < end:
            if self.p.poll() is not None:
                raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.p.returncode,
                                                             self.tail()))
            try:
                with open(self.port_file) as f:
                    txt = f.read().strip()
                if txt:
                    return int(txt)
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.02)
        raise RuntimeError("%s did not start:\n%s" % (self.name, self.tail()))

    def tail(self, n=4000):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")

    def kill(self, sig=signal.SIGKILL):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()

    def stop(self):
        return self.kill(signal.SIGTERM)


def sim(*args, name="comfysim"):
    return Proc([SIM, "--port", "0"] + list(args), name=name, port_flag=True)


def sim_on(port, *args):
    """A fresh simulator on a given port (a restarted backend: its queue and history gone).
    The port was an ephemeral one, which an outgoing connection may hold for a moment."""
    for _ in range(50):
        try:
            return Proc([SIM, "--port", str(port)] + list(args), name="comfysim", port_flag=True)
        except RuntimeError:
            time.sleep(0.1)
    raise AssertionError("could not restart the simulator on port %d" % port)


def gateway(env=None, storage=None):
    e = {"PORT": "0", "THREADS": "2", "WORKFLOWS_DIR": os.path.abspath(WORKFLOWS),
         "LOG_LEVEL": "info", "ACCESS_LOG": "false"}
    if storage is None:
        storage = tempfile.mkdtemp(prefix="cg-data-")
    e["STORAGE_LOCAL_PATH"] = storage
    e.update(env or {})
    g = Proc([GATEWAY], env=e, name="gateway")
    g.storage = storage
    return g


def request(port, method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    raw = r.read()
    c.close()
    try:
        j = json.loads(raw) if raw else None
    except ValueError:
        j = None
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), raw, j


def wait_job(port, job_id, want=("succeeded", "failed", "canceled"), timeout=60):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        st, _, _, j = request(port, "GET", "/jobs/" + job_id)
        assert st == 200, (st, j)
        last = j
        if j["status"] in want:
            return j
        time.sleep(0.02)
    raise AssertionError("job %s stuck in %s" % (job_id, last and last["status"]))


def wait_backends(port, n_healthy, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        _, _, _, j = request(port, "GET", "/backends")
        if j and sum(1 for b in j["backends"] if b["healthy"] and b["capabilities"]) >= n_healthy:
            return j
        time.sleep(0.05)
    raise AssertionError("backends not healthy: %s" % j)


class Suite:
    """Runs test functions, prints one line each and a summary; exit code 1 on any failure."""

    def __init__(self):
        self.failed = 0
        self.passed = 0

    def run(self, fn):
        only = os.environ.get("TEST_ONLY")  # a comma-separated list of names, when debugging
        if only and fn.__name__ not in only.split(",") and fn.__name__ not in ("setup", "teardown"):
            return
        t0 = time.time()
        try:
            fn()
            self.passed += 1
            print("ok   %-50s %.2fs" % (fn.__name__, time.time() - t0), flush=True)
        except Exception as ex:  # noqa: BLE001 - report every failure, keep going
            import traceback
            self.failed += 1
            print("FAIL %-50s %s" % (fn.__name__, ex), flush=True)
            traceback.print_exc()

    def done(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


class FileServer:
    """Serves files[path] over HTTP on 127.0.0.1 from a thread: bytes as they are, a str as
    a 302 redirect to it; 404 for the rest; each answer after `delay` seconds."""

    def __init__(self):
        import http.server
        import threading
        files = self.files = {}
        self.delay = 0  # seconds each answer waits
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                time.sleep(server.delay)
                body = files.get(self.path)
                if isinstance(body, str):
                    self.send_response(302)
                    self.send_header("Location", body)
                    body = b""
                else:
                    self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self, path, host="127.0.0.1"):
        return "http://%s:%d%s" % (host, self.srv.server_address[1], path)

    def shutdown(self):
        self.srv.shutdown()
