// The public face of the Jinja interpreter for chat templates: the variables transformers
// passes (messages, tools, add_generation_prompt, bos_token, eos_token, documents) made from a
// JSON conversation, and a render of the parsed template with them.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamalite.h"
#include "chat/jinja.h"

struct ll_chat_jinja {
    jinja_template *t;
};

ll_chat_jinja *ll_chat_jinja_parse(const char *tmpl, char *err, size_t errlen) {
    ll_chat_jinja *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->t = jinja_parse(tmpl, strlen(tmpl), NULL, err, errlen);
    if (!c->t) {
        free(c);
        return NULL;
    }
    return c;
}

void ll_chat_jinja_free(ll_chat_jinja *c) {
    if (!c) return;
    jinja_free(c->t);
    free(c);
}

// Parses JSON text into the arena; false with err set ("what: problem at byte N").
static bool parse_json(jinja_arena *a, const char *what, const char *text, jv *out, char *err, size_t errlen) {
    size_t pos;
    const char *e = jv_from_json(a, text, strlen(text), out, &pos);
    if (e) snprintf(err, errlen, "%s: %s at byte %zu", what, e, pos);
    return !e;
}

int ll_chat_jinja_render(const ll_chat_jinja *c, const char *conversation_json, const ll_chat_jinja_vars *v,
                         char **out, char *err, size_t errlen) {
    jinja_limits lim = jinja_default_limits();
    jinja_arena a = {.limit = lim.max_memory};
    jmp_buf fail;
    a.fail = &fail;
    if (setjmp(fail)) {   // out of arena memory while building the variables
        snprintf(err, errlen, "the conversation needs more than %zu MB of memory", lim.max_memory >> 20);
        jinja_arena_free(&a);
        return -1;
    }
    jv conv, extra = jv_none(), vars = jv_new_dict(&a, 8);
    if (!parse_json(&a, "conversation", conversation_json, &conv, err, errlen) ||
        (v->extra_json && !parse_json(&a, "template variables", v->extra_json, &extra, err, errlen))) {
        jinja_arena_free(&a);
        return -1;
    }
    jv messages = conv, tools = jv_none();
    if (conv.t == JV_DICT) {
        const jv *m = jv_dict_find(conv.d, "messages", 8), *t = jv_dict_find(conv.d, "tools", 5);
        messages = m ? *m : jv_undef(NULL);
        if (t) tools = *t;
    }
    if (messages.t != JV_LIST) {
        snprintf(err, errlen, "conversation: expected an array of messages");
        jinja_arena_free(&a);
        return -1;
    }
    jv_dict_set(&a, vars.d, jv_str(&a, "messages"), messages);
    jv_dict_set(&a, vars.d, jv_str(&a, "tools"), tools);
    jv_dict_set(&a, vars.d, jv_str(&a, "documents"), jv_none());
    jv_dict_set(&a, vars.d, jv_str(&a, "add_generation_prompt"), jv_bool(v->add_generation_prompt));
    jv_dict_set(&a, vars.d, jv_str(&a, "bos_token"), jv_str(&a, v->bos_token ? v->bos_token : ""));
    jv_dict_set(&a, vars.d, jv_str(&a, "eos_token"), jv_str(&a, v->eos_token ? v->eos_token : ""));
    if (extra.t == JV_DICT)
        for (size_t i = 0; i < extra.d->n; i++) jv_dict_set(&a, vars.d, extra.d->k[i], extra.d->v[i]);
    bool ok = jinja_render(c->t, &a, vars, &lim, out, NULL, err, errlen);
    jinja_arena_free(&a);
    return ok ? 0 : -1;
}
