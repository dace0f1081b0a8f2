"""comfysim's /view?preview= answers decoded by an independent decoder: Pillow (Debian's
python3-pil, the same 9.4 that real ComfyUI ran under when the transcripts were recorded).

Starts one comfysim on 127.0.0.1 (port 0), uploads test pictures, fetches their previews and
checks format, size and pixels: JPEG close to the original (and to Pillow's own JPEG at the
same quality, with the same quantisation tables), WebP exact with alpha kept. Exits 77
(skipped) without Pillow. The process is started here and ended by its PID."""
import http.client
import io
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time

try:
    from PIL import Image
except ImportError:
    print("Pillow (python3-pil) is not installed: skipped")
    sys.exit(77)

SIM = os.environ.get("COMFYSIM", "build/src/sim/comfysim")
FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILURES.append(what)


class Sim:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="comfysim-pil-")
        port_file = os.path.join(self.dir, "port")
        self.log_path = os.path.join(self.dir, "comfysim.log")
        self.log = open(self.log_path, "wb")
        self.p = subprocess.Popen([SIM, "--port", "0", "--port-file", port_file, "--root",
                                   os.path.join(self.dir, "data")],
                                  stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        end = time.time() + 20
        self.port = None
        while self.port is None:
            if self.p.poll() is not None or time.time() > end:
                raise RuntimeError("comfysim did not start:\n" + self.tail())
            try:
                with open(port_file) as f:
                    self.port = int(f.read().strip())
            except (FileNotFoundError, ValueError):
                time.sleep(0.02)

    def tail(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read()[-4000:].decode("utf-8", "replace")

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=30)
        log = self.tail()
        check(rc == 0, "comfysim exits 0 on SIGTERM (got %s)" % rc)
        check("Sanitizer" not in log and "runtime error" not in log, "no sanitizer report")


def upload(sim, name, im):
    png = io.BytesIO()
    im.save(png, format="PNG")
    b = "----pilboundary"
    body = (("--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"%s\"\r\n"
             "Content-Type: image/png\r\n\r\n" % (b, name)).encode() + png.getvalue() +
            ("\r\n--%s\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue"
             "\r\n--%s--\r\n" % (b, b)).encode())
    st, _, _ = sim.request("POST", "/upload/image", body,
                           {"Content-Type": "multipart/form-data; boundary=" + b})
    assert st == 200, st


def view(sim, name, query):
    st, hdr, data = sim.request("GET", "/view?filename=%s&type=input&%s" % (name, query))
    return st, hdr, data


def mae_per_channel(a, b):
    a, b = a.tobytes(), b.tobytes()
    n = len(a) // 3
    return [sum(abs(a[i] - b[i]) for i in range(c, len(a), 3)) / n for c in range(3)]


def pictures():
    w, h = 96, 72  # 72 rows: the last MCU row is partial
    smooth = Image.new("RGB", (w, h))
    smooth.putdata([(int(255 * x / (w - 1)), int(255 * y / (h - 1)),
                     int(128 + 90 * math.sin((x + 2 * y) / 11.0)))
                    for y in range(h) for x in range(w)])
    w, h = 45, 33  # odd sizes, alpha from 0 to 255
    rgba = Image.new("RGBA", (w, h))
    rgba.putdata([(int(200 * x / w) + 20, 120, int(200 * y / h), (x * 6 + y * 2) % 256)
                  for y in range(h) for x in range(w)])
    gray = Image.new("L", (31, 17))
    gray.putdata([(x * 8 + y * 3) % 256 for y in range(17) for x in range(31)])
    return {"smooth.png": smooth, "alpha.png": rgba, "gray.png": gray}


def pil_jpeg(im, q):
    b = io.BytesIO()
    im.convert("RGB").save(b, format="jpeg", quality=q)
    return b.getvalue()


def check_jpeg(sim, name, im, query, quality, max_err=8):
    st, hdr, data = view(sim, name, query)
    check(st == 200 and hdr.get("content-type") == "image/jpeg", "%s %s: 200 image/jpeg" %
          (name, query))
    check(hdr.get("content-disposition") == 'filename="%s"' % name,
          "%s %s: Content-Disposition keeps the name" % (name, query))
    got = Image.open(io.BytesIO(data))
    got.load()
    check(got.format == "JPEG" and got.mode == "RGB" and got.size == im.size,
          "%s %s: a %s RGB JPEG (%s %s %s)" % (name, query, im.size, got.format, got.mode,
                                               got.size))
    err = mae_per_channel(got, im.convert("RGB"))
    if max_err is not None:  # quality 1 is meant to look bad
        check(max(err) < max_err, "%s %s: mean abs error per channel %s < %d" %
              (name, query, ["%.2f" % e for e in err], max_err))
    ref = Image.open(io.BytesIO(pil_jpeg(im, quality)))
    ref.load()
    check(got.quantization == ref.quantization,
          "%s %s: Pillow's quantisation tables for quality %d" % (name, query, quality))
    diff = mae_per_channel(got, ref)
    check(max(diff) < 1.5, "%s %s: within %s of Pillow's own JPEG" %
          (name, query, ["%.2f" % e for e in diff]))


def check_webp(sim, name, im, query, mode):
    st, hdr, data = view(sim, name, query)
    check(st == 200 and hdr.get("content-type") == "image/webp", "%s %s: 200 image/webp" %
          (name, query))
    check(data[:4] == b"RIFF" and data[8:16] == b"WEBPVP8L", "%s %s: RIFF/WEBP/VP8L" %
          (name, query))
    got = Image.open(io.BytesIO(data))
    got.load()
    want = im.convert(mode)
    check(got.format == "WEBP" and got.mode == mode and got.size == im.size,
          "%s %s: a %s %s WebP (%s %s %s)" % (name, query, im.size, mode, got.format,
                                              got.mode, got.size))
    check(got.tobytes() == want.tobytes(), "%s %s: every pixel exact" % (name, query))


def check_flat(sim):
    """Transcript 06's picture: the JPEG is byte for byte what Pillow writes."""
    prompt = {"prompt": {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 3368652}},
        "2": {"class_type": "SaveImage",
              "inputs": {"images": ["1", 0], "filename_prefix": "flat"}}}}
    st, _, _ = sim.request("POST", "/prompt", json.dumps(prompt),
                           {"Content-Type": "application/json"})
    assert st == 200
    path = "/view?filename=flat_00001_.png&type=output"
    for _ in range(500):
        st, _, png = sim.request("GET", path)
        if st == 200:
            break
        time.sleep(0.02)
    st, _, data = sim.request("GET", path + "&preview=jpeg;80")
    want = pil_jpeg(Image.open(io.BytesIO(png)), 80)
    check(st == 200 and data == want and len(data) == 693,
          "flat 64x64 preview=jpeg;80: Pillow's 693 bytes exactly (got %d)" % len(data))


def main():
    sim = Sim()
    try:
        pics = pictures()
        for name, im in pics.items():
            upload(sim, name, im)
        for name, im in pics.items():
            check_jpeg(sim, name, im, "preview=jpeg;80", 80)
            check_jpeg(sim, name, im, "preview=jpeg", 90)
            check_webp(sim, name, im, "preview=webp;50", "RGBA" if im.mode == "RGBA" else "RGB")
        check_jpeg(sim, "smooth.png", pics["smooth.png"], "preview=jpeg;100", 100)
        check_jpeg(sim, "smooth.png", pics["smooth.png"], "preview=jpeg;1", 1, None)
        check_webp(sim, "alpha.png", pics["alpha.png"], "preview=webp;50&channel=rgb", "RGB")
        check_webp(sim, "alpha.png", pics["alpha.png"], "preview=jpeg;80&channel=a", "RGBA")
        for q in ("webp;101", "jpeg;99999999999999999999"):
            st, _, _ = view(sim, "smooth.png", "preview=" + q)
            check(st == 500, "preview=%s: 500 as Pillow raises (got %d)" % (q, st))
        check_flat(sim)
    finally:
        sim.stop()
    print("%d check(s) failed" % len(FAILURES) if FAILURES else "all checks passed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
