// mktiny: writes a tiny random-weight Llama with a small self-made SentencePiece vocab, so a
// fresh checkout can run llamalite without downloading anything:
//   mktiny build/tiny.gguf && llamalite -m build/tiny.gguf -p hi -n 20
// The output is byte-for-byte the same on every run (fixed PRNG, no clock, no platform RNG).
// The weights are noise, but rows of the output matrix for whole words are larger than those
// of characters and byte tokens, so it babbles in words rather than in bytes.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

enum {
    DIM = 64,
    N_LAYER = 2,
    N_HEAD = 4,
    N_HEAD_KV = 2,   // grouped-query attention, like most current models
    HEAD_DIM = DIM / N_HEAD,
    KV_DIM = N_HEAD_KV * HEAD_DIM,
    FFN = 160,
    N_CTX = 256,
    MAX_VOCAB = 1024,
};

// SentencePiece token types as GGUF stores them.
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

static const char *const WORDS[] = {
    "Once", "upon", "a", "time", "there", "was", "little", "girl", "boy", "named", "Lily",
    "Tom", "Ben", "Sue", "She", "He", "They", "liked", "loved", "to", "play", "with", "her",
    "his", "friends", "friend", "the", "park", "One", "day", "saw", "big", "small", "dog",
    "cat", "bird", "tree", "ball", "sun", "and", "said", "happy", "sad", "very", "went", "ran",
    "jumped", "found", "red", "blue", "box", "toy", "mom", "dad", "home", "hi", "hello", "it",
    "is", "in", "on", "of", "at", "up", "fun", "nice", "good", "sky", "cake", "garden", "house",
    "look", "wanted", "asked", "smiled", "laughed", "together", "The", "end",
};

// ---- deterministic random numbers -----------------------------------------------------------
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_u64(void) { // splitmix64
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_normal(void) { // Irwin-Hall: sum of 12 uniforms - 6, close enough to N(0,1)
    double s = 0;
    for (int i = 0; i < 12; i++) s += (double)(rng_u64() >> 11) * (1.0 / 9007199254740992.0);
    return (float)(s - 6.0);
}

static float *random_matrix(int64_t n_in, int64_t n_out, float scale) {
    float *m = malloc((size_t)(n_in * n_out) * sizeof *m);
    if (!m) return NULL;
    for (int64_t i = 0; i < n_in * n_out; i++) m[i] = rng_normal() * scale;
    return m;
}

// ---- vocabulary -------------------------------------------------------------------------------
typedef struct {
    char *text[MAX_VOCAB];
    float score[MAX_VOCAB];
    int32_t type[MAX_VOCAB];
    float out_scale[MAX_VOCAB]; // norm of the token's output row
    int n;
} vocab;

static int vocab_find(const vocab *v, const char *s) {
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->text[i], s)) return i;
    return -1;
}

static void vocab_add(vocab *v, const char *s, int32_t type, float score, float out_scale) {
    if (v->n >= MAX_VOCAB || vocab_find(v, s) >= 0) return;
    v->text[v->n] = strdup(s);
    v->type[v->n] = type;
    v->score[v->n] = score;
    v->out_scale[v->n] = out_scale;
    v->n++;
}

// "▁" (U+2581) is how SentencePiece writes a space.
#define SPACE_MARK "\xE2\x96\x81"

static void build_vocab(vocab *v) {
    vocab_add(v, "<unk>", TT_UNKNOWN, 0, 0.05f);
    vocab_add(v, "<s>", TT_CONTROL, 0, 0.05f);
    vocab_add(v, "</s>", TT_CONTROL, 0, 0.3f);
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        vocab_add(v, s, TT_BYTE, 0, 0.05f);
    }
    // Single characters, so any ASCII text tokenizes without falling back to bytes.
    vocab_add(v, SPACE_MARK, TT_NORMAL, -1000, 0.3f);
    for (int c = 0x21; c < 0x7F; c++) {
        char s[2] = {(char)c, 0};
        vocab_add(v, s, TT_NORMAL, -1000 - (float)c, strchr(".,!?", c) ? 1.0f : 0.1f);
    }
    // Words with every prefix, so SentencePiece's pairwise merges can reach each whole word.
    // Longer pieces score higher: the tokenizer prefers them.
    for (size_t w = 0; w < sizeof WORDS / sizeof WORDS[0]; w++) {
        char s[64];
        snprintf(s, sizeof s, SPACE_MARK "%s", WORDS[w]);
        size_t len = strlen(s);
        for (size_t k = strlen(SPACE_MARK) + 1; k <= len; k++) {
            char prefix[64];
            memcpy(prefix, s, k);
            prefix[k] = 0;
            vocab_add(v, prefix, TT_NORMAL, -100 + (float)k, k == len ? 1.5f : 0.2f);
        }
    }
}

// ---- model --------------------------------------------------------------------------------
typedef struct {
    char name[64];
    float *data;
} owned_tensor;

static owned_tensor tensors[64];
static int n_tensors = 0;

static int add(gguf_writer *w, const char *name, int64_t n_in, int64_t n_out, float *data) {
    if (!data) return -1;
    owned_tensor *t = &tensors[n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->data = data;
    int64_t ne[2] = {n_in, n_out};
    gguf_writer_add_tensor(w, t->name, GL_TYPE_F32, n_out == 1 ? 1 : 2, ne, data,
                           (size_t)(n_in * n_out) * sizeof(float));
    return 0;
}

static float *ones(int64_t n) {
    float *x = malloc((size_t)n * sizeof *x);
    if (x)
        for (int64_t i = 0; i < n; i++) x[i] = 1.0f;
    return x;
}

int main(int argc, char **argv) {
    // --arch NAME writes the same file under another architecture name (tests use it to
    // check that an unsupported architecture is refused cleanly).
    const char *arch = "llama";
    if (argc == 4 && !strcmp(argv[2], "--arch")) arch = argv[3];
    else if (argc != 2) {
        fprintf(stderr, "usage: mktiny OUT.gguf [--arch NAME]\n");
        return 1;
    }
    static vocab v;
    build_vocab(&v);

    gguf_writer *w = gguf_writer_new();
    if (!w) {
        fprintf(stderr, "mktiny: out of memory\n");
        return 1;
    }
    gguf_writer_set_str(w, "general.architecture", arch);
    gguf_writer_set_str(w, "general.name", "tiny");
    gguf_writer_set_u32(w, "general.file_type", 0); // all F32
    char key[128];
#define ARCH_KEY(name) (snprintf(key, sizeof key, "%s." name, arch), key)
    gguf_writer_set_u32(w, ARCH_KEY("context_length"), N_CTX);
    gguf_writer_set_u32(w, ARCH_KEY("embedding_length"), DIM);
    gguf_writer_set_u32(w, ARCH_KEY("feed_forward_length"), FFN);
    gguf_writer_set_u32(w, ARCH_KEY("block_count"), N_LAYER);
    gguf_writer_set_u32(w, ARCH_KEY("attention.head_count"), N_HEAD);
    gguf_writer_set_u32(w, ARCH_KEY("attention.head_count_kv"), N_HEAD_KV);
    gguf_writer_set_u32(w, ARCH_KEY("rope.dimension_count"), HEAD_DIM);
    gguf_writer_set_f32(w, ARCH_KEY("rope.freq_base"), 10000.0f);
    gguf_writer_set_f32(w, ARCH_KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
#undef ARCH_KEY

    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.text, (uint64_t)v.n);
    gguf_writer_set_arr_data(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, v.score, (uint64_t)v.n);
    gguf_writer_set_arr_data(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v.type, (uint64_t)v.n);
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);

    // Scales keep activations around 1: weights ~ N(0, 1/n_in).
    const float s_dim = 1.0f / sqrtf((float)DIM), s_ffn = 1.0f / sqrtf((float)FFN);
    int bad = 0;
    bad |= add(w, "token_embd.weight", DIM, v.n, random_matrix(DIM, v.n, 1.0f));
    for (int l = 0; l < N_LAYER; l++) {
        char name[64];
#define LAYER(suffix, n_in, n_out, data) \
    (snprintf(name, sizeof name, "blk.%d." suffix, l), add(w, name, n_in, n_out, data))
        bad |= LAYER("attn_norm.weight", DIM, 1, ones(DIM));
        bad |= LAYER("attn_q.weight", DIM, DIM, random_matrix(DIM, DIM, s_dim));
        bad |= LAYER("attn_k.weight", DIM, KV_DIM, random_matrix(DIM, KV_DIM, s_dim));
        bad |= LAYER("attn_v.weight", DIM, KV_DIM, random_matrix(DIM, KV_DIM, s_dim));
        bad |= LAYER("attn_output.weight", DIM, DIM, random_matrix(DIM, DIM, s_dim));
        bad |= LAYER("ffn_norm.weight", DIM, 1, ones(DIM));
        bad |= LAYER("ffn_gate.weight", DIM, FFN, random_matrix(DIM, FFN, s_dim));
        bad |= LAYER("ffn_up.weight", DIM, FFN, random_matrix(DIM, FFN, s_dim));
        bad |= LAYER("ffn_down.weight", FFN, DIM, random_matrix(FFN, DIM, s_ffn));
#undef LAYER
    }
    bad |= add(w, "output_norm.weight", DIM, 1, ones(DIM));
    float *out = random_matrix(DIM, v.n, 2.0f * s_dim);
    if (out)
        for (int t = 0; t < v.n; t++)
            for (int i = 0; i < DIM; i++) out[(size_t)t * DIM + i] *= v.out_scale[t];
    bad |= add(w, "output.weight", DIM, v.n, out);

    char err[512] = "out of memory";
    int rc = 0;
    if (bad || !gguf_writer_write(w, argv[1], err, sizeof err)) {
        fprintf(stderr, "mktiny: %s\n", err);
        rc = 1;
    }
    gguf_writer_free(w);
    for (int i = 0; i < n_tensors; i++) free(tensors[i].data);
    for (int i = 0; i < v.n; i++) free(v.text[i]);
    return rc;
}
