/* test_auth_keys — API_KEYS parsing (every malformed entry is refused with a message that names
 * the entry and never contains the key), the default tenant and key id (checked against
 * SHA-256 prefixes computed outside this code), lookup over the whole table, and the
 * constant-time comparison's answers (its timing is not measured here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth_common.c"
#include "auth/auth_keys.c"

#define KEY_A "0123456789abcdef"         /* sha256 prefix 9f9f5111f7b2 (Python hashlib) */
#define KEY_B "sk_live_ABCDEFGHIJKLMNOP" /* 3819645620bf */
#define KEY_C "user-key-0000000001"      /* e597153b5a50 */

static void parse_ok(struct auth_keys *ks, const char *text)
{
    char err[256];
    int rc = auth_keys_parse(ks, text, err, sizeof err);
    if (rc != 0)
        fail_msg("parse failed: %s", err);
}

/* Parses text, expects an error mentioning `needle`, and checks that the message holds none of
 * the secrets given. */
static void parse_err(const char *text, const char *needle, const char *secret)
{
    struct auth_keys ks;
    char err[256];
    assert_int_equal(auth_keys_parse(&ks, text, err, sizeof err), -1);
    assert_null(ks.v);
    assert_int_equal(ks.n, 0);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
    if (secret && strstr(err, secret))
        fail_msg("error \"%s\" echoes the key", err);
    auth_keys_free(&ks);
}

static void test_parse_roles_tenants(void **state)
{
    struct auth_keys ks;
    parse_ok(&ks, KEY_A ":admin," KEY_B ":user:acme-corp," KEY_C ":user:org:team@x.io");
    assert_int_equal(ks.n, 3);
    assert_int_equal(ks.v[0].role, AUTH_ADMIN);
    assert_string_equal(ks.v[0].tenant, "key-9f9f5111f7b2");
    assert_string_equal(ks.v[0].id, "9f9f5111f7b2");
    assert_int_equal(ks.v[1].role, AUTH_USER);
    assert_string_equal(ks.v[1].tenant, "acme-corp");
    assert_string_equal(ks.v[1].id, "3819645620bf");
    /* everything after the second ':' is the tenant */
    assert_string_equal(ks.v[2].tenant, "org:team@x.io");
    assert_string_equal(ks.v[2].id, "e597153b5a50");
    auth_keys_free(&ks);
    assert_null(ks.v);
    auth_keys_free(&ks); /* twice is harmless */
}

static void test_parse_empty_and_spaces(void **state)
{
    struct auth_keys ks;
    parse_ok(&ks, NULL);
    assert_int_equal(ks.n, 0);
    parse_ok(&ks, "");
    assert_int_equal(ks.n, 0);
    parse_ok(&ks, " \t\n");
    assert_int_equal(ks.n, 0);
    parse_ok(&ks, "  " KEY_A ":admin ,\n\t" KEY_B ":user\r\n");
    assert_int_equal(ks.n, 2);
    assert_string_equal(ks.v[1].id, "3819645620bf");
    assert_null(auth_keys_lookup(&ks, "nothing-matches-this", 20));
    auth_keys_free(&ks);
}

static void test_parse_structure_errors(void **state)
{
    parse_err(KEY_A ":admin,," KEY_B ":user", "entry 2 is empty", KEY_A);
    parse_err(KEY_A ":admin,", "entry 2 is empty", KEY_A);
    parse_err("," KEY_A ":admin", "entry 1 is empty", KEY_A);
    parse_err(KEY_A, "entry 1: expected key:role[:tenant]", KEY_A);
    parse_err(KEY_A ":admin," KEY_B, "entry 2: expected key:role", KEY_B);
    parse_err(":admin", "entry 1: the key is empty", NULL);
    parse_err(KEY_A ":", "unknown role", KEY_A);
}

static void test_parse_key_errors(void **state)
{
    parse_err("0123456789abcde:user", "entry 1: the key has 15 characters (16 to 256",
              "0123456789abcde");
    parse_err("0123456789 abcdef:user", "visible ASCII at position 11", "0123456789 abcdef");
    parse_err("0123456789\tabcdef:user", "visible ASCII", "0123456789\tabcdef");
    parse_err("0123456789\x7f"
              "abcdef:user",
              "visible ASCII", NULL);
    parse_err("0123456789\xc3\xa9"
              "abcdef:user",
              "visible ASCII", NULL);
    char text[600];
    memset(text, 'k', 257);
    strcpy(text + 257, ":user");
    parse_err(text, "the key has 257 characters", NULL);

    struct auth_keys ks;
    memset(text, 'k', 256);
    strcpy(text + 256, ":user");
    parse_ok(&ks, text);
    assert_non_null(auth_keys_lookup(&ks, text, 256));
    assert_null(auth_keys_lookup(&ks, text, 255));
    auth_keys_free(&ks);
    parse_ok(&ks, "0123456789abcdeZ:user"); /* exactly 16 */
    assert_int_equal(ks.n, 1);
    auth_keys_free(&ks);
}

static void test_parse_role_tenant_errors(void **state)
{
    parse_err(KEY_A ":root", "entry 1 (key id 9f9f5111f7b2): unknown role", KEY_A);
    parse_err(KEY_A ":Admin", "unknown role", KEY_A);
    /* A misordered entry puts the key in the role field: the message must not echo it. */
    parse_err("user:" KEY_B, "the key has 4 characters", KEY_B);
    parse_err(KEY_A ":" KEY_B, "unknown role", KEY_B);
    parse_err(KEY_A ":user:", "the tenant must be 1 to 128", KEY_A);
    parse_err(KEY_A ":user:a/b", "the tenant must be", KEY_A);
    parse_err(KEY_A ":user:a b", "the tenant must be", KEY_A);
    parse_err(KEY_A ":user:" KEY_B "/", "the tenant must be", KEY_B);
    char text[400];
    int n = snprintf(text, sizeof text, "%s:user:", KEY_A);
    memset(text + n, 't', 129);
    text[n + 129] = '\0';
    parse_err(text, "the tenant must be", KEY_A);
    text[n + 128] = '\0';
    struct auth_keys ks;
    parse_ok(&ks, text);
    assert_int_equal(strlen(ks.v[0].tenant), 128);
    auth_keys_free(&ks);
}

static void test_parse_duplicates(void **state)
{
    parse_err(KEY_A ":admin," KEY_B ":user," KEY_A ":user",
              "entries 1 and 3 have the same key (key id 9f9f5111f7b2)", KEY_A);
    parse_err(KEY_A ":admin," KEY_A ":admin", "entries 1 and 2 have the same key", KEY_A);
}

/* Two different keys with the same 12-digit id cannot be found by search, so the check runs on
 * a hand-made table. */
static void test_id_collision(void **state)
{
    struct auth_key v[2];
    memset(v, 0, sizeof v);
    memset(v[1].hash, 1, sizeof v[1].hash);
    strcpy(v[0].id, "aaaaaaaaaaaa");
    strcpy(v[1].id, "aaaaaaaaaaaa");
    char err[256];
    assert_int_equal(ak_check_unique(v, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "different keys with the same key id aaaaaaaaaaaa"));
    strcpy(v[1].id, "aaaaaaaaaaab");
    assert_int_equal(ak_check_unique(v, 1, err, sizeof err), 0);
}

static void test_too_many_entries(void **state)
{
    size_t cap = (AUTH_KEYS_MAX + 1) * 32 + 1;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = 0;
    for (int i = 0; i < AUTH_KEYS_MAX; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s%s%016d:user", i ? "," : "", "k", i);
    struct auth_keys ks;
    parse_ok(&ks, text);
    assert_int_equal(ks.n, AUTH_KEYS_MAX);
    char probe[32];
    snprintf(probe, sizeof probe, "k%016d", AUTH_KEYS_MAX - 1);
    const struct auth_key *k = auth_keys_lookup(&ks, probe, strlen(probe));
    assert_ptr_equal(k, &ks.v[AUTH_KEYS_MAX - 1]);
    auth_keys_free(&ks);
    snprintf(text + n, cap - n, ",k%016d:user", AUTH_KEYS_MAX);
    parse_err(text, "more than 1024 entries", NULL);
    free(text);
}

static void test_lookup(void **state)
{
    struct auth_keys ks;
    parse_ok(&ks, KEY_A ":admin," KEY_B ":user:acme," KEY_C ":user");
    assert_ptr_equal(auth_keys_lookup(&ks, KEY_A, strlen(KEY_A)), &ks.v[0]);
    assert_ptr_equal(auth_keys_lookup(&ks, KEY_B, strlen(KEY_B)), &ks.v[1]);
    assert_ptr_equal(auth_keys_lookup(&ks, KEY_C, strlen(KEY_C)), &ks.v[2]);
    /* prefixes, extensions, one changed character, case */
    assert_null(auth_keys_lookup(&ks, KEY_B, strlen(KEY_B) - 1));
    assert_null(auth_keys_lookup(&ks, KEY_B "x", strlen(KEY_B) + 1));
    assert_null(auth_keys_lookup(&ks, "sk_live_ABCDEFGHIJKLMNOQ", strlen(KEY_B)));
    assert_null(auth_keys_lookup(&ks, "SK_LIVE_ABCDEFGHIJKLMNOP", strlen(KEY_B)));
    assert_null(auth_keys_lookup(&ks, "", 0));
    assert_null(auth_keys_lookup(&ks, KEY_A, 15));
    /* not NUL-terminated: only len bytes count */
    char buf[64];
    memcpy(buf, KEY_A "garbage", sizeof KEY_A + 7);
    assert_ptr_equal(auth_keys_lookup(&ks, buf, strlen(KEY_A)), &ks.v[0]);
    auth_keys_free(&ks);
    assert_null(auth_keys_lookup(&ks, KEY_A, strlen(KEY_A)));
}

static void test_key_id_and_flags(void **state)
{
    char id[AUTH_KEY_ID_LEN + 1];
    auth_key_id(KEY_C, strlen(KEY_C), id);
    assert_string_equal(id, "e597153b5a50");
    struct auth_keys ks;
    parse_ok(&ks, "aaaa.bbbbbb.cccccc:user,aaaa.bbbbbb.cc.ccc:user,aaaabbbbbbcccccc:user");
    assert_true(ks.v[0].two_dots);
    assert_false(ks.v[1].two_dots);
    assert_false(ks.v[2].two_dots);
    auth_keys_free(&ks);
}

static void test_ct_equal_and_common(void **state)
{
    assert_true(auth_ct_equal("abcdef", "abcdef", 6));
    assert_false(auth_ct_equal("abcdef", "xbcdef", 6));
    assert_false(auth_ct_equal("abcdef", "abcdex", 6));
    assert_true(auth_ct_equal("abc", "xyz", 0));
    uint8_t a[32] = {0}, b[32] = {0};
    b[31] = 0x80;
    assert_false(auth_ct_equal(a, b, 32));
    b[31] = 0;
    assert_true(auth_ct_equal(a, b, 32));

    enum auth_role r;
    assert_int_equal(auth_role_parse("admin", 5, &r), 0);
    assert_int_equal(r, AUTH_ADMIN);
    assert_int_equal(auth_role_parse("user", 4, &r), 0);
    assert_int_equal(r, AUTH_USER);
    assert_int_equal(auth_role_parse("admin", 4, &r), -1);
    assert_int_equal(auth_role_parse("users", 5, &r), -1);
    assert_string_equal(auth_role_name(AUTH_ADMIN), "admin");
    assert_string_equal(auth_role_name((enum auth_role)7), "unknown");
    assert_true(auth_tenant_valid("a.b_c:d@e-f09AZ", 15));
    assert_false(auth_tenant_valid("", 0));
    assert_false(auth_tenant_valid("a\0b", 3));
    assert_false(auth_tenant_valid("a/b", 3));
    assert_false(auth_tenant_valid("é", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_roles_tenants),
        cmocka_unit_test(test_parse_empty_and_spaces),
        cmocka_unit_test(test_parse_structure_errors),
        cmocka_unit_test(test_parse_key_errors),
        cmocka_unit_test(test_parse_role_tenant_errors),
        cmocka_unit_test(test_parse_duplicates),
        cmocka_unit_test(test_id_collision),
        cmocka_unit_test(test_too_many_entries),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_key_id_and_flags),
        cmocka_unit_test(test_ct_equal_and_common),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
