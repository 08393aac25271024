// LoRA adapters: loading a GGUF adapter and checking every pair against the base model before
// anything runs, so the forward pass and the merger can trust shapes and types. Attaching
// adapters to a context lives here too; applying them is in forward/matmul.c.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/context.h"
#include "adapters/lora.h"
#include "util.h"

// ---- slots ----------------------------------------------------------------------------------

int ll_lora_slot_of(const ll_model *m, const char *name) {
    if (!strcmp(name, "output.weight")) return ll_lora_slot_output(m);
    if (!strcmp(name, "token_embd.weight")) return ll_lora_slot_embd(m);
    if (strncmp(name, "blk.", 4) != 0) return -1;
    const char *s = name + 4;
    int layer = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 7) layer = layer * 10 + (*s++ - '0'), digits++;
    if (!digits || *s != '.' || layer >= m->hp.n_layer || (digits > 1 && name[4] == '0')) return -1;
    s++;
    for (int r = 0; r < LL_ROLE_COUNT; r++)
        if ((ll_roles[r].kind == LL_KIND_MATRIX || ll_roles[r].kind == LL_KIND_EXPERTS) && !strcmp(s, ll_roles[r].name))
            return ll_lora_slot(layer, (ll_role)r);
    return -1;
}

const ll_weight *ll_lora_base(const ll_model *m, int slot) {
    if (slot < 0 || slot >= ll_lora_n_slots(m)) return NULL;
    if (slot == ll_lora_slot_embd(m)) return &m->tok_embd;
    if (slot == ll_lora_slot_output(m)) return m->output.data == m->tok_embd.data ? NULL : &m->output;
    const ll_weight *w = &m->layers[slot / LL_ROLE_COUNT].w[slot % LL_ROLE_COUNT];
    const ll_role_kind kind = ll_roles[slot % LL_ROLE_COUNT].kind;
    return w->data && (kind == LL_KIND_MATRIX || kind == LL_KIND_EXPERTS) ? w : NULL;
}

// How many matrices the weight of a slot stacks (n_expert for expert stacks, else 1).
static int64_t slot_mats(const ll_model *m, int slot) {
    if (slot >= ll_lora_slot_output(m)) return 1;
    return ll_roles[slot % LL_ROLE_COUNT].kind == LL_KIND_EXPERTS ? m->hp.n_expert : 1;
}

// ---- messages -------------------------------------------------------------------------------

// Text from the file made safe for a one-line message: printable ASCII kept, anything else
// (controls, escape sequences, UTF-8) shown as '?', long names cut.
static const char *safe(const char *s, char *buf, size_t n) {
    size_t k = 0;
    for (; s && *s && k + 4 < n; s++) buf[k++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    if (s && *s) memcpy(buf + k, "...", 3), k += 3;
    buf[k] = 0;
    return buf;
}

static void shape_str(const int64_t *ne, int n_dims, char *buf, size_t n) {
    int k = snprintf(buf, n, "[");
    for (int d = 0; d < n_dims; d++)
        k += snprintf(buf + k, k < (int)n ? n - k : 0, "%s%lld", d ? ", " : "", (long long)ne[d]);
    snprintf(buf + k, k < (int)n ? n - k : 0, "]");
}

static void tensor_shape(const gguf_tensor *t, char *buf, size_t n) {
    shape_str(t->ne, t->n_dims < 2 ? 2 : (int)t->n_dims, buf, n);
}

// ---- loading --------------------------------------------------------------------------------

// A string key: its value, "" when absent, NULL when present with another type.
static const char *str_key(const gguf_file *f, const char *key) {
    int64_t i = gguf_find_key(f, key);
    if (i < 0) return "";
    if (gguf_kv_type(f, i) != GGUF_TYPE_STRING) return NULL;
    return gguf_get_str(f, key, NULL);
}

static bool check_metadata(const ll_model *m, const gguf_file *f, float *alpha, char *err,
                           size_t errlen) {
    char b1[64], b2[64];
    const char *path = gguf_path(f);
    const char *gt = str_key(f, "general.type");
    if (!gt || strcmp(gt, "adapter") != 0) {
        if (!gt) ll_set_err(err, errlen, "%s: not a LoRA adapter (general.type is not a string)", path);
        else if (!*gt) ll_set_err(err, errlen, "%s: not a LoRA adapter (no general.type; a model file?)", path);
        else ll_set_err(err, errlen, "%s: not a LoRA adapter (general.type is '%s', expected 'adapter')",
                        path, safe(gt, b1, sizeof b1));
        return false;
    }
    const char *at = str_key(f, "adapter.type");
    if (!at || strcmp(at, "lora") != 0) {
        ll_set_err(err, errlen, "%s: adapter type '%s' is not supported (expected 'lora')", path,
                   at ? safe(at, b1, sizeof b1) : "?");
        return false;
    }
    const char *arch = str_key(f, "general.architecture");
    if (!arch || strcmp(arch, m->arch) != 0) {
        ll_set_err(err, errlen, "%s: the adapter is for architecture '%s' but the model is '%s'", path,
                   arch && *arch ? safe(arch, b1, sizeof b1) : "(none)", safe(m->arch, b2, sizeof b2));
        return false;
    }
    *alpha = 0;
    int64_t ia = gguf_find_key(f, "adapter.lora.alpha");
    double a;
    if (ia >= 0) {
        if (!gguf_kv_number(f, ia, &a) || !isfinite(a) || fabs(a) > 1e30) {
            ll_set_err(err, errlen, "%s: adapter.lora.alpha is not a finite number", path);
            return false;
        }
        *alpha = (float)a;
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

// Checks one of A/B: the expected dims (0 = any, reported as "rank"; n_mat > 1: that many
// stacked, for a stack of experts), a LoRA type whose rows the kernels can multiply, data in
// range. Fills w (one matrix of the stack's shape).
static bool check_part(const gguf_file *f, const gguf_tensor *t, int64_t e0, int64_t e1, int64_t n_mat,
                       const char *base, const int64_t *base_ne, ll_weight *w, char *err,
                       size_t errlen) {
    char name[128], got[96], want[96], bshape[96];
    const char *path = gguf_path(f);
    safe(t->name, name, sizeof name);
    bool ok = t->n_dims <= (n_mat > 1 ? 3u : 2u) && t->ne[2] == n_mat && t->ne[3] == 1 && t->ne[0] > 0 &&
              t->ne[1] > 0 && (e0 == 0 || t->ne[0] == e0) && (e1 == 0 || t->ne[1] == e1);
    if (!ok) {
        tensor_shape(t, got, sizeof got);
        shape_str(base_ne, n_mat > 1 ? 3 : 2, bshape, sizeof bshape);
        int k = snprintf(want, sizeof want, "[");
        if (e0) k += snprintf(want + k, sizeof want - k, "%lld, ", (long long)e0);
        else k += snprintf(want + k, sizeof want - k, "rank, ");
        if (e1) k += snprintf(want + k, sizeof want - k, "%lld", (long long)e1);
        else k += snprintf(want + k, sizeof want - k, "rank");
        if (n_mat > 1) snprintf(want + k, sizeof want - k, ", %lld]", (long long)n_mat);
        else snprintf(want + k, sizeof want - k, "]");
        char bname[128];
        ll_set_err(err, errlen, "%s: tensor '%s' has shape %s, expected %s for the model's '%s' %s",
                   path, name, got, want, safe(base, bname, sizeof bname), bshape);
        return false;
    }
    if (t->type != GL_TYPE_F32 && t->type != GL_TYPE_F16 && t->type != GL_TYPE_BF16 &&
        t->type != GL_TYPE_Q8_0) {
        ll_set_err(err, errlen, "%s: tensor '%s' has type %s (LoRA tensors must be F32, F16, BF16 or Q8_0)",
                   path, name, gl_type_name(t->type));
        return false;
    }
    const size_t row = gl_row_size(t->type, t->ne[0]);
    if (row == 0) {
        ll_set_err(err, errlen, "%s: tensor '%s' is %s but its rows of %lld elements are not whole blocks",
                   path, name, gl_type_name(t->type), (long long)t->ne[0]);
        return false;
    }
    if (!t->data || t->size < row * (size_t)t->ne[1] * (size_t)n_mat) {
        ll_set_err(err, errlen, "%s: tensor '%s' has too little data", path, name);
        return false;
    }
    *w = (ll_weight){t->data, t->type, t->ne[0], t->ne[1], NULL};
    return true;
}

// A LoRA part (n_out rows of rank elements) transposed to floats: rank rows of n_out; for a
// stack, each of its n_mat matrices so, one after the other.
static float *transpose(const ll_weight *w, int64_t n_mat) {
    const int64_t n = w->n_out, r = w->n_in;
    float *row = malloc((size_t)r * sizeof(float)), *t = malloc((size_t)n_mat * (size_t)n * (size_t)r * sizeof(float));
    if (!row || !t) {
        free(row);
        free(t);
        return NULL;
    }
    const gl_type_traits *tr = gl_get_type_traits(w->type);
    const size_t rb = gl_row_size(w->type, r);
    for (int64_t e = 0; e < n_mat; e++) {
        float *te = t + (size_t)e * (size_t)n * (size_t)r;
        for (int64_t i = 0; i < n; i++) {
            tr->to_float((const char *)w->data + (size_t)(e * n + i) * rb, row, r);
            for (int64_t k = 0; k < r; k++) te[(size_t)k * n + i] = row[k];
        }
    }
    free(row);
    return t;
}

// Validates the pair for base tensor `base` (A and B found) and stores it.
static bool add_pair(ll_adapter *ad, const char *base, const gguf_tensor *ta, const gguf_tensor *tb,
                     char *err, size_t errlen) {
    const ll_model *m = ad->model;
    const char *path = gguf_path(ad->file);
    char bname[128];
    const gguf_tensor *bt = gguf_find_tensor(m->file, base);
    int slot = ll_lora_slot_of(m, base);
    const ll_weight *w = bt ? ll_lora_base(m, slot) : NULL;
    if (!bt) {
        ll_set_err(err, errlen, "%s: tensor '%s' is not in the model (an adapter for another base model?)",
                   path, safe(base, bname, sizeof bname));
        return false;
    }
    if (slot < 0 || !w) {
        ll_set_err(err, errlen, "%s: LoRA on '%s' is not supported (only attention, feed-forward, expert, "
                   "output and token embedding matrices)", path, safe(base, bname, sizeof bname));
        return false;
    }
    ll_lora_pair *p = &ad->pairs[slot];
    const int64_t n_mat = slot_mats(m, slot), base_ne[3] = {w->n_in, w->n_out, n_mat};
    bool embd = slot == ll_lora_slot_embd(m);
    if (embd) {
        // llama.cpp's layout: A [rank, n_vocab] (looked up by token), B [rank, n_embd].
        if (!check_part(ad->file, ta, 0, w->n_out, 1, base, base_ne, &p->a, err, errlen) ||
            !check_part(ad->file, tb, p->a.n_in, w->n_in, 1, base, base_ne, &p->b, err, errlen))
            return false;
        p->rank = (int)p->a.n_in;
    } else {
        // A stack of experts: A [n_in, rank, n_expert], B [rank, n_out, n_expert].
        if (!check_part(ad->file, ta, w->n_in, 0, n_mat, base, base_ne, &p->a, err, errlen) ||
            !check_part(ad->file, tb, p->a.n_out, w->n_out, n_mat, base, base_ne, &p->b, err, errlen))
            return false;
        p->rank = (int)p->a.n_out;
    }
    // The thin matmuls need the activation types of A and B to exist for these row lengths.
    const ll_weight *parts[2] = {&p->a, &p->b};
    for (int i = 0; i < 2; i++) {
        const gl_type_traits *tr = gl_get_type_traits(parts[i]->type);
        if (!tr->vec_dot || !gl_row_size(tr->vec_dot_type, parts[i]->n_in)) {
            ll_set_err(err, errlen, "%s: tensor '%s': type %s cannot multiply rows of %lld elements", path,
                       safe(i ? tb->name : ta->name, bname, sizeof bname), gl_type_name(parts[i]->type),
                       (long long)parts[i]->n_in);
            return false;
        }
    }
    p->scale = ad->alpha != 0 ? ad->alpha / (float)p->rank : 1.0f;
    if (!(p->bt = transpose(&p->b, n_mat)) || (embd && !(p->at = transpose(&p->a, 1)))) {
        ll_set_err(err, errlen, "out of memory");
        return false;
    }
    ad->n_pairs++;
    if (p->rank > ad->max_rank) ad->max_rank = p->rank;
    return true;
}

static bool load_pairs(ll_adapter *ad, char *err, size_t errlen) {
    const gguf_file *f = ad->file;
    const char *path = gguf_path(f);
    char name[128], other[300];
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        const bool is_a = ends_with(t->name, ".lora_a"), is_b = ends_with(t->name, ".lora_b");
        if (!is_a && !is_b) {
            if (ends_with(t->name, "_norm.weight")) continue; // norm adapters: ignored, as llama.cpp
            ll_set_err(err, errlen, "%s: tensor '%s' is not a LoRA tensor (names end in .lora_a or .lora_b)",
                       path, safe(t->name, name, sizeof name));
            return false;
        }
        size_t n = strlen(t->name) - 7;
        if (n == 0 || n + 8 > sizeof other) {
            ll_set_err(err, errlen, "%s: tensor '%s' has no base name", path, safe(t->name, name, sizeof name));
            return false;
        }
        memcpy(other, t->name, n);
        snprintf(other + n, sizeof other - n, is_a ? ".lora_b" : ".lora_a");
        const gguf_tensor *mate = gguf_find_tensor(f, other);
        if (!mate) {
            ll_set_err(err, errlen, "%s: tensor '%s' has no matching '%s'", path,
                       safe(t->name, name, sizeof name), is_a ? ".lora_b" : ".lora_a");
            return false;
        }
        if (is_b) continue; // each pair is added once, from its A
        other[n] = 0;
        if (!add_pair(ad, other, t, mate, err, errlen)) return false;
    }
    return true;
}

ll_adapter *ll_adapter_load(const ll_model *m, const char *path, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!m || m->vocab_only || !m->layers) {
        ll_set_err(err, errlen, "%s: cannot load a LoRA adapter for a model without weights", path);
        return NULL;
    }
    ll_adapter *ad = calloc(1, sizeof *ad);
    if (!ad) {
        ll_set_err(err, errlen, "out of memory");
        return NULL;
    }
    ad->model = m;
    ad->n_slots = ll_lora_n_slots(m);
    ad->pairs = calloc((size_t)ad->n_slots, sizeof *ad->pairs);
    ad->path = strdup(path);
    if (!ad->pairs || !ad->path) {
        ll_set_err(err, errlen, "out of memory");
        goto fail;
    }
    ad->file = gguf_open(path, err, errlen);
    if (!ad->file || !check_metadata(m, ad->file, &ad->alpha, err, errlen) || !load_pairs(ad, err, errlen))
        goto fail;
    return ad;
fail:
    ll_adapter_free(ad);
    return NULL;
}

void ll_adapter_free(ll_adapter *a) {
    if (!a) return;
    if (a->pairs)
        for (int i = 0; i < a->n_slots; i++) {
            free(a->pairs[i].bt);
            free(a->pairs[i].at);
        }
    free(a->pairs);
    if (a->file) gguf_close(a->file);
    free(a->path);
    free(a);
}

const char *ll_adapter_path(const ll_adapter *a) { return a->path; }
float ll_adapter_alpha(const ll_adapter *a) { return a->alpha; }
int ll_adapter_n_weights(const ll_adapter *a) { return a->n_pairs; }
int ll_adapter_rank(const ll_adapter *a) { return a->max_rank; }

// ---- attaching to a context -----------------------------------------------------------------

int ll_context_set_adapter(ll_context *c, ll_adapter *a, float scale, char *err, size_t errlen) {
    if (!a || a->model != c->model) {
        ll_set_err(err, errlen, "the LoRA adapter was loaded for another model");
        return -1;
    }
    if (!isfinite(scale)) {
        ll_set_err(err, errlen, "LoRA scale must be a finite number");
        return -1;
    }
    for (int i = 0; i < c->n_loras; i++) {
        if (c->loras[i].adapter == a) {
            c->loras[i].scale = scale;
            return 0;
        }
    }
    if (c->n_loras == c->cap_loras) {
        int cap = c->cap_loras ? 2 * c->cap_loras : 4;
        ll_lora_use *nl = realloc(c->loras, (size_t)cap * sizeof *nl);
        if (!nl) {
            ll_set_err(err, errlen, "out of memory");
            return -1;
        }
        c->loras = nl;
        c->cap_loras = cap;
    }
    c->loras[c->n_loras++] = (ll_lora_use){a, scale};
    return 0;
}

bool ll_context_remove_adapter(ll_context *c, const ll_adapter *a) {
    for (int i = 0; i < c->n_loras; i++) {
        if (c->loras[i].adapter == a) {
            memmove(c->loras + i, c->loras + i + 1, (size_t)(c->n_loras - i - 1) * sizeof *c->loras);
            c->n_loras--;
            return true;
        }
    }
    return false;
}

void ll_context_clear_adapters(ll_context *c) { c->n_loras = 0; }

int ll_context_n_adapters(const ll_context *c) { return c->n_loras; }

ll_adapter *ll_context_adapter(const ll_context *c, int i, float *scale) {
    if (i < 0 || i >= c->n_loras) return NULL;
    if (scale) *scale = c->loras[i].scale;
    return c->loras[i].adapter;
}
