// Which type each tensor gets in a quantized file: the file types and llama.cpp's mixture
// rules (the _S/_M/_L variants keep the tensors that hurt most when squeezed -- the output
// head, some attn_v and ffn_down layers -- at more bits), with its fallbacks for rows that
// are not a multiple of the block size. Written from the rules' description, the mixtures of
// experts' ones included (ffn_down's layer read from the name; with 8 experts, 8-bit attn_k /
// attn_v and Q5_K attn_output); the 70B-specific rules are not applied (no model type here).
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quantize/quantize.h"
#include "util.h"

static const ll_ftype_info FTYPES[] = {
    {"F32", LL_FTYPE_F32, GL_TYPE_F32},         {"F16", LL_FTYPE_F16, GL_TYPE_F16},
    {"BF16", LL_FTYPE_BF16, GL_TYPE_BF16},      {"Q4_0", LL_FTYPE_Q4_0, GL_TYPE_Q4_0},
    {"Q4_1", LL_FTYPE_Q4_1, GL_TYPE_Q4_1},      {"Q5_0", LL_FTYPE_Q5_0, GL_TYPE_Q5_0},
    {"Q5_1", LL_FTYPE_Q5_1, GL_TYPE_Q5_1},      {"Q8_0", LL_FTYPE_Q8_0, GL_TYPE_Q8_0},
    {"Q2_K", LL_FTYPE_Q2_K, GL_TYPE_Q2_K},      {"Q3_K_S", LL_FTYPE_Q3_K_S, GL_TYPE_Q3_K},
    {"Q3_K_M", LL_FTYPE_Q3_K_M, GL_TYPE_Q3_K},  {"Q3_K_L", LL_FTYPE_Q3_K_L, GL_TYPE_Q3_K},
    {"Q4_K_S", LL_FTYPE_Q4_K_S, GL_TYPE_Q4_K},  {"Q4_K_M", LL_FTYPE_Q4_K_M, GL_TYPE_Q4_K},
    {"Q5_K_S", LL_FTYPE_Q5_K_S, GL_TYPE_Q5_K},  {"Q5_K_M", LL_FTYPE_Q5_K_M, GL_TYPE_Q5_K},
    {"Q6_K", LL_FTYPE_Q6_K, GL_TYPE_Q6_K},      {"IQ4_NL", LL_FTYPE_IQ4_NL, GL_TYPE_IQ4_NL},
    {"IQ4_XS", LL_FTYPE_IQ4_XS, GL_TYPE_IQ4_XS},
    // the low-bit mixtures (IQ2_S is mostly IQ2_XS and IQ2_M mostly IQ2_S, as llama.cpp names them)
    {"IQ2_XXS", LL_FTYPE_IQ2_XXS, GL_TYPE_IQ2_XXS}, {"IQ2_XS", LL_FTYPE_IQ2_XS, GL_TYPE_IQ2_XS},
    {"IQ2_S", LL_FTYPE_IQ2_S, GL_TYPE_IQ2_XS},      {"IQ2_M", LL_FTYPE_IQ2_M, GL_TYPE_IQ2_S},
    {"IQ3_XXS", LL_FTYPE_IQ3_XXS, GL_TYPE_IQ3_XXS}, {"IQ3_XS", LL_FTYPE_IQ3_XS, GL_TYPE_IQ3_S},
    {"IQ3_S", LL_FTYPE_IQ3_S, GL_TYPE_IQ3_S},       {"IQ3_M", LL_FTYPE_IQ3_M, GL_TYPE_IQ3_S},
    {"IQ1_S", LL_FTYPE_IQ1_S, GL_TYPE_IQ1_S},       {"IQ1_M", LL_FTYPE_IQ1_M, GL_TYPE_IQ1_M},
    {"TQ1_0", LL_FTYPE_TQ1_0, GL_TYPE_TQ1_0},       {"TQ2_0", LL_FTYPE_TQ2_0, GL_TYPE_TQ2_0},
    {"MXFP4", LL_FTYPE_MXFP4, GL_TYPE_MXFP4},
};
enum { N_FTYPES = sizeof FTYPES / sizeof FTYPES[0] };

static bool iequal(const char *a, const char *b) {
    while (*a && *b && toupper((unsigned char)*a) == toupper((unsigned char)*b)) a++, b++;
    return !*a && !*b;
}

const ll_ftype_info *ll_ftype_find(const char *name) {
    if (!name) return NULL;
    static const struct { const char *alias, *name; } ALIASES[] = {
        {"Q3_K", "Q3_K_M"}, {"Q4_K", "Q4_K_M"}, {"Q5_K", "Q5_K_M"},
    };
    for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++)
        if (iequal(name, ALIASES[i].alias)) name = ALIASES[i].name;
    for (int i = 0; i < N_FTYPES; i++)
        if (iequal(name, FTYPES[i].name)) return &FTYPES[i];
    return NULL;
}

const char *const *ll_ftype_names(void) {
    static const char *names[N_FTYPES + 1];
    if (!names[0])
        for (int i = 0; i < N_FTYPES; i++) names[i] = FTYPES[i].name;
    return names;
}

const char *const *ll_quantize_type_names(void) { return ll_ftype_names(); }

int ll_ftype_of_base(enum gl_type type) {
    switch (type) { // the mixture llama.cpp names after the type
    case GL_TYPE_Q3_K: return LL_FTYPE_Q3_K_M;
    case GL_TYPE_Q4_K: return LL_FTYPE_Q4_K_M;
    case GL_TYPE_Q5_K: return LL_FTYPE_Q5_K_M;
    default: break;
    }
    for (int i = 0; i < N_FTYPES; i++)
        if (FTYPES[i].base == type) return FTYPES[i].ftype;
    return -1;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !memcmp(s + n - k, suffix, k);
}

bool ll_quant_wanted(const char *name, uint32_t n_dims, bool leave_output) {
    if (n_dims < 2 || !ends_with(name, "weight")) return false;
    if (leave_output && !strcmp(name, "output.weight")) return false;
    // Small or special matrices that other architectures keep in full precision.
    static const char *const KEEP[] = {
        "_norm.weight", "ffn_gate_inp.weight", "ssm_conv1d.weight", "time_mix_first.weight",
        "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight",
    };
    for (size_t i = 0; i < sizeof KEEP / sizeof KEEP[0]; i++)
        if (strstr(name, KEEP[i])) return false;
    return strcmp(name, "position_embd.weight") != 0 && strcmp(name, "token_types.weight") != 0;
}

// The layer number of "blk.N....", or -1.
static int layer_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    long l = strtol(name + 4, &end, 10);
    return end != name + 4 && *end == '.' && l >= 0 && l < 1000000 ? (int)l : -1;
}

int ll_quant_name_cmp(const char *a, const char *b) {
    int la = layer_of(a), lb = layer_of(b);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(a, b);
}

// The first and last eighth of the layers and every third one between get more bits.
static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static int blck(int type) { return gl_get_type_traits((enum gl_type)type)->blck_size; }

bool ll_type_needs_imatrix(enum gl_type type, const char *name) {
    switch (type) {
    case GL_TYPE_IQ2_XXS: case GL_TYPE_IQ2_XS: case GL_TYPE_IQ2_S: case GL_TYPE_IQ1_S: return true;
    case GL_TYPE_IQ1_M: return strcmp(name, "token_embd.weight") != 0 && strcmp(name, "output.weight") != 0;
    default: return false;
    }
}

// The 1- and 2-bit mixtures, whose tensors outside attn_v / ffn_down / attn_output all get
// the base type.
static bool very_low_bit(int ft) {
    return ft == LL_FTYPE_IQ2_XXS || ft == LL_FTYPE_IQ2_XS || ft == LL_FTYPE_IQ1_S || ft == LL_FTYPE_IQ2_S ||
           ft == LL_FTYPE_IQ2_M || ft == LL_FTYPE_IQ1_M;
}

// Their rules: attn_v and the first eighth of ffn_down with more bits, attn_output too for
// IQ1 (IQ2_XXS) and IQ2_S/IQ2_M (IQ3_S).
static int very_low_bit_rule(ll_mix_state *s, const char *name, int t) {
    const int ft = s->ft->ftype;
    const bool iq2_sm = ft == LL_FTYPE_IQ2_S || ft == LL_FTYPE_IQ2_M;
    if (strstr(name, "attn_v.weight")) {
        s->i_attn_v++;
        return s->n_gqa >= 4 ? GL_TYPE_Q4_K : iq2_sm ? GL_TYPE_IQ3_S : GL_TYPE_Q2_K;
    }
    if (strstr(name, "ffn_down")) {
        if (s->i_ffn_down++ < s->n_layer / 8) t = iq2_sm ? GL_TYPE_IQ3_S : GL_TYPE_Q2_K;
        return t;
    }
    if (strstr(name, "attn_output.weight")) {
        if (ft == LL_FTYPE_IQ1_S || ft == LL_FTYPE_IQ1_M) t = GL_TYPE_IQ2_XXS;
        else if (iq2_sm) t = GL_TYPE_IQ3_S;
    }
    return t;
}

// The mixture's choice before the block-size check.
static int rule_type(ll_mix_state *s, const char *name, int64_t ne0) {
    const int ft = s->ft->ftype;
    int t = s->ft->base;
    const bool head = !strcmp(name, "output.weight") || (!s->has_output && !strcmp(name, "token_embd.weight"));
    if (head) {
        // A tied embedding is the output head too: it gets the head's type.
        if (s->output_type >= 0) return s->output_type;
        if (s->falcon || ne0 % blck(t) != 0) return GL_TYPE_Q8_0;
        if (very_low_bit(ft) || ft == LL_FTYPE_IQ3_XXS) return GL_TYPE_Q5_K;
        return t != GL_TYPE_Q8_0 ? GL_TYPE_Q6_K : t;
    }
    if (!strcmp(name, "token_embd.weight")) {
        if (s->embd_type >= 0) return s->embd_type;
        // the low-bit mixtures' embedding fallbacks
        if (ft == LL_FTYPE_IQ2_XXS || ft == LL_FTYPE_IQ2_XS || ft == LL_FTYPE_IQ1_S || ft == LL_FTYPE_IQ1_M) return GL_TYPE_Q2_K;
        if (ft == LL_FTYPE_IQ2_S || ft == LL_FTYPE_IQ2_M || ft == LL_FTYPE_IQ3_XXS) return GL_TYPE_IQ3_S;
        if (ft == LL_FTYPE_TQ1_0 || ft == LL_FTYPE_TQ2_0) return GL_TYPE_Q4_K;
        return t;
    }
    if (very_low_bit(ft)) return very_low_bit_rule(s, name, t);

    if (strstr(name, "attn_v.weight")) {
        const int i = s->i_attn_v++;
        if (ft == LL_FTYPE_Q2_K) t = s->n_gqa >= 4 ? GL_TYPE_Q4_K : GL_TYPE_Q3_K;
        else if (ft == LL_FTYPE_IQ3_XXS) t = s->n_gqa >= 4 ? GL_TYPE_Q4_K : !s->has_imatrix ? GL_TYPE_IQ3_S : GL_TYPE_IQ3_XXS;
        else if ((ft == LL_FTYPE_IQ3_XS || ft == LL_FTYPE_IQ3_S) && s->n_gqa >= 4) t = GL_TYPE_Q4_K;
        else if (ft == LL_FTYPE_IQ3_M) t = GL_TYPE_Q4_K;
        else if (ft == LL_FTYPE_Q3_K_M) t = i < 2 ? GL_TYPE_Q5_K : GL_TYPE_Q4_K;
        else if (ft == LL_FTYPE_Q3_K_L) t = GL_TYPE_Q5_K;
        else if ((ft == LL_FTYPE_IQ4_NL || ft == LL_FTYPE_IQ4_XS) && s->n_gqa >= 4) t = GL_TYPE_Q5_K;
        else if ((ft == LL_FTYPE_Q4_K_M || ft == LL_FTYPE_Q5_K_M) && more_bits(i, s->n_attn_v)) t = GL_TYPE_Q6_K;
        else if (ft == LL_FTYPE_Q4_K_S && i < 4) t = GL_TYPE_Q5_K;
        // Eight experts share each layer's attention: its K and V get 8 bits (as llama.cpp).
        return s->n_expert == 8 ? GL_TYPE_Q8_0 : t;
    }
    if (strstr(name, "attn_k.weight") && s->n_expert == 8) return GL_TYPE_Q8_0;
    if (strstr(name, "attn_k.weight") || strstr(name, "attn_q.weight")) {
        if (ft == LL_FTYPE_IQ3_XS) t = GL_TYPE_IQ3_XXS;
        else if (ft == LL_FTYPE_IQ3_XXS) t = GL_TYPE_IQ2_S;
        return t;
    }
    if (strstr(name, "ffn_down")) {
        // With experts (ffn_down_exps, and ffn_down_shexp beside it) the layer is the name's.
        const int counted = s->i_ffn_down++, i = s->n_expert > 1 ? layer_of(name) : counted, n = s->n_layer;
        if (ft == LL_FTYPE_Q2_K) t = GL_TYPE_Q3_K;
        else if (ft == LL_FTYPE_IQ3_XXS && !s->has_imatrix) t = i < n / 8 ? GL_TYPE_Q4_K : GL_TYPE_Q3_K;
        else if (ft == LL_FTYPE_Q3_K_M)
            t = i < n / 16 ? GL_TYPE_Q5_K : !s->falcon || more_bits(i, n) ? GL_TYPE_Q4_K : GL_TYPE_Q3_K;
        else if (ft == LL_FTYPE_IQ3_M && i < n / 8) t = GL_TYPE_Q4_K;
        else if (ft == LL_FTYPE_Q3_K_L) t = s->falcon ? GL_TYPE_Q4_K : GL_TYPE_Q5_K;
        else if (ft == LL_FTYPE_Q4_K_M) {
            if (s->falcon) t = i < n / 16 ? GL_TYPE_Q6_K : more_bits(i, n) ? GL_TYPE_Q5_K : GL_TYPE_Q4_K;
            else if (more_bits(i, n)) t = GL_TYPE_Q6_K;
        } else if (i < n / 8 && (ft == LL_FTYPE_IQ4_NL || ft == LL_FTYPE_IQ4_XS) && !s->has_imatrix)
            t = GL_TYPE_Q5_K;
        else if (ft == LL_FTYPE_Q5_K_M && more_bits(i, n)) t = GL_TYPE_Q6_K;
        else if (ft == LL_FTYPE_Q4_K_S && !s->falcon && i < n / 8) t = GL_TYPE_Q5_K;
        else if ((ft == LL_FTYPE_Q4_0 || ft == LL_FTYPE_Q5_0) && s->has_imatrix && i < n / 8)
            t = ft == LL_FTYPE_Q4_0 ? GL_TYPE_Q4_1 : GL_TYPE_Q5_1; // tames the first ffn_down layers
        return t;
    }
    if (strstr(name, "attn_output.weight")) {
        if (!s->falcon && s->n_expert == 8) {
            if (ft == LL_FTYPE_Q2_K || ft == LL_FTYPE_Q3_K_S || ft == LL_FTYPE_Q3_K_M || ft == LL_FTYPE_IQ4_NL ||
                ft == LL_FTYPE_Q4_K_S || ft == LL_FTYPE_Q4_K_M || ft == LL_FTYPE_IQ4_XS)
                t = GL_TYPE_Q5_K;
        } else if (!s->falcon) {
            if (ft == LL_FTYPE_Q2_K) t = GL_TYPE_Q3_K;
            else if (ft == LL_FTYPE_IQ3_XXS) t = GL_TYPE_IQ3_S;
            else if (ft == LL_FTYPE_Q3_K_M) t = GL_TYPE_Q4_K;
            else if (ft == LL_FTYPE_Q3_K_L) t = GL_TYPE_Q5_K;
            else if (ft == LL_FTYPE_IQ3_M) t = GL_TYPE_Q4_K;
        } else if (ft == LL_FTYPE_Q3_K_L) t = GL_TYPE_Q4_K;
        return t;
    }
    if (strstr(name, "attn_qkv.weight")) {
        if (ft == LL_FTYPE_Q3_K_M || ft == LL_FTYPE_Q3_K_L || ft == LL_FTYPE_IQ3_M) t = GL_TYPE_Q4_K;
        else if (ft == LL_FTYPE_Q4_K_M) t = GL_TYPE_Q5_K;
        else if (ft == LL_FTYPE_Q5_K_M) t = GL_TYPE_Q6_K;
        return t;
    }
    if (strstr(name, "ffn_gate") || strstr(name, "ffn_up")) { // IQ3_XS: the middle layers at IQ3_XXS
        const int counted = strstr(name, "ffn_gate") ? s->i_ffn_gate++ : s->i_ffn_up++;
        const int i = s->n_expert > 1 ? layer_of(name) : counted, n = s->n_layer;
        if (ft == LL_FTYPE_IQ3_XS && i >= n / 8 && i < 7 * n / 8) t = GL_TYPE_IQ3_XXS;
        return t;
    }
    return t;
}

int ll_mix_type(ll_mix_state *s, const char *name, int64_t ne0, bool *fallback, char *err, size_t errlen) {
    *fallback = false;
    int t = s->ft->base;
    const bool quantized = gl_get_type_traits(s->ft->base)->is_quantized;
    if (!s->pure && quantized) {
        t = rule_type(s, name, ne0);
        if (ne0 % blck(t) != 0) {
            // llama.cpp's substitutes for rows that do not split into whole blocks
            switch (t) {
            case GL_TYPE_TQ1_0: case GL_TYPE_TQ2_0: t = GL_TYPE_Q4_0; break;
            case GL_TYPE_IQ2_XXS: case GL_TYPE_IQ2_XS: case GL_TYPE_IQ2_S: case GL_TYPE_IQ3_XXS:
            case GL_TYPE_IQ3_S: case GL_TYPE_IQ1_S: case GL_TYPE_IQ1_M:
            case GL_TYPE_Q2_K: case GL_TYPE_Q3_K: case GL_TYPE_IQ4_XS: t = GL_TYPE_IQ4_NL; break;
            case GL_TYPE_Q4_K: t = GL_TYPE_Q5_0; break;
            case GL_TYPE_Q5_K: t = GL_TYPE_Q5_1; break;
            case GL_TYPE_Q6_K: t = GL_TYPE_Q8_0; break;
            default: t = GL_TYPE_F16; break;
            }
            if (ne0 % blck(t) != 0) t = GL_TYPE_F16;
            *fallback = true;
            s->n_fallback++;
        }
    }
    // Explicit choices win, even with --pure.
    if (s->embd_type >= 0 && !strcmp(name, "token_embd.weight")) t = s->embd_type;
    if (s->output_type >= 0 && !strcmp(name, "output.weight")) t = s->output_type;
    if (ne0 % blck(t) != 0) {
        if (t == s->embd_type || t == s->output_type) {
            ll_set_err(err, errlen, "tensor '%s' has rows of %lld, not a multiple of %s's block of %d",
                       name, (long long)ne0, gl_type_name((enum gl_type)t), blck(t));
            return -1;
        }
        // --pure with odd rows: llama.cpp would fail here; half precision always fits.
        t = GL_TYPE_F16;
        *fallback = true;
        s->n_fallback++;
    }
    return t;
}
