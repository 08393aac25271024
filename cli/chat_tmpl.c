// Which chat template a conversation goes through, and rendering with it (see chat_tmpl.h).
#include "chat_tmpl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

static bool mentions(const char *text, const char *what) { return text && strstr(text, what) != NULL; }

// Takes a Jinja text: parsed, or (on a parse error) a warning and the family it resembles.
// With no such family a file is an error; the model's own template leaves the chat without
// one (plain continuation), with a warning.
static bool take_jinja(chat_tmpl *t, const char *text, const char *origin, bool is_file, bool quiet) {
    char err[512];
    t->origin = strdup(origin);
    t->family = ll_chat_detect(text);
    t->reads_reasoning = mentions(text, "reasoning_content");
    t->harmony = mentions(text, "<|channel|>");
    t->has_enable_thinking = mentions(text, "enable_thinking");
    t->jinja = ll_chat_jinja_parse(text, err, sizeof err);
    if (t->jinja) return true;
    if (!t->family && is_file) {
        fprintf(stderr, "llamalite: %s: %s (and it resembles no built-in template; --chat-template NAME picks one)\n",
                origin, err);
        return false;
    }
    if (!quiet && t->family)
        fprintf(stderr, "llamalite: warning: %s: %s; using the built-in '%s' template instead\n", origin, err, t->family);
    else if (!quiet)
        fprintf(stderr, "llamalite: warning: %s: %s; no built-in template resembles it: plain continuation "
                "(--chat-template NAME picks one)\n", origin, err);
    return t->family != NULL;
}

bool chat_tmpl_is_jinja(const char *s) { return strstr(s, "{{") || strstr(s, "{%"); }

bool chat_tmpl_pick(chat_tmpl *t, const ll_model *m, const char *name, const char *file, bool quiet) {
    memset(t, 0, sizeof *t);
    if (name && chat_tmpl_is_jinja(name)) return take_jinja(t, name, "--chat-template", true, false);
    if (name) {
        t->family = ll_chat_detect(name);
        if (!t->family) {
            fprintf(stderr, "llamalite: unknown chat template '%s' (see 'llamalite template --list')\n", name);
            return false;
        }
        return true;
    }
    if (file) {
        size_t len;
        char *text = args_read_file(file, &len);
        if (!text) return false;
        if (strlen(text) != len) {
            fprintf(stderr, "llamalite: %s: a chat template cannot contain NUL bytes\n", file);
            free(text);
            return false;
        }
        bool ok = take_jinja(t, text, file, true, false);
        free(text);
        return ok;
    }
    const char *text = m ? ll_model_meta_str(m, "tokenizer.chat_template") : NULL;
    if (!text) return true;
    if (!take_jinja(t, text, "the model's chat template", false, quiet)) {
        chat_tmpl_free(t);   // no template: plain continuation
        memset(t, 0, sizeof *t);
    }
    return true;
}

bool chat_tmpl_active(const chat_tmpl *t) { return t->jinja || t->family; }

const char *chat_tmpl_name(const chat_tmpl *t, char *buf, size_t n) {
    if (t->jinja) snprintf(buf, n, "jinja (%s)", t->origin);
    else if (t->family) snprintf(buf, n, "%s (built-in)", t->family);
    else snprintf(buf, n, "none (plain continuation)");
    return buf;
}

void chat_tmpl_free(chat_tmpl *t) {
    ll_chat_jinja_free(t->jinja);
    free(t->origin);
    free(t->extra_json);
    memset(t, 0, sizeof *t);
}

// ---- the conversation as JSON ---------------------------------------------------------------
typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) { b->oom = true; return; }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void put_json_string(buf *b, const char *s) {
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; put(b, esc, 2); }
        else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); put(b, esc, 6); }
        else put(b, s, 1);
    }
    put(b, "\"", 1);
}

char *chat_tmpl_messages_json(const chat_msg *msgs, size_t n, const char *reasoning_key) {
    buf b = {0};
    put(&b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        put(&b, i ? ", {\"role\": " : "{\"role\": ", i ? 11 : 9);
        put_json_string(&b, msgs[i].role);
        put(&b, ", \"content\": ", 13);
        put_json_string(&b, msgs[i].content);
        if (msgs[i].reasoning) {
            put(&b, ", ", 2);
            put_json_string(&b, reasoning_key);
            put(&b, ": ", 2);
            put_json_string(&b, msgs[i].reasoning);
        }
        put(&b, "}", 1);
    }
    put(&b, "]", 1);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

// ---- rendering --------------------------------------------------------------------------------

// Where each message's content landed in the rendered text, searched in order: as written,
// trimmed (templates often trim), or the answer after a </think> (templates that drop the
// thinking of earlier turns).
static bool find_spans(const chat_msg *msgs, size_t n, const char *out, ll_chat_span **spans, size_t *n_spans) {
    *spans = malloc(sizeof **spans * (n ? n : 1));
    *n_spans = 0;
    if (!*spans) return false;
    size_t len = strlen(out), at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = msgs[i].content;
        const char *think_end = strstr(c, "</think>");
        if (think_end) c = think_end + 8;
        size_t cn = strlen(c);
        while (cn && strchr(" \t\n\r", *c)) c++, cn--;
        while (cn && strchr(" \t\n\r", c[cn - 1])) cn--;
        if (!cn) continue;
        const char *hit = memmem(out + at, len - at, c, cn);
        if (!hit) continue;
        (*spans)[(*n_spans)++] = (ll_chat_span){(size_t)(hit - out), cn};
        at = (size_t)(hit - out) + cn;
    }
    return true;
}

int chat_tmpl_render(chat_tmpl *t, const chat_msg *msgs, size_t n, bool add_gen, const char *bos,
                     const char *eos, char **out, ll_chat_span **spans, size_t *n_spans, char *err,
                     size_t errlen) {
    *out = NULL;
    if (spans) *spans = NULL;
    if (n_spans) *n_spans = 0;
    if (t->jinja) {
        char *conv = chat_tmpl_messages_json(msgs, n, t->harmony ? "thinking" : "reasoning_content");
        if (!conv) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        ll_chat_jinja_vars vars = {.add_generation_prompt = add_gen, .bos_token = bos, .eos_token = eos,
                                   .extra_json = t->extra_json};
        char jerr[512];
        int rc = ll_chat_jinja_render(t->jinja, conv, &vars, out, jerr, sizeof jerr);
        free(conv);
        if (rc == 0) {
            if (spans && !find_spans(msgs, n, *out, spans, n_spans)) {
                free(*out);
                *out = NULL;
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            return 0;
        }
        if (!t->family) {
            snprintf(err, errlen, "%s: %s", t->origin, jerr);
            return -1;
        }
        fprintf(stderr, "llamalite: warning: %s: %s; using the built-in '%s' template instead\n", t->origin, jerr,
                t->family);
        ll_chat_jinja_free(t->jinja);
        t->jinja = NULL;
    }
    if (!t->family) {
        snprintf(err, errlen, "no chat template");
        return -1;
    }
    ll_chat_msg *m = malloc(sizeof *m * (n ? n : 1));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) m[i] = (ll_chat_msg){msgs[i].role, msgs[i].content};
    int rc = ll_chat_render(t->family, m, n, add_gen, bos, eos, out, spans, n_spans);
    free(m);
    if (rc != 0) snprintf(err, errlen, rc == -1 ? "unknown chat template" : "out of memory");
    return rc == 0 ? 0 : -1;
}
