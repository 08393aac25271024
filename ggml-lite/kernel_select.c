// The one place that chooses kernels: the sets this build has (one per arch/ folder, from the
// most capable down), the first one the CPU runs, or the one LLAMALITE_ISA names. Entries a set
// lacks come from the sets below it; a weight type comes whole from one set (dot.h).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dot.h"

static bool always(void) { return true; }

// Most capable first. GL_ISA_* come from CMakeLists.txt, one per arch/ folder it compiles.
static const struct {
    const gl_kernel_set *set;
    bool (*cpu_runs)(void);
} isas[] = {
#ifdef GL_ISA_X86_AVX512
    {&gl_kernels_avx512, gl_cpu_has_avx512},
#endif
#ifdef GL_ISA_X86_AVX2
    {&gl_kernels_avx2, gl_cpu_has_avx2},
#endif
#ifdef GL_ISA_ARM_NEON
    {&gl_kernels_neon, always},
#endif
    {&gl_kernels_scalar, always},
};
enum { N_ISAS = sizeof isas / sizeof isas[0] };

static gl_kernel_set active;
static gl_vec_ops active_ops;
static pthread_once_t once = PTHREAD_ONCE_INIT;

// A type's one-token kernels (vec_dot, gen, gen_n, gen_nx) all come from the first set (top
// down) that has its vec_dot: speculative verification (gen_n, gen_nx) must give bitwise what
// one-token decoding gives. The batch kernels (vec_dot_nr, tile) only have to be accurate: each
// from the first set that has one.
static void take_type(int t, int top) {
    bool one_token = false;
    for (int i = top; i < N_ISAS; i++) {
        const gl_kernel_set *s = isas[i].set;
        if (!isas[i].cpu_runs()) continue;
        if (!one_token && s->vec_dot[t]) {
            active.vec_dot[t] = s->vec_dot[t];
            active.gen[t] = s->gen[t];
            active.gen_n[t] = s->gen_n[t];
            active.gen_nx[t] = s->gen_nx[t];
            one_token = true;
        }
        if (!active.vec_dot_nr[t]) active.vec_dot_nr[t] = s->vec_dot_nr[t];
        if (!active.tile[t]) active.tile[t] = s->tile[t];
        if (!active.repack[t]) active.repack[t] = s->repack[t];
    }
}

#define TAKE(f) if (!active_ops.f) active_ops.f = o->f
static void take_ops(const gl_vec_ops *o) {
    TAKE(exp_sum8); TAKE(rmsnorm); TAKE(softmax); TAKE(silu); TAKE(swiglu); TAKE(vec_add);
    TAKE(vec_scale); TAKE(vec_mad); TAKE(vec_dot_f32); TAKE(fp32_to_fp16_row); TAKE(fp16_to_fp32_row);
    TAKE(vec_dot_f16_f32); TAKE(vec_mad_f16); TAKE(kv_dot); TAKE(kv_mad); TAKE(kv_values_32);
    TAKE(kv_reduce_32); TAKE(dot_f32_tok); TAKE(dot_f32_batch); TAKE(dot_f32_lanes8);
    TAKE(exp_row);
}
#undef TAKE

// LLAMALITE_ISA=name starts the search at that set (for comparing sets on one machine, or
// tracking down a numeric difference with `scalar`). A name this build or CPU lacks is an error.
static int top_set(void) {
    const char *want = getenv("LLAMALITE_ISA");
    if (!want) want = getenv("LLAMALITE_KERNELS"); // its older name
    if (!want || !*want) {
        for (int i = 0; i < N_ISAS; i++)
            if (isas[i].cpu_runs()) return i;
    }
    for (int i = 0; i < N_ISAS; i++) {
        if (strcmp(isas[i].set->name, want) != 0) continue;
        if (isas[i].cpu_runs()) return i;
        fprintf(stderr, "llamalite: LLAMALITE_ISA=%s: this CPU does not run it\n", want);
        exit(1);
    }
    fprintf(stderr, "llamalite: LLAMALITE_ISA=%s: unknown kernel set (this build has:", want);
    for (int i = 0; i < N_ISAS; i++) fprintf(stderr, " %s", isas[i].set->name);
    fputs(")\n", stderr);
    exit(1);
}

static void choose(void) {
    const int top = top_set();
    active.name = isas[top].set->name;
    for (int t = 0; t < GL_TYPE_COUNT; t++) {
        take_type(t, top);
        for (int i = top; i < N_ISAS && !active.from_float[t]; i++)
            if (isas[i].cpu_runs()) active.from_float[t] = isas[i].set->from_float[t];
    }
    for (int i = top; i < N_ISAS; i++)
        if (isas[i].cpu_runs() && isas[i].set->ops) take_ops(isas[i].set->ops);
    active.ops = &active_ops;
    for (int i = top; i < N_ISAS && !active.attn; i++)
        if (isas[i].cpu_runs()) // whole, from one set
            active.attn = isas[i].set->attn_bf16 && gl_cpu_has_avx512bf16() ? isas[i].set->attn_bf16 : isas[i].set->attn;
}

const gl_kernel_set *gl_kernels(void) {
    pthread_once(&once, choose);
    return &active;
}

gl_vec_dot_nr_fn gl_get_vec_dot_nr(enum gl_type type) {
    return (unsigned)type < GL_TYPE_COUNT ? gl_kernels()->vec_dot_nr[type] : NULL;
}

const char *gl_simd_name(void) { return gl_kernels()->name; }

int gl_tile8_vnni = -1;

bool gl_use_vnni(void) {
    int v = __atomic_load_n(&gl_tile8_vnni, __ATOMIC_RELAXED);
    if (v < 0) { // first use; every thread computes the same answer
        v = gl_cpu_has_avx512vnni() ? 1 : 0;
        __atomic_store_n(&gl_tile8_vnni, v, __ATOMIC_RELAXED);
    }
    return v == 1;
}
