/*
 * test_sim_fs — ComfyUI's path rules: normpath/commonpath, annotated names and
 * get_save_image_path (counter, subfolders, prefix variables, the escape error).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_fs.h"
#include "sim_test_util.h"

static void test_normpath(void **state)
{
    (void)state;
    /* Expected values are Python's posixpath.normpath. */
    static const char *const cases[][2] = {{"", "."},
                                           {"a/b/../c", "a/c"},
                                           {"../escape", "../escape"},
                                           {"/a/../..", "/"},
                                           {"//a//b/", "//a/b"},
                                           {"///a", "/a"},
                                           {"./x/./y/", "x/y"},
                                           {"a/../../b", "../b"},
                                           {"sd/run", "sd/run"},
                                           {"/opt/ComfyUI/output/..", "/opt/ComfyUI"}};
    char out[SIM_PATH_MAX];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_true(sim_fs_normpath(cases[i][0], out, sizeof(out)));
        assert_string_equal(out, cases[i][1]);
    }
    assert_false(sim_fs_normpath("aaaaaaaaaa/bbbbbbbbbb", out, 8));
}

static void test_commonpath(void **state)
{
    (void)state;
    char out[SIM_PATH_MAX];
    assert_true(sim_fs_commonpath("/opt/ComfyUI/output", "/opt/ComfyUI", out, sizeof(out)));
    assert_string_equal(out, "/opt/ComfyUI");
    assert_true(sim_fs_commonpath("/a/bc", "/a/b", out, sizeof(out)));
    assert_string_equal(out, "/a");
    assert_true(sim_fs_commonpath("/x", "/y", out, sizeof(out)));
    assert_string_equal(out, "/");
}

static void test_annotated(void **state)
{
    (void)state;
    char rel[SIM_PATH_MAX];
    enum sim_dir dir;
    assert_true(sim_fs_annotated("golden/golden_upload.png", &dir, rel, sizeof(rel)));
    assert_int_equal(dir, SIM_DIR_INPUT);
    assert_string_equal(rel, "golden/golden_upload.png");
    assert_true(sim_fs_annotated("x.png [output]", &dir, rel, sizeof(rel)));
    assert_int_equal(dir, SIM_DIR_OUTPUT);
    assert_string_equal(rel, "x.png");
    assert_true(sim_fs_annotated("x.png [temp]", &dir, rel, sizeof(rel)));
    assert_int_equal(dir, SIM_DIR_TEMP);
    assert_false(sim_fs_annotated("../etc/passwd", &dir, rel, sizeof(rel)));
    assert_false(sim_fs_annotated("/etc/passwd", &dir, rel, sizeof(rel)));
    assert_true(sim_fs_is_image_name("a.PNG") && sim_fs_is_image_name("b.webp"));
    assert_false(sim_fs_is_image_name("notes.txt") || sim_fs_is_image_name(".png"));
}

static void test_save_path_counter(void **state)
{
    (void)state;
    struct simt_fs t;
    simt_fs_init(&t);
    struct tm now = {
        .tm_year = 126, .tm_mon = 10, .tm_mday = 3, .tm_hour = 4, .tm_min = 5, .tm_sec = 6};
    struct sim_save_path sp;
    char err[1024], file[SIM_PATH_MAX], rel[SIM_PATH_MAX];
    /* nothing there yet: counter 1 */
    assert_int_equal(sim_fs_save_path(&t.fs, SIM_DIR_OUTPUT, "golden_success", 64, 64, &now, &sp,
                                      err, sizeof(err)),
                     0);
    assert_int_equal(sp.counter, 1);
    assert_string_equal(sp.subfolder, "");
    /* existing numbers count only for exactly "<prefix>_<digits>_..." */
    simt_fs_put(&t, SIM_DIR_OUTPUT, "golden_success_00007_.png", "x", 1);
    simt_fs_put(&t, SIM_DIR_OUTPUT, "golden_success_x_00009_.png", "x", 1);
    simt_fs_put(&t, SIM_DIR_OUTPUT, "golden_successor_00011_.png", "x", 1);
    simt_fs_put(&t, SIM_DIR_OUTPUT, "golden_success_abc_.png", "x", 1);
    assert_int_equal(sim_fs_save_path(&t.fs, SIM_DIR_OUTPUT, "golden_success", 64, 64, &now, &sp,
                                      err, sizeof(err)),
                     0);
    assert_int_equal(sp.counter, 8);
    assert_true(sim_fs_save_name(&sp, 0, sp.counter, file, sizeof(file), rel, sizeof(rel)));
    assert_string_equal(file, "golden_success_00008_.png");
    /* subfolders and variables */
    simt_fs_put(&t, SIM_DIR_OUTPUT, "2026-11/shot_64_00002_.png", "x", 1);
    assert_int_equal(sim_fs_save_path(&t.fs, SIM_DIR_OUTPUT, "%year%-%month%/shot_%width%", 64, 32,
                                      &now, &sp, err, sizeof(err)),
                     0);
    assert_string_equal(sp.subfolder, "2026-11");
    assert_string_equal(sp.filename, "shot_64");
    assert_int_equal(sp.counter, 3);
    assert_true(sim_fs_save_name(&sp, 1, 4, file, sizeof(file), rel, sizeof(rel)));
    assert_string_equal(rel, "2026-11/shot_64_00004_.png");
    /* %batch_num% is filled per image */
    assert_int_equal(
        sim_fs_save_path(&t.fs, SIM_DIR_OUTPUT, "b%batch_num%", 1, 1, &now, &sp, err, sizeof(err)),
        0);
    assert_true(sim_fs_save_name(&sp, 2, 1, file, sizeof(file), rel, sizeof(rel)));
    assert_string_equal(file, "b2_00001_.png");
    simt_fs_free(&t);
}

static void test_save_path_escape_message(void **state)
{
    (void)state;
    simt_require_transcripts();
    struct simt_fs t;
    simt_fs_init(&t);
    struct tm now = {0};
    struct sim_save_path sp;
    char err[1024];
    assert_int_equal(
        sim_fs_save_path(&t.fs, SIM_DIR_OUTPUT, "../escape", 8, 8, &now, &sp, err, sizeof(err)),
        -EPERM);
    /* The message of transcript 13, minus the "\n" ComfyUI appends when reporting it. */
    json_t *tr = simt_load("13_execution_error.json");
    json_t *entry = json_object_iter_value(json_object_iter(simt_response_json(simt_step(tr, 1))));
    json_t *e = json_array_get(
        json_array_get(json_object_get(json_object_get(entry, "status"), "messages"), 2), 1);
    const char *want = json_string_value(json_object_get(e, "exception_message"));
    assert_int_equal(strlen(err) + 1, strlen(want));
    assert_memory_equal(err, want, strlen(err));
    assert_int_equal(
        sim_fs_save_path(&t.fs, SIM_DIR_OUTPUT, "/etc/x", 8, 8, &now, &sp, err, sizeof(err)),
        -EPERM);
    assert_string_equal(err + strlen(err) - strlen("commonpath: /"), "commonpath: /");
    assert_int_equal(
        sim_fs_save_path(&t.fs, SIM_DIR_OUTPUT, "a/../../b", 8, 8, &now, &sp, err, sizeof(err)),
        -EPERM);
    assert_int_equal(
        sim_fs_save_path(&t.fs, SIM_DIR_OUTPUT, "a/../b", 8, 8, &now, &sp, err, sizeof(err)), 0);
    json_decref(tr);
    simt_fs_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normpath),
        cmocka_unit_test(test_commonpath),
        cmocka_unit_test(test_annotated),
        cmocka_unit_test(test_save_path_counter),
        cmocka_unit_test(test_save_path_escape_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
