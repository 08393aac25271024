// The fused attention kernel's tile loops (gl_attn_ops) and the exp row of the kernel set chosen
// for this CPU give bitwise what the scalar set's give, so fused attention rounds alike on every
// set (LLAMALITE_ISA=scalar reproduces an AVX2 or AVX-512 run). Head sizes, key counts and
// query counts hit the vector bodies and their tails. (Q8_0 values on CPUs with AVX512-BF16 are
// the exception, by bf16 dot products: test_kv_types bounds their rounding.)
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-lite/attention.h"
#include "ggml-lite/dot.h"
#include "ggml-lite/ops.h"
#include "ggml-lite/quants.h"
#include "tests/test_util.h"

static uint64_t rng = 0x51ED2701ull;
static float gauss(void) { return test_gauss(&rng); }

static int first_diff(const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) return i;
    return -1;
}

enum { MAX_KEYS = 32, MAX_HD = 264, MAX_Q = 9 };

static float scratch[32 * MAX_HD + MAX_Q * MAX_HD];

// Several queries at once (row stride ld > n), every key count up to a tile; F16 key rows read
// as they are score as their decoded floats do.
static void test_dots(const gl_attn_ops *set, const gl_attn_ops *ref) {
    static const int hds[] = {8, 40, 64, 100, 128, 256, 264};
    enum { LD = MAX_KEYS + 3 };
    static float q[MAX_Q * MAX_HD], k[MAX_KEYS * MAX_HD], got[MAX_Q * LD], want[MAX_Q * LD];
    static gl_fp16 k16[MAX_KEYS * 2 * MAX_HD];
    for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++)
        for (int n = 1; n <= MAX_KEYS; n += 5) {
            const int hd = hds[h], n_q = 1 + n % MAX_Q;
            for (int i = 0; i < n_q * hd; i++) q[i] = gauss();
            for (int i = 0; i < n * hd; i++) k[i] = gauss();
            memset(got, 0, sizeof got), memset(want, 0, sizeof want);
            set->dots(q, n_q, k, n, hd, got, LD, scratch);
            ref->dots(q, n_q, k, n, hd, want, LD, scratch);
            int d = first_diff(got, want, n_q * LD);
            CHECK(d < 0, "dots hd=%d n=%d n_q=%d: query %d key %d %a, scalar set %a", hd, n, n_q, d / LD, d % LD,
                  d < 0 ? 0.0 : got[d], d < 0 ? 0.0 : want[d]);
            if (!set->dots_f16) continue;
            // the keys as F16 rows two heads wide (the head second), and those rows decoded
            for (int j = 0; j < n; j++)
                for (int e = 0; e < hd; e++) {
                    k16[(size_t)j * 2 * hd + hd + e] = gl_fp32_to_fp16(k[(size_t)j * hd + e]);
                    k[(size_t)j * hd + e] = gl_fp16_to_fp32(k16[(size_t)j * 2 * hd + hd + e]);
                }
            ref->dots(q, n_q, k, n, hd, want, LD, scratch);
            memset(got, 0, sizeof got);
            set->dots_f16(q, n_q, (const char *)(k16 + hd), 2 * hd * sizeof(gl_fp16), n, hd, got, LD, scratch);
            d = first_diff(got, want, n_q * LD);
            CHECK(d < 0, "dots_f16 hd=%d n=%d n_q=%d: query %d key %d %a, scalar set %a", hd, n, n_q, d / LD, d % LD,
                  d < 0 ? 0.0 : got[d], d < 0 ? 0.0 : want[d]);
        }
}

// Q8_0 keys in rows wider than a head (the head's blocks start a few blocks in), extreme quants.
static void test_dots_q8_0(const gl_attn_ops *set, const gl_attn_ops *ref) {
    static const int hds[] = {32, 64, 128, 256};
    enum { LD = MAX_KEYS + 1, ROW_BLOCKS = 10 };
    static block_q8_0 q[MAX_Q * 8], k[MAX_KEYS * ROW_BLOCKS];
    static float x[256], got[MAX_Q * LD], want[MAX_Q * LD];
    for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++)
        for (int n = 1; n <= MAX_KEYS; n += 3) {
            const int hd = hds[h], nb = hd / QK8_0, n_q = 1 + n % MAX_Q;
            for (int i = 0; i < n_q; i++) {
                for (int e = 0; e < hd; e++) x[e] = gauss();
                gl_get_type_traits(GL_TYPE_Q8_0)->from_float_ref(x, q + i * nb, hd);
            }
            for (int j = 0; j < n * ROW_BLOCKS; j++) {
                for (int e = 0; e < QK8_0; e++) x[e] = gauss();
                gl_get_type_traits(GL_TYPE_Q8_0)->from_float_ref(x, k + j, QK8_0);
                if (j % 7 == 0) memset(k[j].qs, 0x81, QK8_0);  // all -127
                if (j % 11 == 0) memset(k[j].qs, 0x7f, QK8_0); // all 127
            }
            if (n_q > 1) memset(q[nb].qs, 0x81, QK8_0);
            const char *keys = (const char *)(k + ROW_BLOCKS - nb);
            memset(got, 0, sizeof got), memset(want, 0, sizeof want);
            if (set->prepare_q8_0) set->prepare_q8_0((const char *)q, nb * sizeof(block_q8_0), n_q, hd, scratch);
            set->dots_q8_0((const char *)q, nb * sizeof(block_q8_0), n_q, keys, ROW_BLOCKS * sizeof(block_q8_0), n, hd,
                           got, LD, scratch);
            ref->dots_q8_0((const char *)q, nb * sizeof(block_q8_0), n_q, keys, ROW_BLOCKS * sizeof(block_q8_0), n, hd,
                           want, LD, scratch);
            const int d = first_diff(got, want, n_q * LD);
            CHECK(d < 0, "dots_q8_0 hd=%d n=%d n_q=%d: query %d key %d %a, scalar set %a", hd, n, n_q, d / LD, d % LD,
                  d < 0 ? 0.0 : got[d], d < 0 ? 0.0 : want[d]);
        }
}

static void test_accumulate(const gl_attn_ops *set, const gl_attn_ops *ref) {
    static const int hds[] = {8, 40, 64, 100, 128, 256};
    enum { LD = MAX_KEYS + 2 };
    static float v[MAX_KEYS * MAX_HD], w[MAX_Q * LD], rescale[MAX_Q * LD], got[MAX_Q * MAX_HD], want[MAX_Q * MAX_HD];
    static uint32_t grows[MAX_Q];
    for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++)
        for (int n_q = 1; n_q <= MAX_Q; n_q += 2) {
            const int hd = hds[h], n = MAX_KEYS - n_q;
            for (int i = 0; i < n * hd; i++) v[i] = gauss();
            for (int j = 0; j < n_q * LD; j++) w[j] = expf(gauss()), rescale[j] = expf(-fabsf(gauss()));
            for (int i = 0; i < n_q * hd; i++) got[i] = want[i] = gauss();
            for (int i = 0; i < n_q; i++) grows[i] = i % 3 == 0 ? 0 : 0x80402101u >> i; // a few keys raise the maximum
            set->accumulate(got, n_q, v, n, hd, w, rescale, LD, grows);
            ref->accumulate(want, n_q, v, n, hd, w, rescale, LD, grows);
            const int d = first_diff(got, want, n_q * hd);
            CHECK(d < 0, "accumulate hd=%d n_q=%d: query %d element %d %a, scalar set %a", hd, n_q, d / hd, d % hd,
                  d < 0 ? 0.0 : got[d], d < 0 ? 0.0 : want[d]);
        }
}

static void test_sum_exp(const gl_attn_ops *set, const gl_attn_ops *ref) {
    static float x[MAX_KEYS + 7], got[MAX_KEYS + 7], want[MAX_KEYS + 7];
    const gl_vec_ops *ops = gl_kernels()->ops;
    for (int n = 1; n <= MAX_KEYS + 7; n++) {
        for (int j = 0; j < n; j++) x[j] = 4 * gauss();
        if (n > 3) x[n / 2] = -INFINITY; // a masked key
        const float a = set->sum(x, n), b = ref->sum(x, n);
        CHECK(memcmp(&a, &b, sizeof a) == 0, "sum n=%d: %a, scalar set %a", n, a, b);
        ops->exp_row(got, x, n);
        gl_vec_ops_scalar.exp_row(want, x, n);
        const int d = first_diff(got, want, n);
        CHECK(d < 0, "exp_row n=%d: element %d %a, scalar set %a", n, d, d < 0 ? 0.0 : got[d], d < 0 ? 0.0 : want[d]);
        CHECK(n <= 3 || want[n / 2] == 0.0f, "exp_row n=%d: e^-inf = %a", n, want[n / 2]);
    }
}

static void test_q8_0(const gl_attn_ops *set, const gl_attn_ops *ref) {
    enum { N = 4 * QK8_0 };
    float x[N], got[N], want[N];
    block_q8_0 b[N / QK8_0];
    for (int i = 0; i < N; i++) x[i] = gauss();
    gl_get_type_traits(GL_TYPE_Q8_0)->from_float_ref(x, b, N);
    set->q8_0_to_f32(b, got, N);
    ref->q8_0_to_f32(b, want, N);
    const int d = first_diff(got, want, N);
    CHECK(d < 0, "q8_0_to_f32: element %d %a, scalar set %a", d, d < 0 ? 0.0 : got[d], d < 0 ? 0.0 : want[d]);
    gl_get_type_traits(GL_TYPE_Q8_0)->to_float(b, x, N);
    CHECK(first_diff(x, want, N) < 0, "q8_0_to_f32 differs from the type's own decoder");
}

// The softmax step of one query over a tile: the scores scaled and masked outside [a, b), the
// running maximum raised (and the sum scaled by e^(m_old - m)) when a score exceeds it, the
// weights and their sum as exp_row and sum give them; with maxima below, at and above the scores.
static void test_weights(const gl_attn_ops *set, const gl_attn_ops *ref) {
    if (!set->weights) return;
    const float scale = 0.125f;
    float raw[MAX_KEYS + 16], s[MAX_KEYS + 16], d[MAX_KEYS], want[MAX_KEYS];
    for (int n = 1; n <= MAX_KEYS; n++)
        for (int kind = 0; kind < 4; kind++) { // running maximum: -inf, below, at, above the tile's
            const int a = n % 4 == 0 ? n / 4 : 0, b = n % 5 == 0 ? n - 1 : n;
            float top = -INFINITY;
            for (int j = 0; j < n + 16; j++) raw[j] = 24 * gauss();
            for (int j = 0; j < n; j++) {
                d[j] = j >= a && j < b ? raw[j] * scale : -INFINITY;
                top = d[j] > top ? d[j] : top;
            }
            const float m0 = kind == 0 ? -INFINITY : kind == 1 ? top - 1 - fabsf(gauss()) : kind == 2 ? top : top + fabsf(gauss());
            const float l0 = kind == 0 ? 0.0f : 1.5f;
            // the step written out with the scalar set's exp and sum
            float want_m = m0, want_l = l0, want_r = 0;
            if (top > m0) {
                const float diff = m0 - top;
                gl_vec_ops_scalar.exp_row(&want_r, &diff, 1);
                want_l *= want_r;
                want_m = top;
            }
            for (int j = 0; j < n; j++) d[j] = d[j] == -INFINITY ? -INFINITY : d[j] - want_m;
            gl_vec_ops_scalar.exp_row(want, d, n);
            want_l += ref->sum(want, n);
            float m = m0, l = l0, r = 0;
            memcpy(s, raw, sizeof s);
            const bool grew = set->weights(s, n, a, b, scale, &m, &l, &r);
            CHECK(grew == (top > m0), "weights n=%d kind %d: grew %d", n, kind, grew);
            const int e = first_diff(s, want, n);
            CHECK(e < 0, "weights n=%d kind %d: key %d %a, scalar set %a", n, kind, e, e < 0 ? 0.0 : s[e], e < 0 ? 0.0 : want[e]);
            CHECK(memcmp(&l, &want_l, sizeof l) == 0, "weights n=%d kind %d: sum %a, scalar set %a", n, kind, l, want_l);
            CHECK(memcmp(&m, &want_m, sizeof m) == 0, "weights n=%d kind %d: maximum %a, want %a", n, kind, m, want_m);
            CHECK(!grew || memcmp(&r, &want_r, sizeof r) == 0, "weights n=%d kind %d: rescale %a, want %a", n, kind, r, want_r);
            CHECK(first_diff(s + n, raw + n, 16) < 0, "weights n=%d: wrote past the tile", n);
        }
}

// The tile's softmax for several queries at once gives, query by query, what weights gives; a
// query that sees none of the tile gets a row of zeros and no rescale.
static void test_weights_tile(const gl_attn_ops *set) {
    if (!set->weights_tile) return;
    enum { NQ = 6, LD = MAX_KEYS + 2 };
    static float raw[NQ * LD], got[NQ * LD], want[NQ * LD], r_got[NQ * LD], r_want[NQ * LD];
    for (int n = 1; n <= MAX_KEYS; n += 3) {
        int a[NQ], b[NQ];
        float m_got[NQ], l_got[NQ], m_want[NQ], l_want[NQ];
        uint32_t grows[NQ];
        for (int i = 0; i < NQ * LD; i++) raw[i] = 24 * gauss(), r_got[i] = r_want[i] = 7;
        for (int i = 0; i < NQ; i++) {
            a[i] = i == 3 ? n : (i * 5) % n, b[i] = i == 3 ? n : n - (i * 3) % (n - a[i]); // query 3 sees none
            m_got[i] = m_want[i] = i % 2 ? -INFINITY : 2 * gauss();
            l_got[i] = l_want[i] = i % 2 ? 0.0f : 3.0f;
        }
        memcpy(got, raw, sizeof got), memcpy(want, raw, sizeof want);
        set->weights_tile(got, LD, NQ, n, a, b, 0.25f, m_got, l_got, r_got, grows);
        for (int i = 0; i < NQ; i++) {
            float *w = want + i * LD;
            bool grew = false;
            if (a[i] >= b[i]) memset(w, 0, (size_t)n * sizeof(float));
            else grew = set->weights(w, n, a[i], b[i], 0.25f, &m_want[i], &l_want[i], &r_want[i * LD + a[i]]);
            CHECK(grows[i] == (grew ? 1u << a[i] : 0), "weights_tile n=%d query %d: grows %x", n, i, grows[i]);
            CHECK(m_got[i] == m_want[i] && memcmp(&l_got[i], &l_want[i], sizeof(float)) == 0,
                  "weights_tile n=%d query %d: maximum or sum differs from weights", n, i);
        }
        CHECK(first_diff(got, want, NQ * LD) < 0 && first_diff(r_got, r_want, NQ * LD) < 0,
              "weights_tile n=%d: weights or rescale factors differ from weights", n);
    }
}

// Decoding a tile's rows (the F16 and Q8_0 caches) gives what the types' decoders give.
static void test_rows_to_f32(const gl_attn_ops *set) {
    if (!set->rows_to_f32) return;
    enum { N = 5, HD = 64, ROW = 3 * HD }; // a head's elements in rows of three heads
    static const enum gl_type types[] = {GL_TYPE_F16, GL_TYPE_Q8_0};
    float x[ROW], got[N * HD], want[N * HD];
    char rows[N * ROW * 2];
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const gl_type_traits *tr = gl_get_type_traits(types[t]);
        const size_t row = gl_row_size(types[t], ROW), off = gl_row_size(types[t], HD);
        for (int j = 0; j < N; j++) {
            for (int e = 0; e < ROW; e++) x[e] = gauss();
            tr->from_float_ref(x, rows + j * row, ROW);
            tr->to_float(rows + j * row + off, want + j * HD, HD);
        }
        CHECK(set->rows_to_f32(types[t], rows + off, row, N, HD, got), "rows_to_f32 declined %s", tr->name);
        CHECK(first_diff(got, want, N * HD) < 0, "rows_to_f32 %s differs from the type's decoder", tr->name);
    }
}

// The whole fused kernel (gl_attn_keys): each query's output alone (its keys end at its own
// position, as in a one-token decode) is bitwise its output in a block of tokens whose keys run
// on to the block's last (a prompt chunk, speculative verification), for every cache type, with
// and without a sliding window. Speculative decoding's "same as greedy" rests on this.
static void test_batch_invariance(void) {
    enum { HD = 64, N_CTX = 150, GROUP = 4, MAX_TOK = 12, NQ = GROUP * MAX_TOK };
    static const enum gl_type types[] = {GL_TYPE_F32, GL_TYPE_F16, GL_TYPE_BF16, GL_TYPE_Q8_0, GL_TYPE_Q4_0};
    static char k[N_CTX * HD * 4], v[N_CTX * HD * 4], qc[NQ * HD * 4];
    static float x[HD], batch[NQ * (HD + 2)], alone[GROUP * (HD + 2)];
    static float scratch_keys[1 << 16];
    CHECK(gl_attn_scratch_floats(NQ, HD) <= sizeof scratch_keys / sizeof(float), "scratch too small");
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const gl_type_traits *tr = gl_get_type_traits(types[t]);
        const size_t row = gl_row_size(types[t], HD), q_size = gl_attn_q_size(types[t], HD);
        for (int j = 0; j < N_CTX; j++) {
            for (int e = 0; e < HD; e++) x[e] = 3 * gauss();
            tr->from_float_ref(x, k + j * row, HD);
            for (int e = 0; e < HD; e++) x[e] = gauss();
            tr->from_float_ref(x, v + j * row, HD);
        }
        for (int i = 0; i < NQ; i++) {
            for (int e = 0; e < HD; e++) x[e] = 2 * gauss();
            gl_attn_convert_q(types[t], x, qc + i * q_size, HD);
        }
        const gl_attn_kv kv = {.head_dim = HD, .k_type = types[t], .v_type = types[t], .k = k, .v = v,
                               .k_stride = row, .v_stride = row, .scale = 0.125f, .grid = 5};
        int bad = 0;
        for (int window = 0; window <= 40; window += 40)
            for (int pos0 = 0; pos0 + MAX_TOK <= N_CTX; pos0 += 23)
                for (int n_tok = 2; n_tok <= MAX_TOK; n_tok += 5) {
                    int lo[NQ], hi[NQ];
                    for (int i = 0; i < n_tok * GROUP; i++) {
                        const int pos = pos0 + i / GROUP;
                        lo[i] = window && pos + 1 > window ? pos + 1 - window : 0, hi[i] = pos + 1;
                    }
                    const int n_q = n_tok * GROUP;
                    gl_attn_state b = {n_q, qc, q_size, lo, hi, batch, batch + n_q, batch + 2 * n_q};
                    gl_attn_begin(&b, HD);
                    gl_attn_keys(&kv, &b, lo[0], hi[n_q - 1], scratch_keys);
                    for (int tk = 0; tk < n_tok; tk++) {
                        const int i0 = tk * GROUP;
                        gl_attn_state a = {GROUP, qc + i0 * q_size, q_size, lo + i0, hi + i0, alone, alone + GROUP, alone + 2 * GROUP};
                        gl_attn_begin(&a, HD);
                        gl_attn_keys(&kv, &a, lo[i0], hi[i0], scratch_keys);
                        for (int g = 0; g < GROUP; g++) {
                            float out_a[HD], out_b[HD];
                            gl_attn_end(&a, g, HD, out_a);
                            gl_attn_end(&b, i0 + g, HD, out_b);
                            bad += first_diff(out_a, out_b, HD) >= 0;
                        }
                    }
                }
        CHECK(bad == 0, "gl_attn_keys %s: %d queries differ between a one-token decode and a batch", tr->name, bad);
    }
}

int main(void) {
    // LLAMALITE_ISA=avx2 (ctest's *_avx2 run) on a CPU without it: nothing to test.
    const char *isa = getenv("LLAMALITE_ISA");
    if (isa && strcmp(isa, "avx2") == 0 && !gl_cpu_has_avx2()) return TEST_SKIP;
    const gl_kernel_set *k = gl_kernels();
    printf("kernels: %s\n", k->name);
    CHECK(k->attn != NULL, "the chosen kernels have no attention loops");
    if (!k->attn) return test_failures ? 1 : 0;
    test_dots(k->attn, &gl_attn_ops_scalar);
    test_dots_q8_0(k->attn, &gl_attn_ops_scalar);
    test_accumulate(k->attn, &gl_attn_ops_scalar);
    test_sum_exp(k->attn, &gl_attn_ops_scalar);
    test_q8_0(k->attn, &gl_attn_ops_scalar);
    test_weights(k->attn, &gl_attn_ops_scalar);
    test_weights_tile(k->attn);
    test_rows_to_f32(k->attn);
    test_batch_invariance();
    return test_failures ? 1 : 0;
}
