// gl_quantize_rows: whole-tensor quantization with an optional importance matrix, as the
// `quantize` command needs it. Also fallback definitions of the type-name helpers (weak:
// type_traits.c's definitions win when it has them).
#include <ctype.h>
#include <string.h>

#include "quants.h"

typedef void (*quant_imatrix_fn)(const float *x, void *y, int64_t n, const float *qw);

typedef struct {
    const char *name;
    int blck;
    size_t size;
    gl_from_float_fn ref;
    quant_imatrix_fn imatrix; // NULL: the type has no importance-weighted quantizer
} quant_info;

#define Q(T, NAME, BLCK, SIZE, IMX) \
    [GL_TYPE_##T] = { NAME, BLCK, SIZE, gl_quant_row_##IMX##_ref, NULL }
#define QI(T, NAME, BLCK, SIZE, IMX) \
    [GL_TYPE_##T] = { NAME, BLCK, SIZE, gl_quant_row_##IMX##_ref, gl_quant_row_##IMX##_imatrix }

static const quant_info infos[GL_TYPE_COUNT] = {
    Q(F32, "F32", 1, sizeof(float), f32),
    Q(F16, "F16", 1, sizeof(gl_fp16), f16),
    Q(BF16, "BF16", 1, sizeof(gl_bf16), bf16),
    QI(Q4_0, "Q4_0", QK4_0, sizeof(block_q4_0), q4_0),
    QI(Q4_1, "Q4_1", QK4_1, sizeof(block_q4_1), q4_1),
    QI(Q5_0, "Q5_0", QK5_0, sizeof(block_q5_0), q5_0),
    QI(Q5_1, "Q5_1", QK5_1, sizeof(block_q5_1), q5_1),
    Q(Q8_0, "Q8_0", QK8_0, sizeof(block_q8_0), q8_0),
    Q(Q8_1, "Q8_1", QK8_1, sizeof(block_q8_1), q8_1),
    QI(Q2_K, "Q2_K", QK_K, sizeof(block_q2_K), q2_K),
    QI(Q3_K, "Q3_K", QK_K, sizeof(block_q3_K), q3_K),
    QI(Q4_K, "Q4_K", QK_K, sizeof(block_q4_K), q4_K),
    QI(Q5_K, "Q5_K", QK_K, sizeof(block_q5_K), q5_K),
    QI(Q6_K, "Q6_K", QK_K, sizeof(block_q6_K), q6_K),
    Q(Q8_K, "Q8_K", QK_K, sizeof(block_q8_K), q8_K),
    QI(IQ4_NL, "IQ4_NL", QK4_NL, sizeof(block_iq4_nl), iq4_nl),
    QI(IQ4_XS, "IQ4_XS", QK_K, sizeof(block_iq4_xs), iq4_xs),
    QI(IQ2_XXS, "IQ2_XXS", QK_K, sizeof(block_iq2_xxs), iq2_xxs),
    QI(IQ2_XS, "IQ2_XS", QK_K, sizeof(block_iq2_xs), iq2_xs),
    QI(IQ2_S, "IQ2_S", QK_K, sizeof(block_iq2_s), iq2_s),
    QI(IQ3_XXS, "IQ3_XXS", QK_K, sizeof(block_iq3_xxs), iq3_xxs),
    QI(IQ3_S, "IQ3_S", QK_K, sizeof(block_iq3_s), iq3_s),
    QI(IQ1_S, "IQ1_S", QK_K, sizeof(block_iq1_s), iq1_s),
    QI(IQ1_M, "IQ1_M", QK_K, sizeof(block_iq1_m), iq1_m),
    Q(TQ1_0, "TQ1_0", QK_K, sizeof(block_tq1_0), tq1_0),
    Q(TQ2_0, "TQ2_0", QK_K, sizeof(block_tq2_0), tq2_0),
    Q(MXFP4, "MXFP4", QK_MXFP4, sizeof(block_mxfp4), mxfp4),
};

static const quant_info *info(enum gl_type type) {
    if ((unsigned)type >= GL_TYPE_COUNT || !infos[type].name) return NULL;
    return &infos[type];
}

size_t gl_quantize_rows(enum gl_type type, const float *src, void *dst, int64_t nrows,
                        int64_t n_per_row, const float *imatrix) {
    const quant_info *t = info(type);
    if (!t || nrows < 0 || n_per_row <= 0 || n_per_row % t->blck) return 0;
    const size_t row_size = (size_t)(n_per_row / t->blck) * t->size;
    char *out = (char *)dst;
    for (int64_t r = 0; r < nrows; r++, src += n_per_row, out += row_size) {
        if (imatrix && t->imatrix) t->imatrix(src, out, n_per_row, imatrix);
        else t->ref(src, out, n_per_row);
    }
    return (size_t)nrows * row_size;
}

__attribute__((weak)) const char *gl_type_name(enum gl_type type) {
    const quant_info *t = info(type);
    return t ? t->name : "?";
}

__attribute__((weak)) bool gl_type_from_name(const char *name, enum gl_type *out) {
    if (!name) return false;
    for (int i = 0; i < GL_TYPE_COUNT; i++) {
        const char *a = infos[i].name, *b = name;
        if (!a) continue;
        while (*a && *b && toupper((unsigned char)*a) == toupper((unsigned char)*b)) a++, b++;
        if (!*a && !*b) {
            *out = (enum gl_type)i;
            return true;
        }
    }
    return false;
}

__attribute__((weak)) size_t gl_row_size(enum gl_type type, int64_t n) {
    const quant_info *t = info(type);
    if (!t || n < 0 || n % t->blck) return 0;
    return (size_t)(n / t->blck) * t->size;
}
