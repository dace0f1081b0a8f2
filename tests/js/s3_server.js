// A real S3-compatible server for comfygate's tests: s3rver (npm) keeps the buckets and objects.
// s3rver checks Signature Version 2 but not Version 4 ("unimplemented"), so every request is
// first checked here with AWS's own SigV4 implementation, @smithy/signature-v4 (what the AWS
// SDKs sign with): the Authorization header form and presigned URLs, with access key S3RVER and
// secret S3RVER. A request without a valid signature gets S3's 403 SignatureDoesNotMatch (or
// AccessDenied once a presigned URL has expired); unsigned requests are refused too. Key STSKEY
// stands for temporary credentials: its requests must carry (and sign) the session token in
// STS_TOKEN, as x-amz-security-token or X-Amz-Security-Token, else 403 InvalidToken.
// Usage: node s3_server.js DATA_DIR PORT_FILE [PORT] — creates bucket "comfygate", listens on
// 127.0.0.1 (PORT, or any free port) and writes the bound port to PORT_FILE.
'use strict';
const fs = require('fs');
const S3rver = require('s3rver');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Hash } = require('@smithy/hash-node');

// an STS-like token: long, with characters a URL must escape
const STS_TOKEN = 'IQoJb3JpZ2luX2VjE/+=' + 'FwoGZXIvYXdzEJr//////////wEaDM+'.repeat(30) + '==';
const SECRETS = { S3RVER: 'S3RVER', STSKEY: 'STSSECRET' };
const TOKENS = { STSKEY: STS_TOKEN };
const [dir, portFile, port] = process.argv.slice(2);

function s3Error(ctx, status, code, message) {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${message}</Message></Error>`;
}

// "20130524T000000Z" -> Date
function amzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  return m ? new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])) : null;
}

function parseCredential(cred) {
  const [accessKeyId, date, region, service, term] = (cred || '').split('/');
  return term === 'aws4_request' && service === 's3' ? { accessKeyId, date, region } : null;
}

// The request as the client signed it: the raw (still encoded) path, the query, and only the
// headers it says it signed.
function httpRequest(ctx, signedHeaders, dropQuery) {
  const raw = ctx.req.url;
  const q = raw.indexOf('?');
  const query = {};
  for (const [k, v] of new URLSearchParams(q < 0 ? '' : raw.slice(q + 1))) {
    if (!dropQuery(k)) query[k] = v;
  }
  const headers = {};
  for (const h of signedHeaders) {
    if (ctx.req.headers[h] === undefined) return null;
    headers[h] = String(ctx.req.headers[h]).trim().replace(/\s+/g, ' ');
  }
  return { method: ctx.method, protocol: 'http:', hostname: headers.host || '',
           path: q < 0 ? raw : raw.slice(0, q), query, headers };
}

function signer(cred) {
  return new SignatureV4({
    credentials: { accessKeyId: cred.accessKeyId, secretAccessKey: SECRETS[cred.accessKeyId],
                   sessionToken: TOKENS[cred.accessKeyId] },
    region: cred.region, service: 's3', sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: false, applyChecksum: false,
  });
}

async function verify(ctx, next) {
  const auth = ctx.get('authorization');
  const q = ctx.query;
  let cred;
  let provided;
  let expected;
  if (auth.startsWith('AWS4-HMAC-SHA256 ')) {
    const f = Object.fromEntries(auth.slice(17).split(',').map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()];
    }));
    cred = parseCredential(f.Credential);
    const date = amzDate(ctx.get('x-amz-date'));
    if (!cred || !date || !f.SignedHeaders || !ctx.get('x-amz-content-sha256')) {
      return s3Error(ctx, 400, 'AuthorizationHeaderMalformed', 'bad Authorization header');
    }
    if (!SECRETS[cred.accessKeyId]) return s3Error(ctx, 403, 'InvalidAccessKeyId', 'unknown key');
    if (TOKENS[cred.accessKeyId] && (ctx.get('x-amz-security-token') !== TOKENS[cred.accessKeyId] ||
        !f.SignedHeaders.split(';').includes('x-amz-security-token'))) {
      return s3Error(ctx, 403, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');
    }
    const req = httpRequest(ctx, f.SignedHeaders.split(';'), () => false);
    if (!req) return s3Error(ctx, 403, 'SignatureDoesNotMatch', 'a signed header is missing');
    const signed = await signer(cred).sign(req, { signingDate: date });
    expected = /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization)[1];
    provided = f.Signature;
  } else if (q['X-Amz-Algorithm'] === 'AWS4-HMAC-SHA256') {
    cred = parseCredential(q['X-Amz-Credential']);
    const date = amzDate(q['X-Amz-Date']);
    const expires = Number(q['X-Amz-Expires']);
    if (!cred || !date || !(expires >= 1 && expires <= 604800) || !q['X-Amz-SignedHeaders']) {
      return s3Error(ctx, 400, 'AuthorizationQueryParametersError', 'bad presigned URL');
    }
    if (!SECRETS[cred.accessKeyId]) return s3Error(ctx, 403, 'InvalidAccessKeyId', 'unknown key');
    if (TOKENS[cred.accessKeyId] && q['X-Amz-Security-Token'] !== TOKENS[cred.accessKeyId]) {
      return s3Error(ctx, 403, 'InvalidToken', 'The provided token is malformed or otherwise invalid.');
    }
    if (Date.now() > date.getTime() + expires * 1000) {
      return s3Error(ctx, 403, 'AccessDenied', 'Request has expired');
    }
    const req = httpRequest(ctx, q['X-Amz-SignedHeaders'].split(';'),
                            (k) => k.startsWith('X-Amz-'));
    if (!req) return s3Error(ctx, 403, 'SignatureDoesNotMatch', 'a signed header is missing');
    // as AWS's S3 presigner does it: the payload is UNSIGNED-PAYLOAD, and that is not a header
    req.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    const only = new Set(['x-amz-content-sha256']);
    const signed = await signer(cred).presign(req, {
      signingDate: date, expiresIn: expires, unhoistableHeaders: only, unsignableHeaders: only,
    });
    expected = signed.query['X-Amz-Signature'];
    provided = q['X-Amz-Signature'];
  } else {
    return s3Error(ctx, 403, 'AccessDenied', 'requests must be signed with SigV4');
  }
  if (provided !== expected) {
    return s3Error(ctx, 403, 'SignatureDoesNotMatch',
                   'The request signature we calculated does not match the signature you provided.');
  }
  ctx.state.sigv4 = cred.accessKeyId;
  if (cred.accessKeyId !== 'S3RVER') { // s3rver knows one account only: checked, so pass as it
    const as = `${cred.accessKeyId}/`;
    if (auth) {
      ctx.req.headers.authorization = auth.replace(`Credential=${as}`, 'Credential=S3RVER/');
    } else {
      const p = new URLSearchParams(ctx.querystring);
      p.set('X-Amz-Credential', p.get('X-Amz-Credential').replace(as, 'S3RVER/'));
      ctx.querystring = p.toString();
    }
  }
  return next();
}

const server = new S3rver({
  address: '127.0.0.1',
  port: port ? Number(port) : 0,
  silent: true,
  directory: dir,
  configureBuckets: [{ name: 'comfygate' }],
});
server.middleware.unshift(verify); // before s3rver's own routing and (V2-only) authentication
server.run().then(({ port: bound }) => {
  fs.writeFileSync(portFile + '.tmp', String(bound));
  fs.renameSync(portFile + '.tmp', portFile);
}, (err) => {
  console.error(err);
  process.exit(1);
});
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
