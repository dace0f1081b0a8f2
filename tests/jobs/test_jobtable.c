/* test_jobtable — eviction of finished jobs from memory: nothing happens up to the bound (it is
 * asked at every dispatch), past it the oldest finished, idle jobs go down to 15/16 of the
 * bound, in one pass, and queued, running or still-saving jobs always stay, in order. And the
 * queue: head, position and per-owner counts against a plain model, over random pushes and
 * removals (anywhere, as a cancel does, or at the head, as a dispatch does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobs/jobtable.h"

/* n jobs, oldest first; those below `unfinished` stay queued, the rest succeeded */
static void fill(struct jobtable *t, int n, int unfinished)
{
    assert_int_equal(jobtable_init(t), 0);
    for (int i = 0; i < n; i++) {
        struct job *j = calloc(1, sizeof(*j));
        assert_non_null(j);
        snprintf(j->id, sizeof(j->id), "job-%05d", i);
        j->seq = (uint64_t)i + 1;
        j->status = i < unfinished ? JOB_QUEUED : JOB_SUCCEEDED;
        assert_int_equal(jobtable_put(t, j), 0);
    }
}

static bool present(struct jobtable *t, int i)
{
    char id[37];
    snprintf(id, sizeof(id), "job-%05d", i);
    return jobtable_get(t, id) != NULL;
}

static void in_creation_order(const struct jobtable *t)
{
    for (size_t i = 1; i < t->norder; i++)
        assert_true(t->order[i - 1]->seq < t->order[i]->seq);
}

static void empty(struct jobtable *t)
{
    for (size_t i = 0; i < t->norder; i++)
        job_free(t->order[i]);
    jobtable_fini(t);
}

static void nothing_evicted_up_to_the_bound(void **state)
{
    struct jobtable t;
    fill(&t, 160, 0);
    jobtable_evict(&t, 160);
    assert_int_equal(t.norder, 160);
    assert_int_equal(t.njobs, 160);
    assert_true(present(&t, 0) && present(&t, 159));
    empty(&t);
}

static void past_the_bound_down_to_15_16(void **state)
{
    struct jobtable t;
    fill(&t, 161, 0);
    jobtable_evict(&t, 160); /* 161 → 150: the 11 oldest go */
    assert_int_equal(t.norder, 150);
    assert_int_equal(t.njobs, 150);
    for (int i = 0; i < 11; i++)
        assert_false(present(&t, i));
    assert_true(present(&t, 11) && present(&t, 160));
    in_creation_order(&t);
    jobtable_evict(&t, 160); /* below the bound again: nothing more */
    assert_int_equal(t.norder, 150);
    empty(&t);
}

static void unfinished_and_busy_jobs_stay(void **state)
{
    struct jobtable t;
    fill(&t, 200, 50);              /* the 50 oldest are queued */
    t.order[60]->persisting = true; /* a finished job whose last save is in flight */
    jobtable_evict(&t, 160);        /* 50 to drop: the finished 50..100 but 60 */
    assert_int_equal(t.norder, 150);
    for (int i = 0; i < 50; i++)
        assert_true(present(&t, i));
    assert_true(present(&t, 60));
    assert_false(present(&t, 50) || present(&t, 59) || present(&t, 61) || present(&t, 100));
    assert_true(present(&t, 101));
    in_creation_order(&t);
    empty(&t);
}

/* The model: a job's position is the number of queued jobs before it. */
static long model_position(struct job **all, int n, const struct job *j)
{
    if (!j->queued)
        return -1;
    long pos = 0;
    for (int i = 0; i < n; i++) {
        const struct job *o = all[i];
        if (o->queued && (o->priority != j->priority ? o->priority > j->priority
                          : o->seq != j->seq          ? o->seq < j->seq
                                                      : strcmp(o->id, j->id) < 0))
            pos++;
    }
    return pos;
}

static void queue_matches_the_model(void **state)
{
    enum { N = 600 };
    static const char *const owners[] = {"a", "b", "tenant-c"};
    struct jobtable t;
    struct job *all[N];
    assert_int_equal(jobtable_init(&t), 0);
    uint32_t rnd = 12345;
    for (int i = 0; i < N; i++) {
        struct job *j = calloc(1, sizeof(*j));
        assert_non_null(j);
        snprintf(j->id, sizeof(j->id), "job-%05d", i);
        /* pairs share a seq, as jobs of two instances on a shared store can: the id decides */
        j->seq = (uint64_t)(i / 2) + 1;
        rnd = rnd * 1103515245u + 12345u;
        j->priority = (int)(rnd >> 16) % 5 - 2; /* a few levels, negative ones too */
        snprintf(j->owner, sizeof(j->owner), "%s", owners[(rnd >> 8) % 3]);
        assert_int_equal(jobtable_put(&t, j), 0);
        all[i] = j;
    }
    for (int step = 0; step < 4 * N; step++) {
        rnd = rnd * 1103515245u + 12345u;
        struct job *j = all[(rnd >> 8) % N];
        unsigned op = (rnd >> 4) % 4;
        if (op < 2)
            assert_int_equal(jobtable_push(&t, j), 0); /* again while queued: no change */
        else if (op == 2)
            jobtable_unqueue(&t, j);
        else
            jobtable_unqueue(&t, jobtable_head(&t)); /* dispatch (NULL when empty: no-op) */
        size_t queued = 0, per[3] = {0, 0, 0};
        struct job *head = NULL;
        for (int i = 0; i < N; i++) {
            if (!all[i]->queued)
                continue;
            queued++;
            per[strcmp(all[i]->owner, "a") == 0 ? 0 : strcmp(all[i]->owner, "b") == 0 ? 1 : 2]++;
            if (model_position(all, N, all[i]) == 0)
                head = all[i];
        }
        assert_int_equal(t.nqueued, queued);
        assert_ptr_equal(jobtable_head(&t), head);
        for (int k = 0; k < 3; k++)
            assert_int_equal(jobtable_queued_for(&t, owners[k]), per[k]);
        for (int i = 0; i < N; i += 7) {
            long pos = model_position(all, N, all[i]);
            assert_int_equal(jobtable_position(&t, all[i]), pos);
            if (pos >= 0) /* and the job at that position is it */
                assert_ptr_equal(jobtable_at(&t, (size_t)pos), all[i]);
        }
        assert_null(jobtable_at(&t, queued));
    }
    empty(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_evicted_up_to_the_bound),
        cmocka_unit_test(past_the_bound_down_to_15_16),
        cmocka_unit_test(unfinished_and_busy_jobs_stay),
        cmocka_unit_test(queue_matches_the_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
