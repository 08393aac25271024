// The arithmetic of a reference build made with GGML_NATIVE on an AVX-512 machine, for goldens
// made that way (../shared/golden/mixed-iq.jsonl). It differs from the AVX2 build's that ops.c
// mirrors in three places, all of them last-bit differences that the 1- and 2-bit weight types
// amplify once the next matmul re-quantizes its input to 8 bits:
//  - e^x (SiLU, softmax) 16 at a time: as the 8-lane exp up to the polynomial, with the 1 inside
//    its last fma and the result scaled by 2^n exactly (vscalefps);
//  - softmax sums: groups of 16 reduced as _mm512_reduce_add_ps does, n % 16 left to expf;
//  - a single token's dots (ggml_vec_dot_f16/_f32): 16 lanes, 4 accumulators over steps of 64,
//    the n % 64 left over added one product at a time in double.
// Chosen with LLAMALITE_REF=avx512 (read once); the default is the AVX2 build's arithmetic.
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

static bool ref512;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static void read_env(void) {
    const char *e = getenv("LLAMALITE_REF");
    ref512 = e && strcmp(e, "avx512") == 0;
}

bool gl_ref_avx512(void) {
    pthread_once(&once, read_env);
    return ref512;
}

static inline float bits_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline float pow2i(int n) { return bits_f((uint32_t)(n + 127) << 23); } // -126 <= n <= 127

static float exp512(float x) {
    const float z = fmaf(x, 0x1.715476p+0f, 0x1.8p23f);
    const float n = z - 0x1.8p23f;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         fmaf(0x1.ffffecp-1f, b, 1.0f));
    if (!(fabsf(n) <= 192)) return n <= 0 ? 0.0f : INFINITY; // also -inf (masked keys) -> 0
    const int k = (int)n;
    // j * 2^k rounded once: the scale split where 2^k is not a normal float (the first
    // product is exact).
    if (k > 127) return j * pow2i(127) * pow2i(k - 127);
    if (k < -126) return j * pow2i(-126) * pow2i(k + 126);
    return j * pow2i(k);
}

void gl_swiglu_ref512(float *out, const float *gate, const float *up, int n) {
    const int nv = n & ~15;
    int i = 0;
    for (; i < nv; i++) out[i] = gate[i] / (1.0f + exp512(-gate[i])) * up[i];
    for (; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void gl_silu_ref512(float *out, const float *x, int n) {
    const int nv = n & ~15;
    int i = 0;
    for (; i < nv; i++) out[i] = x[i] / (1.0f + exp512(-x[i]));
    for (; i < n; i++) out[i] = x[i] / (1.0f + expf(-x[i]));
}

// 16 floats summed as _mm512_reduce_add_ps: halves, halves again, then (0+2)+(1+3).
static inline float hsum16(const float *l) {
    float h[8], q[4];
    for (int k = 0; k < 8; k++) h[k] = l[k] + l[k + 8];
    for (int k = 0; k < 4; k++) q[k] = h[k] + h[k + 4];
    return (q[0] + q[2]) + (q[1] + q[3]);
}

double gl_exp_sum_ref512(float *y, const float *x, float sub, int n, int n_row) {
    double sum = 0;
    int i = 0;
    for (; i + 16 <= n_row && i < n; i += 16) {
        float v[16];
        for (int l = 0; l < 16; l++) v[l] = exp512(i + l < n ? x[i + l] - sub : -INFINITY);
        memcpy(y + i, v, (size_t)(n - i < 16 ? n - i : 16) * sizeof(float));
        sum += hsum16(v);
    }
    for (; i < n; i++) {
        y[i] = expf(x[i] - sub);
        sum += y[i];
    }
    return sum;
}

static inline float at(const void *a, bool f16, size_t i) {
    return f16 ? gl_fp16_to_fp32(((const gl_fp16 *)a)[i]) : ((const float *)a)[i];
}

float gl_dot_ref512(const void *a, size_t stride, bool f16, int n_valid, const float *b, int n) {
    const int np = n & ~63;
    float acc[4][16] = {{0}};
    for (int i = 0; i < np && i < n_valid; i += 64)
        for (int m = 0; m < 4; m++)
            for (int l = 0; l < 16; l++) {
                const int e = i + 16 * m + l;
                if (e < n_valid) acc[m][l] = fmaf(at(a, f16, (size_t)e * stride), b[e], acc[m][l]);
            }
    float x[16];
    for (int l = 0; l < 16; l++) x[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    double sum = hsum16(x);
    for (int e = np; e < n_valid; e++) sum += (double)(at(a, f16, (size_t)e * stride) * b[e]);
    return (float)sum;
}
