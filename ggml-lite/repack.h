// Weight matrices repacked once (at load) for the kernel set's interleaved kernels: groups of
// 16 rows side by side, so one activation load serves 16 rows and no tile is rearranged while
// multiplying. Generation, speculative verification and prompts all read the repacked rows
// through one kernel whose every token's result is bitwise its one-token result.
#ifndef GGML_LITE_REPACK_H
#define GGML_LITE_REPACK_H

#include "ggml-lite.h"
#include "matmul.h"
#include "threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

// Whether the kernels in use have a repacked layout for n_out rows of n_in elements of type.
bool gl_repack_available(enum gl_type type, int64_t n_in, int64_t n_out);
// Bytes of the repacked matrix (0 when not available).
size_t gl_repack_size(enum gl_type type, int64_t n_in, int64_t n_out);
// Repacks rows [r0, r1) (multiples of 16) of the plain matrix src into dst (gl_repack_size
// bytes for the whole matrix; the rows land where they belong in it).
void gl_repack_rows(enum gl_type type, const void *src, int64_t n_in, int64_t r0, int64_t r1, void *dst);
// out[t * n_out + r] = dot(row r, activation row t), from the repacked matrix w. Each token's
// outputs are bitwise what a one-token call gives (so it serves gl_matmul_rowwise too).
void gl_matmul_repacked(gl_threadpool *tp, const void *w, enum gl_type type, int64_t n_out, const gl_act *act,
                        float *out);

#ifdef __cplusplus
}
#endif
#endif
