// A webhook receiver for comfygate's tests. Every request is verified with the standardwebhooks
// library (Webhook(secret).verify(body, headers)) and its X-Signature with node's crypto, then
// recorded as one JSON line in LOG_FILE before it is answered, so a test that saw an attempt
// end can read its record.
//
// usage: node webhook_receiver.js SECRET PORT_FILE LOG_FILE
//
// The URL scripts the answers: ?fail=500|429|408|410|hang&times=N makes the first N requests
// to that exact path and query fail that way (hang: never answer); &ra=VALUE adds Retry-After;
// ?big=1 answers 200 with a 1 MiB body. Anything else gets 204.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const { Webhook } = require("standardwebhooks");

const [secret, portFile, logFile] = process.argv.slice(2);
if (!secret || !portFile || !logFile) {
  console.error("usage: node webhook_receiver.js SECRET PORT_FILE LOG_FILE");
  process.exit(2);
}
const webhook = new Webhook(secret);
const key = Buffer.from(secret.slice("whsec_".length), "base64");
const counts = new Map();

function xSignatureOk(header, body) {
  const want = Buffer.from("sha256=" + crypto.createHmac("sha256", key).update(body).digest("hex"));
  const got = Buffer.from(header || "");
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

function record(req, body, n, answer) {
  let verified = false;
  let verifyError = null;
  try {
    webhook.verify(body, req.headers);
    verified = true;
  } catch (e) {
    verifyError = String(e && e.message);
  }
  const h = req.headers;
  const rec = {
    method: req.method, url: req.url, n, answer, verified, verifyError,
    xsigOk: xSignatureOk(h["x-signature"], body),
    id: h["webhook-id"] || null, timestamp: h["webhook-timestamp"] || null,
    signature: h["webhook-signature"] || null, contentType: h["content-type"] || null,
    userAgent: h["user-agent"] || null, expect: h["expect"] || null,
    receivedAt: Date.now(), body: body.toString("utf8"),
  };
  fs.appendFileSync(logFile, JSON.stringify(rec) + "\n");
}

function answer(req, res, body) {
  const url = new URL(req.url, "http://receiver");
  const n = (counts.get(req.url) || 0) + 1;
  counts.set(req.url, n);
  const fail = url.searchParams.get("fail");
  const times = parseInt(url.searchParams.get("times") || "0", 10);
  if (fail && n <= times) {
    record(req, body, n, fail);
    if (fail === "hang")
      return; // the sender's timeout ends it
    const headers = { "content-type": "text/plain" };
    if (url.searchParams.get("ra"))
      headers["retry-after"] = url.searchParams.get("ra");
    res.writeHead(parseInt(fail, 10), headers);
    res.end("refused " + fail + " \u00e9\n");
    return;
  }
  if (url.searchParams.get("big")) {
    record(req, body, n, "200-big");
    res.writeHead(200, { "content-type": "application/octet-stream" });
    res.end(Buffer.alloc(1 << 20, 120));
    return;
  }
  record(req, body, n, "204");
  res.writeHead(204);
  res.end();
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => answer(req, res, Buffer.concat(chunks)));
});
server.listen(0, "127.0.0.1", () => {
  fs.writeFileSync(portFile + ".tmp", String(server.address().port) + "\n");
  fs.renameSync(portFile + ".tmp", portFile);
});
process.on("SIGTERM", () => process.exit(0));
