/* tls_test_key — TEST ONLY. A throw-away EC P-256 key and self-signed certificate for the TLS
 * fuzz harness (fuzz_tls_record.c), made once with:
 *
 *   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
 *       -out cert.pem -days 36500 -subj "/CN=comfygate fuzz TEST ONLY - not a secret" \
 *       -addext "subjectAltName=DNS:localhost"
 *
 * It is public, protects nothing and must never be used for anything but tests. */
#ifndef COMFYGATE_TLS_TEST_KEY_H
#define COMFYGATE_TLS_TEST_KEY_H

static const char tls_test_cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB0TCCAXegAwIBAgIUfTdAb0cDNjAT2O91Snzu/gYScagwCgYIKoZIzj0EAwIw\n"
    "MjEwMC4GA1UEAwwnY29tZnlnYXRlIGZ1enogVEVTVCBPTkxZIC0gbm90IGEgc2Vj\n"
    "cmV0MCAXDTI2MTIwNjA2MzQxNVoYDzIxMjYxMTEyMDYzNDE1WjAyMTAwLgYDVQQD\n"
    "DCdjb21meWdhdGUgZnV6eiBURVNUIE9OTFkgLSBub3QgYSBzZWNyZXQwWTATBgcq\n"
    "hkjOPQIBBggqhkjOPQMBBwNCAAT79tE3L2rmGHPxH3sKMwk0ILzx1SPBmD1WVOEm\n"
    "YqnNUOpMIkPrUeAZyQOUqnv496y3WRlrgUdvWK3oOIBKQUS+o2kwZzAdBgNVHQ4E\n"
    "FgQU5VxBbTAIrEth+X847ZhPMN+foW8wHwYDVR0jBBgwFoAU5VxBbTAIrEth+X84\n"
    "7ZhPMN+foW8wDwYDVR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3Qw\n"
    "CgYIKoZIzj0EAwIDSAAwRQIgair87bhgFezGq2u56YNut2ddiStwX7cTvs0Z55hY\n"
    "KrcCIQDYA3kLY6egFC6rs6LnjgJgi7v3SWkNRA9G89uf+Te55A==\n"
    "-----END CERTIFICATE-----\n";

static const char tls_test_key_pem[] = /* TEST ONLY: public, protects nothing */
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgn+PwwrvVqFVisIoA\n"
    "+no67zRFR2Jb6nLQD0idfDNdRKOhRANCAAT79tE3L2rmGHPxH3sKMwk0ILzx1SPB\n"
    "mD1WVOEmYqnNUOpMIkPrUeAZyQOUqnv496y3WRlrgUdvWK3oOIBKQUS+\n"
    "-----END PRIVATE KEY-----\n";

#endif
