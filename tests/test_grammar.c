// Grammar tests: the GBNF parser (every construct, every error class with its line:column),
// whole-string matching of the shipped grammars, JSON Schema translation (every keyword), and
// the sampler constraint against a fake vocabulary-free token set.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"
#include "engine/util.h"
#include "engine/sample/grammar.h"
#include "engine/sample/sampling.h"
#include "tests/test_util.h"

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) { free(s); s = NULL; }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static ll_grammar *parse_ok(const char *gbnf, int line) {
    char err[256];
    ll_grammar *g = ll_grammar_parse(gbnf, err, sizeof err);
    CHECK(g != NULL, "line %d: grammar should parse: %s\n%s", line, err, gbnf);
    return g;
}

// Expects a parse error whose message starts with "pos" (e.g. "3:14:") and contains "what".
static void parse_err(const char *gbnf, const char *pos, const char *what, int line) {
    char err[256] = "";
    ll_grammar *g = ll_grammar_parse(gbnf, err, sizeof err);
    CHECK(g == NULL, "line %d: grammar should fail: %s", line, gbnf);
    ll_grammar_free(g);
    if (g) return;
    CHECK(!strncmp(err, pos, strlen(pos)) && err[strlen(pos)] == ' ',
          "line %d: error '%s' should be at %s", line, err, pos);
    CHECK(strstr(err, what) != NULL, "line %d: error '%s' should mention '%s'", line, err, what);
}

static void expect(const ll_grammar *g, const char *s, bool want, int line) {
    if (!g) return;
    bool got = ll_grammar_match(g, s, strlen(s));
    CHECK(got == want, "line %d: '%s' should be %s", line, s, want ? "accepted" : "rejected");
}

#define ACCEPT(g, s) expect(g, s, true, __LINE__)
#define REJECT(g, s) expect(g, s, false, __LINE__)
#define PARSE(s) parse_ok(s, __LINE__)
#define PARSE_ERR(s, pos, what) parse_err(s, pos, what, __LINE__)

// ---- parser constructs ----------------------------------------------------------------------

static void test_constructs(void) {
    ll_grammar *g;

    g = PARSE("root ::= \"abc\"");
    ACCEPT(g, "abc"); REJECT(g, "ab"); REJECT(g, "abcd"); REJECT(g, "");
    ll_grammar_free(g);

    // Alternatives, sequences, grouping.
    g = PARSE("root ::= \"a\" (\"b\" | \"c\") \"d\" | \"x\"");
    ACCEPT(g, "abd"); ACCEPT(g, "acd"); ACCEPT(g, "x"); REJECT(g, "ad"); REJECT(g, "abdx");
    ll_grammar_free(g);

    // Empty alternatives and an empty rule.
    g = PARSE("root ::= \"a\" opt \"b\"\nopt ::= \"x\" |\n");
    ACCEPT(g, "ab"); ACCEPT(g, "axb"); REJECT(g, "axxb");
    ll_grammar_free(g);
    g = PARSE("root ::= ");
    ACCEPT(g, ""); REJECT(g, "a");
    ll_grammar_free(g);
    g = PARSE("root ::= ()");
    ACCEPT(g, ""); REJECT(g, " ");
    ll_grammar_free(g);

    // Repetitions.
    g = PARSE("root ::= \"a\"* \"b\"+ \"c\"?");
    ACCEPT(g, "b"); ACCEPT(g, "aaabbc"); ACCEPT(g, "bbb"); REJECT(g, "a"); REJECT(g, "bcc");
    ll_grammar_free(g);
    g = PARSE("root ::= [0-9]{3}");
    ACCEPT(g, "123"); REJECT(g, "12"); REJECT(g, "1234");
    ll_grammar_free(g);
    g = PARSE("root ::= [0-9]{2,}");
    ACCEPT(g, "12"); ACCEPT(g, "123456789"); REJECT(g, "1");
    ll_grammar_free(g);
    g = PARSE("root ::= \"x\"{2,4} \"y\"{0,2}");
    ACCEPT(g, "xx"); ACCEPT(g, "xxxx"); ACCEPT(g, "xxyy"); REJECT(g, "x"); REJECT(g, "xxxxx");
    REJECT(g, "xxyyy");
    ll_grammar_free(g);
    g = PARSE("root ::= \"ab\"{ 2 , 3 }"); // spaces inside braces; the whole literal repeats
    ACCEPT(g, "abab"); ACCEPT(g, "ababab"); REJECT(g, "aba"); REJECT(g, "abb");
    ll_grammar_free(g);
    g = PARSE("root ::= (\"a\" | \"bc\"){0} \"z\"");
    ACCEPT(g, "z"); REJECT(g, "az");
    ll_grammar_free(g);
    g = PARSE("root ::= [a]{2}{3}"); // an operator after an operator repeats the expansion
    ACCEPT(g, "aaaaaa"); REJECT(g, "aaaa");
    ll_grammar_free(g);
    g = PARSE("root ::= (\"a\" \"b\"?)*");
    ACCEPT(g, ""); ACCEPT(g, "aab"); ACCEPT(g, "abab"); REJECT(g, "b");
    ll_grammar_free(g);

    // Character classes: ranges, negation, literal '-' at the edges, '.', escapes.
    g = PARSE("root ::= [a-cx-z_-]+");
    ACCEPT(g, "abc"); ACCEPT(g, "zy_-"); REJECT(g, "d"); REJECT(g, "A");
    ll_grammar_free(g);
    g = PARSE("root ::= [-a]");
    ACCEPT(g, "-"); ACCEPT(g, "a"); REJECT(g, "b");
    ll_grammar_free(g);
    g = PARSE("root ::= [^a-z\\n]+");
    ACCEPT(g, "ABC 123"); ACCEPT(g, "é"); REJECT(g, "Ab"); REJECT(g, "A\n");
    ll_grammar_free(g);
    g = PARSE("root ::= . . .");
    ACCEPT(g, "abc"); ACCEPT(g, "a\xC3\xA9\n"); ACCEPT(g, "\xF0\x9F\x98\x80xy"); REJECT(g, "ab");
    REJECT(g, "a\xC3x"); // invalid UTF-8 never matches
    ll_grammar_free(g);
    g = PARSE("root ::= \"\\n\\r\\t\\\\\\\"\\[\\]\\x41\\u00e9\\U0001F600\"");
    ACCEPT(g, "\n\r\t\\\"[]A\xC3\xA9\xF0\x9F\x98\x80");
    REJECT(g, "\n\r\t\\\"[]A\xC3\xA9");
    ll_grammar_free(g);
    g = PARSE("root ::= [\\x00-\\x1f\\]\\[\\\\]");
    ACCEPT(g, "]"); ACCEPT(g, "["); ACCEPT(g, "\\"); ACCEPT(g, "\x1f"); REJECT(g, " ");
    ll_grammar_free(g);
    // Raw UTF-8 in literals and classes, ranges of multi-byte characters.
    g = PARSE("root ::= \"日本\" [ぁ-ゖ]+");
    ACCEPT(g, "日本ごはん"); REJECT(g, "日本"); REJECT(g, "日本カ");
    ll_grammar_free(g);
    g = PARSE("root ::= [^\\u3040-\\u309F]");
    ACCEPT(g, "a"); ACCEPT(g, "カ"); REJECT(g, "ご");
    ll_grammar_free(g);

    // Comments, newlines inside parentheses and after '|', CRLF line ends, blank lines.
    g = PARSE("# a comment\n\nroot ::= ( # open\n  \"a\"\n  | \"b\" # alt\n) tail |\n  \"c\"\r\n"
              "tail ::= \"!\" # end\r\n\n# trailing comment");
    ACCEPT(g, "a!"); ACCEPT(g, "b!"); ACCEPT(g, "c"); REJECT(g, "a");
    ll_grammar_free(g);

    // Rule references in any order, names with digits and dashes, recursion (not left).
    g = PARSE("root ::= list-2\nlist-2 ::= \"(\" list-2 \")\" | \"x\"");
    ACCEPT(g, "x"); ACCEPT(g, "((x))"); REJECT(g, "((x)"); REJECT(g, "()");
    ll_grammar_free(g);

    // Ambiguity is fine: both readings are tracked.
    g = PARSE("root ::= a | b\na ::= \"x\" \"y\"* \"z\"\nb ::= \"x\"+ \"z\"");
    ACCEPT(g, "xyyz"); ACCEPT(g, "xxxz"); ACCEPT(g, "xz"); REJECT(g, "xyxz");
    ll_grammar_free(g);

    // Nullable prefix before a recursion is not left recursion when something is consumed.
    g = PARSE("root ::= opt \"a\" root | \"b\"\nopt ::= \"-\"?");
    ACCEPT(g, "b"); ACCEPT(g, "-aab"); REJECT(g, "-b");
    ll_grammar_free(g);
}

static void test_errors(void) {
    PARSE_ERR("root ::= \"abc", "1:10:", "unterminated string");
    PARSE_ERR("root ::= [abc", "1:10:", "unterminated character class");
    PARSE_ERR("root ::= \"a\"\nfoo := \"b\"", "2:5:", "expected '::='");
    PARSE_ERR("root ::= (\"a\" | \"b\"", "1:10:", "unclosed '('");
    PARSE_ERR("root ::= (\"a\" \"b\" ]", "1:19:", "expected ')'");
    PARSE_ERR("root ::= \"a\" )", "1:14:", "unmatched ')'");
    PARSE_ERR("root ::= * \"a\"", "1:10:", "without an item");
    PARSE_ERR("root ::= \"a\" | + \"a\"", "1:16:", "without an item");
    PARSE_ERR("root ::= \"a\"{x}", "1:14:", "expected a number");
    PARSE_ERR("root ::= \"a\"{1,2", "1:17:", "expected '}'");
    PARSE_ERR("root ::= \"a\"{3,2}", "1:13:", "below its minimum");
    PARSE_ERR("root ::= \"\\q\"", "1:11:", "unknown escape");
    PARSE_ERR("root ::= \"\\x4\"", "1:11:", "hex digits");
    PARSE_ERR("root ::= [\\uD8]", "1:11:", "hex digits");
    PARSE_ERR("root ::= [z-a]", "1:12:", "range end below");
    PARSE_ERR("root ::= \"\xC3(\"", "1:11:", "invalid UTF-8");
    PARSE_ERR("root ::= \"é\" @", "1:14:", "unexpected '@'");
    PARSE_ERR("::= \"a\"", "1:1:", "expected a rule name");
    PARSE_ERR("root ::= \"a\"\nroot ::= \"b\"", "2:1:", "already defined at 1:1");
    // Undefined rule: where it is first used.
    PARSE_ERR("root ::= \"a\" item |\n  other\nitem ::= \"b\"", "2:3:", "undefined rule 'other'");
    // A newline before '|' ends the rule (only one after it continues).
    PARSE_ERR("root ::= \"a\"\n  | \"b\"", "2:3:", "expected a rule name, found '|'");
    // Missing root: reported at the end of the input.
    PARSE_ERR("start ::= \"a\"\n", "2:1:", "no 'root' rule");
    PARSE_ERR("", "1:1:", "no 'root' rule");
    // Left recursion: direct, indirect, through a nullable prefix and through a group.
    PARSE_ERR("root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"", "2:1:", "left recursion in rule 'expr'");
    PARSE_ERR("root ::= a\na ::= b \"x\"\nb ::= \"y\" | a", "2:1:", "left recursion in rule 'a'");
    PARSE_ERR("root ::= \"x\"\n\nlist ::= ws? list \",\" | \"i\"\nws ::= \" \"", "3:1:",
              "left recursion in rule 'list'");
    PARSE_ERR("root ::= (root \"a\" | \"b\")", "1:1:", "left recursion in rule 'root'");
    PARSE_ERR("root ::= (\"a\"?)*", "1:1:", "left recursion in rule 'root'");
    // The error buffer is optional and always NUL-terminated when short.
    CHECK(ll_grammar_parse("root ::= (", NULL, 0) == NULL, "no error buffer");
    char tiny[4];
    CHECK(ll_grammar_parse("root ::= (", tiny, sizeof tiny) == NULL && strlen(tiny) < 4, "short buffer");
}

// ---- depth and size ---------------------------------------------------------------------------

// "root ::= (((...\"a\"...)))" nested depth deep.
static char *nested(int depth) {
    char *s = malloc((size_t)depth * 2 + 32);
    if (!s) return NULL;
    int n = sprintf(s, "root ::= ");
    memset(s + n, '(', (size_t)depth);
    n += depth;
    n += sprintf(s + n, "\"a\"");
    memset(s + n, ')', (size_t)depth);
    s[n + depth] = 0;
    return s;
}

// n rules, each using the next: "r0 ::= r1 tail" ... "r(n-1) ::= \"x\"", after "root ::= r0".
static char *chain(int n, const char *tail) {
    size_t cap = (size_t)n * (40 + strlen(tail)) + 64;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t k = (size_t)sprintf(s, "root ::= r0\n");
    for (int i = 0; i + 1 < n; i++) k += (size_t)sprintf(s + k, "r%d ::= r%d%s\n", i, i + 1, tail);
    sprintf(s + k, "r%d ::= \"x\"\n", n - 1);
    return s;
}

static void test_deep(void) {
    // Parentheses: up to 1024 levels parse and match; beyond, one error naming the limit and
    // where the first '(' too many is (col 10 + 1024). 70,000 levels used to overflow the stack.
    char *s = nested(1024);
    ll_grammar *g = PARSE(s);
    ACCEPT(g, "a");
    REJECT(g, "aa");
    ll_grammar_free(g);
    free(s);
    s = nested(1025);
    PARSE_ERR(s, "1:1034:", "nested too deeply (more than 1024 levels");
    free(s);
    s = nested(70000);
    PARSE_ERR(s, "1:1034:", "nested too deeply");
    free(s);

    // 100,000 rules in a chain: checked in linear time (a name lookup per mention used to scan
    // every rule: 23 s), and matched (the expansion is no longer recursive).
    s = chain(100000, "");
    double t0 = ll_now_ms();
    g = PARSE(s);
    double ms = ll_now_ms() - t0;
    CHECK(ms < 5000, "a chain of 100,000 rules took %.0f ms to check", ms);
    ACCEPT(g, "x");
    REJECT(g, "xx");
    ll_grammar_free(g);
    free(s);

    // Each rule continues after the next one: the stack grows as deep as the chain (this used to
    // be refused as "out of memory" past 4096).
    s = chain(20000, " \"y\"");
    g = PARSE(s);
    if (g) {
        char *text = malloc(20001);
        text[0] = 'x';
        memset(text + 1, 'y', 19999);
        text[20000] = 0;
        ACCEPT(g, text);
        text[19999] = 0;
        REJECT(g, text);
        free(text);
    }
    ll_grammar_free(g);
    free(s);

    // The same chain written last rule first: the fewest bytes that complete it (what steers
    // generation to finish within its token budget) are still exact, not "unreachable".
    {
        size_t cap = 100000u * 32 + 64, k = 0;
        char *rev = malloc(cap);
        k += (size_t)sprintf(rev + k, "r99999 ::= \"xy\" | \"z\"\n");
        for (int i = 99998; i >= 0; i--) k += (size_t)sprintf(rev + k, "r%d ::= r%d\n", i, i + 1);
        sprintf(rev + k, "root ::= \"a\" r0 \"b\"\n");
        g = PARSE(rev);
        if (g) {
            gr_matcher *m = gr_matcher_new(g);
            gr_set set = { 0 };
            gr_partial none = { 0, 0, 0 };
            CHECK(m && gr_start(m, &set), "matcher start");
            uint32_t need = m ? gr_min_completion(m, set.v, set.n, &none) : 0;
            CHECK(need == 3, "the reversed chain completes in 3 bytes (\"azb\"), not %u", need);
            ACCEPT(g, "azb");
            gr_set_free(&set);
            gr_matcher_free(m);
        }
        ll_grammar_free(g);
        free(rev);
    }

    // 60 nested optionals ("yz"??...?) are a chain of nullable rules: matching explores each
    // once per step instead of 2^60 ways (found by fuzz_gbnf as a timeout).
    {
        char q[128];
        snprintf(q, sizeof q, "root ::= \"yz\"%.60s \"x\"", "????????????????????????????????????????????????????????????");
        g = PARSE(q);
        ACCEPT(g, "x");
        ACCEPT(g, "yzx");
        REJECT(g, "yzyzx");
        ll_grammar_free(g);
    }

    // A JSON Schema $ref chain: a bounded error naming the limit, not a crash.
    for (int n = 100; n <= 200; n += 100) {
        char *js = malloc((size_t)n * 48 + 64);
        size_t k = (size_t)sprintf(js, "{\"$ref\":\"#/$defs/d0\",\"$defs\":{");
        for (int i = 0; i + 1 < n; i++) k += (size_t)sprintf(js + k, "\"d%d\":{\"$ref\":\"#/$defs/d%d\"},", i, i + 1);
        sprintf(js + k, "\"d%d\":{\"type\":\"string\"}}}", n - 1);
        char err[256] = "";
        char *gbnf = ll_json_schema_to_gbnf(js, err, sizeof err);
        if (n == 100) CHECK(gbnf != NULL, "a $ref chain of 100: %s", err);
        else CHECK(!gbnf && strstr(err, "nested too deeply (more than 128 levels"), "a $ref chain of 200: %s", err);
        free(gbnf);
        free(js);
    }
}

// ---- shipped grammars -------------------------------------------------------------------------

static ll_grammar *load(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "grammars/%s", name);
    char *text = read_text(path);
    CHECK(text != NULL, "cannot read %s (run from the repo root)", path);
    if (!text) return NULL;
    char err[256];
    ll_grammar *g = ll_grammar_parse(text, err, sizeof err);
    CHECK(g != NULL, "%s: %s", name, err);
    CHECK(text[0] == '#', "%s should start with a comment saying what it matches", name);
    free(text);
    return g;
}

static void test_shipped(void) {
    ll_grammar *g = load("json.gbnf");
    ACCEPT(g, "{}");
    ACCEPT(g, "{ }");
    ACCEPT(g, "{\"a\": 1}");
    ACCEPT(g, "{\"a\":[1, -2.5e+3, 0.0, true, false, null, \"\"], \"b\" : {\"c\": {}}}");
    ACCEPT(g, "{\n  \"k\": \"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00\",\n  \"u\": \"日本 😀\"\n}");
    ACCEPT(g, "{\"a\":[]}");
    ACCEPT(g, "{\"a\":[[[]]]}");
    REJECT(g, "");
    REJECT(g, "[]");                 // the root is an object
    REJECT(g, "{\"a\":1,}");         // trailing comma
    REJECT(g, "{\"a\":01}");         // leading zero
    REJECT(g, "{\"a\":1.}");
    REJECT(g, "{\"a\":.5}");
    REJECT(g, "{\"a\":+1}");
    REJECT(g, "{\"a\":\"\\x41\"}");  // not a JSON escape
    REJECT(g, "{\"a\":\"\\u12G4\"}");
    REJECT(g, "{\"a\":\"tab\there\"}"); // raw control character
    REJECT(g, "{a:1}");
    REJECT(g, "{\"a\":1} ");         // nothing after the object
    REJECT(g, "{\"a\":tru}");
    ll_grammar_free(g);

    g = load("json_arr.gbnf");
    ACCEPT(g, "[\n]");
    ACCEPT(g, "[\n{\"a\": 1},\n{\"b\": [true, null]}\n]");
    REJECT(g, "[{\"a\": 1}]");
    REJECT(g, "[\n1\n]");
    ll_grammar_free(g);

    g = load("list.gbnf");
    ACCEPT(g, "- milk\n- eggs and ham\n");
    ACCEPT(g, "- 日本\n");
    REJECT(g, "");
    REJECT(g, "- \n");
    REJECT(g, "- milk");
    REJECT(g, "* milk\n");
    ll_grammar_free(g);

    g = load("arithmetic.gbnf");
    ACCEPT(g, "1");
    ACCEPT(g, "2 * (3.5 - -1) / 4");
    ACCEPT(g, "((1+2))*3");
    ACCEPT(g, "--7");
    REJECT(g, "1 +");
    REJECT(g, "(1");
    REJECT(g, "1  + 2");
    REJECT(g, "1.");
    REJECT(g, "a");
    ll_grammar_free(g);

    g = load("chess.gbnf");
    ACCEPT(g, "1. e4 e5\n2. Nf3 Nc6\n");
    ACCEPT(g, "1. d4 d5\n2. c4 dxc4\n3. Nbd2 O-O-O\n4. exd8=Q+ Qxd8#\n");
    ACCEPT(g, "1. e4 e5\n12. R1e2 O-O\n");
    REJECT(g, "1. e4 e5\n");         // at least two lines
    REJECT(g, "1. e9 e5\n2. a3 a6\n");
    REJECT(g, "1. e4 e5\n2. Nf3\n");
    REJECT(g, "1. e4 e5\n0. a3 a6\n");
    ll_grammar_free(g);

    g = load("english.gbnf");
    ACCEPT(g, "Hello world.");
    ACCEPT(g, "I don't know, said Tom. Really?");
    REJECT(g, "hello world.");
    REJECT(g, "Hello  world.");
    REJECT(g, "Hello world");
    REJECT(g, "Hello 42.");
    ll_grammar_free(g);

    g = load("japanese.gbnf");
    ACCEPT(g, "今日は天気がいいです。");
    ACCEPT(g, "コーヒー、ください！ありがとう？");
    REJECT(g, "今日は");
    REJECT(g, "hello。");
    REJECT(g, "。");
    ll_grammar_free(g);

    g = load("c.gbnf");
    ACCEPT(g, "int add(int a, int b) {\n  int c = a + b;\n  return c;\n}");
    ACCEPT(g, "void f(void) {\n}\nchar* g(char* s, long n) {\n"
              "  for (int i = 0; i < n; i += 1) {\n    s[i] = 'x';\n  }\n"
              "  if (n == 0) {\n    return s;\n  } else {\n    puts(\"hi\\n\");\n  }\n"
              "  while (!done(s)) {\n    n -= 1;\n  }\n  return s;\n}\n");
    REJECT(g, "int add(int a, int b) { return a + b }");
    REJECT(g, "int main() {\n  x = ;\n}");
    REJECT(g, "main() {\n}");
    ll_grammar_free(g);
}


// ---- JSON Schema ------------------------------------------------------------------------------

static ll_grammar *schema(const char *json, int line) {
    char err[256];
    char *gbnf = ll_json_schema_to_gbnf(json, err, sizeof err);
    CHECK(gbnf != NULL, "line %d: schema should convert: %s", line, err);
    if (!gbnf) return NULL;
    ll_grammar *g = ll_grammar_parse(gbnf, err, sizeof err);
    CHECK(g != NULL, "line %d: converted grammar should parse: %s\n%s", line, err, gbnf);
    free(gbnf);
    return g;
}

static void schema_err(const char *json, const char *what, int line) {
    char err[256] = "";
    char *gbnf = ll_json_schema_to_gbnf(json, err, sizeof err);
    CHECK(gbnf == NULL, "line %d: schema should fail: %s", line, json);
    free(gbnf);
    CHECK(strstr(err, what) != NULL, "line %d: error '%s' should mention '%s'", line, err, what);
}

#define SCHEMA(s) schema(s, __LINE__)
#define SCHEMA_ERR(s, what) schema_err(s, what, __LINE__)

// Expects the schema's warnings to mention want (NULL: no warnings at all).
static void schema_warns(const char *json, const char *want, int line) {
    char err[256] = "", *warnings = NULL;
    char *gbnf = ll_json_schema_to_gbnf_warn(json, &warnings, err, sizeof err);
    CHECK(gbnf != NULL, "line %d: schema should convert: %s", line, err);
    if (want) CHECK(warnings && strstr(warnings, want), "line %d: warnings '%s' should mention %s", line,
                    warnings ? warnings : "(none)", want);
    else CHECK(!warnings, "line %d: unexpected warnings: %s", line, warnings);
    free(warnings);
    free(gbnf);
}
#define SCHEMA_WARNS(s, want) schema_warns(s, want, __LINE__)

// Keywords added for issue 20: member and match counts, more formats, and a warning (not
// silence) for what a grammar cannot enforce.
static void test_schema_more(void) {
    ll_grammar *g;
    // minProperties / maxProperties with declared, optional and extra members.
    g = SCHEMA("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\"}},"
               "\"minProperties\":1}");
    ACCEPT(g, "{\"a\":1}"); ACCEPT(g, "{\"b\":\"x\"}"); ACCEPT(g, "{\"a\":1,\"b\":\"x\"}"); REJECT(g, "{}");
    ll_grammar_free(g);
    g = SCHEMA("{\"properties\":{\"a\":{}},\"additionalProperties\":{\"type\":\"integer\"},"
               "\"required\":[\"a\"],\"minProperties\":2,\"maxProperties\":3}");
    ACCEPT(g, "{\"a\":null,\"x\":1}"); ACCEPT(g, "{\"a\":null,\"x\":1,\"y\":2}"); REJECT(g, "{\"a\":null}");
    REJECT(g, "{\"a\":null,\"x\":1,\"y\":2,\"z\":3}"); REJECT(g, "{\"x\":1,\"y\":2}");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"object\",\"minProperties\":1,\"maxProperties\":2}");
    ACCEPT(g, "{\"k\":[]}"); ACCEPT(g, "{\"k\":1, \"l\":{}}"); REJECT(g, "{}"); REJECT(g, "{\"a\":1,\"b\":2,\"c\":3}");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"object\",\"maxProperties\":0}");
    ACCEPT(g, "{}"); REJECT(g, "{\"a\":1}");
    ll_grammar_free(g);
    SCHEMA_ERR("{\"type\":\"object\",\"minProperties\":3,\"maxProperties\":2}", "maxProperties below minProperties");
    SCHEMA_ERR("{\"properties\":{\"a\":{}},\"minProperties\":2}", "no object satisfies");
    SCHEMA_ERR("{\"properties\":{\"a\":{},\"b\":{}},\"required\":[\"a\",\"b\"],\"maxProperties\":1}", "no object satisfies");

    // contains / minContains on otherwise free items.
    g = SCHEMA("{\"type\":\"array\",\"contains\":{\"type\":\"string\"}}");
    ACCEPT(g, "[\"a\"]"); ACCEPT(g, "[1, \"a\", 2]"); ACCEPT(g, "[1,2,\"a\"]"); REJECT(g, "[]"); REJECT(g, "[1,2]");
    ll_grammar_free(g);
    g = SCHEMA("{\"contains\":{\"const\":5},\"minContains\":2}");
    ACCEPT(g, "[5,5]"); ACCEPT(g, "[1,5,2,5,3]"); REJECT(g, "[5]"); REJECT(g, "[1,5,1]");
    ll_grammar_free(g);
    g = SCHEMA("{\"contains\":{\"const\":5},\"minContains\":0}");
    ACCEPT(g, "[]"); ACCEPT(g, "[1]");
    ll_grammar_free(g);

    // Formats.
    g = SCHEMA("{\"type\":\"string\",\"format\":\"ipv4\"}");
    ACCEPT(g, "\"192.168.0.1\""); ACCEPT(g, "\"255.255.255.255\""); REJECT(g, "\"256.1.1.1\"");
    REJECT(g, "\"1.2.3\""); REJECT(g, "\"01.2.3.4\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"format\":\"ipv6\"}");
    ACCEPT(g, "\"::1\""); ACCEPT(g, "\"::\""); ACCEPT(g, "\"2001:db8::8a2e:370:7334\""); ACCEPT(g, "\"1:2:3:4:5:6:7:8\"");
    ACCEPT(g, "\"::ffff:192.0.2.128\""); REJECT(g, "\"1::2::3\""); REJECT(g, "\"1:2:3:4:5:6:7:8:9\""); REJECT(g, "\"12345::\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"format\":\"hostname\"}");
    ACCEPT(g, "\"example.com\""); ACCEPT(g, "\"a-b.c\""); REJECT(g, "\"-bad.com\""); REJECT(g, "\"bad-.com\"");
    REJECT(g, "\"a..b\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"format\":\"email\"}");
    ACCEPT(g, "\"a.b+tag@example.com\""); REJECT(g, "\"a..b@example.com\""); REJECT(g, "\"ab.example.com\"");
    REJECT(g, "\"a@b@c\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"format\":\"uri\"}");
    ACCEPT(g, "\"https://example.com/a?b=c#d\""); ACCEPT(g, "\"urn:isbn:0451450523\""); REJECT(g, "\"no scheme\"");
    REJECT(g, "\"1http://x\"");
    ll_grammar_free(g);

    // A schema is UTF-8 text: a key or string with other bytes is refused, not copied into a
    // grammar that then fails to parse (found by fuzz_json_schema).
    SCHEMA_ERR("{\"properties\":{\"a\x9a\":{}}}", "invalid UTF-8");
    SCHEMA_ERR("{\"const\":\"\xc0\xaf\"}", "invalid UTF-8");

    // An error quoting the schema stays one line (fuzz_json_schema).
    SCHEMA_ERR("{\"type\":\"str\\ning\"}", "unknown type 'str?ing'");

    // A bound too large for the digit rules is no bound (and no overflow; fuzz_json_schema).
    g = SCHEMA("{\"type\":\"number\",\"minimum\":-1.5,\"maximum\":2e42}");
    ACCEPT(g, "-1"); ACCEPT(g, "1000000.5"); REJECT(g, "-2");
    ll_grammar_free(g);

    // What a grammar cannot enforce is named, not dropped.
    SCHEMA_WARNS("{\"type\":\"array\",\"uniqueItems\":true}", "'uniqueItems' is not enforced");
    SCHEMA_WARNS("{\"properties\":{\"a\":{\"not\":{\"type\":\"null\"}}}}", "a: 'not' is not enforced");
    SCHEMA_WARNS("{\"type\":\"string\",\"format\":\"color\"}", "format 'color'");
    SCHEMA_WARNS("{\"type\":\"integer\",\"multipleOf\":3}", "'multipleOf'");
    SCHEMA_WARNS("{\"items\":{\"type\":\"integer\"},\"contains\":{\"const\":1}}", "'contains' next to items");
    SCHEMA_WARNS("{\"contains\":{\"const\":1},\"maxContains\":2}", "'maxContains'");
    SCHEMA_WARNS("{\"type\":\"string\",\"pattern\":\"^a+$\",\"maxLength\":3}", "maxLength next to pattern");
    SCHEMA_WARNS("{\"type\":\"object\",\"minProperties\":1,\"title\":\"t\",\"description\":\"d\"}", NULL);
}

static void test_schema(void) {
    ll_grammar *g;

    // Objects: properties in schema order, required, additionalProperties default false.
    g = SCHEMA("{\"type\":\"object\",\"properties\":{\"b\":{\"type\":\"string\"},\"a\":{\"type\":\"integer\"},"
               "\"c\":{\"type\":\"boolean\"}},\"required\":[\"a\"]}");
    ACCEPT(g, "{\"a\":1}");
    ACCEPT(g, "{\"b\":\"x\",\"a\":1}");
    ACCEPT(g, "{ \"b\" : \"x\" , \"a\" : -5 , \"c\" : true }");
    ACCEPT(g, "{\"a\":1,\"c\":false}");
    REJECT(g, "{\"a\":1,\"b\":\"x\"}");   // order as in the schema
    REJECT(g, "{\"b\":\"x\"}");           // a is required
    REJECT(g, "{\"a\":1,\"d\":2}");       // no additional properties by default
    REJECT(g, "{\"a\":1,}");
    REJECT(g, "{\"a\":1} ");              // nothing after the value
    ll_grammar_free(g);

    // additionalProperties: a schema; extra keys never repeat a declared name.
    g = SCHEMA("{\"properties\":{\"ab\":{\"type\":\"null\"}},\"additionalProperties\":{\"type\":\"number\"}}");
    ACCEPT(g, "{}");
    ACCEPT(g, "{\"ab\":null,\"x\":1.5,\"a\":2,\"abc\":3}");
    ACCEPT(g, "{\"\":0}");
    REJECT(g, "{\"ab\":null,\"ab\":1}");
    REJECT(g, "{\"ab\":1}");
    REJECT(g, "{\"x\":\"s\"}");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"object\",\"additionalProperties\":true}");
    ACCEPT(g, "{\"k\":[1,{\"z\":null}],\"é\":\"\\u00e9\"}");
    REJECT(g, "{\"k\"}");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"object\",\"additionalProperties\":false}");
    ACCEPT(g, "{}"); ACCEPT(g, "{ }"); REJECT(g, "{\"a\":1}");
    ll_grammar_free(g);
    // A required name without a declared schema takes any value.
    g = SCHEMA("{\"type\":\"object\",\"properties\":{\"a\":{\"const\":1}},\"required\":[\"z\"]}");
    ACCEPT(g, "{\"z\":[true]}"); ACCEPT(g, "{\"a\":1,\"z\":{}}"); REJECT(g, "{\"a\":1}");
    ll_grammar_free(g);
    // Keys with characters JSON escapes.
    g = SCHEMA("{\"properties\":{\"q\\\"k\\\\\":{\"type\":\"integer\"}},\"required\":[\"q\\\"k\\\\\"]}");
    ACCEPT(g, "{\"q\\\"k\\\\\":7}"); REJECT(g, "{\"qk\":7}");
    ll_grammar_free(g);

    // Arrays: items, minItems, maxItems, prefixItems (closed tuple unless items allows more).
    g = SCHEMA("{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":3}");
    ACCEPT(g, "[1,2]"); ACCEPT(g, "[ 1 , 2 , 3 ]"); REJECT(g, "[1]"); REJECT(g, "[1,2,3,4]");
    REJECT(g, "[1,\"2\"]"); REJECT(g, "[]");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"array\"}");
    ACCEPT(g, "[]"); ACCEPT(g, "[1,\"a\",[null]]"); REJECT(g, "[1,]");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"array\",\"maxItems\":0}");
    ACCEPT(g, "[]"); ACCEPT(g, "[ ]"); REJECT(g, "[1]");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1}");
    ACCEPT(g, "[\"\"]"); ACCEPT(g, "[\"a\",\"b\",\"c\",\"d\"]"); REJECT(g, "[]");
    ll_grammar_free(g);
    g = SCHEMA("{\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}");
    ACCEPT(g, "[1,\"a\"]"); REJECT(g, "[1]"); REJECT(g, "[1,\"a\",2]"); REJECT(g, "[\"a\",1]");
    ll_grammar_free(g);
    g = SCHEMA("{\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"string\"}],\"items\":{\"type\":\"null\"},"
               "\"minItems\":1,\"maxItems\":4}");
    ACCEPT(g, "[1]"); ACCEPT(g, "[1,\"a\"]"); ACCEPT(g, "[1,\"a\",null,null]");
    REJECT(g, "[1,\"a\",null,null,null]"); REJECT(g, "[1,null]"); REJECT(g, "[]");
    ll_grammar_free(g);
    g = SCHEMA("{\"items\":[{\"const\":\"x\"}],\"additionalItems\":false}"); // draft-07 tuple
    ACCEPT(g, "[\"x\"]"); REJECT(g, "[\"x\",\"x\"]");
    ll_grammar_free(g);

    // Strings: lengths (in characters, an escape is one), formats, patterns.
    g = SCHEMA("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}");
    ACCEPT(g, "\"ab\""); ACCEPT(g, "\"日本語\""); ACCEPT(g, "\"\\n\\u0041\""); REJECT(g, "\"a\"");
    REJECT(g, "\"abcd\""); REJECT(g, "\"a\nb\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"maxLength\":0}");
    ACCEPT(g, "\"\""); REJECT(g, "\"a\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"format\":\"date\"}");
    ACCEPT(g, "\"2024-02-29\""); REJECT(g, "\"2024-2-29\""); REJECT(g, "\"2024-13-01\""); REJECT(g, "\"2024-01-32\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"format\":\"time\"}");
    ACCEPT(g, "\"23:59:59Z\""); ACCEPT(g, "\"08:00:00.123+05:30\""); REJECT(g, "\"24:00:00Z\""); REJECT(g, "\"08:00Z\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"format\":\"date-time\"}");
    ACCEPT(g, "\"1999-12-31T23:59:59-01:00\""); REJECT(g, "\"1999-12-31 23:59:59Z\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"format\":\"uuid\"}");
    ACCEPT(g, "\"123e4567-e89b-12d3-a456-426614174000\""); REJECT(g, "\"123e4567e89b12d3a456426614174000\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d{3}(?:x|yz)?$\"}");
    ACCEPT(g, "\"AB-123\""); ACCEPT(g, "\"QQ-000yz\""); REJECT(g, "\"AB-123y\""); REJECT(g, "\"Ab-123\"");
    REJECT(g, "\"AB-123 \"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"pattern\":\"b+c\"}"); // unanchored: search semantics
    ACCEPT(g, "\"xxbbcyy\""); ACCEPT(g, "\"bc\""); REJECT(g, "\"xxcyy\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"pattern\":\"^[^a-c]*\\\\.[\\\"\\\\\\\\]\\\\w+$\"}"); // ^[^a-c]*\.["\\]\w+$
    ACCEPT(g, "\"xyz.\\\"A_1\""); ACCEPT(g, "\".\\\\b\""); REJECT(g, "\"a.\\\"b\""); REJECT(g, "\"x.\\\"\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"string\",\"pattern\":\"^(ab)*$\"}"); // empty repetition
    ACCEPT(g, "\"\""); ACCEPT(g, "\"abab\""); REJECT(g, "\"aba\"");
    ll_grammar_free(g);
    SCHEMA_ERR("{\"type\":\"string\",\"pattern\":\"^(?=a)b$\"}", "unsupported group");
    SCHEMA_ERR("{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}", "unsupported escape");

    // Integers: exact digit ranges.
    g = SCHEMA("{\"type\":\"integer\",\"minimum\":456}");
    ACCEPT(g, "456"); ACCEPT(g, "457"); ACCEPT(g, "460"); ACCEPT(g, "500"); ACCEPT(g, "999"); ACCEPT(g, "1000");
    ACCEPT(g, "123456789");
    REJECT(g, "455"); REJECT(g, "450"); REJECT(g, "99"); REJECT(g, "0"); REJECT(g, "-456"); REJECT(g, "0456");
    REJECT(g, "456.0");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"integer\",\"minimum\":-13,\"maximum\":207}");
    for (int v = -30; v <= 300; v++) {
        char b[16];
        snprintf(b, sizeof b, "%d", v);
        expect(g, b, v >= -13 && v <= 207, __LINE__);
    }
    REJECT(g, "-0"); REJECT(g, "007");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":100}");
    ACCEPT(g, "1"); ACCEPT(g, "99"); REJECT(g, "0"); REJECT(g, "100");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"integer\",\"maximum\":-10}");
    ACCEPT(g, "-10"); ACCEPT(g, "-1000"); REJECT(g, "-9"); REJECT(g, "5");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"integer\",\"minimum\":5,\"exclusiveMinimum\":true}"); // draft-04 style
    ACCEPT(g, "6"); REJECT(g, "5");
    ll_grammar_free(g);
    SCHEMA_ERR("{\"type\":\"integer\",\"minimum\":5,\"maximum\":4}", "no integer");

    // Numbers: bounds exact for integer bounds, fractions allowed, no exponent when bounded.
    g = SCHEMA("{\"type\":\"number\",\"minimum\":-2,\"exclusiveMaximum\":3}");
    ACCEPT(g, "-2"); ACCEPT(g, "-2.000"); ACCEPT(g, "-1.5"); ACCEPT(g, "0"); ACCEPT(g, "2.999");
    REJECT(g, "-2.001"); REJECT(g, "3"); REJECT(g, "3.0"); REJECT(g, "-3");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"number\",\"exclusiveMinimum\":0}");
    ACCEPT(g, "0.001"); ACCEPT(g, "12"); REJECT(g, "0"); REJECT(g, "0.000"); REJECT(g, "-1");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"number\"}");
    ACCEPT(g, "-0.5e-3"); ACCEPT(g, "10E+2"); REJECT(g, "1."); REJECT(g, "+1"); REJECT(g, "01");
    ll_grammar_free(g);

    // boolean, null, const, enum.
    g = SCHEMA("{\"type\":\"boolean\"}");
    ACCEPT(g, "true"); ACCEPT(g, "false"); REJECT(g, "null");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":\"null\"}");
    ACCEPT(g, "null"); REJECT(g, "0");
    ll_grammar_free(g);
    g = SCHEMA("{\"const\":{\"a\":[1,\"x\\\"y\"]}}");
    ACCEPT(g, "{\"a\":[1,\"x\\\"y\"]}"); REJECT(g, "{\"a\":[1,\"xy\"]}");
    ll_grammar_free(g);
    g = SCHEMA("{\"enum\":[\"red\",null,3.5,[true]]}");
    ACCEPT(g, "\"red\""); ACCEPT(g, "null"); ACCEPT(g, "3.5"); ACCEPT(g, "[true]"); REJECT(g, "\"blue\"");
    ll_grammar_free(g);

    // anyOf, oneOf, allOf, type arrays.
    g = SCHEMA("{\"anyOf\":[{\"type\":\"integer\",\"maximum\":3},{\"type\":\"string\",\"maxLength\":1}]}");
    ACCEPT(g, "3"); ACCEPT(g, "\"a\""); REJECT(g, "4"); REJECT(g, "\"ab\"");
    ll_grammar_free(g);
    g = SCHEMA("{\"oneOf\":[{\"type\":\"null\"},{\"type\":\"array\",\"maxItems\":1}]}");
    ACCEPT(g, "null"); ACCEPT(g, "[1]"); REJECT(g, "[1,2]");
    ll_grammar_free(g);
    g = SCHEMA("{\"allOf\":[{\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]},"
               "{\"$ref\":\"#/definitions/B\"}],\"definitions\":{\"B\":{\"properties\":{\"b\":{\"type\":\"null\"}},"
               "\"required\":[\"b\"]}}}");
    ACCEPT(g, "{\"a\":1,\"b\":null}"); REJECT(g, "{\"a\":1}"); REJECT(g, "{\"b\":null}");
    ll_grammar_free(g);
    g = SCHEMA("{\"type\":[\"string\",\"null\",\"integer\"],\"maxLength\":2,\"minimum\":10}");
    ACCEPT(g, "\"ab\""); ACCEPT(g, "null"); ACCEPT(g, "10"); REJECT(g, "\"abc\""); REJECT(g, "9"); REJECT(g, "true");
    ll_grammar_free(g);

    // $ref: $defs, definitions, nested refs, recursion, refs to refs.
    g = SCHEMA("{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"$ref\":\"#/$defs/val\"},"
               "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}},\"required\":[\"v\"]},"
               "\"val\":{\"$ref\":\"#/$defs/small\"},\"small\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":9}},"
               "\"$ref\":\"#/$defs/node\"}");
    ACCEPT(g, "{\"v\":1}"); ACCEPT(g, "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":3,\"kids\":[]}]},{\"v\":0}]}");
    REJECT(g, "{\"v\":10}"); REJECT(g, "{\"v\":1,\"kids\":[{\"kids\":[]}]}");
    ll_grammar_free(g);

    // Unconstrained schemas accept any JSON value.
    g = SCHEMA("{}");
    ACCEPT(g, "1"); ACCEPT(g, "\"s\""); ACCEPT(g, "{\"a\":[null,{}]}"); REJECT(g, "nul");
    ll_grammar_free(g);
    g = SCHEMA("true");
    ACCEPT(g, "[]");
    ll_grammar_free(g);

    SCHEMA_ERR("{\"type\":\"object\"", "not valid JSON");
    SCHEMA_ERR("{\"type\":\"strin\"}", "unknown type 'strin'");
    SCHEMA_ERR("{\"$ref\":\"#/$defs/missing\"}", "does not resolve");
    SCHEMA_ERR("{\"$ref\":\"http://example.com/s.json\"}", "only local $ref");
    SCHEMA_ERR("false", "matches nothing");
    SCHEMA_ERR("{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", "minItems");
    SCHEMA_ERR("{\"enum\":[]}", "enum");
}

// ---- the sampler constraint on a real vocabulary -----------------------------------------------

static uint64_t rng_state = 88172645463325252ull;
static float frand(void) { // xorshift64*, uniform in [0, 1)
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ull) >> 40) / (float)(1 << 24);
}

// Generates with random logits under grammar text gbnf; checks at every step that the full
// mask (ll_sampler_probs) and the per-token check agree on every token, that end tokens are
// allowed exactly where the grammar can end, and that the output, once complete, matches.
static void constrained_run(const ll_vocab *v, const char *gbnf, int steps, int full_checks,
                            bool boost_end, int line) {
    char err[256];
    ll_grammar *g = ll_grammar_parse(gbnf, err, sizeof err);
    CHECK(g != NULL, "line %d: %s", line, err);
    if (!g) return;
    int32_t nv = ll_vocab_n_tokens(v);
    ll_sampler_params sp = ll_sampler_default_params();
    sp.temp = 1.0f; sp.top_k = 0; sp.top_p = 1.0f; sp.min_p = 0.0f; sp.seed = 1234;
    ll_sampler *s = ll_sampler_new(&sp, nv);
    CHECK(ll_sampler_set_grammar(s, v, g, err, sizeof err) == 0, "line %d: %s", line, err);
    float *logits = malloc((size_t)nv * sizeof *logits), *probs = malloc((size_t)nv * sizeof *probs);
    char *text = calloc(1, 1 << 16);
    size_t len = 0;
    const ll_sampler_constraint *c = ll_sampler_get_constraint(s);
    CHECK(c && c->check, "line %d: grammar constraint with a check hook", line);
    int step = 0;
    for (; step < steps && c; step++) {
        ll_grammar_status st = ll_sampler_grammar_status(s);
        CHECK(st == LL_GRAMMAR_MORE || st == LL_GRAMMAR_CAN_END || st == LL_GRAMMAR_DONE,
              "line %d: status %d", line, (int)st);
        if (st == LL_GRAMMAR_DONE) break;
        for (int32_t i = 0; i < nv; i++) logits[i] = 4.0f * frand();
        if (boost_end) {
            // Favour closing characters so that runs finish.
            for (int32_t i = 0; i < nv; i++) {
                char b[64];
                int k = ll_token_to_piece(v, i, b, sizeof b, false);
                if (k > 0 && memchr("\"]}", b[k - 1], 3)) logits[i] += 3.0f;
            }
        }
        if (step < full_checks) {
            ll_sampler_probs(s, logits, probs);
            int n_allowed = 0, mismatch = 0;
            for (int32_t t = 0; t < nv; t++) {
                bool masked = probs[t] > 0.0f, checked = c->check(c->ud, t);
                n_allowed += masked;
                if (masked != checked && mismatch++ < 3)
                    CHECK(false, "line %d step %d: token %d '%s' mask %d check %d", line, step, t,
                          ll_token_get_text(v, t), masked, checked);
                if (ll_vocab_is_eog(v, t))
                    CHECK(masked == (st == LL_GRAMMAR_CAN_END), "line %d: end token %d allowed=%d status %d",
                          line, t, masked, (int)st);
            }
            CHECK(n_allowed > 0, "line %d step %d: some token must be allowed", line, step);
        }
        ll_token t = ll_sampler_sample(s, logits);
        CHECK(t >= 0 && c->check(c->ud, t), "line %d step %d: sampled token %d must be allowed", line, step, t);
        if (t < 0) break;
        ll_sampler_accept(s, t);
        if (ll_vocab_is_eog(v, t)) break;
        char b[256];
        int k = ll_token_to_piece(v, t, b, sizeof b, false);
        if (k > 0 && len + (size_t)k < (1 << 16) - 1) { memcpy(text + len, b, (size_t)k); len += (size_t)k; }
    }
    ll_grammar_status st = ll_sampler_grammar_status(s);
    CHECK(st != LL_GRAMMAR_FAILED, "line %d: grammar failed", line);
    if (getenv("GRAMMAR_TEST_VERBOSE"))
        fprintf(stderr, "line %d: %d steps, status %d: %.*s\n", line, step, (int)st, (int)len, text);
    if (st == LL_GRAMMAR_DONE || st == LL_GRAMMAR_CAN_END)
        CHECK(ll_grammar_match(g, text, len), "line %d: generated text must match: %s", line, text);
    // Removing the grammar lifts every restriction.
    ll_sampler_set_grammar(s, v, NULL, NULL, 0);
    CHECK(ll_sampler_grammar_status(s) == LL_GRAMMAR_NONE, "line %d: grammar removed", line);
    free(text);
    free(logits);
    free(probs);
    ll_sampler_free(s);
    ll_grammar_free(g);
}

// With a budget of n tokens, generation under the guard always completes within n tokens
// (whenever the grammar's shortest completion fits at all), even for unbounded strings.
static void test_budget(const ll_vocab *v) {
    char *json = read_text("grammars/json.gbnf");
    char err[256];
    ll_grammar *g = json ? ll_grammar_parse(json, err, sizeof err) : NULL;
    free(json);
    CHECK(g != NULL, "json.gbnf");
    if (!g) return;
    int32_t nv = ll_vocab_n_tokens(v);
    float *logits = malloc((size_t)nv * sizeof *logits);
    for (int run = 0; run < 6; run++) {
        const int budget = 12 + 7 * run;
        ll_sampler_params sp = ll_sampler_default_params();
        sp.seed = 100 + (uint32_t)run;
        ll_sampler *s = ll_sampler_new(&sp, nv);
        CHECK(ll_sampler_set_grammar(s, v, g, err, sizeof err) == 0, "%s", err);
        char *text = calloc(1, 4096);
        size_t len = 0;
        int used = 0;
        while (used < budget && !ll_sampler_grammar_done(s)) {
            for (int32_t i = 0; i < nv; i++) logits[i] = 4.0f * frand();
            ll_sampler_grammar_set_budget(s, budget - used);
            ll_token t = ll_sampler_sample(s, logits);
            CHECK(t >= 0, "budget %d step %d: a token must be allowed", budget, used);
            if (t < 0) break;
            ll_sampler_accept(s, t);
            used++;
            if (ll_vocab_is_eog(v, t)) break;
            char b[256];
            int k = ll_token_to_piece(v, t, b, sizeof b, false);
            if (k > 0 && len + (size_t)k < 4095) { memcpy(text + len, b, (size_t)k); len += (size_t)k; }
        }
        ll_grammar_status st = ll_sampler_grammar_status(s);
        CHECK(st == LL_GRAMMAR_DONE || st == LL_GRAMMAR_CAN_END, "budget %d: incomplete after %d tokens: %s",
              budget, used, text);
        CHECK(ll_grammar_match(g, text, len), "budget %d: output must match: %s", budget, text);
        if (getenv("GRAMMAR_TEST_VERBOSE")) fprintf(stderr, "budget %d: %d tokens: %s\n", budget, used, text);
        free(text);
        ll_sampler_free(s);
    }
    // A budget too small to complete at all does not block sampling (the output will be cut).
    ll_grammar *g2 = ll_grammar_parse("root ::= \"abcdefgh\"", err, sizeof err);
    ll_sampler *s = ll_sampler_new(NULL, nv);
    CHECK(ll_sampler_set_grammar(s, v, g2, err, sizeof err) == 0, "%s", err);
    ll_sampler_grammar_set_budget(s, 2);
    for (int32_t i = 0; i < nv; i++) logits[i] = frand();
    CHECK(ll_sampler_sample(s, logits) >= 0, "an impossible budget still allows the grammar's tokens");
    ll_sampler_free(s);
    ll_grammar_free(g2);
    free(logits);
    ll_grammar_free(g);
}

static void test_ambiguous_sampling(const ll_vocab *v);

static void test_sampler(void) {
    const char *dir = test_shared_dir();
    if (!dir) { fprintf(stderr, "test_grammar: no shared data, sampler tests skipped\n"); return; }
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-llama-spm.gguf", dir);
    ll_model_params mp = ll_model_default_params();
    mp.vocab_only = true;
    char err[256];
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "%s: %s", path, err);
    if (!m) return;
    const ll_vocab *v = ll_model_get_vocab(m);
    char *json = read_text("grammars/json.gbnf");
    if (json) constrained_run(v, json, 120, 6, true, __LINE__);
    free(json);
    // Multi-byte characters split across tokens (byte tokens) and a grammar that must stop.
    constrained_run(v, "root ::= [ぁ-ゖ]{3} \"。\"", 40, 8, false, __LINE__);
    constrained_run(v, "root ::= \"{\\\"a\\\": \" [0-9]{1,3} \"}\"", 40, 8, false, __LINE__);
    // Completion: a grammar that is complete and cannot continue reports DONE.
    ll_grammar *g = ll_grammar_parse("root ::= \"ab\"", err, sizeof err);
    ll_sampler *s = ll_sampler_new(NULL, ll_vocab_n_tokens(v));
    CHECK(ll_sampler_set_grammar(s, v, g, err, sizeof err) == 0, "%s", err);
    CHECK(ll_sampler_grammar_status(s) == LL_GRAMMAR_MORE, "fresh grammar needs more");
    ll_token toks[8];
    int n = ll_tokenize(v, "ab", 2, toks, 8, false, false);
    for (int i = 0; i < n; i++) {
        char b[32];
        int k = ll_token_to_piece(v, toks[i], b, sizeof b, false);
        if (k == 3 && b[0] == ' ') toks[i] = -1; // a leading space token: not what we want
    }
    // Feed "a" then "b" as single-character tokens when the vocab has them.
    ll_token ta = -1, tb = -1;
    for (int32_t t = 0; t < ll_vocab_n_tokens(v); t++) {
        char b[8];
        int k = ll_token_to_piece(v, t, b, sizeof b, false);
        if (k == 1 && b[0] == 'a' && ta < 0 && !ll_vocab_is_control(v, t)) ta = t;
        if (k == 1 && b[0] == 'b' && tb < 0 && !ll_vocab_is_control(v, t)) tb = t;
    }
    CHECK(ta >= 0 && tb >= 0, "vocab has single-letter tokens");
    if (ta >= 0 && tb >= 0) {
        ll_sampler_accept(s, ta);
        CHECK(ll_sampler_grammar_status(s) == LL_GRAMMAR_MORE, "after 'a'");
        ll_sampler_accept(s, tb);
        CHECK(ll_sampler_grammar_done(s), "after 'ab' the grammar is done");
        // Only end tokens remain.
        float *lg = calloc((size_t)ll_vocab_n_tokens(v), sizeof *lg);
        ll_token t = ll_sampler_sample(s, lg);
        CHECK(t >= 0 && ll_vocab_is_eog(v, t), "only an end token may follow, got %d", t);
        free(lg);
        // Re-attaching restarts; a rejected token marks the grammar failed.
        CHECK(ll_sampler_set_grammar(s, v, g, err, sizeof err) == 0, "%s", err);
        ll_sampler_accept(s, tb);
        CHECK(ll_sampler_grammar_status(s) == LL_GRAMMAR_FAILED, "'b' first is rejected");
    }
    ll_sampler_free(s);
    ll_grammar_free(g);
    test_budget(v);
    test_ambiguous_sampling(v);
    ll_model_free(m);
}

// Hostile input: mutated grammars and schemas must give a grammar or an error, never a crash;
// whatever parses must survive matching random text.
static void test_mutations(void) {
    const char *files[] = { "json.gbnf", "c.gbnf", "chess.gbnf", "japanese.gbnf" };
    const char *schemas[] = {
        "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\",\"minimum\":-5,\"maximum\":1234},"
        "\"b\":{\"type\":\"string\",\"pattern\":\"^[a-z]+(x|y){2,3}\\\\d$\"},\"c\":{\"$ref\":\"#/$defs/c\"}},"
        "\"$defs\":{\"c\":{\"type\":\"array\",\"prefixItems\":[{\"enum\":[1,\"x\"]}],\"items\":{\"type\":\"number\","
        "\"exclusiveMinimum\":0.5}}},\"required\":[\"a\"],\"additionalProperties\":{\"format\":\"date\"}}",
    };
    char err[256];
    for (int f = 0; f < 5; f++) {
        char *base;
        if (f < 4) {
            char path[256];
            snprintf(path, sizeof path, "grammars/%s", files[f]);
            base = read_text(path);
        } else {
            base = malloc(strlen(schemas[0]) + 1);
            if (base) strcpy(base, schemas[0]);
        }
        if (!base) continue;
        size_t n = strlen(base);
        char *buf = malloc(n + 1);
        for (int it = 0; it < 300 && buf; it++) {
            memcpy(buf, base, n + 1);
            int edits = 1 + (int)(frand() * 4);
            for (int e = 0; e < edits; e++) {
                size_t at = (size_t)(frand() * (float)n);
                const char pool[] = "()[]{}|*+?.\"\\:=#\n -^x09,$\xC3\xA9\xFF";
                buf[at] = pool[(size_t)(frand() * (sizeof pool - 1))];
            }
            if (frand() < 0.2f) buf[(size_t)(frand() * (float)n)] = 0; // truncation
            ll_grammar *g = NULL;
            if (f < 4) {
                g = ll_grammar_parse(buf, err, sizeof err);
                CHECK(g || (err[0] >= '1' && err[0] <= '9' && strchr(err, ':')), "error has a position: %s", err);
            } else {
                char *gb = ll_json_schema_to_gbnf(buf, err, sizeof err);
                CHECK(gb || err[0], "schema error has a message");
                if (gb) {
                    g = ll_grammar_parse(gb, err, sizeof err);
                    CHECK(g != NULL, "a converted schema must parse: %s\n%s", err, gb);
                    free(gb);
                }
            }
            if (g) {
                char text[64];
                for (int k = 0; k < 8; k++) {
                    size_t len = (size_t)(frand() * 63);
                    for (size_t i = 0; i < len; i++) text[i] = (char)(frand() * 256);
                    ll_grammar_match(g, text, len);
                }
                ll_grammar_free(g);
            }
        }
        free(buf);
        free(base);
    }
}

// An ambiguous grammar whose partial parses multiply with every byte (nested options and
// repetitions over any character, found by fuzz_gbnf: 8.6 million stacks after 16 bytes):
// the matcher stops at GR_MAX_STACKS and says it cannot tell, instead of exponential time
// and memory; ordinary matches are unaffected.
static void ambiguous_grammar(char g[1024]) {
    strcpy(g, "root ::= (\"yz\"");
    for (int i = 0; i < 24; i++) strcat(g, "?");
    strcat(g, ".........");
    for (int i = 0; i < 30; i++) strcat(g, "+");
    for (int i = 0; i < 52; i++) strcat(g, ".");
    for (int i = 0; i < 4; i++) strcat(g, "?"); // (no "??" in literals: C11 reads trigraphs)
    strcat(g, ".");
    for (int i = 0; i < 7; i++) strcat(g, "?");
    strcat(g, "){2,6} .");
    for (int i = 0; i < 11; i++) strcat(g, "?");
    for (int i = 0; i < 80; i++) strcat(g, ".");
}

static void test_ambiguous(void) {
    char g[1024], err[256];
    ambiguous_grammar(g);
    ll_grammar *gr = ll_grammar_parse(g, err, sizeof err);
    CHECK(gr != NULL, "ambiguous grammar: %s", err);
    if (!gr) return;
    const char s[] = "\0\0\0\0\0\0\t\0\0bb$xzy!";
    CHECK(ll_grammar_match_status(gr, s, sizeof s - 1) == -1, "too ambiguous: not reported");
    CHECK(!ll_grammar_match(gr, s, sizeof s - 1), "too ambiguous: accepted");
    ll_grammar_free(gr);
    gr = ll_grammar_parse("root ::= [a-z]+ (\",\" [a-z]+)*", err, sizeof err);
    CHECK(gr && ll_grammar_match_status(gr, "abc,de", 6) == 1 && ll_grammar_match_status(gr, "abc,", 4) == 0,
          "an ordinary grammar's verdicts");
    ll_grammar_free(gr);
}

// Sampling under that grammar: after one byte no token can be judged in bounded time (the
// walk over the vocabulary passes GR_MAX_STACKS or the work bound), and the sampler says that
// the grammar is too ambiguous instead of "allows no token" (or minutes a token).
static void test_ambiguous_sampling(const ll_vocab *v) {
    char g[1024], err[256];
    ambiguous_grammar(g);
    ll_grammar *gr = ll_grammar_parse(g, err, sizeof err);
    const int32_t nv = ll_vocab_n_tokens(v);
    ll_token nul = -1; // the byte token <0x00>
    for (int32_t t = 0; t < nv && nul < 0; t++) {
        const char *text = ll_token_get_text(v, t);
        if (text && !strcmp(text, "<0x00>")) nul = t;
    }
    CHECK(gr && nul >= 0, "ambiguous grammar and the vocab's <0x00>");
    if (!gr || nul < 0) { ll_grammar_free(gr); return; }
    ll_sampler_params sp = ll_sampler_default_params();
    sp.temp = 0;
    ll_sampler *s = ll_sampler_new(&sp, nv);
    CHECK(ll_sampler_set_grammar(s, v, gr, err, sizeof err) == 0, "%s", err);
    ll_sampler_accept(s, nul);
    float *lg = calloc((size_t)nv, sizeof *lg);
    ll_token t = ll_sampler_sample(s, lg);
    const char *why = ll_sampler_grammar_why(s);
    CHECK(t < 0 && strstr(why, "too ambiguous"), "ambiguous grammar while sampling: token %d, '%s'", t, why);
    free(lg);
    ll_sampler_free(s);
    ll_grammar_free(gr);
    // An ordinary grammar that allows nothing more says so.
    gr = ll_grammar_parse("root ::= \"a\"", err, sizeof err);
    s = ll_sampler_new(&sp, nv);
    CHECK(ll_sampler_set_grammar(s, v, gr, err, sizeof err) == 0, "%s", err);
    CHECK(strstr(ll_sampler_grammar_why(s), "allows no token") != NULL, "plain 'allows no token'");
    ll_sampler_free(s);
    ll_grammar_free(gr);
}

int main(void) {
    test_constructs();
    test_errors();
    test_deep();
    test_shipped();
    test_schema();
    test_schema_more();
    test_mutations();
    test_sampler();
    test_ambiguous();
    return test_result("test_grammar");
}
