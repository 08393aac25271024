// The type table: block sizes, decoders, quantizers and the dot kernels chosen for this CPU.
// The table is filled once (thread-safe) on first use from the kernel set kernel_select.c
// chose.
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dot.h"
#include "dot_lowbit.h"
#include "quants.h"

#define T(ID, NAME, BLCK, SIZE, Q, VT)                                                           \
    [GL_TYPE_##ID] = { .name = NAME, .blck_size = BLCK, .type_size = SIZE, .is_quantized = Q,     \
                       .to_float = gl_dequant_row_##VT, .from_float_ref = gl_quant_row_##VT##_ref }

static gl_type_traits traits[GL_TYPE_COUNT] = {
    T(F32, "F32", 1, sizeof(float), false, f32),
    T(F16, "F16", 1, sizeof(gl_fp16), false, f16),
    T(BF16, "BF16", 1, sizeof(gl_bf16), false, bf16),
    T(Q4_0, "Q4_0", QK4_0, sizeof(block_q4_0), true, q4_0),
    T(Q4_1, "Q4_1", QK4_1, sizeof(block_q4_1), true, q4_1),
    T(Q5_0, "Q5_0", QK5_0, sizeof(block_q5_0), true, q5_0),
    T(Q5_1, "Q5_1", QK5_1, sizeof(block_q5_1), true, q5_1),
    T(Q8_0, "Q8_0", QK8_0, sizeof(block_q8_0), true, q8_0),
    T(Q8_1, "Q8_1", QK8_1, sizeof(block_q8_1), true, q8_1),
    T(Q2_K, "Q2_K", QK_K, sizeof(block_q2_K), true, q2_K),
    T(Q3_K, "Q3_K", QK_K, sizeof(block_q3_K), true, q3_K),
    T(Q4_K, "Q4_K", QK_K, sizeof(block_q4_K), true, q4_K),
    T(Q5_K, "Q5_K", QK_K, sizeof(block_q5_K), true, q5_K),
    T(Q6_K, "Q6_K", QK_K, sizeof(block_q6_K), true, q6_K),
    T(Q8_K, "Q8_K", QK_K, sizeof(block_q8_K), true, q8_K),
    T(IQ4_NL, "IQ4_NL", QK4_NL, sizeof(block_iq4_nl), true, iq4_nl),
    T(IQ4_XS, "IQ4_XS", QK_K, sizeof(block_iq4_xs), true, iq4_xs),
    T(IQ2_XXS, "IQ2_XXS", QK_K, sizeof(block_iq2_xxs), true, iq2_xxs),
    T(IQ2_XS, "IQ2_XS", QK_K, sizeof(block_iq2_xs), true, iq2_xs),
    T(IQ2_S, "IQ2_S", QK_K, sizeof(block_iq2_s), true, iq2_s),
    T(IQ3_XXS, "IQ3_XXS", QK_K, sizeof(block_iq3_xxs), true, iq3_xxs),
    T(IQ3_S, "IQ3_S", QK_K, sizeof(block_iq3_s), true, iq3_s),
    T(IQ1_S, "IQ1_S", QK_K, sizeof(block_iq1_s), true, iq1_s),
    T(IQ1_M, "IQ1_M", QK_K, sizeof(block_iq1_m), true, iq1_m),
    T(TQ1_0, "TQ1_0", QK_K, sizeof(block_tq1_0), true, tq1_0),
    T(TQ2_0, "TQ2_0", QK_K, sizeof(block_tq2_0), true, tq2_0),
    T(MXFP4, "MXFP4", QK_MXFP4, sizeof(block_mxfp4), true, mxfp4),
};

// The activation type each weight type's kernel reads (as ggml; F16/BF16 weights multiply
// F16/BF16 activations, like the reference).
static const enum gl_type dot_types[GL_TYPE_COUNT] = {
    [GL_TYPE_F32] = GL_TYPE_F32, [GL_TYPE_F16] = GL_TYPE_F16, [GL_TYPE_BF16] = GL_TYPE_BF16,
    [GL_TYPE_Q4_0] = GL_TYPE_Q8_0, [GL_TYPE_Q5_0] = GL_TYPE_Q8_0, [GL_TYPE_Q8_0] = GL_TYPE_Q8_0,
    [GL_TYPE_IQ4_NL] = GL_TYPE_Q8_0, [GL_TYPE_Q4_1] = GL_TYPE_Q8_1, [GL_TYPE_Q5_1] = GL_TYPE_Q8_1,
    [GL_TYPE_Q8_1] = GL_TYPE_Q8_1, [GL_TYPE_Q2_K] = GL_TYPE_Q8_K, [GL_TYPE_Q3_K] = GL_TYPE_Q8_K,
    [GL_TYPE_Q4_K] = GL_TYPE_Q8_K, [GL_TYPE_Q5_K] = GL_TYPE_Q8_K, [GL_TYPE_Q6_K] = GL_TYPE_Q8_K,
    [GL_TYPE_Q8_K] = GL_TYPE_Q8_K, [GL_TYPE_IQ4_XS] = GL_TYPE_Q8_K,
    [GL_TYPE_IQ2_XXS] = GL_TYPE_Q8_K, [GL_TYPE_IQ2_XS] = GL_TYPE_Q8_K, [GL_TYPE_IQ2_S] = GL_TYPE_Q8_K,
    [GL_TYPE_IQ3_XXS] = GL_TYPE_Q8_K, [GL_TYPE_IQ3_S] = GL_TYPE_Q8_K, [GL_TYPE_IQ1_S] = GL_TYPE_Q8_K,
    [GL_TYPE_IQ1_M] = GL_TYPE_Q8_K, [GL_TYPE_TQ1_0] = GL_TYPE_Q8_K, [GL_TYPE_TQ2_0] = GL_TYPE_Q8_K,
    [GL_TYPE_MXFP4] = GL_TYPE_Q8_0,
};

static pthread_once_t once = PTHREAD_ONCE_INIT;

// Each type's kernels from the set chosen for this CPU (kernel_select.c).
static void init_traits(void) {
    const gl_kernel_set *k = gl_kernels();
    for (int t = 0; t < GL_TYPE_COUNT; t++) {
        gl_type_traits *tr = &traits[t];
        if (!tr->name) continue;
        tr->vec_dot_type = dot_types[t];
        tr->vec_dot_scalar = gl_kernels_scalar.vec_dot[t];
        tr->vec_dot = k->vec_dot[t];
        // from_float is for activations: only the dot types have one; the weight types are
        // quantized by from_float_ref (the quantize command), never on the hot path.
        tr->from_float = k->from_float[t];
    }
}

const gl_type_traits *gl_get_type_traits(enum gl_type type) {
    if ((unsigned)type >= GL_TYPE_COUNT || !traits[type].name) return NULL;
    pthread_once(&once, init_traits);
    return &traits[type];
}

const char *gl_type_name(enum gl_type type) {
    if ((unsigned)type >= GL_TYPE_COUNT || !traits[type].name) return "?";
    return traits[type].name;
}

bool gl_type_from_name(const char *name, enum gl_type *out) {
    if (!name) return false;
    for (int t = 0; t < GL_TYPE_COUNT; t++) {
        const char *a = traits[t].name, *b = name;
        if (!a) continue;
        while (*a && *b && toupper((unsigned char)*a) == toupper((unsigned char)*b)) a++, b++;
        if (!*a && !*b) {
            if (out) *out = (enum gl_type)t;
            return true;
        }
    }
    return false;
}

size_t gl_row_size(enum gl_type type, int64_t n) {
    if ((unsigned)type >= GL_TYPE_COUNT || !traits[type].name || n < 0) return 0;
    const gl_type_traits *tr = &traits[type];
    if (n % tr->blck_size) return 0;
    return (size_t)(n / tr->blck_size) * tr->type_size;
}
