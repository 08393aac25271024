// libFuzzer harness for the Jinja chat template interpreter (engine/chat/jinja_*.c): any text
// either parses, and then rendering it with any conversation is safe and deterministic, or
// is refused with one line "line L, column C: reason" whose line lies inside the template.
// The input is "TEMPLATE\x01CONVERSATION": the part after the first \x01 is the conversation
// JSON (a default one when there is none). The limits are smaller than the defaults so that
// each input runs fast; they are the same code paths.
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat/jinja.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) { (void)argc; (void)argv; return 0; }

static const char default_conv[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi \\u00e9\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>\\nhm\\n</think>\\n\\nHello\", \"reasoning_content\": \"hm\"},"
    " {\"role\": \"user\", \"content\": \"Weather?\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"w\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}}}]}";

static void check_error(const char *err, const char *text, const char *what) {
    int line = 0, col = 0, n = 0;
    int lines = 1;
    for (const char *p = text; *p; p++) lines += *p == '\n' || (*p == '\r' && p[1] != '\n');
    if (sscanf(err, "line %d, column %d: %n", &line, &col, &n) != 2 || n == 0 || !err[n] || strchr(err, '\n') ||
        line < 1 || line > lines || col < 1) {
        fprintf(stderr, "bad %s error message: '%s'\n", what, err);
        abort();
    }
}

static const jinja_limits limits = {.max_depth = 100, .max_steps = 20000, .max_output = 1 << 16, .max_memory = 32u << 20};

// Renders once; returns the output (malloc'd) or NULL with err set.
static char *render(const jinja_template *t, const char *conv, size_t conv_n, size_t *out_n, char *err, size_t errlen) {
    jmp_buf fail;
    jinja_arena a = {.limit = limits.max_memory, .fail = &fail};
    char *out = NULL;
    if (setjmp(fail)) {   // out of memory while reading the conversation
        jinja_arena_free(&a);
        snprintf(err, errlen, "line 1, column 1: conversation too large");
        return NULL;
    }
    jv c, vars = jv_new_dict(&a, 4);
    size_t pos;
    if (jv_from_json(&a, conv, conv_n, &c, &pos) || c.t != JV_DICT) {
        pos = 0;
        jv_from_json(&a, default_conv, strlen(default_conv), &c, &pos);
    }
    for (size_t i = 0; i < c.d->n; i++) jv_dict_set(&a, vars.d, c.d->k[i], c.d->v[i]);
    jv_dict_set(&a, vars.d, jv_str(&a, "add_generation_prompt"), jv_bool(true));
    jv_dict_set(&a, vars.d, jv_str(&a, "bos_token"), jv_str(&a, "<s>"));
    if (!jinja_render(t, &a, vars, &limits, &out, out_n, err, errlen)) out = NULL;
    jinja_arena_free(&a);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *cut = memchr(data, 1, size);
    size_t tlen = cut ? (size_t)(cut - data) : size;
    char *text = malloc(tlen + 1);
    if (!text) return 0;
    memcpy(text, data, tlen);
    text[tlen] = 0;
    tlen = strlen(text);   // an embedded NUL ends the template, as it would for a C string
    char err[512] = "";
    jinja_template *t = jinja_parse(text, tlen, &limits, err, sizeof err);
    if (!t) {
        if (strstr(err, "memory")) { free(text); return 0; }
        check_error(err, text, "parse");
    } else {
        const char *conv = cut ? (const char *)cut + 1 : "";
        size_t conv_n = cut ? size - (size_t)(cut - data) - 1 : 0;
        size_t n1 = 0, n2 = 0;
        char err2[512] = "";
        char *o1 = render(t, conv, conv_n, &n1, err, sizeof err);
        char *o2 = render(t, conv, conv_n, &n2, err2, sizeof err2);
        if (!o1 != !o2 || (o1 && (n1 != n2 || memcmp(o1, o2, n1))) || (!o1 && strcmp(err, err2))) {
            fprintf(stderr, "not deterministic\n");
            abort();
        }
        if (!o1) check_error(err, text, "render");
        free(o1);
        free(o2);
        jinja_free(t);
    }
    free(text);
    return 0;
}
