// Generation's memory traffic on a mixture of experts (`llamalite bench --moe-bound`).
//
// A generated token reads every dense tensor whole and, in each MoE layer, only its k chosen
// experts' rows. Those bytes over the machine's streaming bandwidth would bound the speed if
// every byte came from DRAM; but an expert the previous token also chose may still be in the
// last-level cache, so the bound that counts is what the memory system needs to deliver exactly
// this sequence of reads. This probe records the experts real decodes choose, then replays
// their reads (the same bytes, token after token, on the context's threads, nothing computed)
// and times that: the fastest a decode reading those bytes could go on this machine.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forward/moe.h"
#include "repack.h"

enum { REPLAY_REPS = 3, STREAM_BYTES = 512 << 20 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// The bytes a decode reads of a weight (its repacked copy where it has one).
static size_t weight_bytes(const ll_weight *w) {
    if (!w->data) return 0;
    if (w->packed) return gl_repack_size(w->type, w->n_in, w->n_out);
    return gl_row_size(w->type, w->n_in) * (size_t)w->n_out;
}

static const void *weight_start(const ll_weight *w) { return w->packed ? w->packed : w->data; }

static bool is_expert_stack(ll_role r) {
    return r == LL_ROLE_FFN_GATE_EXPS || r == LL_ROLE_FFN_UP_EXPS || r == LL_ROLE_FFN_DOWN_EXPS;
}

typedef struct {
    const char *p;
    size_t n;
} span;

// One token's reads in a decode's order: each layer's dense tensors, its chosen experts' three
// matrices, then the output norm and head; their bytes added to *dense and *experts. Returns the number
// of spans (spans NULL: only counted).
static int token_spans(const ll_model *m, const int *sel, span *spans, double *dense, double *experts) {
    const ll_hparams *hp = &m->hp;
    int n = 0;
    for (int l = 0; l < hp->n_layer; l++) {
        const ll_layer *L = &m->layers[l];
        for (int r = 0; r < LL_ROLE_COUNT; r++) {
            if (is_expert_stack((ll_role)r) || !L->w[r].data) continue;
            if (spans) spans[n] = (span){weight_start(&L->w[r]), weight_bytes(&L->w[r])};
            *dense += (double)weight_bytes(&L->w[r]);
            n++;
        }
        if (!L->w[LL_ROLE_FFN_GATE_EXPS].data) continue;
        for (int j = 0; j < hp->n_expert_used; j++)
            for (int r = LL_ROLE_FFN_GATE_EXPS; r <= LL_ROLE_FFN_DOWN_EXPS; r++) {
                const ll_weight e = ll_expert(&L->w[r], sel[(size_t)l * hp->n_expert_used + j]);
                if (spans) spans[n] = (span){weight_start(&e), weight_bytes(&e)};
                *experts += (double)weight_bytes(&e);
                n++;
            }
    }
    const size_t norm = m->output_norm ? sizeof(float) * (size_t)hp->n_embd : 0;
    if (spans) {
        spans[n] = (span){(const char *)m->output_norm, norm};
        spans[n + 1] = (span){weight_start(&m->output), weight_bytes(&m->output)};
    }
    *dense += (double)norm + (double)weight_bytes(&m->output);
    return n + 2;
}

// ---- reading bytes, nothing else ---------------------------------------------------------------

typedef struct {
    const span *spans;
    int n_spans;
    unsigned long long sink[64];
} read_task;

// Thread ith's contiguous share of every span, 64-byte lines (four independent chains, so the
// loads are not serialized behind one another), asked for a few KiB ahead as the kernels do:
// within a span, and the next span's start before this one ends.
enum { AHEAD = 4096 };

static void read_task_run(void *arg, int ith, int nth) {
    read_task *t = arg;
    unsigned long long x0 = 0, x1 = 0, x2 = 0, x3 = 0;
    for (int s = 0; s < t->n_spans; s++) {
        const size_t lines = t->spans[s].n / 64;
        const char *p = t->spans[s].p;
        const size_t l0 = lines * (size_t)ith / (size_t)nth, l1 = lines * (size_t)(ith + 1) / (size_t)nth;
        if (s + 1 < t->n_spans) {
            const size_t next = t->spans[s + 1].n / 64 * (size_t)ith / (size_t)nth * 64;
            for (int off = 0; off < AHEAD; off += 64) __builtin_prefetch(t->spans[s + 1].p + next + off);
        }
        for (size_t l = l0; l < l1; l++) {
            const unsigned long long *q = (const unsigned long long *)(const void *)(p + l * 64);
            __builtin_prefetch(p + l * 64 + AHEAD);
            x0 ^= q[0] ^ q[4], x1 ^= q[1] ^ q[5], x2 ^= q[2] ^ q[6], x3 ^= q[3] ^ q[7];
        }
    }
    t->sink[ith % 64] ^= x0 ^ x1 ^ x2 ^ x3;
}

static double timed_read(ll_context *c, const span *spans, int n_spans) {
    read_task t = {spans, n_spans, {0}};
    const double t0 = now_s();
    if (c->n_threads > 1) gl_threadpool_run(c->tp, read_task_run, &t);
    else read_task_run(&t, 0, 1);
    return now_s() - t0;
}

// The replay: every recorded token's spans in turn, one pool run per token (no waits between a
// token's matmuls: the bound for its bytes). The best of a few passes.
static double replay(ll_context *c, const span *spans, int n_tokens, int per_token) {
    double best = 1e30;
    for (int rep = 0; rep < REPLAY_REPS; rep++) {
        double total = 0;
        for (int i = 0; i < n_tokens; i++) total += timed_read(c, spans + (size_t)i * per_token, per_token);
        if (total < best) best = total;
    }
    return best;
}

// The threads reading a buffer larger than every cache: the streaming rate (bytes/s).
static double stream_rate(ll_context *c) {
    char *buf = NULL;
    if (posix_memalign((void **)&buf, 64, STREAM_BYTES) != 0) return 0;
    memset(buf, 1, STREAM_BYTES);
    const span s = {buf, STREAM_BYTES};
    double best = 1e30;
    for (int rep = 0; rep < REPLAY_REPS; rep++) {
        const double t = timed_read(c, &s, 1);
        if (t < best) best = t;
    }
    free(buf);
    return STREAM_BYTES / best;
}

// Of token i's chosen (layer, expert) pairs, the bytes the previous token chose too.
static double reused_bytes(const ll_model *m, const int *prev, const int *cur) {
    const ll_hparams *hp = &m->hp;
    const int k = hp->n_expert_used;
    double bytes = 0;
    for (int l = 0; l < hp->n_layer; l++) {
        const ll_layer *L = &m->layers[l];
        if (!L->w[LL_ROLE_FFN_GATE_EXPS].data) continue;
        for (int j = 0; j < k; j++)
            for (int i = 0; i < k; i++)
                if (cur[l * k + j] == prev[l * k + i])
                    for (int r = LL_ROLE_FFN_GATE_EXPS; r <= LL_ROLE_FFN_DOWN_EXPS; r++) {
                        const ll_weight e = ll_expert(&L->w[r], cur[l * k + j]);
                        bytes += (double)weight_bytes(&e);
                    }
    }
    return bytes;
}

int ll_moe_traffic_measure(ll_context *c, const ll_token *tokens, int n, ll_moe_traffic *out, char *err,
                           size_t errlen) {
    const ll_model *m = c->model;
    const ll_hparams *hp = &m->hp;
    memset(out, 0, sizeof *out);
    if (hp->n_expert <= 0 || hp->n_expert_used <= 0) {
        snprintf(err, errlen, "not a mixture-of-experts model (its layers have no experts)");
        return -1;
    }
    if (n < 2) {
        snprintf(err, errlen, "the memory bound needs at least 2 generated tokens (got %d)", n);
        return -1;
    }
    const size_t per_token_sel = (size_t)hp->n_layer * hp->n_expert_used;
    int *sel = calloc((size_t)n * per_token_sel, sizeof(int));
    double dense = 0, experts = 0;
    const int per_token = token_spans(m, sel, NULL, &dense, &experts);
    span *spans = malloc((size_t)n * per_token * sizeof(span));
    if (!sel || !spans || !ll_moe_trace(c, sel, n)) {
        free(sel), free(spans);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    // the decodes, recorded; the first token's choices have no previous token to share with
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = ll_decode(c, &tokens[i], 1, err, errlen);
    ll_moe_trace(c, NULL, 0);
    if (rc == 0) {
        double later = 0, reused = 0; // the experts' bytes of tokens 1.., and of those the reused
        dense = experts = 0;
        for (int i = 0; i < n; i++) {
            const double before = experts;
            token_spans(m, sel + (size_t)i * per_token_sel, spans + (size_t)i * per_token, &dense, &experts);
            if (i == 0) continue;
            later += experts - before;
            reused += reused_bytes(m, sel + (size_t)(i - 1) * per_token_sel, sel + (size_t)i * per_token_sel);
        }
        out->n_tokens = n;
        out->expert_bytes_per_token = experts / n;
        out->bytes_per_token = (dense + experts) / n;
        out->reused = later > 0 ? reused / later : 0;
        out->replay_s_per_token = replay(c, spans, n, per_token) / n;
        out->stream_bytes_per_s = stream_rate(c);
    }
    free(sel), free(spans);
    return rc;
}
