// ll_model_quantize on a generated F32 model (dim 256, 8 layers, GQA 4, untied head; the
// tokenizer copied from build/tiny.gguf), and on tiny.gguf itself (rows of 64: fallbacks):
// - every TYPE: file_type and quantization_version written, each tensor's bytes exactly what
//   gl_quantize_rows makes of the source, the model loads and decodes to finite logits;
// - the mixtures choose llama.cpp's types for known tensors (output, attn_v, ffn_down, ...);
// - --pure, --leave-output-tensor, --output-tensor-type, --token-embedding-type, tied heads,
//   requantizing refused without allow_requantize;
// - the importance matrix: collected from decodes, saved and read back (format checked byte by
//   byte), used by the quantizer (bytes = gl_quantize_rows with the same importances);
// - --target-bpw / --target-size land within 1% below the budget.
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf/gguf.h"
#include "engine/llamalite.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

enum { DIM = 256, FF = 512, N_LAYER = 8, N_HEAD = 4, N_HEAD_KV = 1, HD = DIM / N_HEAD };

static char dir[1024], tiny[1024];

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float randn(void) {
    double s = 0;
    for (int i = 0; i < 4; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        s += (double)(rng >> 11) / 9007199254740992.0;
    }
    return (float)((s - 2.0) * 1.7320508);
}

static float *rand_matrix(int64_t n, float scale) {
    float *m = malloc((size_t)n * sizeof *m);
    for (int64_t i = 0; i < n; i++) m[i] = randn() * scale;
    return m;
}

// Writes the test model; tied: no output.weight.
static bool make_model(const char *path, bool tied) {
    char err[256];
    gguf_file *src = gguf_open(tiny, err, sizeof err);
    if (!src) {
        fprintf(stderr, "%s\n", err);
        return false;
    }
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_n_kv(src); i++) gguf_writer_copy_kv(w, src, i);
    gguf_writer_set_u32(w, "llama.embedding_length", DIM);
    gguf_writer_set_u32(w, "llama.feed_forward_length", FF);
    gguf_writer_set_u32(w, "llama.block_count", N_LAYER);
    gguf_writer_set_u32(w, "llama.attention.head_count", N_HEAD);
    gguf_writer_set_u32(w, "llama.attention.head_count_kv", N_HEAD_KV);
    gguf_writer_set_u32(w, "llama.rope.dimension_count", HD);
    const int64_t n_vocab = gguf_find_tensor(src, "token_embd.weight")->ne[1];
    float *bufs[128];
    int nb = 0;
    float *ones = malloc(DIM * sizeof *ones);
    for (int i = 0; i < DIM; i++) ones[i] = 1.0f;
    bufs[nb++] = ones;
#define ADD(name, n0, n1, scale)                                                          \
    do {                                                                                  \
        int64_t ne[2] = {n0, n1};                                                         \
        float *m = bufs[nb++] = rand_matrix((int64_t)(n0) * (n1), scale);                 \
        gguf_writer_add_tensor(w, name, GL_TYPE_F32, 2, ne, m, (size_t)(n0) * (n1) * 4);  \
    } while (0)
    ADD("token_embd.weight", DIM, n_vocab, 0.5f);
    int64_t ne1[1] = {DIM};
    gguf_writer_add_tensor(w, "output_norm.weight", GL_TYPE_F32, 1, ne1, ones, DIM * 4);
    if (!tied) ADD("output.weight", DIM, n_vocab, 0.1f);
    for (int l = 0; l < N_LAYER; l++) {
        char name[64];
#define NAME(s) (snprintf(name, sizeof name, "blk.%d." s, l), name)
        gguf_writer_add_tensor(w, NAME("attn_norm.weight"), GL_TYPE_F32, 1, ne1, ones, DIM * 4);
        gguf_writer_add_tensor(w, NAME("ffn_norm.weight"), GL_TYPE_F32, 1, ne1, ones, DIM * 4);
        ADD(NAME("attn_q.weight"), DIM, DIM, 0.06f);
        ADD(NAME("attn_k.weight"), DIM, N_HEAD_KV * HD, 0.06f);
        ADD(NAME("attn_v.weight"), DIM, N_HEAD_KV * HD, 0.06f);
        ADD(NAME("attn_output.weight"), DIM, DIM, 0.06f);
        ADD(NAME("ffn_gate.weight"), DIM, FF, 0.06f);
        ADD(NAME("ffn_up.weight"), DIM, FF, 0.06f);
        ADD(NAME("ffn_down.weight"), FF, DIM, 0.04f);
    }
    bool ok = gguf_writer_write(w, path, err, sizeof err);
    if (!ok) fprintf(stderr, "%s\n", err);
    gguf_writer_free(w);
    gguf_close(src);
    for (int i = 0; i < nb; i++) free(bufs[i]);
    return ok;
}

static const char *type_of(const gguf_file *f, const char *name) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    return t ? gl_type_name(t->type) : "(missing)";
}

// Every tensor of out is the source tensor converted by gl_quantize_rows (or copied).
static int check_bytes(const gguf_file *src, const gguf_file *out, const ll_imatrix *im) {
    int bad = 0;
    for (int64_t i = 0; i < gguf_n_tensors(src); i++) {
        const gguf_tensor *s = gguf_get_tensor(src, i), *o = gguf_find_tensor(out, s->name);
        if (!o) {
            bad++;
            continue;
        }
        if (o->type == s->type) {
            bad += o->size != s->size || memcmp(o->data, s->data, s->size) != 0;
            continue;
        }
        int64_t rows = 1;
        for (uint32_t d = 1; d < s->n_dims; d++) rows *= s->ne[d];
        // the source is F32 here, or a quantized file being requantized
        float *f = malloc((size_t)(rows * s->ne[0]) * sizeof *f);
        const gl_type_traits *tr = gl_get_type_traits(s->type);
        const size_t in_row = gl_row_size(s->type, s->ne[0]);
        for (int64_t r = 0; r < rows; r++) tr->to_float((const char *)s->data + r * in_row, f + r * s->ne[0], s->ne[0]);
        void *q = malloc(o->size);
        const float *imx = im ? ll_imatrix_get(im, s->name, NULL) : NULL;
        size_t n = gl_quantize_rows(o->type, f, q, rows, s->ne[0], imx);
        if (n != o->size || memcmp(q, o->data, n) != 0) {
            fprintf(stderr, "  %s (%s): bytes differ from gl_quantize_rows\n", s->name, gl_type_name(o->type));
            bad++;
        }
        free(q);
        free(f);
    }
    return bad;
}

// Loads the model and decodes a few tokens: the logits must be finite.
static bool runs(const char *path) {
    char err[256];
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    if (!m) {
        fprintf(stderr, "  %s: %s\n", path, err);
        return false;
    }
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 1;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    bool ok = c != NULL;
    ll_token toks[8] = {1, 50, 60, 70, 80, 90, 100, 110};
    if (ok) ok = ll_decode(c, toks, 8, err, sizeof err) == 0;
    if (ok) {
        const float *lg = ll_get_logits(c);
        for (int i = 0; i < ll_vocab_n_tokens(ll_model_get_vocab(m)); i++) ok = ok && isfinite(lg[i]);
    }
    if (c) ll_context_free(c);
    ll_model_free(m);
    return ok;
}

static int quantize(const char *in, const char *out, ll_quantize_params *p, ll_quantize_stats *st, char *err) {
    if (!p->n_threads) p->n_threads = 2;
    return ll_model_quantize(in, out, p, st, err, 256);
}

static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static void test_all_types(const char *model) {
    static const struct { const char *name; int ftype; } TYPES[] = {
        {"F32", 0}, {"F16", 1}, {"BF16", 32}, {"Q4_0", 2}, {"Q4_1", 3}, {"Q5_0", 8}, {"Q5_1", 9},
        {"Q8_0", 7}, {"Q2_K", 10}, {"Q3_K_S", 11}, {"Q3_K_M", 12}, {"Q3_K_L", 13}, {"Q4_K_S", 14},
        {"Q4_K_M", 15}, {"Q5_K_S", 16}, {"Q5_K_M", 17}, {"Q6_K", 18}, {"IQ4_NL", 25}, {"IQ4_XS", 30},
    };
    char err[256], out[1200];
    gguf_file *src = gguf_open(model, err, sizeof err);
    CHECK(src, "%s", err);
    if (!src) return;
    for (size_t k = 0; k < sizeof TYPES / sizeof TYPES[0]; k++) {
        snprintf(out, sizeof out, "%s/q-%s.gguf", dir, TYPES[k].name);
        ll_quantize_params p = ll_quantize_default_params();
        p.type = TYPES[k].name;
        ll_quantize_stats st;
        int r = quantize(model, out, &p, &st, err);
        CHECK(r == 0, "%s: %s", TYPES[k].name, err);
        if (r) continue;
        CHECK(st.ftype == TYPES[k].ftype, "%s: stats ftype %d", TYPES[k].name, st.ftype);
        gguf_file *f = gguf_open(out, err, sizeof err);
        CHECK(f, "%s", err);
        if (!f) continue;
        CHECK(gguf_get_u32(f, "general.file_type", 999) == (uint32_t)TYPES[k].ftype, "%s: file_type", TYPES[k].name);
        CHECK(gguf_get_u32(f, "general.quantization_version", 0) == 2, "%s: quantization_version", TYPES[k].name);
        CHECK(gguf_n_kv(f) >= gguf_n_kv(src), "%s: metadata lost", TYPES[k].name);
        CHECK(!strcmp(gguf_get_str(f, "tokenizer.ggml.model", ""), "llama"), "%s: tokenizer metadata", TYPES[k].name);
        CHECK(!strcmp(type_of(f, "output_norm.weight"), "F32"), "%s: norms stay F32", TYPES[k].name);
        uint64_t data = 0;
        for (int64_t i = 0; i < gguf_n_tensors(f); i++) data += gguf_get_tensor(f, i)->size;
        CHECK(st.size_out == data && st.size_out <= st.size_in && st.size_out < gguf_file_size(f), "%s: sizes",
              TYPES[k].name);
        CHECK(check_bytes(src, f, NULL) == 0, "%s: tensors differ from gl_quantize_rows", TYPES[k].name);
        CHECK(runs(out), "%s: does not load and run", TYPES[k].name);
        fprintf(stderr, "  %-7s %6.2f bits per weight\n", TYPES[k].name, 8.0 * (double)st.size_out / (double)st.n_elements);
        ll_quantize_stats_free(&st);
        gguf_close(f);
    }
    gguf_close(src);
}

// The mixtures' choices for known tensors (llama.cpp's rules; 8 layers, GQA 4).
static void test_mixtures(void) {
    char out[1200], name[64], err[256];
    struct { const char *ftype; const char *output, *embd; } heads[] = {
        {"Q4_K_M", "Q6_K", "Q4_K"}, {"Q2_K", "Q6_K", "Q2_K"}, {"Q8_0", "Q8_0", "Q8_0"},
        {"Q4_0", "Q6_K", "Q4_0"}, {"IQ4_XS", "Q6_K", "IQ4_XS"},
    };
    for (size_t k = 0; k < sizeof heads / sizeof heads[0]; k++) {
        snprintf(out, sizeof out, "%s/q-%s.gguf", dir, heads[k].ftype);
        gguf_file *f = gguf_open(out, err, sizeof err);
        CHECK(f, "%s", err);
        if (!f) continue;
        CHECK(!strcmp(type_of(f, "output.weight"), heads[k].output), "%s: output is %s", heads[k].ftype, type_of(f, "output.weight"));
        CHECK(!strcmp(type_of(f, "token_embd.weight"), heads[k].embd), "%s: token_embd is %s", heads[k].ftype, type_of(f, "token_embd.weight"));
        gguf_close(f);
    }
    struct { const char *ftype; const char *v, *down, *o; } layers[] = {
        {"Q4_K_M", "more:Q6_K:Q4_K", "more:Q6_K:Q4_K", "Q4_K"},
        {"Q5_K_M", "more:Q6_K:Q5_K", "more:Q6_K:Q5_K", "Q5_K"},
        {"Q4_K_S", "lt4:Q5_K:Q4_K", "lt1:Q5_K:Q4_K", "Q4_K"},
        {"Q3_K_M", "lt2:Q5_K:Q4_K", "all:Q4_K", "Q4_K"},
        {"Q3_K_L", "all:Q5_K", "all:Q5_K", "Q5_K"},
        {"Q3_K_S", "all:Q3_K", "all:Q3_K", "Q3_K"},
        {"Q2_K", "all:Q4_K", "all:Q3_K", "Q3_K"},
        {"IQ4_XS", "all:Q5_K", "lt1:Q5_K:IQ4_XS", "IQ4_XS"},
        {"IQ4_NL", "all:Q5_K", "lt1:Q5_K:IQ4_NL", "IQ4_NL"},
        {"Q6_K", "all:Q6_K", "all:Q6_K", "Q6_K"},
    };
    for (size_t k = 0; k < sizeof layers / sizeof layers[0]; k++) {
        snprintf(out, sizeof out, "%s/q-%s.gguf", dir, layers[k].ftype);
        gguf_file *f = gguf_open(out, err, sizeof err);
        CHECK(f, "%s", err);
        if (!f) continue;
        for (int l = 0; l < N_LAYER; l++) {
            const char *rules[2] = {layers[k].v, layers[k].down};
            const char *names[2] = {"attn_v", "ffn_down"};
            for (int j = 0; j < 2; j++) {
                char rule[64], *a, *b, *c;
                snprintf(rule, sizeof rule, "%s", rules[j]);
                a = strtok(rule, ":"), b = strtok(NULL, ":"), c = strtok(NULL, ":");
                bool hi = !strcmp(a, "all") || (!strcmp(a, "more") && more_bits(l, N_LAYER)) ||
                          (!strncmp(a, "lt", 2) && l < atoi(a + 2));
                const char *want = hi ? b : c;
                snprintf(name, sizeof name, "blk.%d.%s.weight", l, names[j]);
                CHECK(!strcmp(type_of(f, name), want), "%s: %s is %s, expected %s", layers[k].ftype, name,
                      type_of(f, name), want);
            }
            snprintf(name, sizeof name, "blk.%d.attn_output.weight", l);
            CHECK(!strcmp(type_of(f, name), layers[k].o), "%s: %s is %s", layers[k].ftype, name, type_of(f, name));
        }
        gguf_close(f);
    }
}

static void test_options(const char *model, const char *tied_model) {
    char out[1200], err[256];
    snprintf(out, sizeof out, "%s/opt.gguf", dir);
    ll_quantize_params p = ll_quantize_default_params();
    // --pure: every matrix Q4_K, the head included
    p.type = "Q4_K_M";
    p.pure = true;
    CHECK(quantize(model, out, &p, NULL, err) == 0, "%s", err);
    gguf_file *f = gguf_open(out, err, sizeof err);
    if (f) {
        CHECK(!strcmp(type_of(f, "output.weight"), "Q4_K") && !strcmp(type_of(f, "blk.0.attn_v.weight"), "Q4_K") &&
              !strcmp(type_of(f, "blk.0.ffn_down.weight"), "Q4_K"), "--pure");
        gguf_close(f);
    }
    // --leave-output-tensor, explicit head and embedding types
    p = ll_quantize_default_params();
    p.type = "Q4_0";
    p.leave_output = true;
    p.token_embd_type = "Q8_0";
    CHECK(quantize(model, out, &p, NULL, err) == 0, "%s", err);
    f = gguf_open(out, err, sizeof err);
    if (f) {
        CHECK(!strcmp(type_of(f, "output.weight"), "F32"), "--leave-output-tensor: %s", type_of(f, "output.weight"));
        CHECK(!strcmp(type_of(f, "token_embd.weight"), "Q8_0"), "--token-embedding-type");
        gguf_close(f);
    }
    p = ll_quantize_default_params();
    p.type = "Q4_K_M";
    p.output_type = "f16";
    CHECK(quantize(model, out, &p, NULL, err) == 0, "%s", err);
    f = gguf_open(out, err, sizeof err);
    if (f) {
        CHECK(!strcmp(type_of(f, "output.weight"), "F16"), "--output-tensor-type: %s", type_of(f, "output.weight"));
        gguf_close(f);
    }
    p.output_type = "Q9_9";
    CHECK(quantize(model, out, &p, NULL, err) != 0 && strstr(err, "Q9_9"), "bad output type accepted");
    p.output_type = NULL;
    p.type = "Q7_K";
    CHECK(quantize(model, out, &p, NULL, err) != 0 && strstr(err, "Q7_K"), "bad type accepted");
    p.type = "Q4_K_M";
    CHECK(quantize(model, model, &p, NULL, err) != 0 && strstr(err, "overwrite"), "overwrote the input: %s", err);

    // a tied head: token_embd gets the head's type
    p = ll_quantize_default_params();
    p.type = "Q4_K_M";
    CHECK(quantize(tied_model, out, &p, NULL, err) == 0, "%s", err);
    f = gguf_open(out, err, sizeof err);
    if (f) {
        CHECK(!strcmp(type_of(f, "token_embd.weight"), "Q6_K"), "tied: token_embd is %s", type_of(f, "token_embd.weight"));
        gguf_close(f);
        CHECK(runs(out), "tied Q4_K_M does not run");
    }

    // requantizing needs permission; then it equals quantizing the dequantized weights
    char q8[1200];
    snprintf(q8, sizeof q8, "%s/q-Q8_0.gguf", dir);
    p = ll_quantize_default_params();
    p.type = "Q4_0";
    CHECK(quantize(q8, out, &p, NULL, err) != 0 && strstr(err, "requantize"), "requantized without permission");
    p.allow_requantize = true;
    CHECK(quantize(q8, out, &p, NULL, err) == 0, "%s", err);
    gguf_file *s = gguf_open(q8, err, sizeof err);
    f = gguf_open(out, err, sizeof err);
    if (s && f) CHECK(check_bytes(s, f, NULL) == 0, "requantized tensors");
    if (s) gguf_close(s);
    if (f) gguf_close(f);
}

// tiny.gguf has rows of 64 (and 160): no K-quant fits, llama.cpp's substitutes are used.
static void test_fallbacks(void) {
    char out[1200], err[256];
    snprintf(out, sizeof out, "%s/tiny-q.gguf", dir);
    struct { const char *ftype, *q, *down1, *output; } cases[] = {
        {"Q4_K_M", "Q5_0", "Q8_0", "Q8_0"}, // Q4_K -> Q5_0, Q6_K -> Q8_0, head: Q8_0
        {"Q5_K_S", "Q5_1", "Q5_1", "Q8_0"},
        {"Q3_K_S", "IQ4_NL", "IQ4_NL", "Q8_0"},
        {"Q4_0", "Q4_0", "Q4_0", "Q8_0"},   // the head's Q6_K does not fit rows of 64: Q8_0
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ll_quantize_params p = ll_quantize_default_params();
        p.type = cases[k].ftype;
        ll_quantize_stats st;
        int r = quantize(tiny, out, &p, &st, err);
        CHECK(r == 0, "%s: %s", cases[k].ftype, err);
        if (r) continue;
        gguf_file *f = gguf_open(out, err, sizeof err);
        if (!f) continue;
        CHECK(!strcmp(type_of(f, "blk.0.attn_q.weight"), cases[k].q), "%s: attn_q is %s", cases[k].ftype, type_of(f, "blk.0.attn_q.weight"));
        CHECK(!strcmp(type_of(f, "blk.1.ffn_down.weight"), cases[k].down1), "%s: ffn_down is %s", cases[k].ftype, type_of(f, "blk.1.ffn_down.weight"));
        CHECK(!strcmp(type_of(f, "output.weight"), cases[k].output), "%s: output is %s", cases[k].ftype, type_of(f, "output.weight"));
        CHECK(st.n_fallback > 0, "%s: no fallbacks counted", cases[k].ftype);
        gguf_close(f);
        ll_quantize_stats_free(&st);
        CHECK(runs(out), "%s on tiny does not run", cases[k].ftype);
    }
}

static int32_t rd_i32(FILE *f) {
    int32_t v = -1;
    if (fread(&v, 4, 1, f) != 1) return -1;
    return v;
}

static void test_imatrix(const char *model) {
    char err[256], path[1200], out[1200];
    snprintf(path, sizeof path, "%s/imatrix.dat", dir);
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(model, &mp, err, sizeof err);
    CHECK(m, "%s", err);
    if (!m) return;
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 2;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    ll_imatrix *im = ll_imatrix_new();
    CHECK(c && im && ll_imatrix_attach(im, c, false) == 0, "attach");
    ll_token toks[40];
    for (int i = 0; i < 40; i++) toks[i] = (ll_token)(3 + (i * 37) % 500);
    CHECK(ll_decode(c, toks, 8, err, sizeof err) == 0, "%s", err); // < 16 tokens: not collected
    CHECK(ll_imatrix_n_entries(im) == 0, "a short decode was collected");
    ll_kv_clear(c);
    CHECK(ll_decode(c, toks, 20, err, sizeof err) == 0 && ll_decode(c, toks + 20, 20, err, sizeof err) == 0, "%s", err);
    CHECK(ll_imatrix_n_entries(im) == 7 * N_LAYER, "%d entries", ll_imatrix_n_entries(im));
    int ncall = 0, nval = 0;
    const char *e0 = ll_imatrix_entry(im, 0, &ncall, &nval);
    CHECK(e0 && !strcmp(e0, "blk.0.attn_q.weight") && ncall == 2 && nval == DIM, "entry 0: %s %d %d", e0 ? e0 : "-", ncall, nval);
    const float *down = ll_imatrix_get(im, "blk.3.ffn_down.weight", &nval);
    CHECK(down && nval == FF, "ffn_down entry");
    ll_imatrix_set_info(im, 3, "calib.txt");
    CHECK(ll_imatrix_save(im, path, err, sizeof err) == 0, "%s", err);
    ll_imatrix_attach(im, NULL, false);
    ll_context_free(c);
    ll_model_free(m);

    // the legacy layout, read by hand
    FILE *f = fopen(path, "rb");
    if (f) {
        CHECK(rd_i32(f) == 7 * N_LAYER, "n_entries");
        int32_t len = rd_i32(f);
        char name[64] = {0};
        CHECK(len == (int32_t)strlen("blk.0.attn_q.weight") && fread(name, 1, (size_t)len, f) == (size_t)len &&
              !strcmp(name, "blk.0.attn_q.weight"), "first name");
        CHECK(rd_i32(f) == 2 && rd_i32(f) == DIM, "ncall, nval");
        float v0;
        CHECK(fread(&v0, 4, 1, f) == 1, "value");
        const float *q = ll_imatrix_get(im, "blk.0.attn_q.weight", NULL);
        CHECK(fabsf(v0 - 2 * q[0]) <= 1e-6f * fabsf(v0), "stored as mean * ncall: %g vs %g", v0, 2 * q[0]);
        fseek(f, -(long)(4 + 4 + 9), SEEK_END);
        CHECK(rd_i32(f) == 3 && rd_i32(f) == 9, "chunk count and dataset length");
        fclose(f);
    }
    ll_imatrix *back = ll_imatrix_load(path, err, sizeof err);
    CHECK(back, "%s", err);
    if (back) {
        CHECK(ll_imatrix_n_entries(back) == ll_imatrix_n_entries(im) && ll_imatrix_n_chunks(back) == 3 &&
              !strcmp(ll_imatrix_dataset(back), "calib.txt"), "read back");
        double worst = 0;
        for (int i = 0; i < ll_imatrix_n_entries(im); i++) {
            int n1, n2;
            const char *nm = ll_imatrix_entry(im, i, NULL, &n1);
            const float *a = ll_imatrix_get(im, nm, &n1), *b = ll_imatrix_get(back, nm, &n2);
            CHECK(b && n1 == n2, "%s lost", nm);
            for (int j = 0; b && j < n1; j++) {
                double d = fabs((double)a[j] - b[j]) / (fabs(a[j]) + 1e-30);
                if (d > worst) worst = d;
            }
        }
        CHECK(worst < 1e-6, "round trip: relative difference %g", worst);

        // quantizing with it: bytes are gl_quantize_rows with the same importances
        snprintf(out, sizeof out, "%s/imx-q4km.gguf", dir);
        ll_quantize_params p = ll_quantize_default_params();
        p.type = "Q4_K_M";
        p.imatrix = back;
        p.imatrix_file = path;
        CHECK(quantize(model, out, &p, NULL, err) == 0, "%s", err);
        gguf_file *src = gguf_open(model, err, sizeof err), *q = gguf_open(out, err, sizeof err);
        if (src && q) {
            CHECK(check_bytes(src, q, back) == 0, "imatrix quantization differs from gl_quantize_rows");
            CHECK(gguf_get_i32(q, "quantize.imatrix.entries_count", 0) == 7 * N_LAYER, "entries_count key");
            CHECK(gguf_get_i32(q, "quantize.imatrix.chunks_count", 0) == 3, "chunks_count key");
            CHECK(!strcmp(gguf_get_str(q, "quantize.imatrix.dataset", ""), "calib.txt"), "dataset key");
            // and the importances changed something
            snprintf(path, sizeof path, "%s/q-Q4_K_M.gguf", dir);
            gguf_file *plain = gguf_open(path, err, sizeof err);
            if (plain) {
                const gguf_tensor *a = gguf_find_tensor(plain, "blk.2.attn_q.weight"), *b = gguf_find_tensor(q, "blk.2.attn_q.weight");
                CHECK(a && b && a->size == b->size && memcmp(a->data, b->data, a->size) != 0, "imatrix had no effect");
                gguf_close(plain);
            }
        }
        if (src) gguf_close(src);
        if (q) gguf_close(q);
        ll_imatrix_free(back);
    }
    ll_imatrix_free(im);

    // hostile files
    snprintf(path, sizeof path, "%s/bad.dat", dir);
    const int32_t bad[][6] = {{0}, {1, 5}, {1, 3, 0x41414141}, {-4}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        FILE *bf = fopen(path, "wb");
        fwrite(bad[k], 4, k == 2 ? 3 : (k == 1 ? 2 : 1), bf);
        fclose(bf);
        ll_imatrix *x = ll_imatrix_load(path, err, sizeof err);
        CHECK(!x && err[0], "bad imatrix %zu accepted", k);
        ll_imatrix_free(x);
    }
    // an entry of the wrong size is refused by the quantizer
    ll_imatrix *wrong = ll_imatrix_new();
    FILE *wf = fopen(path, "wb");
    int32_t hdr[] = {1, 19};
    fwrite(hdr, 4, 2, wf);
    fwrite("blk.0.attn_q.weight", 1, 19, wf);
    int32_t cn[] = {1, 7};
    fwrite(cn, 4, 2, wf);
    float vals[7] = {1, 1, 1, 1, 1, 1, 1};
    fwrite(vals, 4, 7, wf);
    fclose(wf);
    ll_imatrix_free(wrong);
    wrong = ll_imatrix_load(path, err, sizeof err);
    CHECK(wrong, "%s", err);
    if (wrong) {
        ll_quantize_params p = ll_quantize_default_params();
        p.type = "Q4_K_M";
        p.imatrix = wrong;
        CHECK(quantize(model, out, &p, NULL, err) != 0 && strstr(err, "blk.0.attn_q.weight"), "size mismatch accepted");
        ll_imatrix_free(wrong);
    }
}

static void test_target(const char *model) {
    char out[1200], err[256];
    snprintf(out, sizeof out, "%s/target.gguf", dir);
    const double bpws[] = {3.0, 4.5, 6.0};
    for (size_t k = 0; k < sizeof bpws / sizeof bpws[0]; k++) {
        ll_quantize_params p = ll_quantize_default_params();
        p.target_bpw = bpws[k];
        ll_quantize_stats st;
        CHECK(quantize(model, out, &p, &st, err) == 0, "%s", err);
        const double bpw = 8.0 * (double)st.size_out / (double)st.n_elements;
        CHECK(bpw <= bpws[k] && bpw >= 0.99 * bpws[k], "target %.2f bpw: got %.4f", bpws[k], bpw);
        fprintf(stderr, "  target %.2f bpw: %.4f\n", bpws[k], bpw);
        ll_quantize_stats_free(&st);
        CHECK(runs(out), "target mixture does not run");
    }
    ll_quantize_params p = ll_quantize_default_params();
    p.target_bytes = 3u << 20;
    ll_quantize_stats st;
    CHECK(quantize(model, out, &p, &st, err) == 0, "%s", err);
    CHECK(st.size_out <= p.target_bytes && st.size_out >= 0.99 * p.target_bytes, "target size: %llu",
          (unsigned long long)st.size_out);
    ll_quantize_stats_free(&st);
    p.target_bytes = 1000;
    CHECK(quantize(model, out, &p, NULL, err) != 0 && strstr(err, "budget"), "impossible budget accepted");
}

int main(void) {
    const char *build = getenv("LLAMALITE_BUILD");
    snprintf(tiny, sizeof tiny, "%s/tiny.gguf", build && *build ? build : "build");
    FILE *probe = fopen(tiny, "rb");
    if (!probe) {
        fprintf(stderr, "no %s (made by the build)\n", tiny);
        return TEST_SKIP;
    }
    fclose(probe);
    if (!scratch_dir_make(dir, sizeof dir, "test_quantize")) return 1;
    char model[1200], tied[1200];
    snprintf(model, sizeof model, "%s/f32.gguf", dir);
    snprintf(tied, sizeof tied, "%s/f32-tied.gguf", dir);
    CHECK(make_model(model, false) && make_model(tied, true), "cannot write the test models");
    if (!test_failures) {
        CHECK(runs(model), "the F32 model does not run");
        test_all_types(model);
        test_mixtures();
        test_options(model, tied);
        test_fallbacks();
        test_imatrix(model);
        test_target(model);
    }
    if (!test_failures) scratch_dir_remove(dir);
    return test_result("test_quantize");
}
