// Causal self-attention over the KV cache, for every family: grouped-query heads, optional
// sliding window and score soft-capping.
//
// Precision follows the reference engine over an F16 cache: the query is rounded to F16 for
// the q·k dots and the softmax weights are rounded to F16 before they weight the values.
// Sums are also grouped the way the reference groups them (8 lanes, plus 4 accumulators over
// steps of 32 for a single token; 1 accumulator for a batch). On models whose activations are
// re-quantized to 8 bits between layers, a last-bit difference can flip a rounding and grow
// through the layers, so matching the reference's arithmetic keeps the golden logits close.
// The AVX2 paths compute exactly what the scalar code does.

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/blocks.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define ATT_AVX2 1
#endif

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
        return ll_hsum8_pairs(a[0]);
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
        sum = ll_hsum8_hadd(r);
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
        out[d] = ll_hsum8_hadd(r);
    }
}

typedef struct {
    ll_context *c;
    int n_rows, layer, pos0;
} att_task;

// Causal self-attention of the chunk's queries over the cache, one (token, head) pair per
// unit; units are dealt round-robin because later tokens see more keys. A sliding-window
// layer sees the keys at distance < n_swa only; soft-capping turns scores s into
// c * tanh(s / c) before the softmax.
static void attention_task(void *arg, int ith, int nth) {
    const att_task *tk = arg;
    ll_context *c = tk->c;
    const ll_hparams *hp = &c->model->hp;
    const int hd = hp->head_dim, n_head = hp->n_head;
    const int group = hp->n_head / hp->n_head_kv;
    const int q_dim = n_head * hd, kv_dim = hp->n_head_kv * hd;
    const float scale = hp->q_scale_first ? 1.0f : hp->kq_scale;
    const float cap = hp->attn_softcap, inv_cap = cap > 0 ? 1.0f / cap : 0.0f;
    const int n_swa = c->model->layers[tk->layer].n_swa;
    const size_t layer_off = (size_t)tk->layer * c->n_ctx * kv_dim;
    // Exact batches (speculative verification) sum every row as a single token does.
    const bool fk = c->kv_f16_k, fv = c->kv_f16_v, batch = tk->n_rows > 1 && !c->exact_batches;
    const size_t ek = fk ? 2 : 4, ev = fv ? 2 : 4;
    const bool ref512 = !batch && gl_ref_avx512(); // a GGML_NATIVE AVX-512 reference's single-token sums
    // value sums: 8 lanes (batch) or 4 x 8 (single token), each a row of hd partial sums
    const int n_slots = batch ? 8 : 32;
    float *s = c->att + (size_t)ith * c->n_ctx;
    float *qr = c->att_scratch + (size_t)ith * (33 * (size_t)hd);
    float *acc = qr + hd;

    for (int u = ith; u < tk->n_rows * n_head; u += nth) {
        const int t = u / n_head, h = u % n_head;
        const int pos = tk->pos0 + t;
        // keys j0 .. pos: all of them, or the window's
        const int j0 = n_swa > 0 && pos + 1 > n_swa ? pos + 1 - n_swa : 0;
        const int n_keys = pos + 1 - j0;
        const float *q = c->q + (size_t)t * q_dim + (size_t)h * hd;
        const size_t col = layer_off + (size_t)j0 * kv_dim + (size_t)(h / group) * hd;
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
            const void *kj = k + (size_t)j * kv_dim * ek;
            s[j] = (ref512 ? gl_dot_ref512(kj, 1, fk, hd, qr, hd) : att_dot(kj, fk, qr, hd, batch)) * scale;
            if (cap > 0) s[j] = tanhf(s[j] * inv_cap) * cap;
            if (s[j] > mx) mx = s[j];
        }
        // The softmax row spans the reference's KV window (masked keys weigh 0): it decides
        // which keys its 8-lane exp takes and which its scalar tail takes.
        const int row = kv_window(c, batch ? tk->pos0 + tk->n_rows - 1 : pos) - j0;
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
                out[d] = ll_hsum8_pairs(r);
            }
        } else if (ref512) { // each output element: the values' column against the weights
            for (int d = 0; d < hd; d++) out[d] = gl_dot_ref512(v + (size_t)d * ev, kv_dim, fv, n_keys, s, row);
        } else {
            att_values_1(acc, v, kv_dim * ev, fv, s, n_keys, hd);
            att_reduce_1(out, acc, hd);
        }
    }
}

void ll_attend(ll_context *c, int l, int n_tok, int pos0) {
    att_task tk = {c, n_tok, l, pos0};
    const ll_hparams *hp = &c->model->hp;
    ll_run(c, attention_task, &tk, (size_t)n_tok * hp->n_head * (pos0 + n_tok) * hp->head_dim);
}
