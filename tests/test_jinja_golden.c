// Every case of ../shared/golden/chat-templates/cases.json (real chat templates rendered by
// Jinja2 as transformers renders them; its README says how) through ll_chat_jinja_*: the text
// must match byte for byte, and where Jinja2 raised, rendering must fail with a message.
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/chat/jinja.h"
#include "engine/llamalite.h"
#include "tests/test_util.h"

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    if (s && fread(s, 1, (size_t)len, f) != (size_t)len) { free(s); s = NULL; }
    fclose(f);
    if (s) s[len] = 0;
    *n = (size_t)len;
    return s;
}

// A string field as a C string (in the arena), or NULL.
static const char *str_field(jinja_arena *a, jv obj, const char *key) {
    const jv *v = jv_dict_find(obj.d, key, strlen(key));
    if (!v || v->t != JV_STR) return NULL;
    char *s = jinja_alloc(a, v->s.n + 1);
    memcpy(s, v->s.p, v->s.n);
    s[v->s.n] = 0;
    return s;
}

// The case's conversation as the JSON text `llamalite template --messages` reads.
static char *conversation(jinja_arena *a, jv c) {
    const jv *m = jv_dict_find(c.d, "messages", 8), *t = jv_dict_find(c.d, "tools", 5);
    jv conv = *m;
    if (t && t->t != JV_NONE) {
        conv = jv_new_dict(a, 2);
        jv_dict_set(a, conv.d, jv_str(a, "messages"), *m);
        jv_dict_set(a, conv.d, jv_str(a, "tools"), *t);
    }
    jinja_buf b = {0};
    jv_json_opts o = {.indent = -1, .item_sep = ", ", .key_sep = ": "};
    jv bad;
    jv_to_json(&b, conv, &o, 0, &bad);
    return b.p;
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/chat-templates/cases.json", shared);
    size_t len;
    char *text = read_all(path, &len);
    if (!text) {
        fprintf(stderr, "no %s\n", path);
        return TEST_SKIP;
    }
    setenv("SOURCE_DATE_EPOCH", "1749988800", 1);
    setenv("TZ", "UTC", 1);
    tzset();

    jmp_buf fail;
    jinja_arena a = {.limit = (size_t)1 << 30, .fail = &fail};
    if (setjmp(fail)) {
        fprintf(stderr, "out of memory reading %s\n", path);
        return 1;
    }
    jv cases;
    size_t pos;
    const char *e = jv_from_json(&a, text, len, &cases, &pos);
    CHECK(!e && cases.t == JV_LIST, "%s: %s at %zu", path, e ? e : "not a list", pos);
    if (e || cases.t != JV_LIST) return 1;

    int passed = 0, total = 0;
    for (size_t i = 0; i < cases.l->n; i++) {
        jv c = cases.l->v[i];
        const char *name = str_field(&a, c, "template_name"), *which = str_field(&a, c, "case");
        const char *tmpl = str_field(&a, c, "template"), *expected = str_field(&a, c, "expected");
        const char *error = str_field(&a, c, "error");
        const jv *agp = jv_dict_find(c.d, "add_generation_prompt", 21);
        ll_chat_jinja_vars vars = {
            .add_generation_prompt = agp && jv_truthy(*agp),
            .bos_token = str_field(&a, c, "bos_token"),
            .eos_token = str_field(&a, c, "eos_token"),
        };
        char *conv = conversation(&a, c);
        char err[512] = "", *out = NULL;
        total++;
        ll_chat_jinja *t = ll_chat_jinja_parse(tmpl, err, sizeof err);
        int rc = t ? ll_chat_jinja_render(t, conv, &vars, &out, err, sizeof err) : -1;
        if (error) {
            CHECK(rc != 0 && err[0], "%s / %s: rendered, but Jinja2 raised %s", name, which, error);
            if (rc != 0 && err[0]) passed++;
        } else if (rc != 0) {
            CHECK(false, "%s / %s: %s", name, which, err);
        } else {
            bool same = !strcmp(out, expected);
            if (!same) {
                size_t k = 0;
                while (out[k] && out[k] == expected[k]) k++;
                CHECK(false, "%s / %s: differs at byte %zu:\n  got:  ...%.80s\n  want: ...%.80s", name, which, k,
                      out + (k > 20 ? k - 20 : 0), expected + (k > 20 ? k - 20 : 0));
            }
            passed += same;
        }
        free(out);
        free(conv);
        ll_chat_jinja_free(t);
    }
    fprintf(stderr, "%d of %d cases pass\n", passed, total);
    jinja_arena_free(&a);
    free(text);
    return test_result("test_jinja_golden");
}
