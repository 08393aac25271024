// The threadpool: every thread index runs exactly once per run, runs see the previous run's
// writes, many tiny back-to-back tasks finish without deadlock (including after the workers
// have gone to sleep), pools are created and freed repeatedly, and gl_physical_cores is sane.
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "ggml-lite/threadpool.h"
#include "tests/test_util.h"

typedef struct {
    atomic_int hits[16];
    atomic_long total;
    int nth_seen[16];
    long *cells;   // each thread writes its own cell; the next run reads all of them
    long round;
    int bad_reads;
} counter;

static void count_task(void *p, int ith, int nth) {
    counter *c = (counter *)p;
    atomic_fetch_add(&c->hits[ith], 1);
    atomic_fetch_add(&c->total, ith + 1);
    c->nth_seen[ith] = nth;
    // Everything written in the previous run is visible now.
    for (int i = 0; i < nth; i++)
        if (c->round > 0 && c->cells[i] != c->round - 1) c->bad_reads++;
}

static void write_task(void *p, int ith, int nth) {
    counter *c = (counter *)p;
    (void)nth;
    c->cells[ith] = c->round;
}

static void sleep_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void) {
    CHECK(gl_threadpool_create(0) == NULL, "0 threads");
    const int sizes[] = {1, 2, 3, 5};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int n = sizes[s];
        gl_threadpool *tp = gl_threadpool_create(n);
        CHECK(tp != NULL, "create %d", n);
        if (!tp) continue;
        CHECK(gl_threadpool_n_threads(tp) == n, "n_threads");
        long cells[16] = {0};
        counter c;
        memset(&c, 0, sizeof c);
        c.cells = cells;
        const int runs = 5000;
        for (int r = 0; r < runs; r++) {
            c.round = r;
            gl_threadpool_run(tp, count_task, &c);
            gl_threadpool_run(tp, write_task, &c);
            if (r % 1000 == 999) sleep_ms(20); // let the workers fall asleep, then wake them
        }
        for (int i = 0; i < n; i++) {
            CHECK(atomic_load(&c.hits[i]) == runs, "n=%d thread %d ran %d times", n, i, atomic_load(&c.hits[i]));
            CHECK(c.nth_seen[i] == n, "n=%d thread %d saw nth=%d", n, i, c.nth_seen[i]);
        }
        CHECK(atomic_load(&c.total) == (long)runs * n * (n + 1) / 2, "n=%d total", n);
        CHECK(c.bad_reads == 0, "n=%d: %d stale reads", n, c.bad_reads);
        gl_threadpool_free(tp);
    }
    // Create/free churn, with and without work in between.
    for (int i = 0; i < 50; i++) {
        gl_threadpool *tp = gl_threadpool_create(1 + i % 4);
        CHECK(tp != NULL, "churn create");
        if (!tp) continue;
        if (i % 2) {
            counter c;
            long cells[16] = {0};
            memset(&c, 0, sizeof c);
            c.cells = cells;
            gl_threadpool_run(tp, count_task, &c);
        }
        gl_threadpool_free(tp);
    }
    gl_threadpool_free(NULL);
    const int cores = gl_physical_cores();
    printf("physical cores: %d\n", cores);
    CHECK(cores >= 1 && cores <= 4096, "cores %d", cores);
    return test_result("test_threadpool");
}
