/* storage: the provider interface with the local provider — staging directories, commits that
 * make a staged file's name durable (directory fsyncs through a real ring), keys, locate, and
 * the names that can never reach the file system. */
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

#include <cmocka.h>

#include "store/storage.h"

struct fx {
    struct ring ring;
    char dir[64];
    struct storage st;
    struct storage_commit c;
    int done_err;
    int ndone;
};

static void commit_done(struct storage_commit *c, int err)
{
    struct fx *f = (struct fx *)((char *)c - offsetof(struct fx, c));
    f->ndone++;
    f->done_err = err;
    ring_stop(&f->ring);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cg-storage-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    struct ring_config rc = {.sq_entries = 64, .buf_count = 8, .buf_size = 4096, .max_timers = 16};
    assert_int_equal(ring_init(&f->ring, &rc, 0), 0);
    char err[256];
    struct storage_config cfg = {.provider = "local", .local_path = f->dir};
    assert_int_equal(storage_open(&f->st, &cfg, err, sizeof(err)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    storage_close(&f->st);
    ring_fini(&f->ring);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void write_file(int dirfd, const char *name, const char *text)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int run_commit(struct fx *f, const char *job, const char *name)
{
    memset(&f->c, 0, sizeof(f->c));
    f->c.ring = &f->ring;
    f->c.job_id = job;
    f->c.name = name;
    f->c.done = commit_done;
    f->ndone = 0;
    int rc = storage_commit(&f->st, &f->c);
    if (rc < 0)
        return rc;
    if (!f->ndone) {
        f->ring.stopping = false;
        assert_int_equal(ring_run(&f->ring, NULL), 0);
    }
    assert_int_equal(f->ndone, 1); /* done runs exactly once */
    return f->done_err;
}

/* stage → write → commit → locate finds the very bytes, under the documented key. */
static void stage_commit_locate(void **state)
{
    struct fx *f = *state;
    const char *job = "6f1c0a1e-0000-4000-8000-000000000001";
    int dfd = storage_stage_open(&f->st, job);
    assert_true(dfd >= 0);
    write_file(dfd, "img_00001_.png", "PNGDATA");
    close(dfd);
    /* staging the same job twice is fine (a retried attempt) */
    dfd = storage_stage_open(&f->st, job);
    assert_true(dfd >= 0);
    close(dfd);

    assert_int_equal(run_commit(f, job, "img_00001_.png"), 0);
    char want[128];
    snprintf(want, sizeof(want), "outputs/%s/img_00001_.png", job);
    assert_string_equal(f->c.key, want);
    assert_int_equal(f->c.fd[0], -1); /* the directory descriptors are closed again */
    assert_int_equal(f->c.fd[1], -1);

    struct storage_loc loc;
    assert_int_equal(storage_locate(&f->st, job, "img_00001_.png", f->c.key, &loc), 0);
    assert_int_equal(loc.kind, STORAGE_LOC_FILE);
    int fd = openat(loc.dirfd, loc.path, O_RDONLY);
    assert_true(fd >= 0);
    char buf[16] = "";
    assert_int_equal(read(fd, buf, sizeof(buf)), 7);
    assert_memory_equal(buf, "PNGDATA", 7);
    close(fd);
    /* the files really are under STORAGE_LOCAL_PATH/outputs/<job>/ */
    char path[256];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/outputs/%s/img_00001_.png", f->dir, job);
    assert_int_equal(stat(path, &sb), 0);
}

/* A commit of a job that was never staged reports the error through done, once. */
static void commit_without_stage(void **state)
{
    struct fx *f = *state;
    assert_int_equal(run_commit(f, "never-staged", "a.png"), -ENOENT);
}

/* Names that could leave the outputs directory are refused at every entry point. */
static void hostile_names(void **state)
{
    struct fx *f = *state;
    static const char *const bad[] = {"..", ".", "", "a/b", "../x", "x\n", "/abs"};
    struct storage_loc loc;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(storage_stage_open(&f->st, bad[i]), -EINVAL);
        assert_int_equal(storage_locate(&f->st, bad[i], "a.png", "", &loc), -ENOENT);
        assert_int_equal(storage_locate(&f->st, "job", bad[i], "", &loc), -ENOENT);
        memset(&f->c, 0, sizeof(f->c));
        f->c.ring = &f->ring;
        f->c.job_id = "job";
        f->c.name = bad[i];
        f->c.done = commit_done;
        assert_int_equal(storage_commit(&f->st, &f->c), -EINVAL);
    }
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[299] = '\0';
    assert_false(storage_name_ok(long_name));
    assert_true(storage_name_ok("ComfyUI_00001_.png"));
}

static void unknown_provider(void **state)
{
    (void)state;
    struct storage st;
    char err[256] = "";
    struct storage_config cfg = {.provider = "ftp", .local_path = "/tmp"};
    assert_int_equal(storage_open(&st, &cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "STORAGE_PROVIDER ftp"));
    cfg.provider = "local";
    cfg.local_path = "/proc/nope/x"; /* cannot be created */
    assert_true(storage_open(&st, &cfg, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "STORAGE_LOCAL_PATH"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(stage_commit_locate, setup, teardown),
        cmocka_unit_test_setup_teardown(commit_without_stage, setup, teardown),
        cmocka_unit_test_setup_teardown(hostile_names, setup, teardown),
        cmocka_unit_test(unknown_provider),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
