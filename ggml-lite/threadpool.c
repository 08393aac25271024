// Persistent worker threads. A run publishes (fn, arg) and bumps a generation counter; workers
// spin on the counter for a short while (ops come back to back during a forward pass) and then
// sleep on a condition variable. The caller works as thread 0 and waits for the others the same
// way: spin, then sleep.
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax(void) { __asm__ __volatile__("yield"); }
#else
static inline void cpu_relax(void) {}
#endif

// Pause instructions before sleeping (a few hundred microseconds): forward-pass ops come back
// to back, and a futex wake costs tens of microseconds. With more threads than CPUs spinning
// only steals time from the thread being waited for, so such pools sleep at once.
enum { SPIN_ITERS = 20000, YIELD_EVERY = 1024 };

typedef struct {
    gl_threadpool *tp;
    int ith;
} worker_arg;

struct gl_threadpool {
    int n_threads;
    pthread_t *threads;
    worker_arg *args;

    pthread_mutex_t mu;
    pthread_cond_t wake;  // workers sleep here for the next generation
    pthread_cond_t done;  // the caller sleeps here for pending to reach 0

    gl_task_fn fn;
    void *arg;
    atomic_uint gen;      // bumped once per run
    atomic_int pending;   // workers still running the current generation
    atomic_bool stop;
    int spin;             // SPIN_ITERS, or 0 when oversubscribed
    int caller_sleeping;  // under mu
};

static void *worker_main(void *p) {
    const worker_arg *wa = (const worker_arg *)p;
    gl_threadpool *tp = wa->tp;
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < tp->spin; i++) {
            if (i % YIELD_EVERY == YIELD_EVERY - 1) sched_yield();
            else cpu_relax();
            g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&tp->mu);
            while ((g = atomic_load_explicit(&tp->gen, memory_order_acquire)) == seen &&
                   !atomic_load(&tp->stop))
                pthread_cond_wait(&tp->wake, &tp->mu);
            pthread_mutex_unlock(&tp->mu);
        }
        if (atomic_load(&tp->stop)) break;
        seen = g;
        tp->fn(tp->arg, wa->ith, tp->n_threads);
        if (atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&tp->mu);
            if (tp->caller_sleeping) pthread_cond_signal(&tp->done);
            pthread_mutex_unlock(&tp->mu);
        }
    }
    return NULL;
}

static int cpus_available(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 1) return CPU_COUNT(&set);
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

gl_threadpool *gl_threadpool_create(int n_threads) {
    if (n_threads < 1) return NULL;
    gl_threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->n_threads = n_threads;
    tp->spin = n_threads <= cpus_available() ? SPIN_ITERS : 0;
    atomic_init(&tp->gen, 0);
    atomic_init(&tp->pending, 0);
    atomic_init(&tp->stop, false);
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->wake, NULL);
    pthread_cond_init(&tp->done, NULL);
    if (n_threads == 1) return tp;
    tp->threads = calloc((size_t)n_threads, sizeof *tp->threads);
    tp->args = calloc((size_t)n_threads, sizeof *tp->args);
    if (!tp->threads || !tp->args) goto fail;
    for (int i = 1; i < n_threads; i++) {
        tp->args[i] = (worker_arg){tp, i};
        if (pthread_create(&tp->threads[i], NULL, worker_main, &tp->args[i]) != 0) {
            tp->n_threads = i; // join only those that started
            goto fail;
        }
    }
    return tp;
fail:
    gl_threadpool_free(tp);
    return NULL;
}

void gl_threadpool_free(gl_threadpool *tp) {
    if (!tp) return;
    if (tp->threads) {
        pthread_mutex_lock(&tp->mu);
        atomic_store(&tp->stop, true);
        pthread_cond_broadcast(&tp->wake);
        pthread_mutex_unlock(&tp->mu);
        for (int i = 1; i < tp->n_threads; i++) pthread_join(tp->threads[i], NULL);
    }
    pthread_cond_destroy(&tp->wake);
    pthread_cond_destroy(&tp->done);
    pthread_mutex_destroy(&tp->mu);
    free(tp->threads);
    free(tp->args);
    free(tp);
}

int gl_threadpool_n_threads(const gl_threadpool *tp) { return tp ? tp->n_threads : 1; }

void gl_threadpool_run(gl_threadpool *tp, gl_task_fn fn, void *arg) {
    if (!tp || tp->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->arg = arg;
    atomic_store_explicit(&tp->pending, tp->n_threads - 1, memory_order_relaxed);
    // Bump under the mutex so a worker deciding to sleep cannot miss it.
    pthread_mutex_lock(&tp->mu);
    atomic_fetch_add_explicit(&tp->gen, 1, memory_order_release);
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->mu);

    fn(arg, 0, tp->n_threads);

    for (int i = 0; i < tp->spin; i++) {
        if (atomic_load_explicit(&tp->pending, memory_order_acquire) == 0) return;
        if (i % YIELD_EVERY == YIELD_EVERY - 1) sched_yield();
        else cpu_relax();
    }
    pthread_mutex_lock(&tp->mu);
    tp->caller_sleeping = 1;
    while (atomic_load_explicit(&tp->pending, memory_order_acquire) != 0)
        pthread_cond_wait(&tp->done, &tp->mu);
    tp->caller_sleeping = 0;
    pthread_mutex_unlock(&tp->mu);
}

// ---- physical cores ------------------------------------------------------------------------

// Counts distinct (package, core) pairs under /sys; 0 if unreadable.
static int cores_from_sysfs(void) {
    enum { MAX_IDS = 4096 };
    long *seen = calloc(MAX_IDS, sizeof *seen); // package << 32 | core
    if (!seen) return 0;
    int n_seen = 0;
    DIR *d = opendir("/sys/devices/system/cpu");
    if (!d) {
        free(seen);
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int cpu;
        char tail;
        if (sscanf(e->d_name, "cpu%d%c", &cpu, &tail) != 1) continue;
        char path[256];
        long core = -1, pkg = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fscanf(f, "%ld", &core) != 1) core = -1;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%ld", &pkg) != 1) pkg = 0;
            fclose(f);
        }
        if (core < 0) continue;
        const long key = pkg << 32 | (core & 0xffffffffL);
        int dup = 0;
        for (int i = 0; i < n_seen && !dup; i++) dup = seen[i] == key;
        if (!dup && n_seen < MAX_IDS) seen[n_seen++] = key;
    }
    closedir(d);
    free(seen);
    return n_seen;
}

int gl_physical_cores(void) {
    int n = cores_from_sysfs();
    if (n < 1) {
        const long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)online : 1;
    }
    // Never more than the CPUs this process may run on.
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int allowed = CPU_COUNT(&set);
        if (allowed >= 1 && allowed < n) n = allowed;
    }
    return n;
}
