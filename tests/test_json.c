// The CLI's JSON reader: values, escapes (surrogate pairs), errors with positions, hostile input.
#include <string.h>

#include "cli/json.c"
#include "tests/test_util.h"

static json *parse(const char *s, char *err) { return json_parse(s, strlen(s), err, 128); }

int main(void) {
    char err[128];
    json *j = parse(" {\"a\": [1, -2.5e2, true, false, null], \"b\": \"x\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\", "
                    "\"a\": {}} ", err);
    CHECK(j && j->type == JSON_OBJECT && j->n == 3, "object");
    if (j) {
        const json *a = json_get(j, "a"); // the last "a" wins
        CHECK(a && a->type == JSON_OBJECT && a->n == 0, "repeated key");
        const json *arr = &j->items[0];
        CHECK(arr->type == JSON_ARRAY && arr->n == 5, "array");
        if (arr->n == 5) {
            CHECK(arr->items[0].num == 1 && arr->items[1].num == -250, "numbers");
            CHECK(arr->items[2].type == JSON_BOOL && arr->items[2].b && !arr->items[3].b, "bools");
            CHECK(arr->items[4].type == JSON_NULL, "null");
        }
        const char *b = json_str(json_get(j, "b"));
        CHECK(b && !strcmp(b, "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80"), "escapes: %s", b ? b : "(null)");
        CHECK(json_str(arr) == NULL && json_get(arr, "x") == NULL, "type checks");
    }
    json_free(j);

    j = parse("\"a\\u0000b\"", err);
    CHECK(j && j->str_len == 3 && j->str[1] == 0, "\\u0000 kept");
    json_free(j);

    static const char *bad[] = {
        "", "{", "[1,]", "{\"a\" 1}", "{1: 2}", "\"abc", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"",
        "\"\\ud800\\u0041\"", "01", "1.", "1e", "-", "tru", "[1] x", "\"\x01\"", "\"\xff\"", "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        j = parse(bad[i], err);
        CHECK(j == NULL && !strncmp(err, "line ", 5), "bad input %zu accepted (%s)", i, err);
        json_free(j);
    }
    j = parse("[\n  1,\n  x]", err);
    CHECK(!j && !strcmp(err, "line 3, column 3: unexpected character"), "position: %s", err);

    // Deep nesting is refused, not a stack overflow.
    char deep[4096];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    j = parse(deep, err);
    CHECK(!j && strstr(err, "deeply"), "deep: %s", err);

    // Writer round trip.
    FILE *f = tmpfile();
    const char *s = "q\"b\\n\n\t\x01\xc3\xa9";
    json_write_string(f, s);
    rewind(f);
    char buf[128];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    CHECK(!strcmp(buf, "\"q\\\"b\\\\n\\n\\t\\u0001\xc3\xa9\""), "written: %s", buf);
    j = parse(buf, err);
    CHECK(j && !strcmp(j->str, s), "round trip");
    json_free(j);
    return test_result("test_json");
}
