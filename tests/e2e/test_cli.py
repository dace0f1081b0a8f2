"""The command-line tools of the comfygate binary (issue 5): init, add-workflow, list-workflows
and health, each with --help, run as a user would, against real files and real comfysim
backends; a workflow added offline is run by a gateway started afterwards."""
import os
import subprocess
import tempfile

import gw

S = gw.Suite()


def run(*args, env=None, cwd=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([gw.GATEWAY] + list(args), env=e, cwd=cwd, capture_output=True,
                       timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_help_and_unknown():
    rc, out, _ = run("--help")
    assert rc == 0 and "add-workflow" in out and "health" in out and "serve" in out, out
    for cmd in ("init", "add-workflow", "list-workflows", "health"):
        rc, out, _ = run(cmd, "--help")
        assert rc == 0 and ("comfygate " + cmd) in out, (cmd, out)
    rc, _, err = run("frobnicate")
    assert rc == 2 and "unknown command" in err
    rc, _, err = run("health", env={"COMFYUI_TIMEOUT_MS": "banana"})
    assert rc == 2 and "COMFYUI_TIMEOUT_MS" in err, err


def test_init():
    d = tempfile.mkdtemp()
    rc, out, err = run("init", cwd=d)
    assert rc == 0, err
    assert os.path.isfile(os.path.join(d, "data", "comfygate.db"))
    assert os.path.isdir(os.path.join(d, "data", "outputs"))
    env = open(os.path.join(d, ".env")).read()
    assert "# API_KEYS=" in env and ":admin" in env
    assert all(l.startswith("#") or not l.strip() for l in env.splitlines()), env
    with open(os.path.join(d, ".env"), "a") as f:
        f.write("PORT=9999\n")
    rc, out, _ = run("init", cwd=d)
    assert rc == 0 and "left as it is" in out
    assert "PORT=9999" in open(os.path.join(d, ".env")).read()  # never overwritten


def test_add_list_and_run_workflow():
    d = tempfile.mkdtemp()
    graph = os.path.join(d, "g.json")
    with open(graph, "w") as f:
        f.write('{"1": {"class_type": "EmptyImage", "inputs": {"width": "{{w}}", "height": 8,'
                ' "batch_size": 1, "color": 0}}, "2": {"class_type": "SaveImage",'
                ' "inputs": {"images": ["1", 0]}}}')
    schema = os.path.join(d, "s.json")
    with open(schema, "w") as f:
        f.write('{"type": "object", "properties": {"w": {"type": "integer", "minimum": 1,'
                ' "default": 12}}}')
    env = {"STORAGE_LOCAL_PATH": os.path.join(d, "data"),
           "WORKFLOWS_DIR": os.path.abspath(gw.WORKFLOWS)}
    rc, out, err = run("add-workflow", graph, "--id", "cli_tiny", "--name", "Tiny",
                       "--schema", schema, env=env)
    assert rc == 0 and "cli_tiny version 1" in out, (out, err)
    rc, out, err = run("add-workflow", graph, "--id", "cli_tiny", env=env)
    assert rc == 0 and "version 2" in out, (out, err)
    rc, out, _ = run("list-workflows", env=env)
    lines = [l.split() for l in out.splitlines()]
    assert ["cli_tiny", "2"] == [x for x in lines if x[0] == "cli_tiny"][0][:2], out
    assert any(l[0] == "smoke" and "bundled" in l for l in lines), out
    rc, out, _ = run("list-workflows", "--all", env=env)
    assert sum(1 for l in out.splitlines() if l.startswith("cli_tiny")) == 2
    # errors: a missing file, a graph with an undeclared placeholder, no --id
    rc, _, err = run("add-workflow", os.path.join(d, "nope.json"), "--id", "x", env=env)
    assert rc == 1 and "nope.json" in err
    bad = os.path.join(d, "bad.json")
    with open(bad, "w") as f:
        f.write('{"1": {"class_type": "EmptyImage", "inputs": {"width": "{{zz}}"}}}')
    rc, _, err = run("add-workflow", bad, "--id", "x", "--schema", schema, env=env)
    assert rc == 1 and "zz" in err, err  # a placeholder the schema does not declare
    rc, _, err = run("add-workflow", graph, env=env)
    assert rc == 2
    # a name too long is refused whole (it was cut, possibly inside a UTF-8 character)
    rc, _, err = run("add-workflow", graph, "--id", "x", "--name", "é" * 200, env=env)
    assert rc == 1 and "at most 255 bytes" in err, (rc, err)
    # the gateway started afterwards runs version 1 (its schema's default) and version 2
    sim = gw.sim()
    g = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % sim.port,
                    "COMFYUI_PROBE_INTERVAL_MS": "200"}, storage=env["STORAGE_LOCAL_PATH"])
    try:
        gw.wait_backends(g.port, 1)
        st, _, _, j = gw.request(g.port, "POST", "/jobs", {"workflowId": "cli_tiny",
                                                           "workflowVersion": 1})
        assert st == 202, (st, j)
        done = gw.wait_job(g.port, j["jobId"])
        assert done["status"] == "succeeded" and done["inputs"]["w"] == 12, done
        st, _, _, w = gw.request(g.port, "GET", "/workflows/cli_tiny")
        assert st == 200 and w["version"] == 2 and w["created_by"].startswith("cli:"), w
    finally:
        g.stop()
        sim.kill()


def test_health():
    sims = [gw.sim(), gw.sim()]
    urls = ",".join("http://127.0.0.1:%d" % s.port for s in sims)
    try:
        rc, out, err = run("health", env={"COMFYUI_URLS": urls})
        assert rc == 0 and "2 of 2 backends up" in out, (out, err)
        assert out.count(" up ") == 2 and "0.8.0" in out, out
        sims[1].kill()
        rc, out, _ = run("health", "--timeout-ms", "1000", env={"COMFYUI_URLS": urls})
        assert rc == 1 and "1 of 2 backends up" in out and "DOWN" in out, out
        rc, _, err = run("health", env={"COMFYUI_URLS": "", "COMFYUI_URL": ""})
        assert rc == 2 and "COMFYUI_URL" in err
    finally:
        for s in sims:
            s.kill()


def test_serve_takes_the_hard_descriptor_limit():
    """Started with a soft RLIMIT_NOFILE of 256 (a shell's or systemd's default is often
    1024), serve raises it to the hard limit: connections, backend sockets and the images an
    answer holds open all need descriptors."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    d = tempfile.mkdtemp(prefix="cg-nofile-")
    port_file = os.path.join(d, "port")
    env = dict(os.environ, PORT="0", PORT_FILE=port_file, STORAGE_LOCAL_PATH=d,
               COMFYUI_URL="http://127.0.0.1:9", WORKFLOWS_DIR=os.path.abspath(gw.WORKFLOWS))

    def low_soft_limit():
        gw.die_with_parent()
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    p = subprocess.Popen([gw.GATEWAY], env=env, preexec_fn=low_soft_limit,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = gw.time.time() + 30
        while not os.path.exists(port_file) and gw.time.time() < end:
            assert p.poll() is None, p.returncode
            gw.time.sleep(0.05)
        with open("/proc/%d/limits" % p.pid) as f:
            line = [l for l in f if l.startswith("Max open files")][0].split()
        want = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        assert line[3] == want and line[4] == want, line
    finally:
        p.terminate()
        p.wait(timeout=30)


def test_config_mistakes_stop_it_with_code_2():
    """Mistakes a .env invites are caught before anything starts: a backend URL with a comment
    left in it (it used to fail later, with exit 1 and a leak), and a named --env-file that is
    not there (it used to be ignored)."""
    d = tempfile.mkdtemp(prefix="cg-cfg-")
    env = {"PORT": "0", "STORAGE_LOCAL_PATH": d}
    rc, _, err = run("serve", env=dict(env, COMFYUI_URLS="http://127.0.0.1:1 # gpu 1"))
    assert rc == 2 and "COMFYUI_URLS" in err and "plain http" in err, (rc, err)
    rc, _, err = run("serve", "--env-file", os.path.join(d, "nope.env"), env=env)
    assert rc == 2 and "nope.env" in err, (rc, err)
    # in a .env file the comment is a comment, and a misspelt key is warned about
    with open(os.path.join(d, "ok.env"), "w") as f:
        f.write("COMFYUI_URLS=http://127.0.0.1:1 # gpu 1\nCOMFYUI_URSL=x\nPORT=notaport\n")
    rc, _, err = run("serve", "--env-file", os.path.join(d, "ok.env"),
                     env={"STORAGE_LOCAL_PATH": d})
    assert rc == 2 and "COMFYUI_URSL is not a setting" in err and "PORT" in err, (rc, err)
    assert "COMFYUI_URLS" not in err.replace("COMFYUI_URSL", ""), err


def test_readme_config_table_is_current():
    """The README's configuration table is `comfygate config`'s output, word for word."""
    rc, out, _ = run("config")
    assert rc == 0
    readme = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                               "README.md")).read()
    start = readme.index("<!-- generated by `comfygate config` -->\n") + len(
        "<!-- generated by `comfygate config` -->\n")
    table = readme[start:readme.index("\n## ", start) + 1].rstrip("\n") + "\n"
    assert table == out, "README.md's configuration table is stale: paste `comfygate config`"


for t in (test_help_and_unknown, test_init, test_add_list_and_run_workflow, test_health,
          test_serve_takes_the_hard_descriptor_limit, test_config_mistakes_stop_it_with_code_2,
          test_readme_config_table_is_current):
    S.run(t)
S.done()
