// Grammar tests: the GBNF parser (every construct, every error class with its line:column),
// whole-string matching of the shipped grammars, JSON Schema translation (every keyword), and
// the sampler constraint against a fake vocabulary-free token set.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"
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

int main(void) {
    test_constructs();
    test_errors();
    test_shipped();
    return test_result("test_grammar");
}
