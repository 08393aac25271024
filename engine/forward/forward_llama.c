// The llama forward pass as straight-line code: embedding, then per layer
//   x += Wo · attention(rope(Wq · norm(x)), rope(Wk · norm(x)), Wv · norm(x))
//   x += Wdown · (silu(Wgate · norm(x)) * (Wup · norm(x)))
// then the final norm and the output head. A chunk of n_tok tokens goes through together
// (the matmuls are batched); a single generated token is simply a chunk of one. Attached LoRA
// adapters add s·B·(A·x) to the matmuls they adapt (and to the embedding rows).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/context.h"

// ---- threaded pieces ----------------------------------------------------------------------

typedef struct {
    ll_context *c;
    const float *src;   // rows of n floats
    float *dst;
    const float *w;     // norm weight
    const float *src2;  // second operand (swiglu's up)
    int n_rows, n;
    int layer, pos0;    // attention
} task;

// Splits [0, n) evenly: thread ith gets [*lo, *hi).
static void split(int n, int ith, int nth, int *lo, int *hi) {
    *lo = (int)((int64_t)n * ith / nth);
    *hi = (int)((int64_t)n * (ith + 1) / nth);
}

static void rmsnorm_task(void *arg, int ith, int nth) {
    const task *t = arg;
    int lo, hi;
    split(t->n_rows, ith, nth, &lo, &hi);
    for (int r = lo; r < hi; r++)
        gl_rmsnorm(t->dst + (size_t)r * t->n, t->src + (size_t)r * t->n, t->w, t->n,
                   t->c->model->hp.rms_eps);
}

static void swiglu_task(void *arg, int ith, int nth) {
    const task *t = arg;
    int lo, hi;
    split(t->n_rows, ith, nth, &lo, &hi);
    for (int r = lo; r < hi; r++)
        gl_swiglu(t->dst + (size_t)r * t->n, t->src + (size_t)r * t->n, t->src2 + (size_t)r * t->n, t->n);
}

// ---- attention ------------------------------------------------------------------------
// Precision follows the reference engine over an F16 cache: the query is rounded to F16 for
// the q·k dots and the softmax weights are rounded to F16 before they weight the values.
// Sums are also grouped the way the reference groups them (8 lanes, plus 4 accumulators over
// steps of 32 for a single token; 1 accumulator for a batch). On models whose activations are
// re-quantized to 8 bits between layers, a last-bit difference can flip a rounding and grow
// through the layers, so matching the reference's arithmetic keeps the golden logits close.
// The AVX2 paths compute exactly what the scalar code does.

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define ATT_AVX2 1
#endif

// 8 lanes summed as halves, then (0+2)+(1+3) / (0+1)+(2+3).
static float hsum8_pairs(const float *l) {
    float t0 = l[0] + l[4], t1 = l[1] + l[5], t2 = l[2] + l[6], t3 = l[3] + l[7];
    return (t0 + t2) + (t1 + t3);
}
static float hsum8_hadd(const float *l) {
    float t0 = l[0] + l[4], t1 = l[1] + l[5], t2 = l[2] + l[6], t3 = l[3] + l[7];
    return (t0 + t1) + (t2 + t3);
}

// The reference's KV window for a batch whose last position is last_pos: the used cells padded
// to a multiple of 32, at most the context.
static int kv_window(const ll_context *c, int last_pos) {
    const int n = ((last_pos + 1 + 31) / 32) * 32;
    return n < c->n_ctx ? n : c->n_ctx;
}

static inline float kv_at(const void *p, bool f16, size_t i) {
    return f16 ? gl_fp16_to_fp32(((const gl_fp16 *)p)[i]) : ((const float *)p)[i];
}

// dot(k, q) over n elements. batch: one 8-lane accumulator; else four over steps of 32 and
// the rest added in double.
static float att_dot(const void *k, bool f16, const float *q, int n, bool batch) {
    float a[4][8] = {{0}};
    int i = 0;
    if (batch && n % 8 == 0) {
#ifdef ATT_AVX2
        __m256 acc = _mm256_setzero_ps();
        for (; i < n; i += 8) {
            __m256 kv = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const gl_fp16 *)k + i)))
                            : _mm256_loadu_ps((const float *)k + i);
            acc = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q + i), acc);
        }
        _mm256_storeu_ps(a[0], acc);
#else
        for (; i < n; i++) a[0][i % 8] = fmaf(kv_at(k, f16, i), q[i], a[0][i % 8]);
#endif
        return hsum8_pairs(a[0]);
    }
    const int np = n & ~31;
#ifdef ATT_AVX2
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (; i < np; i += 32)
        for (int m = 0; m < 4; m++) {
            __m256 kv = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const gl_fp16 *)k + i + 8 * m)))
                            : _mm256_loadu_ps((const float *)k + i + 8 * m);
            acc[m] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q + i + 8 * m), acc[m]);
        }
    if (np == n) { // the reduction below, in registers
        const __m256 r = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
        const __m128 t = _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1)); // l[i] + l[i+4]
        const __m128 u = _mm_hadd_ps(t, t);                                                   // t0+t1, t2+t3
        return _mm_cvtss_f32(_mm_hadd_ps(u, u));
    }
    for (int m = 0; m < 4; m++) _mm256_storeu_ps(a[m], acc[m]);
#else
    for (; i < np; i++) a[(i / 8) % 4][i % 8] = fmaf(kv_at(k, f16, i), q[i], a[(i / 8) % 4][i % 8]);
#endif
    double sum = 0;
    if (np) {
        float r[8];
        for (int l = 0; l < 8; l++) r[l] = (a[0][l] + a[2][l]) + (a[1][l] + a[3][l]);
        sum = hsum8_hadd(r);
    }
    for (i = np; i < n; i++) sum += (double)(kv_at(k, f16, i) * q[i]);
    return (float)sum;
}

// acc[slot][0..n) += w * v[0..n)
static void att_mad(float *acc, const void *v, bool f16, float w, int n) {
    int i = 0;
#ifdef ATT_AVX2
    const __m256 wv = _mm256_set1_ps(w);
    for (; i + 8 <= n; i += 8) {
        __m256 x = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const gl_fp16 *)v + i)))
                       : _mm256_loadu_ps((const float *)v + i);
        _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(wv, x, _mm256_loadu_ps(acc + i)));
    }
#endif
    for (; i < n; i++) acc[i] = fmaf(w, kv_at(v, f16, i), acc[i]);
}

// One token's weighted values: slot l (of 32) sums, in key order, the keys j with j % 32 == l
// (what att_mad into slot j % 32 gives, key after key), each slot's row kept in registers.
static void att_values_1(float *acc, const char *v, size_t v_row, bool f16, const float *w, int n_keys, int hd) {
    int d0 = 0;
#ifdef ATT_AVX2
    for (; d0 + 32 <= hd; d0 += 32)
        for (int l = 0; l < 32; l++) {
            __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int j = l; j < n_keys; j += 32) {
                const char *vj = v + (size_t)j * v_row;
                const __m256 wv = _mm256_set1_ps(w[j]);
                for (int m = 0; m < 4; m++) {
                    const int i = d0 + 8 * m;
                    const __m256 x = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const gl_fp16 *)vj + i)))
                                         : _mm256_loadu_ps((const float *)vj + i);
                    a[m] = _mm256_fmadd_ps(wv, x, a[m]);
                }
            }
            for (int m = 0; m < 4; m++) _mm256_storeu_ps(acc + (size_t)l * hd + d0 + 8 * m, a[m]);
        }
#endif
    if (d0 < hd) {
        for (int l = 0; l < 32; l++) memset(acc + (size_t)l * hd + d0, 0, (size_t)(hd - d0) * sizeof(float));
        for (int j = 0; j < n_keys; j++) {
            const char *vj = v + (size_t)j * v_row;
            float *a = acc + (size_t)(j % 32) * hd;
            for (int d = d0; d < hd; d++) a[d] = fmaf(w[j], kv_at(vj, f16, (size_t)d), a[d]);
        }
    }
}

// out[d] = the 32 slots of element d reduced as the reference's one-token sum:
// r[l] = (slot l + slot l+16) + (slot l+8 + slot l+24), then the 8 r[l] as hadd adds them.
static void att_reduce_1(float *out, const float *acc, int hd) {
    int d = 0;
#ifdef ATT_AVX2
    for (; d + 8 <= hd; d += 8) { // the scalar steps below, 8 elements per lane-wise op
        __m256 r[8];
        for (int l = 0; l < 8; l++)
            r[l] = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(acc + (size_t)l * hd + d),
                                               _mm256_loadu_ps(acc + (size_t)(16 + l) * hd + d)),
                                 _mm256_add_ps(_mm256_loadu_ps(acc + (size_t)(8 + l) * hd + d),
                                               _mm256_loadu_ps(acc + (size_t)(24 + l) * hd + d)));
        const __m256 t0 = _mm256_add_ps(r[0], r[4]), t1 = _mm256_add_ps(r[1], r[5]);
        const __m256 t2 = _mm256_add_ps(r[2], r[6]), t3 = _mm256_add_ps(r[3], r[7]);
        _mm256_storeu_ps(out + d, _mm256_add_ps(_mm256_add_ps(t0, t1), _mm256_add_ps(t2, t3)));
    }
#endif
    for (; d < hd; d++) {
        float r[8];
        for (int l = 0; l < 8; l++)
            r[l] = (acc[(size_t)l * hd + d] + acc[(size_t)(16 + l) * hd + d]) +
                   (acc[(size_t)(8 + l) * hd + d] + acc[(size_t)(24 + l) * hd + d]);
        out[d] = hsum8_hadd(r);
    }
}

// Causal self-attention of the chunk's queries over the cache, one (token, head) pair per
// unit; units are dealt round-robin because later tokens see more keys.
static void attention_task(void *arg, int ith, int nth) {
    const task *tk = arg;
    ll_context *c = tk->c;
    const ll_hparams *hp = &c->model->hp;
    const int hd = hp->head_dim, n_head = hp->n_head;
    const int group = hp->n_head / hp->n_head_kv;
    const int q_dim = n_head * hd, kv_dim = hp->n_head_kv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t layer_off = (size_t)tk->layer * c->n_ctx * kv_dim;
    // Exact batches (speculative verification) sum every row as a single token does.
    const bool fk = c->kv_f16_k, fv = c->kv_f16_v, batch = tk->n_rows > 1 && !c->exact_batches;
    const size_t ek = fk ? 2 : 4, ev = fv ? 2 : 4;
    // value sums: 8 lanes (batch) or 4 x 8 (single token), each a row of hd partial sums
    const int n_slots = batch ? 8 : 32;
    float *s = c->att + (size_t)ith * c->n_ctx;
    float *qr = c->att_scratch + (size_t)ith * (33 * (size_t)hd);
    float *acc = qr + hd;

    for (int u = ith; u < tk->n_rows * n_head; u += nth) {
        const int t = u / n_head, h = u % n_head;
        const int n_keys = tk->pos0 + t + 1;
        const float *q = c->q + (size_t)t * q_dim + (size_t)h * hd;
        const size_t col = layer_off + (size_t)(h / group) * hd;
        const char *k = (const char *)c->k_cache + col * ek;
        const char *v = (const char *)c->v_cache + col * ev;
        float *out = c->xb + (size_t)t * q_dim + (size_t)h * hd;

        if (fk) {
            gl_fp16 tmp[256];
            for (int i = 0; i < hd; i += 256) {
                int m = hd - i < 256 ? hd - i : 256;
                gl_fp32_to_fp16_row(q + i, tmp, m);
                gl_fp16_to_fp32_row(tmp, qr + i, m);
            }
        } else {
            memcpy(qr, q, (size_t)hd * sizeof(float));
        }
        float mx = -INFINITY;
        for (int j = 0; j < n_keys; j++) {
            s[j] = att_dot(k + (size_t)j * kv_dim * ek, fk, qr, hd, batch) * scale;
            if (s[j] > mx) mx = s[j];
        }
        // The softmax row spans the reference's KV window (masked keys weigh 0): it decides
        // which keys its 8-lane exp takes and which its scalar tail takes.
        const int row = kv_window(c, batch ? tk->pos0 + tk->n_rows - 1 : tk->pos0 + t);
        const double sum = gl_exp_sum8(s, s, mx, n_keys, row);
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j < n_keys; j++) {
            s[j] *= inv;
            if (fv) s[j] = gl_fp16_to_fp32(gl_fp32_to_fp16(s[j]));
        }

        if (batch) {
            memset(acc, 0, (size_t)n_slots * hd * sizeof(float));
            for (int j = 0; j < n_keys; j++)
                att_mad(acc + (size_t)(j % n_slots) * hd, v + (size_t)j * kv_dim * ev, fv, s[j], hd);
            for (int d = 0; d < hd; d++) {
                float r[8];
                for (int l = 0; l < 8; l++) r[l] = acc[(size_t)l * hd + d];
                out[d] = hsum8_pairs(r);
            }
        } else {
            att_values_1(acc, v, kv_dim * ev, fv, s, n_keys, hd);
            att_reduce_1(out, acc, hd);
        }
    }
}

// Runs a task on the pool, or inline when it is too small to pay for waking the threads.
static void run(ll_context *c, gl_task_fn fn, task *t, size_t work) {
    if (work < 32768 || c->n_threads == 1) fn(t, 0, 1);
    else gl_threadpool_run(c->tp, fn, t);
}

// ---- LoRA ---------------------------------------------------------------------------------
// Each adapter attached to the context adds s * B·(A·x) to an adapted weight's output: two thin
// matmuls (rank rows, then rows of rank elements) over all tokens of the chunk at once, on the
// pool like every other matmul. The base weights are only read.

static bool grow(float **buf, size_t *cap, size_t n) {
    if (n <= *cap) return true;
    float *nb = realloc(*buf, n * sizeof(float));
    if (!nb) return false;
    *buf = nb;
    *cap = n;
    return true;
}

// A LoRA product is small (rank rows, or rows of rank elements): below this many weight bytes
// times tokens it runs on the calling thread, as waking the pool for it (about a hundred times
// per generated token) costs more than it saves.
enum { LORA_INLINE_BYTES = 512 << 10 };

static void thin_matmul(ll_context *c, const ll_weight *w, gl_act *act, float *out) {
    const double bytes = (double)gl_row_size(w->type, w->n_in) * (double)w->n_out * (double)act->n_tok;
    gl_threadpool *tp = bytes < LORA_INLINE_BYTES ? NULL : c->tp;
    if (c->exact_batches && act->n_tok > 1) gl_matmul_rowwise(tp, w->data, w->type, w->n_out, act, out);
    else gl_matmul(tp, w->data, w->type, w->n_out, act, out);
}

// The adapters of one weight are summed before they touch its output: the first product lands
// in lora_out with its scale kept aside (one adapter: a single out += s * d), further ones are
// added into lora_out. So the same adapter twice at 0.5 gives bitwise what it gives once at 1.
typedef struct {
    int n;        // products summed so far
    float s0;     // the first one's scale, not yet applied
    size_t len;   // floats in lora_out
} lora_sum;

// F32 adapters are multiplied in the reference's F32 order, so that a model whose activations
// are re-quantized every layer sees the same roundings. One token (and each row of an exact
// batch): its F32 dot, four 8-lane accumulators over steps of 32, reduced (0+2)+(1+3), lanes
// halved and added pairwise as hadd does, the rest added to the float sum (products rounded
// first, not fused). A batch: its GEMM,
// one 8-lane accumulator over steps of 8 (n % 8 == 0, else as one token), halves then
// (0+2)+(1+3).
static float f32_dot_tok(const float *w, const float *x, int n) {
    const int np = n & ~31;
    float sum = 0;
    if (np) {
        float r[8];
#ifdef ATT_AVX2
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int i = 0; i < np; i += 32)
            for (int m = 0; m < 4; m++)
                a[m] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8 * m), _mm256_loadu_ps(x + i + 8 * m), a[m]);
        _mm256_storeu_ps(r, _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[1], a[3])));
#else
        float a[4][8] = {{0}};
        for (int i = 0; i < np; i++) a[(i / 8) % 4][i % 8] = fmaf(w[i], x[i], a[(i / 8) % 4][i % 8]);
        for (int l = 0; l < 8; l++) r[l] = (a[0][l] + a[2][l]) + (a[1][l] + a[3][l]);
#endif
        sum = hsum8_hadd(r);
    }
    for (int i = np; i < n; i++) sum += w[i] * x[i]; // product rounded, then added
    return sum;
}

static float f32_dot_batch(const float *w, const float *x, int n) {
    if (n % 8) return f32_dot_tok(w, x, n);
    float r[8];
#ifdef ATT_AVX2
    __m256 a = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a);
    _mm256_storeu_ps(r, a);
#else
    for (int l = 0; l < 8; l++) r[l] = 0;
    for (int i = 0; i < n; i++) r[i % 8] = fmaf(w[i], x[i], r[i % 8]);
#endif
    return hsum8_pairs(r);
}

typedef struct {
    const ll_weight *w;
    const float *x;
    float *out;
    int n_tok;
    bool batch;
} f32_product;

// out[t][r] = row r of w · x[t], tokens split over the threads.
static void f32_product_task(void *arg, int ith, int nth) {
    const f32_product *p = arg;
    const int n_in = (int)p->w->n_in, n_out = (int)p->w->n_out;
    int lo, hi;
    split(p->n_tok, ith, nth, &lo, &hi);
    for (int t = lo; t < hi; t++)
        for (int r = 0; r < n_out; r++) {
            const float *wr = (const float *)p->w->data + (size_t)r * n_in, *xt = p->x + (size_t)t * n_in;
            p->out[(size_t)t * n_out + r] = p->batch ? f32_dot_batch(wr, xt, n_in) : f32_dot_tok(wr, xt, n_in);
        }
}

// A batch's B·t for an F32 B of rank columns (rank % 8 == 0), through B transposed so the n_out
// dots of rank elements run as vector steps over the outputs: lane l of output j accumulates
// B[j][8s+l] * t[8s+l] over s, and the 8 lanes are summed as the reference's GEMM sums them.
static void f32_second_batch(const float *wt, int rank, int n_out, const float *tk, float *o) {
    int j = 0;
#ifdef ATT_AVX2
    for (; j + 8 <= n_out; j += 8) {
        __m256 p[8];
        for (int l = 0; l < 8; l++) p[l] = _mm256_setzero_ps();
        for (int k0 = 0; k0 < rank; k0 += 8)
            for (int l = 0; l < 8; l++)
                p[l] = _mm256_fmadd_ps(_mm256_loadu_ps(wt + (size_t)(k0 + l) * n_out + j), _mm256_set1_ps(tk[k0 + l]), p[l]);
        const __m256 t0 = _mm256_add_ps(p[0], p[4]), t1 = _mm256_add_ps(p[1], p[5]);
        const __m256 t2 = _mm256_add_ps(p[2], p[6]), t3 = _mm256_add_ps(p[3], p[7]);
        _mm256_storeu_ps(o + j, _mm256_add_ps(_mm256_add_ps(t0, t2), _mm256_add_ps(t1, t3)));
    }
#endif
    for (; j < n_out; j++) {
        float r[8] = {0};
        for (int k0 = 0; k0 < rank; k0 += 8)
            for (int l = 0; l < 8; l++) r[l] = fmaf(wt[(size_t)(k0 + l) * n_out + j], tk[k0 + l], r[l]);
        o[j] = hsum8_pairs(r);
    }
}

// o[i] += w[i] * s with the product rounded before the add (no fused multiply-add).
static void add_products(float *o, const float *w, float s, int n) {
    int i = 0;
#ifdef ATT_AVX2
    const __m256 sv = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(o + i, _mm256_add_ps(_mm256_loadu_ps(o + i), _mm256_mul_ps(_mm256_loadu_ps(w + i), sv)));
#endif
    for (; i < n; i++) o[i] += w[i] * s;
}

// out = W · lora_tmp for n_tok rows. W has rows of rank elements (n_in = rank): for one token
// its transpose wt turns the n_out short dot products into rank long vector adds. Exact batches
// take the same path for every token, so each row is what a one-token decode gives.
static bool second_product(ll_context *c, const ll_weight *w, const float *wt, int n_tok, float *out) {
    const size_t n_out = (size_t)w->n_out;
    if (n_tok == 1 || c->exact_batches) {
        for (int t = 0; t < n_tok; t++) {
            float *o = out + (size_t)t * n_out;
            const float *x = c->lora_tmp + (size_t)t * w->n_in;
            memset(o, 0, n_out * sizeof(float));
            // Each output is the reference's one-token F32 dot of rank elements: with rank < 32
            // that is its scalar tail, every product rounded and then added in order.
            for (int64_t k = 0; k < w->n_in; k++) add_products(o, wt + (size_t)k * n_out, x[k], (int)n_out);
        }
        return true;
    }
    if (w->type == GL_TYPE_F32 && w->n_in % 8 == 0) {
        for (int t = 0; t < n_tok; t++)
            f32_second_batch(wt, (int)w->n_in, (int)n_out, c->lora_tmp + (size_t)t * w->n_in, out + (size_t)t * n_out);
        return true;
    }
    const enum gl_type vt = gl_get_type_traits(w->type)->vec_dot_type;
    if (!gl_act_prepare(&c->lora_act2, c->tp, c->lora_tmp, n_tok, w->n_in, vt)) return false;
    thin_matmul(c, w, &c->lora_act2, out);
    return true;
}

// Adds s * W · lora_tmp (n_tok rows of w->n_in) to the sum; wt is W transposed.
static bool lora_accum(ll_context *c, const ll_weight *w, const float *wt, int n_tok, float s, lora_sum *sum) {
    const size_t n = (size_t)n_tok * (size_t)w->n_out;
    if (!grow(&c->lora_out, &c->lora_out_cap, n)) return false;
    if (sum->n == 0) {
        if (!second_product(c, w, wt, n_tok, c->lora_out)) return false;
        sum->s0 = s;
    } else {
        if (!grow(&c->lora_out2, &c->lora_out2_cap, n)) return false;
        if (sum->n == 1) gl_vec_scale(c->lora_out, sum->s0, (int)n);
        if (!second_product(c, w, wt, n_tok, c->lora_out2)) return false;
        gl_vec_mad(c->lora_out, c->lora_out2, s, (int)n);
    }
    sum->n++;
    sum->len = n;
    return true;
}

static void lora_flush(ll_context *c, const lora_sum *sum, float *out) {
    if (sum->n == 1) gl_vec_mad(out, c->lora_out, sum->s0, (int)sum->len);
    else if (sum->n > 1) gl_vec_add(out, out, c->lora_out, (int)sum->len);
}

// lora_tmp = W · x (n_tok rows), x converted once for every adapter reading the same input.
static bool lora_first(ll_context *c, const ll_weight *w, const float *x, int n_tok) {
    if (w->type == GL_TYPE_F32) {
        if (!grow(&c->lora_tmp, &c->lora_tmp_cap, (size_t)n_tok * (size_t)w->n_out)) return false;
        f32_product p = {w, x, c->lora_tmp, n_tok, n_tok > 1 && !c->exact_batches};
        const double bytes = (double)w->n_in * (double)w->n_out * 4.0 * n_tok;
        if (bytes < LORA_INLINE_BYTES || c->n_threads == 1) f32_product_task(&p, 0, 1);
        else gl_threadpool_run(c->tp, f32_product_task, &p);
        return true;
    }
    const enum gl_type vt = gl_get_type_traits(w->type)->vec_dot_type;
    if (c->lora_act_src != x || c->lora_act.type != vt || c->lora_act.n_tok != n_tok ||
        c->lora_act.n_in != w->n_in) {
        c->lora_act_src = NULL;
        if (!gl_act_prepare(&c->lora_act, c->tp, x, n_tok, w->n_in, vt)) return false;
        c->lora_act_src = x;
    }
    if (!grow(&c->lora_tmp, &c->lora_tmp_cap, (size_t)n_tok * (size_t)w->n_out)) return false;
    thin_matmul(c, w, &c->lora_act, c->lora_tmp);
    return true;
}

// The adapters of weight `slot`: out += sum of s * B·(A·x).
static bool lora_apply(ll_context *c, int slot, const float *x, int n_tok, float *out) {
    lora_sum sum = {0};
    for (int i = 0; i < c->n_loras; i++) {
        const ll_lora_use *u = &c->loras[i];
        const ll_lora_pair *p = &u->adapter->pairs[slot];
        if (!p->a.data || u->scale == 0) continue;
        if (!lora_first(c, &p->a, x, n_tok) || !lora_accum(c, &p->b, p->bt, n_tok, u->scale * p->scale, &sum))
            return false;
    }
    lora_flush(c, &sum, out);
    return true;
}

// A tied output head reads token_embd, so its adapters apply transposed:
// logits += s * A · (Bᵀ · x), A having one row of rank elements per token.
static bool lora_apply_tied_output(ll_context *c, const float *x, int n_tok, float *out) {
    const int slot = ll_lora_slot_embd(c->model);
    lora_sum sum = {0};
    for (int i = 0; i < c->n_loras; i++) {
        const ll_lora_use *u = &c->loras[i];
        const ll_lora_pair *p = &u->adapter->pairs[slot];
        if (!p->a.data || u->scale == 0) continue;
        const ll_weight bt = {p->bt, GL_TYPE_F32, p->b.n_out, p->rank};
        if (!lora_first(c, &bt, x, n_tok) || !lora_accum(c, &p->a, p->at, n_tok, u->scale * p->scale, &sum))
            return false;
    }
    lora_flush(c, &sum, out);
    return true;
}

// Embedding rows: x[t] += s * B · A[token t].
static bool lora_apply_embd(ll_context *c, const ll_token *tokens, int n_tok) {
    const int slot = ll_lora_slot_embd(c->model);
    lora_sum sum = {0};
    for (int i = 0; i < c->n_loras; i++) {
        const ll_lora_use *u = &c->loras[i];
        const ll_lora_pair *p = &u->adapter->pairs[slot];
        if (!p->a.data || u->scale == 0) continue;
        if (!grow(&c->lora_tmp, &c->lora_tmp_cap, (size_t)n_tok * (size_t)p->rank)) return false;
        const gl_type_traits *tr = gl_get_type_traits(p->a.type);
        const size_t row = gl_row_size(p->a.type, p->rank);
        for (int t = 0; t < n_tok; t++)
            tr->to_float((const char *)p->a.data + (size_t)tokens[t] * row, c->lora_tmp + (size_t)t * p->rank,
                         p->rank);
        if (!lora_accum(c, &p->b, p->bt, n_tok, u->scale * p->scale, &sum)) return false;
    }
    lora_flush(c, &sum, c->x);
    return true;
}

// ---- matmul with a shared activation ------------------------------------------------------

// out = W · x for n_tok rows of x, plus the LoRA adapters of `slot` (-1: none). The activation
// converted for the previous call is reused when it came from the same buffer in the same type
// (q/k/v, gate/up); callers reset c->act_src whenever that buffer changes.
static bool matmul(ll_context *c, const ll_weight *w, int slot, const float *x, int n_tok, float *out) {
    if (c->act_hook) c->act_hook(c->act_hook_ud, slot, x, n_tok, (int)w->n_in);
    const enum gl_type vt = gl_get_type_traits(w->type)->vec_dot_type;
    if (c->act_src != x || c->act.type != vt || c->act.n_tok != n_tok || c->act.n_in != w->n_in) {
        c->lora_act_src = NULL; // x's buffer may hold new values: the LoRA copy is stale too
        if (!gl_act_prepare(&c->act, c->tp, x, n_tok, w->n_in, vt)) {
            c->act_src = NULL;
            return false;
        }
        c->act_src = x;
    }
    if (c->exact_batches && n_tok > 1) gl_matmul_rowwise(c->tp, w->data, w->type, w->n_out, &c->act, out);
    else gl_matmul(c->tp, w->data, w->type, w->n_out, &c->act, out);
    if (c->n_loras == 0 || slot < 0) return true;
    if (slot == ll_lora_slot_output(c->model) && w->data == c->model->tok_embd.data)
        return lora_apply_tied_output(c, x, n_tok, out);
    return lora_apply(c, slot, x, n_tok, out);
}

static void add_bias(float *x, const float *b, int n_tok, int n) {
    if (!b) return;
    for (int t = 0; t < n_tok; t++) gl_vec_add(x + (size_t)t * n, x + (size_t)t * n, b, n);
}

static void store_rows(void *cache, bool f16, size_t off, const float *src, int n) {
    if (f16) gl_fp32_to_fp16_row(src, (gl_fp16 *)cache + off, n);
    else memcpy((float *)cache + off, src, (size_t)n * sizeof(float));
}


// ---- debug dump (LL_DUMP_DIR): named intermediates as f32 files, for layer-by-layer
// comparison with the reference engine. Off unless the variable is set.
static void dbg_dump(const char *name, int l, const float *p, int n_tok, int n) {
    static int dir_state = -1;
    static const char *dir;
    if (dir_state < 0) { dir = getenv("LL_DUMP_DIR"); dir_state = dir != NULL; }
    if (!dir_state) return;
    char path[512];
    if (l >= 0) snprintf(path, sizeof path, "%s/%s-%d.bin", dir, name, l);
    else snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    int64_t ne[4] = {n, n_tok, 1, 1};
    fwrite(ne, 8, 4, f);
    fwrite(p, 4, (size_t)n * n_tok, f);
    fclose(f);
}

// ---- the pass -----------------------------------------------------------------------------

bool ll_forward_llama(ll_context *c, const ll_token *tokens, int B, int pos0, float *out,
                      bool all_logits, char *err, size_t errlen) {
    const ll_model *m = c->model;
    const ll_hparams *hp = &m->hp;
    const int E = hp->n_embd, hd = hp->head_dim, n_ff = hp->n_ff;
    const int q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;

    // Embedding rows, decoded from whatever type token_embd has; or, when the first layers
    // were evaluated elsewhere (ll_decode_from_layer), the residual stream leaving them.
    const int l0 = c->skip_layers;
    if (l0 > 0) {
        memcpy(c->x, c->skip_x + (size_t)(pos0 - c->skip_pos0) * E, sizeof(float) * (size_t)B * E);
    } else {
        const gl_type_traits *et = gl_get_type_traits(m->tok_embd.type);
        const size_t erow = gl_row_size(m->tok_embd.type, E);
        for (int t = 0; t < B; t++)
            et->to_float((const char *)m->tok_embd.data + (size_t)tokens[t] * erow, c->x + (size_t)t * E, E);
        if (c->n_loras && !lora_apply_embd(c, tokens, B)) {
            if (err && errlen) snprintf(err, errlen, "out of memory (LoRA buffer)");
            return false;
        }
        dbg_dump("inp_embd", -1, c->x, B, E);
    }

    // Rotation angles of the chunk's positions, shared by q and k of every layer.
    for (int t = 0; t < B; t++) gl_rope_cache(&c->rope, hd, pos0 + t, c->rope_cs + (size_t)t * hp->n_rot);

    task tk = {.c = c};
    for (int l = l0; l < hp->n_layer; l++) {
        const ll_layer *L = &m->layers[l];

        // attention block
        tk = (task){.c = c, .src = c->x, .dst = c->xb, .w = L->attn_norm, .n_rows = B, .n = E};
        run(c, rmsnorm_task, &tk, (size_t)B * E);
        dbg_dump("attn_norm", l, c->xb, B, E);
        c->act_src = NULL;
        if (!matmul(c, &L->wq, ll_lora_slot(l, LL_LORA_Q), c->xb, B, c->q) ||
            !matmul(c, &L->wk, ll_lora_slot(l, LL_LORA_K), c->xb, B, c->k) ||
            !matmul(c, &L->wv, ll_lora_slot(l, LL_LORA_V), c->xb, B, c->v))
            goto oom;
        add_bias(c->q, L->bq, B, q_dim);
        add_bias(c->k, L->bk, B, kv_dim);
        add_bias(c->v, L->bv, B, kv_dim);
        dbg_dump("Qcur", l, c->q, B, q_dim);
        dbg_dump("Kcur", l, c->k, B, kv_dim);
        dbg_dump("Vcur", l, c->v, B, kv_dim);

        const size_t layer_off = (size_t)l * c->n_ctx * kv_dim;
        for (int t = 0; t < B; t++) {
            const float *cs = c->rope_cs + (size_t)t * hp->n_rot;
            gl_rope_apply(&c->rope, cs, c->q + (size_t)t * q_dim, hp->n_head, hd);
            gl_rope_apply(&c->rope, cs, c->k + (size_t)t * kv_dim, hp->n_head_kv, hd);
            const size_t off = layer_off + (size_t)(pos0 + t) * kv_dim;
            store_rows(c->k_cache, c->kv_f16_k, off, c->k + (size_t)t * kv_dim, kv_dim);
            store_rows(c->v_cache, c->kv_f16_v, off, c->v + (size_t)t * kv_dim, kv_dim);
        }

        tk = (task){.c = c, .n_rows = B, .layer = l, .pos0 = pos0};
        dbg_dump("Qcur_rope", l, c->q, B, q_dim);
        dbg_dump("Kcur_rope", l, c->k, B, kv_dim);
        run(c, attention_task, &tk, (size_t)B * hp->n_head * (pos0 + B) * hd);
        dbg_dump("kqv_merged_cont", l, c->xb, B, q_dim);
        c->act_src = NULL;
        if (!matmul(c, &L->wo, ll_lora_slot(l, LL_LORA_O), c->xb, B, c->xb2)) goto oom;
        add_bias(c->xb2, L->bo, B, E);
        dbg_dump("kqv_out", l, c->xb2, B, E);
        gl_vec_add(c->x, c->x, c->xb2, B * E);
        dbg_dump("ffn_inp", l, c->x, B, E);

        // feed-forward block
        tk = (task){.c = c, .src = c->x, .dst = c->xb, .w = L->ffn_norm, .n_rows = B, .n = E};
        run(c, rmsnorm_task, &tk, (size_t)B * E);
        dbg_dump("ffn_norm", l, c->xb, B, E);
        c->act_src = NULL;
        if (!matmul(c, &L->w_gate, ll_lora_slot(l, LL_LORA_GATE), c->xb, B, c->hb) ||
            !matmul(c, &L->w_up, ll_lora_slot(l, LL_LORA_UP), c->xb, B, c->hb2))
            goto oom;
        dbg_dump("ffn_gate", l, c->hb, B, n_ff);
        dbg_dump("ffn_up", l, c->hb2, B, n_ff);
        tk = (task){.c = c, .src = c->hb, .src2 = c->hb2, .dst = c->hb, .n_rows = B, .n = n_ff};
        run(c, swiglu_task, &tk, (size_t)B * n_ff * 4); // exp is dearer than a multiply
        dbg_dump("ffn_gate_par", l, c->hb, B, n_ff);
        c->act_src = NULL;
        if (!matmul(c, &L->w_down, ll_lora_slot(l, LL_LORA_DOWN), c->hb, B, c->xb2)) goto oom;
        dbg_dump("ffn_out", l, c->xb2, B, E);
        gl_vec_add(c->x, c->x, c->xb2, B * E);
        dbg_dump("l_out", l, c->x, B, E);
    }

    c->n_rows_x = B;
    if (out) {
        // Only the rows whose logits are wanted go through the final norm and the head.
        const int first = all_logits ? 0 : B - 1, n_out = B - first;
        tk = (task){.c = c, .src = c->x + (size_t)first * E, .dst = c->xb, .w = m->output_norm,
                    .n_rows = n_out, .n = E};
        run(c, rmsnorm_task, &tk, (size_t)n_out * E);
        dbg_dump("result_norm", -1, c->xb, n_out, E);
        c->act_src = NULL;
        if (!matmul(c, &m->output, ll_lora_slot_output(m), c->xb, n_out, out)) goto oom;
        dbg_dump("result_output", -1, out, n_out, (int)m->output.n_out);
    }
    c->act_src = NULL;
    return true;
oom:
    if (err && errlen) snprintf(err, errlen, "out of memory (activation or LoRA buffer)");
    return false;
}
