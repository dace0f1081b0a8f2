/* config_errors — a bad setting stops the gateway before it listens: exit code 2 and a message
 * on stderr naming the setting. That includes TLS files that are missing, unreadable, not PEM,
 * not X.509, encrypted, or a key that is not the certificate's. Also the `config` table and
 * --version, which exit 0. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts.h"
#include "ts_proc.h"
#include "ts_tls.h"

struct bad {
    const char *env;   /* NAME=value */
    const char *words; /* the message must contain this */
};

static void test_bad_values(void)
{
    static const struct bad cases[] = {
        {"PORT=abc", "PORT"},
        {"PORT=70000", "PORT"},
        {"PORT=-1", "PORT"},
        {"PORT=", "PORT"},
        {"PORT= 80", "PORT"},
        {"LOG_LEVEL=loud", "LOG_LEVEL"},
        {"ACCESS_LOG=maybe", "ACCESS_LOG"},
        {"THREADS=100000", "THREADS"},
        {"MAX_BODY_BYTES=12abc", "MAX_BODY_BYTES"},
        {"MAX_HEADER_COUNT=1", "MAX_HEADER_COUNT"},
        {"HEADER_TIMEOUT_MS=0", "HEADER_TIMEOUT_MS"},
        {"HEADER_TIMEOUT_MS=99999999999999999999999", "HEADER_TIMEOUT_MS"},
        {"RECV_BUFFERS=1000", "RECV_BUFFERS"},
        {"STATIC_DIR=/nonexistent/comfygate/static", "STATIC_DIR"},
        {NULL, NULL},
    };
    for (const struct bad *b = cases; b->env; b++) {
        char err[4096];
        const char *env[] = {b->env, NULL};
        const char *args[] = {"serve", NULL};
        int rc = ts_run_bin(args, env, err, sizeof(err), 20000);
        TS_CHECKF(rc == 2, "%s: exit %d, want 2 (stderr: %s)", b->env, rc, err);
        TS_CHECKF(strstr(err, b->words) != NULL, "%s: message does not name it: %s", b->env, err);
        TS_CHECKF(strncmp(err, "comfygate: ", 11) == 0, "%s: message: %s", b->env, err);
    }
}

static void test_bad_flags(void)
{
    char err[4096];
    const char *a1[] = {"serve", "--port", "abc", NULL};
    TS_CHECK_INT(ts_run_bin(a1, NULL, err, sizeof(err), 20000), 2);
    TS_CHECK(strstr(err, "PORT") != NULL);
    const char *a2[] = {"serve", "--set", "NO_SUCH_SETTING=1", NULL};
    TS_CHECK_INT(ts_run_bin(a2, NULL, err, sizeof(err), 20000), 2);
    TS_CHECK(strstr(err, "NO_SUCH_SETTING") != NULL);
    const char *a3[] = {"frobnicate", NULL};
    TS_CHECK_INT(ts_run_bin(a3, NULL, err, sizeof(err), 20000), 2);
    const char *a4[] = {"serve", "--bogus", NULL};
    TS_CHECK_INT(ts_run_bin(a4, NULL, err, sizeof(err), 20000), 2);
}

/* Runs `serve` with TLS_CERT_FILE=cert and TLS_KEY_FILE=key (NULL: unset); wants exit 2 and
 * a message containing words. */
static void tls_bad(int line, const char *cert, const char *key, const char *words)
{
    char ce[600], ke[600], err[4096];
    snprintf(ce, sizeof(ce), "TLS_CERT_FILE=%s", cert ? cert : "");
    snprintf(ke, sizeof(ke), "TLS_KEY_FILE=%s", key ? key : "");
    const char *env[] = {ce, ke, NULL};
    const char *args[] = {"serve", NULL};
    int rc = ts_run_bin(args, env, err, sizeof(err), 20000);
    if (rc != 2 || !strstr(err, words) || strncmp(err, "comfygate: ", 11) != 0)
        ts_fail(__FILE__, line, "cert %s key %s: exit %d, want 2 and \"%s\": %s", cert ? cert : "-",
                key ? key : "-", rc, words, err);
}

static void test_bad_tls(void)
{
    if (!ts_tls_tool_available()) {
        ts_skip("the openssl tool is not installed");
        return;
    }
    struct ts_certs k;
    TS_REQUIRE(ts_certs_make(&k) == 0);
    char p[8][400];
    for (int i = 0; i < 8; i++)
        snprintf(p[i], sizeof(p[i]), "%s/bad%d.pem", k.dir, i);
    static const char not_b64[] = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
                                  "-----END CERTIFICATE-----\n";
    static const char not_der[] = "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n"
                                  "-----END CERTIFICATE-----\n";
    static const char no_end[] = "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n";
    TS_REQUIRE(ts_write_file(p[0], not_b64, sizeof(not_b64) - 1) == 0);
    TS_REQUIRE(ts_write_file(p[1], not_der, sizeof(not_der) - 1) == 0);
    TS_REQUIRE(ts_write_file(p[2], "just some text\n", 15) == 0);
    TS_REQUIRE(ts_write_file(p[3], no_end, sizeof(no_end) - 1) == 0);
    TS_REQUIRE(ts_write_file(p[4], "", 0) == 0);
    const char *enc[] = {"openssl",  "pkey",        "-in",  k.rsa_key, "-aes128",
                         "-passout", "pass:secret", "-out", p[5],      NULL};
    char out[2048];
    TS_REQUIRE(ts_run_tool(enc, NULL, NULL, out, sizeof(out), 20000) == 0);

    tls_bad(__LINE__, k.rsa_chain, NULL, "TLS_KEY_FILE"); /* one without the other */
    tls_bad(__LINE__, NULL, k.rsa_key, "TLS_CERT_FILE");
    tls_bad(__LINE__, "/nonexistent/cert.pem", k.rsa_key, "TLS_CERT_FILE /nonexistent/cert.pem");
    tls_bad(__LINE__, k.rsa_chain, "/nonexistent/key.pem", "TLS_KEY_FILE /nonexistent/key.pem");
    tls_bad(__LINE__, k.dir, k.rsa_key, "not a regular file");
    tls_bad(__LINE__, p[0], k.rsa_key, "malformed PEM");
    tls_bad(__LINE__, p[1], k.rsa_key, "not valid DER X.509");
    tls_bad(__LINE__, p[2], k.rsa_key, "no PEM CERTIFICATE");
    tls_bad(__LINE__, p[3], k.rsa_key, "no END line");
    tls_bad(__LINE__, p[4], k.rsa_key, "no PEM CERTIFICATE");
    tls_bad(__LINE__, k.rsa_chain, p[2], "no PEM PRIVATE KEY");
    tls_bad(__LINE__, k.rsa_chain, k.ca, "no PEM PRIVATE KEY"); /* a certificate, no key */
    tls_bad(__LINE__, k.rsa_chain, p[5], "encrypted");
    tls_bad(__LINE__, k.rsa_chain, k.other_key, "does not match");
    tls_bad(__LINE__, k.ec_chain, k.rsa_key, "holds an RSA key");
    tls_bad(__LINE__, k.rsa_chain, k.ec_key, "holds an EC key");
    if (geteuid() != 0) { /* root reads anything: this case only means something for others */
        snprintf(p[6], sizeof(p[6]), "%s/unreadable.key", k.dir);
        TS_REQUIRE(ts_write_file(p[6], "x", 1) == 0 && chmod(p[6], 0) == 0);
        tls_bad(__LINE__, k.rsa_chain, p[6], "Permission denied");
    }
    char err[4096];
    const char *cache[] = {"TLS_SESSION_CACHE_BYTES=lots", NULL};
    const char *args[] = {"serve", NULL};
    TS_CHECK_INT(ts_run_bin(args, cache, err, sizeof(err), 20000), 2);
    TS_CHECK(strstr(err, "TLS_SESSION_CACHE_BYTES") != NULL);
    if (ts_case_failures() == 0)
        ts_certs_remove(&k);
}

static void test_config_table(void)
{
    char err[512];
    const char *args[] = {"config", NULL};
    TS_CHECK_INT(ts_run_bin(args, NULL, err, sizeof(err), 20000), 0);
    TS_CHECK_STR(err, "");
    const char *v[] = {"--version", NULL};
    TS_CHECK_INT(ts_run_bin(v, NULL, err, sizeof(err), 20000), 0);
}

static const struct ts_test tests[] = {
    {"bad setting values: exit 2 with a message", test_bad_values},
    {"bad command line: exit 2", test_bad_flags},
    {"bad TLS files and settings: exit 2 with a message", test_bad_tls},
    {"config table and --version: exit 0", test_config_table},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return ts_main(argc, argv, tests);
}
