// The one-token (generation) kernel for Q4_0, Q5_0, Q8_0 and IQ4_NL against Q8_0 rows, with the
// activation's block scales precomputed as floats; gl_gen_rows_n runs several tokens through
// it with each weight block decoded once (batch-invariant: speculative decoding verifies with it).
#include "dot.h"

#if defined(GL_HAVE_AVX2_KERNELS)

#include <stdlib.h>

#include "quants.h"
#include "simd_avx2.h"

// ---- one token: the generation kernel with precomputed activation scales -------------------------
// Scales are handled eight blocks at a time: the weights' eight fp16 scales go through one
// conversion, get multiplied by eight activation scales loaded at once, and each block takes its
// lane with a permute. The unsigned kinds add -offset * dw * sy for eight blocks in one FMA.

INL __m256 load_dw8(const char *x, size_t stride) {
    uint64_t lo = 0, hi = 0;
    for (int b = 0; b < 4; b++) {
        uint16_t d0, d1;
        memcpy(&d0, x + stride * (size_t)b, 2);
        memcpy(&d1, x + stride * (size_t)(b + 4), 2);
        lo |= (uint64_t)d0 << (16 * b);
        hi |= (uint64_t)d1 << (16 * b);
    }
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
}

// Block levels: unsigned for Q4_0/Q5_0, signed for Q8_0/IQ4_NL.
INL __m256i gen_levels(enum gl_type t, const char *blk) {
    const __m128i m4 = _mm_set1_epi8(0x0f);
    if (t == GL_TYPE_Q8_0) return _mm256_loadu_si256((const __m256i *)(blk + 2));
    const uint8_t *qs = (const uint8_t *)blk + (t == GL_TYPE_Q5_0 ? 6 : 2);
    // Both halves get the 16 bytes; the high half shifts them right by 4 (64-bit lanes: the
    // mask removes what crosses byte boundaries).
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    const __m256i u = _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0f));
    (void)m4;
    if (t == GL_TYPE_Q4_0) return u;
    if (t == GL_TYPE_IQ4_NL) {
        const __m128i l = _mm_loadu_si128((const __m128i *)gl_iq4nl_values);
        return _mm256_shuffle_epi8(_mm256_set_m128i(l, l), u);
    }
    // Q5_0: fifth bits from qh (bytes 2..5)
    uint32_t h;
    memcpy(&h, blk + 2, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll,
                                           0x0101010101010101ll, 0x0000000000000000ll);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)h), shuf), bit), bit);
    return _mm256_or_si256(u, _mm256_and_si256(hb, _mm256_set1_epi8(0x10)));
}

INL __m256i gen_dot(enum gl_type t, __m256i w, const int8_t *yq, const bool vnni) {
    const __m256i y = _mm256_loadu_si256((const __m256i *)yq);
    const __m256i ones = _mm256_set1_epi16(1);
    const bool u = t == GL_TYPE_Q4_0 || t == GL_TYPE_Q5_0;
    const __m256i a = u ? w : _mm256_sign_epi8(w, w), b = u ? y : _mm256_sign_epi8(y, w);
    if (vnni) return dpbusd(_mm256_setzero_si256(), a, b);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones);
}

// nt tokens (1..4) x one row: every token's arithmetic is exactly the one-token kernel's (same
// operations on the same values, in the same order), the weight levels and scales are decoded
// once for all of them. Speculative decoding verifies drafts through this: batch-invariant,
// so its logits are bitwise those of plain decoding, at a fraction of nt one-token passes.
INL void gen_kernel(enum gl_type t, size_t bsz, int n, const void *vx, const block_q8_0 *const *y,
                    const float *const *dy, const float *const *sy, float *out, size_t os, const int nt,
                    const bool vnni) {
    const char *x = (const char *)vx;
    const int nb = n / QK8_0;
    const bool offs = t == GL_TYPE_Q4_0 || t == GL_TYPE_Q5_0;
    const float off = t == GL_TYPE_Q4_0 ? -8.0f : -16.0f;
    __m256 acc0[4], acc1[4], corr[4];
    float tail[4];
    FOR_J {
        acc0[j] = acc1[j] = corr[j] = _mm256_setzero_ps();
        tail[j] = 0;
    }
    int i = 0;
    for (; i + 8 <= nb; i += 8) {
        const char *xb = x + (size_t)i * bsz;
        const __m256 dw = load_dw8(xb, bsz);
        // Each block's dw * dy. With several tokens they are broadcast from memory (loads
        // instead of shuffles on the busy FP ports); alone, a permute is faster. Same values.
        __m256 sc[4];
        float scm[4][8] __attribute__((aligned(32)));
        FOR_J {
            sc[j] = _mm256_mul_ps(dw, _mm256_loadu_ps(dy[j] + i));
            if (nt > 1) _mm256_store_ps(scm[j], sc[j]);
            if (offs) corr[j] = _mm256_fmadd_ps(dw, _mm256_loadu_ps(sy[j] + i), corr[j]);
        }
        UNROLL for (int b = 0; b < 8; b += 2) {
            const __m256i w0 = gen_levels(t, xb + (size_t)b * bsz), w1 = gen_levels(t, xb + (size_t)(b + 1) * bsz);
            FOR_J {
                const __m256 p0 = _mm256_cvtepi32_ps(gen_dot(t, w0, y[j][i + b].qs, vnni));
                const __m256 p1 = _mm256_cvtepi32_ps(gen_dot(t, w1, y[j][i + b + 1].qs, vnni));
                const __m256 s0 = nt > 1 ? _mm256_broadcast_ss(&scm[j][b]) : _mm256_permutevar8x32_ps(sc[j], _mm256_set1_epi32(b));
                const __m256 s1 = nt > 1 ? _mm256_broadcast_ss(&scm[j][b + 1]) : _mm256_permutevar8x32_ps(sc[j], _mm256_set1_epi32(b + 1));
                acc0[j] = _mm256_fmadd_ps(p0, s0, acc0[j]);
                acc1[j] = _mm256_fmadd_ps(p1, s1, acc1[j]);
            }
        }
    }
    for (; i < nb; i++) {
        const char *xb = x + (size_t)i * bsz;
        uint16_t dh;
        memcpy(&dh, xb, 2);
        const float dw = _cvtsh_ss(dh);
        const __m256i wl = gen_levels(t, xb);
        FOR_J {
            const __m256 p = _mm256_cvtepi32_ps(gen_dot(t, wl, y[j][i].qs, vnni));
            acc0[j] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * dy[j][i]), acc0[j]);
            if (offs) tail[j] += off * dw * sy[j][i];
        }
    }
    FOR_J {
        float r = hsum8(_mm256_add_ps(acc0[j], acc1[j])) + tail[j];
        if (offs) r += off * hsum8(corr[j]);
        out[(size_t)j * os] = r;
    }
}

bool gl_gen_supported(enum gl_type t) { return gl_tile8_supported(t); }

#define GEN_NT(T, BLOCK, vnni)                                                               \
    switch (nt) {                                                                            \
    case 4: GEN_ROWS(T, BLOCK, 4, vnni) break;                                               \
    case 3: GEN_ROWS(T, BLOCK, 3, vnni) break;                                               \
    case 2: GEN_ROWS(T, BLOCK, 2, vnni) break;                                               \
    default: GEN_ROWS(T, BLOCK, 1, vnni) break;                                              \
    }
#define GEN_ROWS(T, BLOCK, NT, vnni)                                                         \
    for (int r = 0; r < n_rows; r++)                                                         \
        gen_kernel(T, sizeof(BLOCK), n, wr + (size_t)r * w_row, yy, dd, cc, out + r, bs, NT, vnni);

void gl_gen_rows_n(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                   size_t by, const float *dy, const float *sy, const int32_t *ys, int n_tok, float *out,
                   size_t bs) {
    (void)ys;
    const char *wr = (const char *)w;
    const bool vnni = gl_use_vnni();
    const int nb = n / QK8_0;
    for (int t0 = 0; t0 < n_tok; t0 += 4, out += 4 * bs) {
        const int nt = n_tok - t0 < 4 ? n_tok - t0 : 4;
        const block_q8_0 *yy[4];
        const float *dd[4], *cc[4];
        for (int j = 0; j < 4; j++) {
            const int tk = t0 + (j < nt ? j : 0);
            yy[j] = (const block_q8_0 *)((const char *)y + (size_t)tk * by);
            dd[j] = dy + (size_t)tk * nb;
            cc[j] = sy + (size_t)tk * nb;
        }
        switch (type) {
        case GL_TYPE_Q4_0:
            if (vnni) GEN_NT(GL_TYPE_Q4_0, block_q4_0, true) else GEN_NT(GL_TYPE_Q4_0, block_q4_0, false)
            break;
        case GL_TYPE_Q5_0:
            if (vnni) GEN_NT(GL_TYPE_Q5_0, block_q5_0, true) else GEN_NT(GL_TYPE_Q5_0, block_q5_0, false)
            break;
        case GL_TYPE_Q8_0:
            if (vnni) GEN_NT(GL_TYPE_Q8_0, block_q8_0, true) else GEN_NT(GL_TYPE_Q8_0, block_q8_0, false)
            break;
        default:
            if (vnni) GEN_NT(GL_TYPE_IQ4_NL, block_iq4_nl, true) else GEN_NT(GL_TYPE_IQ4_NL, block_iq4_nl, false)
            break;
        }
    }
}

void gl_gen_rows(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                 const float *dy, const float *sy, const int32_t *ys, float *out) {
    gl_gen_rows_n(type, n, w, w_row, n_rows, y, 0, dy, sy, ys, 1, out, 0);
}

#endif
