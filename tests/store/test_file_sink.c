/* file_sink: bytes land under the final name only after close, intact, with the right
 * SHA-256; abort and errors leave nothing behind. Driven by a real ring. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "store/file_sink.h"

struct fx {
    struct ring ring;
    char dir[64];
    int dirfd;
    struct file_sink sink;
    int done_err;
    bool done;
    unsigned char *data;
    size_t len, off;
};

static void done_cb(struct file_sink *s, int err)
{
    struct fx *f = (struct fx *)((char *)s - offsetof(struct fx, sink));
    f->done = true;
    f->done_err = err;
}

static bool finished(struct ring *r)
{
    struct fx *f = r->user;
    return f->done;
}

static void pump(struct fx *f);

static void writable_cb(struct file_sink *s)
{
    struct fx *f = (struct fx *)((char *)s - offsetof(struct fx, sink));
    pump(f);
}

/* Feeds as much as the sink takes in odd-sized pieces, then closes. */
static void pump(struct fx *f)
{
    while (f->off < f->len) {
        size_t room = file_sink_room(&f->sink);
        if (room == 0)
            return;
        size_t piece = 1 + (f->off * 7919) % 300000;
        if (piece > room)
            piece = room;
        if (piece > f->len - f->off)
            piece = f->len - f->off;
        ssize_t w = file_sink_write(&f->sink, f->data + f->off, piece);
        assert_int_equal(w, (ssize_t)piece);
        f->off += piece;
    }
    if (!f->sink.closing)
        file_sink_close(&f->sink, done_cb);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct ring_config rc = {.sq_entries = 64, .buf_count = 8, .buf_size = 4096, .max_timers = 64};
    if (ring_init(&f->ring, &rc, 0) < 0) {
        free(f);
        return -1;
    }
    f->ring.user = f;
    snprintf(f->dir, sizeof(f->dir), "/tmp/cg-sink-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->dirfd = open(f->dir, O_PATH | O_DIRECTORY);
    *state = f;
    return 0;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."));
    closedir(d);
    return n;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    close(f->dirfd);
    ring_fini(&f->ring);
    free(f->data);
    free(f);
    return 0;
}

static void run(struct fx *f)
{
    ring_stop(&f->ring);
    assert_int_equal(ring_run(&f->ring, finished), 0);
}

static void test_write_close(void **state)
{
    struct fx *f = *state;
    f->len = 10 * 1024 * 1024 + 12345;
    f->data = malloc(f->len);
    for (size_t i = 0; i < f->len; i++)
        f->data[i] = (unsigned char)(i * 131 + (i >> 11));
    assert_int_equal(file_sink_open(&f->sink, &f->ring, f->dirfd, "out.bin", 1 << 30), 0);
    f->sink.on_writable = writable_cb;
    pump(f);
    char path[128];
    snprintf(path, sizeof(path), "%s/out.bin", f->dir);
    assert_int_equal(access(path, F_OK), -1); /* not under its final name before close */
    run(f);
    assert_int_equal(f->done_err, 0);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char *back = malloc(f->len + 1);
    assert_int_equal(fread(back, 1, f->len + 1, fp), f->len);
    fclose(fp);
    assert_memory_equal(back, f->data, f->len);
    free(back);
    br_sha256_context c;
    unsigned char d[32];
    char hex[65], want[65];
    br_sha256_init(&c);
    br_sha256_update(&c, f->data, f->len);
    br_sha256_out(&c, d);
    for (int i = 0; i < 32; i++)
        sprintf(want + 2 * i, "%02x", d[i]);
    file_sink_sha256_hex(&f->sink, hex);
    assert_string_equal(hex, want);
    assert_int_equal(f->sink.size, f->len);
    assert_int_equal(count_entries(f->dir), 1); /* no .part file left */
}

static void test_abort_leaves_nothing(void **state)
{
    struct fx *f = *state;
    f->len = 3 * FILE_SINK_BUF_SIZE;
    f->data = calloc(1, f->len);
    assert_int_equal(file_sink_open(&f->sink, &f->ring, f->dirfd, "gone.bin", 1 << 30), 0);
    assert_true(file_sink_write(&f->sink, f->data, FILE_SINK_BUF_SIZE / 2) > 0);
    file_sink_abort(&f->sink, done_cb);
    run(f);
    assert_int_equal(f->done_err, -ECANCELED);
    assert_int_equal(count_entries(f->dir), 0);
}

static void test_limit(void **state)
{
    struct fx *f = *state;
    char chunk[1000] = {0};
    assert_int_equal(file_sink_open(&f->sink, &f->ring, f->dirfd, "small.bin", 1500), 0);
    assert_int_equal(file_sink_write(&f->sink, chunk, 1000), 1000);
    assert_int_equal(file_sink_write(&f->sink, chunk, 1000), -EFBIG);
    file_sink_close(&f->sink, done_cb);
    run(f);
    assert_int_equal(f->done_err, -EFBIG);
    assert_int_equal(count_entries(f->dir), 0);
}

static void test_bad_names(void **state)
{
    struct fx *f = *state;
    assert_int_equal(file_sink_open(&f->sink, &f->ring, f->dirfd, "../x", 10), -EINVAL);
    assert_int_equal(file_sink_open(&f->sink, &f->ring, f->dirfd, "a/b", 10), -EINVAL);
    assert_int_equal(file_sink_open(&f->sink, &f->ring, f->dirfd, "..", 10), -EINVAL);
    assert_int_equal(file_sink_open(&f->sink, &f->ring, f->dirfd, "", 10), -EINVAL);
}

int main(void)
{
    struct ring probe;
    struct ring_config rc = {.sq_entries = 8, .buf_count = 8, .buf_size = 4096, .max_timers = 8};
    if (ring_init(&probe, &rc, 0) < 0)
        return 77; /* no io_uring here */
    ring_fini(&probe);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
