// Model loading: hyperparameters from the `llama.*` keys and weight views into the mapped
// GGUF. Every tensor is checked (presence, shape, type) before anything runs, so the forward
// pass never has to distrust its inputs.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/model.h"
#include "util.h"
#include "vocab/vocab.h"

ll_model_params ll_model_default_params(void) {
    ll_model_params p = {.vocab_only = false, .progress = NULL};
    return p;
}

// ---- hyperparameters ------------------------------------------------------------------

// Reads an integer key that llama.cpp also allows as a per-layer array; we only support a
// single value (arrays whose elements are all equal are accepted).
static bool get_count(const gguf_file *f, const char *key, int64_t def, int64_t *out,
                      char *err, size_t errlen) {
    int64_t i = gguf_find_key(f, key);
    if (i < 0) { *out = def; return true; }
    if (gguf_kv_type(f, i) == GGUF_TYPE_ARRAY) {
        uint64_t n = gguf_arr_n(f, i);
        enum gguf_vtype et = gguf_arr_type(f, i);
        if (n == 0 || et == GGUF_TYPE_STRING || et == GGUF_TYPE_ARRAY) {
            ll_set_err(err, errlen, "metadata '%s' is not a count", key);
            return false;
        }
        double v0 = gguf_arr_number(f, i, 0);
        for (uint64_t j = 1; j < n; j++) {
            if (gguf_arr_number(f, i, j) != v0) {
                ll_set_err(err, errlen, "metadata '%s': per-layer values are not supported", key);
                return false;
            }
        }
        if (!(v0 >= 0 && v0 <= 1e9)) {
            ll_set_err(err, errlen, "metadata '%s' out of range", key);
            return false;
        }
        *out = (int64_t)v0;
        return true;
    }
    double v;
    if (!gguf_kv_number(f, i, &v) || !(v >= 0 && v <= 1e9) || v != floor(v)) {
        ll_set_err(err, errlen, "metadata '%s' is not a valid count", key);
        return false;
    }
    *out = (int64_t)v;
    return true;
}

static bool load_hparams(ll_model *m, char *err, size_t errlen) {
    const gguf_file *f = m->file;
    ll_hparams *hp = &m->hp;
    int64_t n_ctx, n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim, n_rot;
    if (!get_count(f, "llama.context_length", 2048, &n_ctx, err, errlen) ||
        !get_count(f, "llama.embedding_length", 0, &n_embd, err, errlen) ||
        !get_count(f, "llama.block_count", 0, &n_layer, err, errlen) ||
        !get_count(f, "llama.attention.head_count", 0, &n_head, err, errlen) ||
        !get_count(f, "llama.feed_forward_length", 0, &n_ff, err, errlen))
        return false;
    if (n_embd <= 0 || n_embd > (1 << 17)) {
        ll_set_err(err, errlen, "invalid or missing llama.embedding_length (%lld)", (long long)n_embd);
        return false;
    }
    if (n_layer <= 0 || n_layer > 4096) {
        ll_set_err(err, errlen, "invalid or missing llama.block_count (%lld)", (long long)n_layer);
        return false;
    }
    if (n_head <= 0 || n_head > 4096) {
        ll_set_err(err, errlen, "invalid or missing llama.attention.head_count (%lld)", (long long)n_head);
        return false;
    }
    if (!get_count(f, "llama.attention.head_count_kv", n_head, &n_head_kv, err, errlen))
        return false;
    if (n_head_kv <= 0 || n_head_kv > n_head || n_head % n_head_kv != 0) {
        ll_set_err(err, errlen, "invalid llama.attention.head_count_kv %lld for %lld heads",
                (long long)n_head_kv, (long long)n_head);
        return false;
    }
    if (n_ff <= 0 || n_ff > (1 << 20)) {
        ll_set_err(err, errlen, "invalid or missing llama.feed_forward_length (%lld)", (long long)n_ff);
        return false;
    }
    if (!get_count(f, "llama.attention.key_length", n_embd / n_head, &head_dim, err, errlen))
        return false;
    int64_t v_len;
    if (!get_count(f, "llama.attention.value_length", head_dim, &v_len, err, errlen)) return false;
    if (head_dim <= 0 || head_dim > 4096 || v_len != head_dim) {
        ll_set_err(err, errlen, "unsupported head size (key %lld, value %lld)", (long long)head_dim,
                (long long)v_len);
        return false;
    }
    if (!get_count(f, "llama.rope.dimension_count", head_dim, &n_rot, err, errlen)) return false;
    if (n_rot <= 0 || n_rot > head_dim || n_rot % 2) {
        ll_set_err(err, errlen, "invalid llama.rope.dimension_count %lld (head size %lld)",
                (long long)n_rot, (long long)head_dim);
        return false;
    }
    if (n_ctx <= 0) n_ctx = 2048;
    if (n_ctx > (1 << 24)) n_ctx = 1 << 24;

    hp->n_ctx_train = (int)n_ctx;
    hp->n_embd = (int)n_embd;
    hp->n_layer = (int)n_layer;
    hp->n_head = (int)n_head;
    hp->n_head_kv = (int)n_head_kv;
    hp->n_ff = (int)n_ff;
    hp->head_dim = (int)head_dim;
    hp->n_rot = (int)n_rot;

    hp->rms_eps = gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    if (!(hp->rms_eps > 0 && hp->rms_eps < 1)) hp->rms_eps = 1e-5f;
    hp->rope_freq_base = gguf_get_f32(f, "llama.rope.freq_base", 10000.0f);
    if (!(hp->rope_freq_base > 0 && isfinite(hp->rope_freq_base))) {
        ll_set_err(err, errlen, "invalid llama.rope.freq_base");
        return false;
    }
    const char *scaling = gguf_get_str(f, "llama.rope.scaling.type", "linear");
    if (strcmp(scaling, "linear") != 0 && strcmp(scaling, "none") != 0) {
        ll_set_err(err, errlen, "unsupported rope scaling type '%s' (supported: linear)", scaling);
        return false;
    }
    float factor = gguf_get_f32(f, "llama.rope.scaling.factor", 0.0f);
    if (factor == 0.0f) factor = gguf_get_f32(f, "llama.rope.scale_linear", 0.0f);
    if (strcmp(scaling, "none") == 0) factor = 0.0f;
    if (!(factor >= 0 && isfinite(factor))) {
        ll_set_err(err, errlen, "invalid rope scaling factor");
        return false;
    }
    hp->rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
    return true;
}

// ---- tensors ---------------------------------------------------------------------------

static void shape_str(const gguf_tensor *t, char *buf, size_t n) {
    int k = snprintf(buf, n, "[");
    for (uint32_t d = 0; d < t->n_dims && d < GGUF_MAX_DIMS; d++)
        k += snprintf(buf + k, k < (int)n ? n - k : 0, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
    snprintf(buf + k, k < (int)n ? n - k : 0, "]");
}

// Finds a tensor and checks it is [n_in, n_out] (n_out == 1 for vectors) with data in range.
// Returns NULL without an error when it is absent and optional.
static const gguf_tensor *find_checked(const gguf_file *f, const char *name, int64_t n_in,
                                       int64_t n_out, bool required, bool *ok, char *err,
                                       size_t errlen) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        if (required) {
            ll_set_err(err, errlen, "missing tensor '%s'", name);
            *ok = false;
        }
        return NULL;
    }
    bool shape_ok = t->ne[0] == n_in && t->ne[1] == n_out && t->ne[2] == 1 && t->ne[3] == 1;
    if (!shape_ok) {
        char got[96];
        shape_str(t, got, sizeof got);
        if (n_out == 1)
            ll_set_err(err, errlen, "tensor '%s' has shape %s, expected [%lld]", name, got, (long long)n_in);
        else
            ll_set_err(err, errlen, "tensor '%s' has shape %s, expected [%lld, %lld]", name, got,
                    (long long)n_in, (long long)n_out);
        *ok = false;
        return NULL;
    }
    const gl_type_traits *tr = gl_get_type_traits(t->type);
    if (!tr || !tr->to_float) {
        ll_set_err(err, errlen, "tensor '%s' has unsupported type %s", name, gl_type_name(t->type));
        *ok = false;
        return NULL;
    }
    size_t row = gl_row_size(t->type, n_in);
    if (row == 0 || t->size < row * (size_t)n_out || !t->data) {
        ll_set_err(err, errlen, "tensor '%s': %lld elements per row do not fit type %s", name,
                (long long)n_in, gl_type_name(t->type));
        *ok = false;
        return NULL;
    }
    return t;
}

// A matrix used by gl_matmul: its type must have a dot kernel.
static bool get_weight(ll_model *m, const char *name, int64_t n_in, int64_t n_out, bool required,
                       ll_weight *w, char *err, size_t errlen) {
    bool ok = true;
    const gguf_tensor *t = find_checked(m->file, name, n_in, n_out, required, &ok, err, errlen);
    memset(w, 0, sizeof *w);
    if (!t) return ok;
    const gl_type_traits *tr = gl_get_type_traits(t->type);
    const gl_type_traits *vt = gl_get_type_traits(tr->vec_dot_type);
    if (!tr->vec_dot || !vt || !vt->from_float || gl_row_size(tr->vec_dot_type, n_in) == 0) {
        ll_set_err(err, errlen, "tensor '%s': type %s cannot be used for a matmul of %lld-element rows",
                name, gl_type_name(t->type), (long long)n_in);
        return false;
    }
    w->data = t->data;
    w->type = t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    m->n_params += (uint64_t)n_in * (uint64_t)n_out;
    m->size_bytes += gl_row_size(t->type, n_in) * (uint64_t)n_out;
    return true;
}

// A vector (norm weight, bias): converted to floats in the owned block at *cursor.
static bool get_vector(ll_model *m, const char *name, int64_t n, bool required,
                       const float **out, float **cursor, char *err, size_t errlen) {
    bool ok = true;
    const gguf_tensor *t = find_checked(m->file, name, n, 1, required, &ok, err, errlen);
    *out = NULL;
    if (!t) return ok;
    gl_get_type_traits(t->type)->to_float(t->data, *cursor, n);
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite((*cursor)[i])) {
            ll_set_err(err, errlen, "tensor '%s' holds a non-finite value", name);
            return false;
        }
    }
    *out = *cursor;
    *cursor += n;
    m->n_params += (uint64_t)n;
    m->size_bytes += t->size;
    return true;
}

static bool load_tensors(ll_model *m, char *err, size_t errlen) {
    const ll_hparams *hp = &m->hp;
    const gguf_file *f = m->file;
    const int64_t E = hp->n_embd, q_dim = (int64_t)hp->n_head * hp->head_dim,
                  kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;

    // The vocabulary size comes from the embedding; the tokenizer must agree with it.
    const gguf_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    if (!te) {
        ll_set_err(err, errlen, "missing tensor 'token_embd.weight'");
        return false;
    }
    if (te->ne[1] <= 0 || te->ne[1] > (1 << 24)) {
        ll_set_err(err, errlen, "tensor 'token_embd.weight' has an invalid vocabulary size");
        return false;
    }
    m->hp.n_vocab = (int)te->ne[1];
    if (m->vocab && ll_vocab_n_tokens(m->vocab) != m->hp.n_vocab) {
        ll_set_err(err, errlen, "tensor 'token_embd.weight' has %d rows but the vocabulary has %d tokens",
                m->hp.n_vocab, (int)ll_vocab_n_tokens(m->vocab));
        return false;
    }
    const int64_t V = hp->n_vocab;

    size_t n_floats = (size_t)E + (size_t)hp->n_rot / 2 +
                      (size_t)hp->n_layer * (size_t)(2 * E + q_dim + 2 * kv_dim + E);
    m->owned = malloc(n_floats * sizeof(float));
    m->layers = calloc((size_t)hp->n_layer, sizeof(ll_layer));
    if (!m->owned || !m->layers) {
        ll_set_err(err, errlen, "out of memory");
        return false;
    }
    float *cur = m->owned;

    // The embedding is read a row at a time with to_float, so any decodable type works.
    bool ok = true;
    if (!find_checked(f, "token_embd.weight", E, V, true, &ok, err, errlen)) return false;
    m->tok_embd = (ll_weight){te->data, te->type, E, V};
    m->n_params += (uint64_t)E * V;
    m->size_bytes += gl_row_size(te->type, E) * (uint64_t)V;

    if (!get_vector(m, "output_norm.weight", E, true, &m->output_norm, &cur, err, errlen) ||
        !get_weight(m, "output.weight", E, V, false, &m->output, err, errlen))
        return false;
    if (!m->output.data) {
        // Tied output: the embedding doubles as the output head, so it must be multipliable.
        if (!get_weight(m, "token_embd.weight", E, V, true, &m->output, err, errlen)) return false;
        m->n_params -= (uint64_t)E * V;
        m->size_bytes -= gl_row_size(te->type, E) * (uint64_t)V;
    }
    if (!get_vector(m, "rope_freqs.weight", hp->n_rot / 2, false, &m->rope_freqs, &cur, err, errlen))
        return false;
    if (m->rope_freqs) {
        for (int i = 0; i < hp->n_rot / 2; i++) {
            if (!(m->rope_freqs[i] > 0)) {
                ll_set_err(err, errlen, "tensor 'rope_freqs.weight' holds a non-positive factor");
                return false;
            }
        }
    }

    char name[96];
#define NAME(s) (snprintf(name, sizeof name, "blk.%d.%s", i, s), name)
    for (int i = 0; i < hp->n_layer; i++) {
        ll_layer *L = &m->layers[i];
        if (!get_vector(m, NAME("attn_norm.weight"), E, true, &L->attn_norm, &cur, err, errlen) ||
            !get_weight(m, NAME("attn_q.weight"), E, q_dim, true, &L->wq, err, errlen) ||
            !get_weight(m, NAME("attn_k.weight"), E, kv_dim, true, &L->wk, err, errlen) ||
            !get_weight(m, NAME("attn_v.weight"), E, kv_dim, true, &L->wv, err, errlen) ||
            !get_weight(m, NAME("attn_output.weight"), q_dim, E, true, &L->wo, err, errlen) ||
            !get_vector(m, NAME("attn_q.bias"), q_dim, false, &L->bq, &cur, err, errlen) ||
            !get_vector(m, NAME("attn_k.bias"), kv_dim, false, &L->bk, &cur, err, errlen) ||
            !get_vector(m, NAME("attn_v.bias"), kv_dim, false, &L->bv, &cur, err, errlen) ||
            !get_vector(m, NAME("attn_output.bias"), E, false, &L->bo, &cur, err, errlen) ||
            !get_vector(m, NAME("ffn_norm.weight"), E, true, &L->ffn_norm, &cur, err, errlen) ||
            !get_weight(m, NAME("ffn_gate.weight"), E, hp->n_ff, true, &L->w_gate, err, errlen) ||
            !get_weight(m, NAME("ffn_up.weight"), E, hp->n_ff, true, &L->w_up, err, errlen) ||
            !get_weight(m, NAME("ffn_down.weight"), hp->n_ff, E, true, &L->w_down, err, errlen))
            return false;
    }
#undef NAME
    return true;
}

// ---- description -------------------------------------------------------------------------

static const char *ftype_name(uint32_t ft) {
    switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 21: return "Q2_K_S";
    case 25: return "IQ4_NL";
    case 30: return "IQ4_XS";
    case 32: return "BF16";
    default: return NULL;
    }
}

static void make_desc(ll_model *m) {
    char size[32];
    double n = (double)m->n_params;
    const char *label = gguf_get_str(m->file, "general.size_label", NULL);
    if (label && label[0] && strlen(label) < 16 && !strchr(label, ' ')) snprintf(size, sizeof size, "%s", label);
    else if (n < 1e6) snprintf(size, sizeof size, "%.0fK", n / 1e3);
    else if (n < 1e9) snprintf(size, sizeof size, "%.0fM", n / 1e6);
    else snprintf(size, sizeof size, "%.1fB", n / 1e9);

    const char *ft = NULL;
    if (gguf_find_key(m->file, "general.file_type") >= 0)
        ft = ftype_name(gguf_get_u32(m->file, "general.file_type", 9999));
    if (!ft) {
        // No (known) file type: name the type holding the most parameters of the layers.
        uint64_t count[GL_TYPE_COUNT] = {0};
        for (int i = 0; i < m->hp.n_layer; i++) {
            const ll_layer *L = &m->layers[i];
            const ll_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
            for (size_t k = 0; k < sizeof ws / sizeof ws[0]; k++)
                if ((unsigned)ws[k]->type < GL_TYPE_COUNT)
                    count[ws[k]->type] += (uint64_t)ws[k]->n_in * ws[k]->n_out;
        }
        int best = 0;
        for (int t = 1; t < GL_TYPE_COUNT; t++)
            if (count[t] > count[best]) best = t;
        ft = gl_type_name((enum gl_type)best);
    }
    snprintf(m->desc, sizeof m->desc, "%.31s %.15s %.15s", m->arch, size, ft);
}

// Reads one byte per page of every weight so the first decode does not pay for page faults,
// reporting the bytes done as it goes.
static void prefault(const ll_model *m, const ll_model_params *p) {
    const int64_t nt = gguf_n_tensors(m->file);
    uint64_t total = 0, done = 0;
    for (int64_t i = 0; i < nt; i++) total += gguf_get_tensor(m->file, i)->size;
    volatile unsigned char sink = 0;
    for (int64_t i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_get_tensor(m->file, i);
        const unsigned char *d = t->data;
        for (size_t off = 0; off < t->size; off += 4096) sink ^= d[off];
        done += t->size;
        p->progress(p->progress_ud, done, total);
    }
    (void)sink;
}

ll_model *ll_model_load(const char *path, const ll_model_params *p, char *err, size_t errlen) {
    double t0 = ll_now_ms();
    ll_model_params def = ll_model_default_params();
    if (!p) p = &def;
    if (err && errlen) err[0] = 0;

    ll_model *m = calloc(1, sizeof *m);
    if (!m) {
        ll_set_err(err, errlen, "out of memory");
        return NULL;
    }
    m->file = gguf_open(path, err, errlen);
    if (!m->file) goto fail;
    m->vocab_only = p->vocab_only;
    snprintf(m->arch, sizeof m->arch, "%s", gguf_get_str(m->file, "general.architecture", ""));

    char verr[256] = "";
    m->vocab = ll_vocab_load(m->file, verr, sizeof verr);
    if (!m->vocab) {
        ll_set_err(err, errlen, "%s: %s", path, verr[0] ? verr : "cannot load the vocabulary");
        goto fail;
    }
    if (p->vocab_only) {
        snprintf(m->desc, sizeof m->desc, "%s vocab", m->arch[0] ? m->arch : "?");
        m->t_load_ms = ll_now_ms() - t0;
        return m;
    }
    if (strcmp(m->arch, "llama") != 0) {
        ll_set_err(err, errlen, "unsupported architecture '%s' (supported: llama)", m->arch);
        goto fail;
    }
    char lerr[256] = "";
    if (!load_hparams(m, lerr, sizeof lerr) || !load_tensors(m, lerr, sizeof lerr)) {
        ll_set_err(err, errlen, "%s: %s", path, lerr);
        goto fail;
    }
    make_desc(m);
    if (p->progress) prefault(m, p);
    m->t_load_ms = ll_now_ms() - t0;
    return m;
fail:
    ll_model_free(m);
    return NULL;
}

void ll_model_free(ll_model *m) {
    if (!m) return;
    if (m->vocab) ll_vocab_free(m->vocab);
    if (m->file) gguf_close(m->file);
    free(m->layers);
    free(m->owned);
    free(m);
}

const ll_vocab *ll_model_get_vocab(const ll_model *m) { return m->vocab; }
int ll_model_n_ctx_train(const ll_model *m) { return m->hp.n_ctx_train; }
int ll_model_n_embd(const ll_model *m) { return m->hp.n_embd; }
int ll_model_n_layer(const ll_model *m) { return m->hp.n_layer; }
uint64_t ll_model_n_params(const ll_model *m) { return m->n_params; }
uint64_t ll_model_size_bytes(const ll_model *m) { return m->size_bytes; }
const char *ll_model_desc(const ll_model *m) { return m->desc; }

const char *ll_model_meta_str(const ll_model *m, const char *key) {
    int64_t i = gguf_find_key(m->file, key);
    if (i < 0 || gguf_kv_type(m->file, i) != GGUF_TYPE_STRING) return NULL;
    return gguf_get_str(m->file, key, NULL);
}
