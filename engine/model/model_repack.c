// Repacking at load: every matrix the kernels in use have an interleaved layout for (ggml-lite's
// repack.h; e.g. Q4_K and Q6_K with AVX-512 VNNI) is copied once into that layout, on all cores,
// into one anonymous mapping (huge pages where the kernel grants them: fewer TLB misses while
// streaming weights). Right after a matrix is repacked its pages of the file mapping are given
// back (MADV_DONTNEED), so the resident memory stays about the file's size: the copy grows as the
// mapping shrinks. The file's bytes stay readable (a page comes back from the page cache if
// something reads it: the draft head, a session's model hash).
//
// A stack of experts is repacked as one matrix of n_expert * n_out rows: with n_out a multiple of
// 16 each expert's groups follow the previous expert's, so expert e's repacked matrix starts at
// e * gl_repack_size(n_out rows) (ll_expert). That pages in every expert, which a model that
// barely fits in memory cannot afford (its unused experts must stay on disk, in the page cache's
// hands): the stacks are repacked only when they take at most half the memory available, and
// otherwise stay as mapped. A tied output head is not repacked (its rows are the embedding, read
// a row at a time).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/model.h"
#include "repack.h"
#include "threadpool.h"

// Rows per slice: a slice's file pages are given back as soon as it is repacked, so the
// resident memory never holds much more than one slice twice.
enum { SLICE_BYTES = 4 << 20 };

typedef struct {
    ll_weight *w;
    int64_t n_rows; // n_out, times n_expert for a stack of experts
} repack_item;

typedef struct {
    const ll_weight *w;
    void *dst;
    int64_t r0, r1; // the slice's rows (multiples of 16)
} repack_task;

static void repack_part(void *arg, int ith, int nth) {
    const repack_task *t = arg;
    const int64_t groups = (t->r1 - t->r0) / 16;
    const int64_t g0 = groups * ith / nth, g1 = groups * (ith + 1) / nth;
    gl_repack_rows(t->w->type, t->w->data, t->w->n_in, t->r0 + 16 * g0, t->r0 + 16 * g1, t->dst);
}

// The whole pages inside [p, p + n) go back to the file.
static void release_pages(const void *p, size_t n) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), b = ((uintptr_t)p + n) & ~(page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

static bool repackable(const ll_weight *w) { return w->data && gl_repack_available(w->type, w->n_in, w->n_out); }

// Bytes of memory the system can give without swapping (MemAvailable), or all of it where
// /proc/meminfo does not say.
static uint64_t memory_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb) return (uint64_t)kb << 10;
    return (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
}

// Whether the expert stacks are repacked: when their repacked copies fit in half the memory
// available.
static bool stacks_fit(const ll_model *m) {
    uint64_t bytes = 0;
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int r = 0; r < LL_ROLE_COUNT; r++)
            if (ll_roles[r].kind == LL_KIND_EXPERTS && repackable(&m->layers[l].w[r]))
                bytes += gl_repack_size(m->layers[l].w[r].type, m->layers[l].w[r].n_in, m->layers[l].w[r].n_out) *
                         (uint64_t)m->hp.n_expert;
    return bytes == 0 || bytes <= memory_available() / 2;
}

// The weights to repack (into list, which has room for every matrix); how many.
static int to_repack(ll_model *m, repack_item *list) {
    const bool stacks = stacks_fit(m);
    int n = 0;
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int r = 0; r < LL_ROLE_COUNT; r++) {
            ll_weight *w = &m->layers[l].w[r];
            const ll_role_kind kind = ll_roles[r].kind;
            if ((kind == LL_KIND_MATRIX || (kind == LL_KIND_EXPERTS && stacks)) && repackable(w))
                list[n++] = (repack_item){w, w->n_out * (kind == LL_KIND_EXPERTS ? m->hp.n_expert : 1)};
        }
    if (m->output.data != m->tok_embd.data && repackable(&m->output))
        list[n++] = (repack_item){&m->output, m->output.n_out};
    return n;
}

bool ll_model_repack(ll_model *m) {
    repack_item *list = malloc(sizeof *list * ((size_t)m->hp.n_layer * LL_ROLE_COUNT + 1));
    if (!list) return false;
    const int n = to_repack(m, list);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += gl_repack_size(list[i].w->type, list[i].w->n_in, list[i].n_rows);
    void *mem = MAP_FAILED;
    const size_t huge = 2u << 20, size = (total + huge - 1) & ~(huge - 1);
    if (total > 0) mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        free(list);
        return total == 0;
    }
#ifdef MADV_HUGEPAGE
    madvise(mem, size, MADV_HUGEPAGE);
#endif
    const int n_threads = gl_physical_cores();
    gl_threadpool *tp = n_threads > 1 ? gl_threadpool_create(n_threads) : NULL;
    char *cur = mem;
    for (int i = 0; i < n; i++) {
        ll_weight *w = list[i].w;
        const int64_t n_rows = list[i].n_rows;
        const size_t row = gl_row_size(w->type, w->n_in);
        int64_t slice = (int64_t)(SLICE_BYTES / row) / 16 * 16;
        if (slice < 16) slice = 16;
        for (int64_t r0 = 0; r0 < n_rows; r0 += slice) {
            repack_task t = {w, cur, r0, r0 + slice < n_rows ? r0 + slice : n_rows};
            if (tp) gl_threadpool_run(tp, repack_part, &t);
            else repack_part(&t, 0, 1);
            release_pages(w->data, row * (size_t)t.r1); // (from the start: no page left between slices)
        }
        w->packed = cur;
        cur += gl_repack_size(w->type, w->n_in, n_rows);
    }
    gl_threadpool_free(tp);
    free(list);
    m->packed = mem;
    m->packed_size = size;
    return true;
}

void ll_model_unpack(ll_model *m) {
    if (!m->packed) return;
    munmap(m->packed, m->packed_size);
    m->packed = NULL;
    m->packed_size = 0;
}
