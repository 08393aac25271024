// Chat templates: the common families, recognised by the text of tokenizer.chat_template and
// rendered by hand (no Jinja interpreter). Each renderer reproduces what its family's published
// template produces for plain {role, content} messages (no tools); where a published template
// refuses a conversation (e.g. Gemma and a system message) we do what llama.cpp does instead.
#include <stdlib.h>
#include <string.h>

#include "llamalite.h"

// ---- output with content spans --------------------------------------------------------------
typedef struct {
    char *s;
    size_t n, cap;
    ll_chat_span *sp;
    size_t n_sp, cap_sp;
    bool oom;
} out_buf;

static void put(out_buf *o, const char *s, size_t n) {
    if (o->oom || !n) return;
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        while (cap < o->n + n + 1) cap *= 2;
        char *ns = realloc(o->s, cap);
        if (!ns) {
            o->oom = true;
            return;
        }
        o->s = ns;
        o->cap = cap;
    }
    memcpy(o->s + o->n, s, n);
    o->n += n;
    o->s[o->n] = 0;
}

static void lit(out_buf *o, const char *s) { put(o, s, strlen(s)); }

// Message text: recorded as a span so callers can keep it away from special-token parsing.
static void content_n(out_buf *o, const char *s, size_t n) {
    if (o->oom || !n) return;
    size_t at = o->n;
    put(o, s, n);
    if (o->oom) return;
    if (o->n_sp && o->sp[o->n_sp - 1].off + o->sp[o->n_sp - 1].len == at) { // adjacent: merge
        o->sp[o->n_sp - 1].len += n;
        return;
    }
    if (o->n_sp == o->cap_sp) {
        size_t cap = o->cap_sp ? o->cap_sp * 2 : 16;
        ll_chat_span *ns = realloc(o->sp, sizeof *ns * cap);
        if (!ns) {
            o->oom = true;
            return;
        }
        o->sp = ns;
        o->cap_sp = cap;
    }
    o->sp[o->n_sp++] = (ll_chat_span){at, n};
}

static void content(out_buf *o, const char *s) { content_n(o, s, strlen(s)); }

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Jinja's |trim and Python's str.strip().
static void content_trim(out_buf *o, const char *s) {
    size_t n = strlen(s);
    while (n && is_ws(*s)) s++, n--;
    while (n && is_ws(s[n - 1])) n--;
    content_n(o, s, n);
}

static bool role_is(const ll_chat_msg *m, const char *r) { return m->role && !strcmp(m->role, r); }
static const char *text(const ll_chat_msg *m) { return m->content ? m->content : ""; }

typedef struct {
    const ll_chat_msg *m;
    size_t n;
    bool add_ass;
    const char *bos, *eos;
} chat;

// The first message when it is a system message, else NULL.
static const char *leading_system(const chat *c) {
    return c->n && role_is(&c->m[0], "system") ? text(&c->m[0]) : NULL;
}

// ---- the families ---------------------------------------------------------------------------

static void r_chatml(const chat *c, out_buf *o, const char *default_system) {
    if (default_system && !leading_system(c)) {
        lit(o, "<|im_start|>system\n");
        lit(o, default_system);
        lit(o, "<|im_end|>\n");
    }
    for (size_t i = 0; i < c->n; i++) {
        lit(o, "<|im_start|>");
        lit(o, c->m[i].role ? c->m[i].role : "user");
        lit(o, "\n");
        content(o, text(&c->m[i]));
        lit(o, "<|im_end|>\n");
    }
    if (c->add_ass) lit(o, "<|im_start|>assistant\n");
}

static void r_chatml_plain(const chat *c, out_buf *o) { r_chatml(c, o, NULL); }

static void r_qwen2(const chat *c, out_buf *o) {
    r_chatml(c, o, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
}

// Llama-2-chat: the system prompt goes inside the first [INST] between <<SYS>> markers; every
// user turn starts with BOS; the whole first content (system included) is stripped.
static void r_llama2(const chat *c, out_buf *o) {
    const char *sys = leading_system(c);
    size_t first = sys ? 1 : 0;
    for (size_t i = first; i < c->n; i++) {
        const ll_chat_msg *m = &c->m[i];
        if (role_is(m, "user")) {
            lit(o, c->bos);
            lit(o, "[INST] ");
            if (i == first && sys) {
                // strip() of "<<SYS>>\n" + sys + "\n<</SYS>>\n\n" + content: only the end of
                // the content can lose whitespace.
                lit(o, "<<SYS>>\n");
                content(o, sys);
                lit(o, "\n<</SYS>>\n\n");
                const char *u = text(m);
                size_t n = strlen(u);
                while (n && is_ws(u[n - 1])) n--;
                content_n(o, u, n);
            } else {
                content_trim(o, text(m));
            }
            lit(o, " [/INST]");
        } else if (role_is(m, "assistant")) {
            lit(o, " ");
            content_trim(o, text(m));
            lit(o, " ");
            lit(o, c->eos);
        }
    }
}

static void llama3_turn(out_buf *o, const char *role, const char *s) {
    lit(o, "<|start_header_id|>");
    lit(o, role);
    lit(o, "<|end_header_id|>\n\n");
    content_trim(o, s);
    lit(o, "<|eot_id|>");
}

static void r_llama3(const chat *c, out_buf *o) {
    lit(o, c->bos);
    for (size_t i = 0; i < c->n; i++) llama3_turn(o, c->m[i].role ? c->m[i].role : "user", text(&c->m[i]));
    if (c->add_ass) lit(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

// Llama 3.1/3.2/3.3: always a system turn, opening with the knowledge cut-off and a date.
static void r_llama31(const chat *c, out_buf *o) {
    const char *sys = leading_system(c);
    lit(o, c->bos);
    lit(o, "<|start_header_id|>system<|end_header_id|>\n\n");
    lit(o, "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n");
    content_trim(o, sys ? sys : "");
    lit(o, "<|eot_id|>");
    for (size_t i = sys ? 1 : 0; i < c->n; i++)
        llama3_turn(o, c->m[i].role ? c->m[i].role : "user", text(&c->m[i]));
    if (c->add_ass) lit(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

// Mistral v3 ("[INST] x[/INST]") and v3-tekken ("[INST]x[/INST]", Nemo): the system prompt is
// put in front of the LAST user message, as the published templates do.
static void r_mistral_v3(const chat *c, out_buf *o, bool tekken) {
    const char *sys = leading_system(c);
    size_t first = sys ? 1 : 0;
    lit(o, c->bos);
    for (size_t i = first; i < c->n; i++) {
        const ll_chat_msg *m = &c->m[i];
        if (role_is(m, "user")) {
            lit(o, tekken ? "[INST]" : "[INST] ");
            if (sys && i == c->n - 1) {
                content(o, sys);
                lit(o, "\n\n");
            }
            content(o, text(m));
            lit(o, "[/INST]");
        } else if (role_is(m, "assistant")) {
            if (tekken) {
                content(o, text(m));
            } else {
                lit(o, " ");
                content_trim(o, text(m));
            }
            lit(o, c->eos);
        }
    }
}

static void r_mistral_tekken(const chat *c, out_buf *o) { r_mistral_v3(c, o, true); }
static void r_mistral_v3s(const chat *c, out_buf *o) { r_mistral_v3(c, o, false); }

// Mistral v1 (7B v0.2/v0.3 with a system prompt): " [INST] " with the system prompt in the
// first user message.
static void r_mistral_v1(const chat *c, out_buf *o) {
    const char *sys = leading_system(c);
    size_t first = sys ? 1 : 0;
    lit(o, c->bos);
    for (size_t i = first; i < c->n; i++) {
        const ll_chat_msg *m = &c->m[i];
        if (role_is(m, "user")) {
            lit(o, " [INST] ");
            if (sys && i == first) {
                content(o, sys);
                lit(o, "\n\n");
            }
            content(o, text(m));
            lit(o, " [/INST]");
        } else if (role_is(m, "assistant")) {
            lit(o, " ");
            content(o, text(m));
            lit(o, c->eos);
        }
    }
}

// The original Mistral-7B-Instruct template ("[INST] x [/INST]"), which has no system role:
// like llama.cpp, a system prompt is put in front of the first user message.
static void r_mistral_v0(const chat *c, out_buf *o) {
    const char *sys = leading_system(c);
    size_t first = sys ? 1 : 0;
    lit(o, c->bos);
    for (size_t i = first; i < c->n; i++) {
        const ll_chat_msg *m = &c->m[i];
        if (role_is(m, "user")) {
            lit(o, "[INST] ");
            if (sys && i == first) {
                content(o, sys);
                lit(o, "\n\n");
            }
            content(o, text(m));
            lit(o, " [/INST]");
        } else if (role_is(m, "assistant")) {
            content(o, text(m));
            lit(o, c->eos);
        }
    }
}

static void r_mistral_v7(const chat *c, out_buf *o) {
    lit(o, c->bos);
    for (size_t i = 0; i < c->n; i++) {
        const ll_chat_msg *m = &c->m[i];
        if (role_is(m, "system")) {
            lit(o, "[SYSTEM_PROMPT] ");
            content(o, text(m));
            lit(o, "[/SYSTEM_PROMPT]");
        } else if (role_is(m, "user")) {
            lit(o, "[INST] ");
            content(o, text(m));
            lit(o, "[/INST]");
        } else if (role_is(m, "assistant")) {
            lit(o, " ");
            content(o, text(m));
            lit(o, c->eos);
        }
    }
}

static void r_zephyr(const chat *c, out_buf *o) {
    for (size_t i = 0; i < c->n; i++) {
        const ll_chat_msg *m = &c->m[i];
        if (!role_is(m, "user") && !role_is(m, "system") && !role_is(m, "assistant")) continue;
        lit(o, "<|");
        lit(o, m->role);
        lit(o, "|>\n");
        content(o, text(m));
        lit(o, c->eos);
        lit(o, "\n");
    }
    if (c->add_ass && c->n) lit(o, "<|assistant|>\n");
}

// Gemma has no system role: like llama.cpp, the system prompt opens the first user turn.
static void r_gemma(const chat *c, out_buf *o) {
    const char *sys = leading_system(c);
    size_t first = sys ? 1 : 0;
    lit(o, c->bos);
    for (size_t i = first; i < c->n; i++) {
        const ll_chat_msg *m = &c->m[i];
        lit(o, "<start_of_turn>");
        lit(o, role_is(m, "assistant") ? "model" : m->role ? m->role : "user");
        lit(o, "\n");
        if (sys && i == first) {
            // trim(sys + "\n\n" + content)
            const char *s = sys;
            while (*s && is_ws(*s)) s++;
            const char *u = text(m);
            size_t un = strlen(u);
            while (un && is_ws(u[un - 1])) un--;
            if (*s) {
                content(o, s);
                lit(o, "\n\n");
                content_n(o, u, un);
            } else {
                content_trim(o, u);
            }
        } else {
            content_trim(o, text(m));
        }
        lit(o, "<end_of_turn>\n");
    }
    if (c->add_ass) lit(o, "<start_of_turn>model\n");
}

static void r_phi3(const chat *c, out_buf *o) {
    for (size_t i = 0; i < c->n; i++) {
        const ll_chat_msg *m = &c->m[i];
        if (role_is(m, "system") && *text(m)) lit(o, "<|system|>\n");
        else if (role_is(m, "user")) lit(o, "<|user|>\n");
        else if (role_is(m, "assistant")) lit(o, "<|assistant|>\n");
        else continue;
        content(o, text(m));
        lit(o, "<|end|>\n");
    }
    lit(o, c->add_ass ? "<|assistant|>\n" : c->eos);
}

static void r_phi4(const chat *c, out_buf *o) {
    for (size_t i = 0; i < c->n; i++) {
        const ll_chat_msg *m = &c->m[i];
        if (role_is(m, "system")) {
            lit(o, "<|im_start|>system<|im_sep|>");
            content(o, text(m));
            lit(o, "<|im_end|>");
        } else if (role_is(m, "user")) {
            lit(o, "<|im_start|>user<|im_sep|>");
            content(o, text(m));
            lit(o, "<|im_end|><|im_start|>assistant<|im_sep|>");
        } else if (role_is(m, "assistant")) {
            content(o, text(m));
            lit(o, "<|im_end|>");
        }
    }
}

// DeepSeek LLM / V2: "User: ...\n\nAssistant: ...<eos>".
static void r_deepseek(const chat *c, out_buf *o) {
    lit(o, c->bos);
    for (size_t i = 0; i < c->n; i++) {
        const ll_chat_msg *m = &c->m[i];
        if (role_is(m, "user")) {
            lit(o, "User: ");
            content(o, text(m));
            lit(o, "\n\n");
        } else if (role_is(m, "assistant")) {
            lit(o, "Assistant: ");
            content(o, text(m));
            lit(o, c->eos);
        } else if (role_is(m, "system")) {
            content(o, text(m));
            lit(o, "\n\n");
        }
    }
    if (c->add_ass) lit(o, "Assistant:");
}

// DeepSeek R1 (and V3): the last system message right after BOS; an assistant message keeps
// only what follows its last </think>.
static void r_deepseek_r1(const chat *c, out_buf *o) {
    const char *sys = "";
    for (size_t i = 0; i < c->n; i++)
        if (role_is(&c->m[i], "system")) sys = text(&c->m[i]);
    lit(o, c->bos);
    content(o, sys);
    for (size_t i = 0; i < c->n; i++) {
        const ll_chat_msg *m = &c->m[i];
        if (role_is(m, "user")) {
            lit(o, "<\xef\xbd\x9cUser\xef\xbd\x9c>");
            content(o, text(m));
        } else if (role_is(m, "assistant")) {
            const char *s = text(m), *t;
            while ((t = strstr(s, "</think>"))) s = t + 8;
            lit(o, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>");
            content(o, s);
            lit(o, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
        }
    }
    if (c->add_ass) lit(o, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\n");
}

static void r_command_r(const chat *c, out_buf *o) {
    const char *sys = leading_system(c);
    lit(o, c->bos);
    if (sys) {
        lit(o, "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>");
        content(o, sys);
        lit(o, "<|END_OF_TURN_TOKEN|>");
    }
    for (size_t i = sys ? 1 : 0; i < c->n; i++) {
        const ll_chat_msg *m = &c->m[i];
        if (role_is(m, "user")) lit(o, "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>");
        else if (role_is(m, "assistant")) lit(o, "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
        else continue;
        content_trim(o, text(m));
        lit(o, "<|END_OF_TURN_TOKEN|>");
    }
    if (c->add_ass) lit(o, "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
}

// ---- table and detection --------------------------------------------------------------------
typedef struct {
    const char *name;
    void (*render)(const chat *, out_buf *);
    const char *bos, *eos; // what bos_token / eos_token usually are for this family
} family;

static const family families[] = {
    {"chatml", r_chatml_plain, "", "<|im_end|>"},
    {"qwen2", r_qwen2, "", "<|im_end|>"},
    {"llama2", r_llama2, "<s>", "</s>"},
    {"llama3", r_llama3, "<|begin_of_text|>", "<|eot_id|>"},
    {"llama3.1", r_llama31, "<|begin_of_text|>", "<|eot_id|>"},
    {"mistral", r_mistral_tekken, "<s>", "</s>"},
    {"mistral-v3", r_mistral_v3s, "<s>", "</s>"},
    {"mistral-v1", r_mistral_v1, "<s>", "</s>"},
    {"mistral-v0", r_mistral_v0, "<s>", "</s>"},
    {"mistral-v7", r_mistral_v7, "<s>", "</s>"},
    {"zephyr", r_zephyr, "<s>", "</s>"},
    {"gemma", r_gemma, "<bos>", "<eos>"},
    {"phi3", r_phi3, "<s>", "<|endoftext|>"},
    {"phi4", r_phi4, "", "<|im_end|>"},
    {"deepseek", r_deepseek, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
     "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"},
    {"deepseek-r1", r_deepseek_r1, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
     "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"},
    {"command-r", r_command_r, "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"},
};
#define N_FAMILIES (sizeof families / sizeof families[0])

static const char *const family_names[N_FAMILIES + 1] = {
    "chatml", "qwen2", "llama2", "llama3", "llama3.1", "mistral", "mistral-v3", "mistral-v1", "mistral-v0",
    "mistral-v7", "zephyr", "gemma", "phi3", "phi4", "deepseek", "deepseek-r1", "command-r", NULL,
};

const char *const *ll_chat_template_names(void) { return family_names; }

static const family *find_family(const char *name) {
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (!strcmp(families[i].name, name)) return &families[i];
    return NULL;
}

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

const char *ll_chat_detect(const char *t) {
    if (!t || !*t) return NULL;
    const family *f = find_family(t);
    if (f) return f->name;
    if (has(t, "<|im_sep|>")) return "phi4";
    if (has(t, "<|im_start|>"))
        return has(t, "You are Qwen, created by Alibaba Cloud.") ? "qwen2" : "chatml";
    if (has(t, "<|start_header_id|>")) return has(t, "Cutting Knowledge Date") ? "llama3.1" : "llama3";
    if (has(t, "<start_of_turn>")) return "gemma";
    if (has(t, "<|START_OF_TURN_TOKEN|>")) return "command-r";
    if (has(t, "<\xef\xbd\x9cUser\xef\xbd\x9c>")) return "deepseek-r1";
    if (has(t, "<|assistant|>") && has(t, "<|end|>")) return "phi3";
    if (has(t, "<|user|>")) return "zephyr";
    if (has(t, "[SYSTEM_PROMPT]")) return "mistral-v7";
    if (has(t, "[INST]")) {
        if (has(t, "<<SYS>>")) return "llama2";
        if (has(t, "' [INST] '") || has(t, "\" [INST] \"")) return "mistral-v1";
        if (has(t, "'[INST]'") || has(t, "\"[INST]\"")) return "mistral";
        if (has(t, "' [/INST]'") || has(t, "\" [/INST]\"")) return "mistral-v0";
        return "mistral-v3";
    }
    if (has(t, "'User: '") && has(t, "Assistant:")) return "deepseek";
    return NULL;
}

int ll_chat_render(const char *tmpl, const ll_chat_msg *msgs, size_t n, bool add_ass, const char *bos,
                   const char *eos, char **out, ll_chat_span **spans, size_t *n_spans) {
    *out = NULL;
    if (spans) *spans = NULL;
    if (n_spans) *n_spans = 0;
    const char *name = ll_chat_detect(tmpl);
    const family *f = name ? find_family(name) : NULL;
    if (!f) return -1;
    chat c = {msgs, n, add_ass, bos ? bos : f->bos, eos ? eos : f->eos};
    out_buf o = {0};
    put(&o, "", 0);
    f->render(&c, &o);
    if (!o.oom && !o.s) { // empty output still gets a string
        o.s = malloc(1);
        if (o.s) o.s[0] = 0;
        else o.oom = true;
    }
    if (o.oom) {
        free(o.s);
        free(o.sp);
        return -2;
    }
    *out = o.s;
    if (spans) *spans = o.sp;
    else free(o.sp);
    if (n_spans) *n_spans = o.n_sp;
    return 0;
}
