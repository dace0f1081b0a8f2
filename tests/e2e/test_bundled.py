"""Every bundled workflow (workflows/*.json) end to end: the real gateway against one comfysim
that has the models the workflows default to. Each job must succeed with PNGs of the size (and,
for the sprite, the RGBA colour type) the workflow promises."""
import os
import zlib

import gw

MODELS = ("checkpoints=sd_xl_base_1.0.safetensors,v1-5-pruned-emaonly.safetensors;"
          "upscale_models=RealESRGAN_x2.pth")
S = gw.Suite()
state = {"seen": set()}


def setup():
    state["sim"] = gw.sim("--models", MODELS)
    state["gw"] = gw.gateway({"COMFYUI_URL": "http://127.0.0.1:%d" % state["sim"].port,
                              "COMFYUI_PROBE_INTERVAL_MS": "200"})
    state["port"] = state["gw"].port
    gw.wait_backends(state["port"], 1)


def ihdr(raw):
    """(width, height, colour type) from a PNG's IHDR, which must come first and be intact."""
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", raw[:8]
    assert raw[12:16] == b"IHDR", raw[12:16]
    assert zlib.crc32(raw[12:29]) == int.from_bytes(raw[29:33], "big"), "IHDR CRC"
    return (int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big"), raw[25])


def run_job(workflow, inputs, size, colour_type, count=1):
    """Submits one job, waits for it and checks every output PNG; returns the finished job."""
    state["seen"].add(workflow)
    st, _, _, j = gw.request(state["port"], "POST", "/jobs",
                             {"workflowId": workflow, "inputs": inputs})
    assert st == 202, (st, j)
    done = gw.wait_job(state["port"], j["jobId"], timeout=120)
    assert done["status"] == "succeeded", done
    assert len(done["outputs"]) == count, done["outputs"]
    for out in done["outputs"]:
        st, h, raw, _ = gw.request(state["port"], "GET", out["url"])
        assert st == 200 and h["content-type"] == "image/png", (st, h)
        assert len(raw) == out["size"]
        got = ihdr(raw)
        assert got == size + (colour_type,), (workflow, got)
    return done


def test_smoke():
    run_job("smoke", {"width": 40, "height": 24, "batch_size": 2}, (40, 24), 2, count=2)


def test_sdxl_realism_small():
    run_job("sdxl_realism_v1", {"prompt": "a lighthouse at dusk", "width": 256, "height": 320,
                                "steps": 2, "seed": 11}, (256, 320), 2)


def test_sprite_transparent_bg_is_rgba():
    # ImageToMask(red) -> InvertMask -> JoinImageWithAlpha: colour type 6 (RGBA)
    run_job("sprite_transparent_bg", {"prompt": "a knight", "seed": 3}, (512, 512), 6)


def test_icon_512():
    run_job("icon_512", {"prompt": "a paper plane", "seed": 5}, (512, 512), 2)


def test_icon_512_upscaled():
    # comfysim's ImageUpscaleWithModel scales by the digit next to the 'x' in the model name
    # (RealESRGAN_x2.pth: 2), bilinearly, so 512 becomes 1024.
    run_job("icon_512", {"prompt": "a paper plane", "seed": 5, "upscale": True},
            (1024, 1024), 2)


def test_every_bundled_workflow_was_run():
    bundled = {f[:-5] for f in os.listdir(gw.WORKFLOWS) if f.endswith(".json")}
    assert bundled <= state["seen"], "not exercised: %s" % sorted(bundled - state["seen"])


def teardown():
    st = state["gw"].stop()
    state["sim"].kill()
    assert st == 0, state["gw"].tail()


if __name__ == "__main__":
    setup()
    try:
        for t in (test_smoke, test_sdxl_realism_small, test_sprite_transparent_bg_is_rgba,
                  test_icon_512, test_icon_512_upscaled, test_every_bundled_workflow_was_run):
            S.run(t)
    finally:
        S.run(teardown)
    S.done()
