/* instance: a stable id per slot, distinct between holders at the same time, the same again
 * once a slot is free; and the id survives (or replaces) what is in the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/instance.h"

static void slots(void **state)
{
    (void)state;
    char dir[] = "/tmp/cg-instance-XXXXXX", err[256];
    assert_non_null(mkdtemp(dir));
    struct instance a, b, c;
    assert_int_equal(instance_take(&a, dir, err, sizeof(err)), 0);
    assert_int_equal(a.slot, 0);
    assert_int_equal(strlen(a.id), 16);
    /* held: the next taker (another open file, as another process would be) gets slot 1 */
    assert_int_equal(instance_take(&b, dir, err, sizeof(err)), 0);
    assert_int_equal(b.slot, 1);
    assert_string_not_equal(a.id, b.id);
    char first[17];
    memcpy(first, a.id, sizeof(first));
    instance_release(&a);
    /* free again: the same slot, the same id (what a restarted process needs) */
    assert_int_equal(instance_take(&c, dir, err, sizeof(err)), 0);
    assert_int_equal(c.slot, 0);
    assert_string_equal(c.id, first);
    instance_release(&b);
    instance_release(&c);
    /* a damaged file gets a fresh id */
    char path[128];
    snprintf(path, sizeof(path), "%s/instance-id", dir);
    FILE *f = fopen(path, "w");
    fputs("not an id\n", f);
    fclose(f);
    assert_int_equal(instance_take(&c, dir, err, sizeof(err)), 0);
    assert_string_not_equal(c.id, first);
    assert_int_equal(strspn(c.id, "0123456789abcdef"), 16);
    instance_release(&c);
    assert_int_equal(instance_take(&c, "/proc/nope", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/proc/nope"));
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(slots)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
