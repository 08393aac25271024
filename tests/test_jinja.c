// The Jinja interpreter on its own: constructs and Python semantics (expected texts are what
// Jinja2 3.1 renders with transformers' settings), and hostile templates: each limit (nesting,
// recursion, loop steps, output size, memory) gives one error with the template's line:column.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"
#include "tests/test_util.h"

static const char *const conv = "[{\"role\": \"user\", \"content\": \"hi\"}]";

// Renders tmpl; returns the text (malloc'd) or NULL with err set.
static char *render(const char *tmpl, char *err, size_t errlen) {
    ll_chat_jinja *t = ll_chat_jinja_parse(tmpl, err, errlen);
    if (!t) return NULL;
    ll_chat_jinja_vars vars = {.bos_token = "<s>", .eos_token = "</s>"};
    char *out = NULL;
    int rc = ll_chat_jinja_render(t, conv, &vars, &out, err, errlen);
    ll_chat_jinja_free(t);
    return rc == 0 ? out : NULL;
}

static const char *const cases[][2] = {
    {"{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % -3 }}|{{ 7 / 2 }}|{{ 2 ** 10 }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ 1e-5 }}",
     "3|-4|-2|3.5|1024|0.30000000000000004|1e+20|1e-05"},
    // powers by squaring: a huge exponent of 1, 0 or -1 ends at once (a fuzzer found the loop)
    {"{{ 1 ** 9223372036854775807 }}|{{ (-1) ** 999999999999999999 }}|{{ 0 ** 4000000000000000000 }}|{{ 2 ** 62 }}|{{ 3 ** 39 }}",
     "1|-1|0|4611686018427387904|4052555153018976267"},
    // an empty sequence repeated a huge number of times is empty at once (a fuzzer found the loop)
    {"{{ \"\" * 922036854775807 }}|{{ ([] * 922036854775807)|length }}|{{ \"ab\" * 3 }}|{{ [1] * 2 }}",
     "|0|ababab|[1, 1]"},
    {"{{ \"a\" ~ 1 ~ none ~ true }}|{{ [1,2] + [3] }}|{{ ('a', 1) }}|{{ {'k': [none, 'it\\'s']} }}",
     "a1NoneTrue|[1, 2, 3]|('a', 1)|{'k': [None, \"it's\"]}"},
    {"{{ \" a b \"|trim }}|{{ \"a,b,,c\".split(\",\") }}|{{ \" a  b \".split() }}|{{ \"hello world\"|title }}",
     "a b|['a', 'b', '', 'c']|['a', 'b']|Hello World"},
    {"{{ {\"a\": 1, \"b\": [1, \"é\"]}|tojson }}|{{ {\"b\": 1, \"a\": 2}|tojson(indent=2, sort_keys=true) }}|{{ \"é\"|tojson(ensure_ascii=true) }}",
     "{\"a\": 1, \"b\": [1, \"é\"]}|{\n  \"a\": 2,\n  \"b\": 1\n}|\"\\u00e9\""},
    {"{{ [1,2,3][::-1] }}|{{ \"héllo\"[1:3] }}|{{ messages[-1].content }}|{{ messages[9] }}|{{ none.x }}",
     "[3, 2, 1]|él|hi||"},
    {"{% for i in [1,2,3] if i > 1 %}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.previtem }}{% endfor %}|{% for i in [] %}x{% else %}e{% endfor %}",
     "1TrueFalse2FalseTrue2|e"},
    {"{% set ns = namespace(x=0) %}{% set y = 0 %}{% for i in range(4) %}{% set ns.x = ns.x + i %}{% set y = 9 %}{% if i == 2 %}{% break %}{% endif %}{% endfor %}{{ ns.x }}{{ y }}",
     "30"},
    {"{% macro f(a, b=\"B\") %}[{{ a }}{{ b }}]{% endmacro %}{{ f(1) }}{{ f(1, b=2) }}{% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}in{% endcall %}",
     "[1B][12]<in>"},
    {"{{ [{\"r\": \"u\"}, {\"r\": \"a\"}]|selectattr(\"r\", \"equalto\", \"u\")|list|length }}|{{ [1,2]|map(\"string\")|join(\"-\") }}|{{ none|selectattr(\"x\")|list }}|{% if []|select %}gen-true{% endif %}",
     "1|1-2|[]|gen-true"},
    {"{{ \"<\"|safe + \"<\" }}|{{ x|default(\"d\") }}|{{ x is defined }}|{{ 1 is number }}|{{ \"a\" in \"cat\" }}|{{ 1 < 2 < 3 }}",
     "<&lt;|d|False|True|True|True"},
    {"a\n  {% if true %}\n  b\n  {% endif %}\nc {#- x -#} d\n",
     "a\n  b\ncd"},
    {"{%- set x -%}\n  {{- 'block' | upper -}}\n{%- endset -%}{{ x }}|{% filter lower %}LOW{% endfilter %}|{% raw %}{{ kept }}{% endraw %}",
     "BLOCK|low|{{ kept }}"},
    {"{% set x = 0 %}{% for i in [1,2,3] %}{{ x }}{% set x = i %}{% endfor %}{{ x }}|{% for i in [1,2,3] %}{% if i == 1 %}{% set y = 5 %}{% endif %}{{ y }}{% endfor %}|{% for i in [1,2] %}{% set y = i %}{% for j in [1] %}{{ y }}{% set y = 9 %}{{ y }}{% endfor %}{{ y }}{% endfor %}|{% with a = 1 %}{{ a }}{% endwith %}{{ a }}",
     "0000|5|191292|1"},
    {"{{ [\"b\",\"A\",\"a\",\"B\"]|sort }}|{{ [\"b\",\"A\",\"a\",\"B\"]|sort(reverse=true) }}|{{ {\"b\":1,\"a\":2,\"C\":0}|dictsort }}|{{ {\"b\":1,\"a\":2}|dictsort(by=\"value\", reverse=true) }}|{{ [{\"n\":2,\"k\":\"x\"},{\"n\":1,\"k\":\"y\"},{\"n\":2,\"k\":\"z\"}]|sort(attribute=\"n\", reverse=true)|map(attribute=\"k\")|join }}",
     "['A', 'a', 'b', 'B']|['b', 'B', 'A', 'a']|[('a', 2), ('b', 1), ('C', 0)]|[('a', 2), ('b', 1)]|xzy"},
    {"{{ \"été ß\"|upper }}|{{ \"　 a \"|trim }}|{{ \"a b c\".split() }}|{{ \"日本語\"[1:] }}|{{ 0.0 % -3 }}|{{ (1, 2) * 2 }}|{{ [x, 1] }}",
     "ÉTÉ SS|a|['a', 'b', 'c']|本語|-0.0|(1, 2, 1, 2)|[Undefined, 1]"},
};

// A template that must fail with an error naming a line and column and containing `want`.
static void expect_error(const char *what, const char *tmpl, const char *want) {
    char err[512] = "";
    char *out = render(tmpl, err, sizeof err);
    CHECK(!out, "%s: rendered instead of failing", what);
    CHECK(strncmp(err, "line ", 5) == 0 && strstr(err, ", column "), "%s: no line:column in '%s'", what, err);
    CHECK(strstr(err, want) != NULL, "%s: '%s' does not say '%s'", what, err, want);
    free(out);
}

static char *repeat(const char *a, int n, const char *mid, const char *b) {
    size_t la = strlen(a), lb = strlen(b), lm = strlen(mid);
    char *s = malloc((la + lb) * (size_t)n + lm + 1), *p = s;
    for (int i = 0; i < n; i++) { memcpy(p, a, la); p += la; }
    memcpy(p, mid, lm); p += lm;
    for (int i = 0; i < n; i++) { memcpy(p, b, lb); p += lb; }
    *p = 0;
    return s;
}

int main(void) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[512] = "";
        char *out = render(cases[i][0], err, sizeof err);
        CHECK(out && !strcmp(out, cases[i][1]), "case %zu: %s\n  got:  %s\n  want: %s", i, cases[i][0], out ? out : err, cases[i][1]);
        free(out);
    }

    // Where Jinja2 raises.
    expect_error("none is not iterable", "{% for t in tools %}{% endfor %}", "'NoneType' object is not iterable");
    expect_error("undefined attribute", "\n\n  {{ nothing.attr }}", "'nothing' is undefined");
    expect_error("raise_exception", "{{ raise_exception('no system role') }}", "no system role");
    expect_error("sandbox", "{% set l = [] %}{{ l.append(1) }}", "unsafe");
    expect_error("set attr of a dict", "{% set d = {} %}{% set d.x = 1 %}", "non-namespace");
    expect_error("unknown tag", "{% include 'x.jinja' %}", "include");
    expect_error("unclosed block", "{% if true %}x", "endif");
    expect_error("unknown filter", "{{ 1|nosuch }}", "nosuch");
    expect_error("str + int", "{{ 'a' + 1 }}", "unsupported operand");
    expect_error("power past int64", "{{ 2 ** 63 }}", "integer overflow");
    expect_error("huge power", "{{ 3 ** 9223372036854775807 }}", "integer overflow");
    expect_error("generator length", "{{ [1]|select|length }}", "len()");
    expect_error("generator tojson", "{{ [1]|map('string')|tojson }}", "not JSON serializable");

    // Bad UTF-8 through the case filters (a byte of it becomes U+FFFD, 3 bytes: found by the fuzzer).
    char err[512] = "";
    char *bad = render("{{ '\xff\xff\xff\xff\xff\xff\xff\xff'|upper }}{{ '\xfe\xfe'.lower() }}", err, sizeof err);
    CHECK(bad && !strcmp(bad, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                               "\xef\xbf\xbd\xef\xbf\xbd"), "bad UTF-8 upper/lower: %s", bad ? bad : err);
    free(bad);

    // Bounds: each a clear error, none a crash or a hang.
    char *deep = repeat("(", 100000, "1", ")");
    char *deep_tmpl = malloc(strlen(deep) + 8);
    sprintf(deep_tmpl, "{{ %s }}", deep);
    expect_error("deep expression", deep_tmpl, "nested too deeply");
    free(deep);
    free(deep_tmpl);
    char *blocks = repeat("{% if true %}", 5000, "x", "{% endif %}");
    expect_error("deep blocks", blocks, "nested too deeply");
    free(blocks);
    expect_error("macro recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recurses too deeply");
    expect_error("long range", "{% for i in range(1000000000) %}{% endfor %}", "too long");
    expect_error("long loops", "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "too long");
    expect_error("scanning a long string", "{% set s = 'x' * 1000000 %}{% for i in range(1000000) %}{% if s[-1] == 'y' %}{% endif %}{% endfor %}", "too long");
    expect_error("searching a long list", "{% set l = range(100000) %}{% for i in range(1000000) %}{% if -1 in l %}{% endif %}{% endfor %}", "too long");
    expect_error("deep lists", "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l }}", "nested more than");
    expect_error("deep dicts", "{% set ns = namespace(d={}) %}{% for i in range(100000) %}{% set ns.d = dict(x=ns.d) %}{% endfor %}{{ ns.d == ns.d }}", "nested more than");
    expect_error("large output", "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "larger than");
    expect_error("doubling string", "{% set ns = namespace(s='x') %}{% for i in range(200) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "larger than");
    expect_error("doubling list", "{% set ns = namespace(l=[1]) %}{% for i in range(200) %}{% set ns.l = ns.l + ns.l %}{% endfor %}", "memory");
    return test_result("test_jinja");
}
