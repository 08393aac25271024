// The low-bit types (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, TQ1_0, TQ2_0, MXFP4):
//  - decoders against the reference's: hashes of the reference's dequantization of the first 4
//    rows of every attn_q of ../shared/models/mixed-iq.gguf (made with llama.cpp's to_float) and
//    of the MXFP4 experts of ../shared/models/arch/gpt-oss.gguf (ik_llama.cpp's to_float);
//  - on random block bytes (every index, sign and scale bit pattern; sane fp16 scales): the
//    scalar kernel equals decode-both-then-dot in double, and the selected (SIMD) kernel equals
//    the scalar one within float rounding; the batched kernel (1..4 activation rows) gives the
//    single-row kernel's result bit for bit;
//  - the quantizers that need no imatrix (TQ1_0, TQ2_0, MXFP4) round-trip their own grids
//    exactly and Gaussian rows closely;
//  - a tensor of these types whose row length is not a multiple of 256 is refused with one line
//    naming the tensor.
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf/gguf.h"
#include "ggml-lite/dot.h"
#include "ggml-lite/ggml-lite.h"
#include "ggml-lite/quants.h"
#include "tests/gguf_badfiles.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

static const enum gl_type lowbit[] = {GL_TYPE_IQ2_XXS, GL_TYPE_IQ2_XS, GL_TYPE_IQ2_S, GL_TYPE_IQ3_XXS, GL_TYPE_IQ3_S,
                                      GL_TYPE_IQ1_S,   GL_TYPE_IQ1_M,  GL_TYPE_TQ1_0, GL_TYPE_TQ2_0,   GL_TYPE_MXFP4};
#define N_LOWBIT (int)(sizeof lowbit / sizeof lowbit[0])

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float uniform(void) { return (next_u32() & 0xffffff) / 16777216.0f; }
static float gauss(void) {
    const float u = uniform() + 1e-7f, v = uniform();
    return sqrtf(-2 * logf(u)) * cosf(6.2831853f * v);
}

static uint64_t fnv(const void *p, size_t n) {
    const uint8_t *b = (const uint8_t *)p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

// ---- decoders against the reference ---------------------------------------------------------

typedef struct { const char *model, *name; int type; uint64_t hash; float first, last; } ref_decode;
// The reference's dequantization of the first 4 rows (FNV-1a of the floats' bytes, first and last value).
static const ref_decode ref_decodes[] = {
    {"mixed-iq", "blk.0.attn_q.weight", 16, 0x12571590aeb2c400ull, -0.0262975693f, -0.0302810669f},
    {"mixed-iq", "blk.1.attn_q.weight", 17, 0x9466c81a0e7a8bfcull, 0.0214862823f, 0.0422000885f},
    {"mixed-iq", "blk.2.attn_q.weight", 17, 0x1560bf772e6220d7ull, -0.108987093f, -0.0746876001f},
    {"mixed-iq", "blk.3.attn_q.weight", 18, 0xd4c8a837fb1d2f39ull, 0.0135064125f, 0.0299606323f},
    {"mixed-iq", "blk.4.attn_q.weight", 21, 0xcd3170af65c32ffdull, -0.0644397736f, -0.0624680519f},
    {"mixed-iq", "blk.5.attn_q.weight", 19, 0x05602769136b890aull, -0.0155992508f, 0.131678581f},
    {"mixed-iq", "blk.6.attn_q.weight", 29, 0xc2f02df1f31b514cull, -0.0172252655f, -0.0890674591f},
    {"mixed-iq", "blk.7.attn_q.weight", 34, 0x5b16c8ccf87d7d9dull, 0, 0.256103516f},
    {"mixed-iq", "blk.8.attn_q.weight", 35, 0x925fe5b836153d08ull, 0, 0},
    {"arch/gpt-oss", "blk.0.ffn_gate_exps.weight", 39, 0x6f3eda1f8ab51b60ull, 0, -0.0625f},
    {"arch/gpt-oss", "blk.0.ffn_up_exps.weight", 39, 0x3e801e005acb3786ull, 0.375f, -0.09375f},
    {"arch/gpt-oss", "blk.0.ffn_down_exps.weight", 39, 0xe2d571b6411e14c3ull, -0.0078125f, -0.03125f},
    {"arch/gpt-oss", "blk.1.ffn_gate_exps.weight", 39, 0x21447e64867c0993ull, 0.03125f, -0.375f},
    {"arch/gpt-oss", "blk.1.ffn_up_exps.weight", 39, 0xd031b1a4b642d244ull, 0, 0.09375f},
    {"arch/gpt-oss", "blk.1.ffn_down_exps.weight", 39, 0xe18735909edcda30ull, 0.015625f, 0.03125f},
};

static void test_reference_decodes(void) {
    const char *shared = test_shared_dir();
    if (!shared) return;
    char path[1024], err[256];
    for (size_t i = 0; i < sizeof ref_decodes / sizeof ref_decodes[0]; i++) {
        const ref_decode *r = &ref_decodes[i];
        snprintf(path, sizeof path, "%s/models/%s.gguf", shared, r->model);
        gguf_file *f = gguf_open(path, err, sizeof err);
        CHECK(f != NULL, "open %s: %s", path, err);
        if (!f) continue;
        const gguf_tensor *t = gguf_find_tensor(f, r->name);
        CHECK(t && (int)t->type == r->type, "%s: %s missing or of another type", r->model, r->name);
        if (t && (int)t->type == r->type) {
            const int64_t n = t->ne[0] * 4;
            float *y = malloc(sizeof(float) * (size_t)n);
            gl_get_type_traits(t->type)->to_float(t->data, y, n);
            CHECK(fnv(y, sizeof(float) * (size_t)n) == r->hash && y[0] == r->first && y[n - 1] == r->last,
                  "%s %s (%s): decoded rows differ from the reference's (first %.9g, want %.9g)", r->model, r->name,
                  gl_type_name(t->type), y[0], r->first);
            free(y);
        }
        gguf_close(f);
    }
}

// ---- kernels on random blocks -----------------------------------------------------------------

static gl_fp16 small_half(void) { return gl_fp32_to_fp16((uniform() + 0.05f) * 0.02f); }

static void random_blocks(enum gl_type type, void *dst, int64_t n) {
    const gl_type_traits *tr = gl_get_type_traits(type);
    const int64_t nb = n / tr->blck_size;
    uint8_t *p = (uint8_t *)dst;
    for (size_t i = 0; i < (size_t)nb * tr->type_size; i++) p[i] = (uint8_t)next_u32();
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *b = p + (size_t)i * tr->type_size;
        switch (type) {
        case GL_TYPE_IQ2_XXS: ((block_iq2_xxs *)b)->d = small_half(); break;
        case GL_TYPE_IQ2_XS: ((block_iq2_xs *)b)->d = small_half(); break;
        case GL_TYPE_IQ2_S: ((block_iq2_s *)b)->d = small_half(); break;
        case GL_TYPE_IQ3_XXS: ((block_iq3_xxs *)b)->d = small_half(); break;
        case GL_TYPE_IQ3_S: ((block_iq3_s *)b)->d = small_half(); break;
        case GL_TYPE_IQ1_S: ((block_iq1_s *)b)->d = small_half(); break;
        case GL_TYPE_TQ1_0: ((block_tq1_0 *)b)->d = small_half(); break;
        case GL_TYPE_TQ2_0: ((block_tq2_0 *)b)->d = small_half(); break;
        case GL_TYPE_MXFP4: ((block_mxfp4 *)b)->e = (uint8_t)(118 + next_u32() % 8); break;
        case GL_TYPE_IQ1_M: { // the fp16 scale lives in the top nibbles of the 4 scale words
            const gl_fp16 d = small_half();
            block_iq1_m *m = (block_iq1_m *)b;
            for (int k = 0; k < 4; k++) m->scales[2 * k + 1] = (uint8_t)((m->scales[2 * k + 1] & 0x0f) | (d >> (4 * k) & 0xf) << 4);
        } break;
        default: break;
        }
    }
}

static void test_kernels(enum gl_type type, int n) {
    const gl_type_traits *tr = gl_get_type_traits(type);
    CHECK(tr && tr->vec_dot && tr->vec_dot_scalar && tr->to_float, "%s: not registered", gl_type_name(type));
    if (!tr) return;
    const gl_type_traits *vt = gl_get_type_traits(tr->vec_dot_type);
    uint8_t *w = malloc(gl_row_size(type, n)), *y = malloc(gl_row_size(tr->vec_dot_type, n));
    float *x = malloc(sizeof(float) * n), *wd = malloc(sizeof(float) * n), *yd = malloc(sizeof(float) * n);
    for (int rep = 0; rep < 8; rep++) {
        random_blocks(type, w, n);
        for (int i = 0; i < n; i++) x[i] = gauss() * (1 + rep) + ((next_u32() & 63) == 0 ? 20 * gauss() : 0);
        vt->from_float(x, y, n);
        tr->to_float(w, wd, n);
        vt->to_float(y, yd, n);
        double exact = 0, mag = 0;
        for (int i = 0; i < n; i++) exact += (double)wd[i] * yd[i], mag += fabs((double)wd[i] * yd[i]);
        float s_scalar = 0, s_best = 0;
        tr->vec_dot_scalar(n, &s_scalar, w, y);
        tr->vec_dot(n, &s_best, w, y);
        CHECK(fabs(s_scalar - exact) <= 1e-5 * mag + 1e-30, "%s n=%d: scalar kernel %.9g, decoded dot %.9g",
              tr->name, n, s_scalar, exact);
        CHECK(fabs(s_best - s_scalar) <= 1e-5 * mag + 1e-30, "%s n=%d: %s kernel %.9g, scalar %.9g", tr->name, n,
              gl_simd_name(), s_best, s_scalar);
    }
    // Batched: one weight row against GL_DOT_NR activation rows.
    const gl_vec_dot_nr_fn nr_fn = gl_get_vec_dot_nr(type);
    if (nr_fn) {
        const size_t yb = gl_row_size(tr->vec_dot_type, n);
        uint8_t *ys = malloc(yb * GL_DOT_NR);
        for (int j = 0; j < GL_DOT_NR; j++) {
            for (int i = 0; i < n; i++) x[i] = gauss() * (1 + j);
            vt->from_float(x, ys + (size_t)j * yb, n);
        }
        for (int nr = 1; nr <= GL_DOT_NR; nr++) {
            float out[2 * GL_DOT_NR] = {0}, one;
            nr_fn(n, out, 2, w, ys, yb, nr);
            for (int j = 0; j < nr; j++) {
                tr->vec_dot(n, &one, w, ys + (size_t)j * yb);
                CHECK(out[2 * j] == one, "%s n=%d nr=%d row %d: batched %.9g, single %.9g", tr->name, n, nr, j,
                      out[2 * j], one);
            }
        }
        free(ys);
    }
    free(w), free(y), free(x), free(wd), free(yd);
}

// ---- quantizers without imatrix ----------------------------------------------------------------

static void test_quantizer_roundtrip(enum gl_type type) {
    const gl_type_traits *tr = gl_get_type_traits(type);
    const int n = 1024;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    uint8_t *q = malloc(gl_row_size(type, n));
    // Values on the type's own grid come back exactly: ternary d * {-1, 0, 1}, MXFP4 2^e * E2M1.
    for (int i = 0; i < n; i++) {
        if (type == GL_TYPE_MXFP4) x[i] = 0.25f * gl_mxfp4_values[next_u32() % 16] * (i % 32 == 0 ? 0 : 1) + (i % 32 == 0 ? 3.0f : 0);
        else x[i] = i % 256 == 0 ? 0.5f : 0.5f * (float)((int)(next_u32() % 3) - 1);
    }
    tr->from_float_ref(x, q, n);
    tr->to_float(q, y, n);
    int bad = 0;
    for (int i = 0; i < n; i++) bad += x[i] != y[i];
    CHECK(bad == 0, "%s: %d grid values did not round-trip", tr->name, bad);
    // Gaussian rows: the relative RMS error stays below what the format can do.
    double err = 0, ref = 0;
    for (int i = 0; i < n; i++) x[i] = gauss();
    tr->from_float_ref(x, q, n);
    tr->to_float(q, y, n);
    for (int i = 0; i < n; i++) err += (x[i] - y[i]) * (x[i] - y[i]), ref += x[i] * x[i];
    const double limit = type == GL_TYPE_MXFP4 ? 0.2 : 0.9; // ternary: d is the block's largest value
    CHECK(sqrt(err / ref) < limit, "%s: relative RMS error %.3f of Gaussian data", tr->name, sqrt(err / ref));
    free(x), free(y), free(q);
}

// ---- bad rows ---------------------------------------------------------------------------------------

static void test_bad_row_length(void) {
    char dir[512], path[600], err[512];
    if (!scratch_dir_make(dir, sizeof dir, "test_lowbit")) return;
    for (int i = 0; i < N_LOWBIT; i++) {
        const gl_type_traits *tr = gl_get_type_traits(lowbit[i]);
        gbuf b = {0};
        const uint64_t ne[2] = {(uint64_t)tr->blck_size + 16, 4};
        gb_one_tensor(&b, 2, ne, (uint32_t)lowbit[i], 0, 4096);
        snprintf(path, sizeof path, "%s/bad-%s.gguf", dir, tr->name);
        FILE *f = fopen(path, "wb");
        if (!f) { gb_free(&b); continue; }
        fwrite(b.p, 1, b.n, f);
        fclose(f);
        gb_free(&b);
        gguf_file *g = gguf_open(path, err, sizeof err);
        CHECK(g == NULL, "%s: a row of %d elements was accepted", tr->name, tr->blck_size + 16);
        if (g) { gguf_close(g); continue; }
        CHECK(strstr(err, "'w'") && strstr(err, "block size") && !strchr(err, '\n'),
              "%s: error does not name the tensor and the block size: %s", tr->name, err);
        remove(path);
    }
    scratch_dir_remove(dir);
}

int main(void) {
    (void)gb_good; // the shared builder's valid file is not needed here
    test_reference_decodes();
    for (int i = 0; i < N_LOWBIT; i++)
        for (int n = 256; n <= 1024; n += 256) test_kernels(lowbit[i], n);
    test_quantizer_roundtrip(GL_TYPE_TQ1_0);
    test_quantizer_roundtrip(GL_TYPE_TQ2_0);
    test_quantizer_roundtrip(GL_TYPE_MXFP4);
    test_bad_row_length();
    return test_result("test_lowbit");
}
