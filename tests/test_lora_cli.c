// LoRA on the command line ($LLAMALITE_BIN):
// - `llamalite trace -m mixed-base-q8_0 --lora lora-rank8` against the reference's golden
//   trace (the free-running policy of test_trace_golden.c for the chaotic random models: same
//   tokens until a near tie, top-8 logits within 5%, mean under 1%);
// - trace --lora-scaled F 0 is byte-identical to no adapter, and F twice at 0.5 to F at 1;
// - export-lora, then trace of the merged model against trace with the adapter (stories260K,
//   F32 cache: tight), and its errors;
// - one-shot runs and the REPL: /lora lists, /lora scale N S re-evaluates the conversation;
// - errors: one line, exit status 1.
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/gguf/gguf.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

#define MAX_TOK 512
#define MAX_STEPS 128
#define TOP 8

static char g_dir[4096];
static const char *g_bin;

// ---- running the binary ---------------------------------------------------------------------

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

// Runs BIN with args (NULL-terminated), stdin from in_text (NULL: /dev/null). Returns the exit
// status; *out and *err (malloc'd) get stdout and stderr.
static int run(const char *in_text, char **out, char **err, const char *const *args) {
    char in_path[4200], out_path[4200], err_path[4200];
    snprintf(in_path, sizeof in_path, "%s/stdin", g_dir);
    snprintf(out_path, sizeof out_path, "%s/stdout", g_dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", g_dir);
    FILE *f = fopen(in_path, "wb");
    if (f) {
        if (in_text) fputs(in_text, f);
        fclose(f);
    }
    const char *argv[64];
    int n = 0;
    argv[n++] = g_bin;
    for (int i = 0; args[i] && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fi = open(in_path, O_RDONLY), fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644),
            fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(g_bin, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    *out = read_all(out_path);
    *err = read_all(err_path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

// ---- the golden trace -----------------------------------------------------------------------

typedef struct {
    char prompt[4096];
    int n_prompt;
    int prompt_tok[MAX_TOK];
    int n_steps;
    int token[MAX_STEPS];
    int top_id[MAX_STEPS][TOP];
    float top_logit[MAX_STEPS][TOP];
} trace;

static const char *skip_ws(const char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    return s;
}

// One JSON line of the golden / trace format; the prompt is unescaped (\n \t \" \\ only).
static bool parse_trace(const char *line, trace *g) {
    memset(g, 0, sizeof *g);
    const char *s = strstr(line, "\"prompt\"");
    if (!s || !(s = strchr(s + 8, '"'))) return false;
    size_t k = 0;
    for (s++; *s && *s != '"'; s++) {
        char c = *s;
        if (c == '\\' && s[1]) {
            s++;
            c = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
        }
        if (k + 1 < sizeof g->prompt) g->prompt[k++] = c;
    }
    if (!(s = strstr(s, "\"prompt_tokens\"")) || !(s = strchr(s, '['))) return false;
    s++;
    while (*(s = skip_ws(s)) && *s != ']') {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s || g->n_prompt >= MAX_TOK) return false;
        g->prompt_tok[g->n_prompt++] = (int)v;
        s = skip_ws(e);
        if (*s == ',') s++;
    }
    if (!(s = strstr(s, "\"steps\""))) return false;
    while (g->n_steps < MAX_STEPS && (s = strstr(s, "\"token\"")) != NULL) {
        int j = g->n_steps;
        if (!(s = strchr(s, ':'))) return false;
        g->token[j] = (int)strtol(s + 1, NULL, 10);
        if (!(s = strstr(s, "\"top\"")) || !(s = strchr(s, '['))) return false;
        s++;
        for (int t = 0; t < TOP; t++) {
            char *e;
            if (!(s = strchr(s, '['))) return false;
            g->top_id[j][t] = (int)strtol(s + 1, &e, 10);
            if (!(s = strchr(e, ','))) return false;
            g->top_logit[j][t] = strtof(s + 1, &e);
            s = e;
        }
        g->n_steps++;
    }
    return g->n_prompt > 0 && g->n_steps > 0;
}

// Ours against the reference, free-running: same prompt tokens; same token at every step until
// a near tie (reference's logit for our pick within rel of its top), which ends the comparison;
// each reference top-8 logit we also rank within rel (or 0.05).
static void compare_traces(const trace *ref, const trace *ours, double rel, double mean_max, const char *tag) {
    CHECK(ref->n_prompt == ours->n_prompt && !memcmp(ref->prompt_tok, ours->prompt_tok, sizeof(int) * ref->n_prompt),
          "%s: prompt tokens differ", tag);
    CHECK(ours->n_steps == ref->n_steps, "%s: %d steps, reference %d", tag, ours->n_steps, ref->n_steps);
    double sum = 0, mx = 0;
    int n = 0, steps = 0;
    for (int k = 0; k < ref->n_steps && k < ours->n_steps; k++) {
        steps++;
        for (int j = 0; j < TOP; j++) {
            for (int q = 0; q < TOP; q++) {
                if (ours->top_id[k][q] != ref->top_id[k][j]) continue;
                double r = fabs(ours->top_logit[k][q] - ref->top_logit[k][j]) / fabs(ref->top_logit[k][j]);
                CHECK(r <= rel || fabs(ours->top_logit[k][q] - ref->top_logit[k][j]) <= 0.05,
                      "%s step %d: logit of %d is %.4f, reference %.4f", tag, k, ref->top_id[k][j],
                      ours->top_logit[k][q], ref->top_logit[k][j]);
                sum += r;
                n++;
                if (r > mx) mx = r;
            }
        }
        if (ours->token[k] != ref->token[k]) {
            double pick = -1e30;
            for (int j = 0; j < TOP; j++)
                if (ref->top_id[k][j] == ours->token[k]) pick = ref->top_logit[k][j];
            bool tie = ref->top_logit[k][0] - pick <= rel * fabs(ref->top_logit[k][0]);
            CHECK(tie, "%s step %d: token %d, reference %d", tag, k, ours->token[k], ref->token[k]);
            printf("%s: near tie at step %d (%.4f vs %.4f), compared %d steps\n", tag, k, pick,
                   ref->top_logit[k][0], steps);
            break;
        }
    }
    double mean = n ? sum / n : 0;
    CHECK(mean <= mean_max, "%s: mean relative error %.4f above %.4f", tag, mean, mean_max);
    printf("%-34s %d steps, max rel err %.2e, mean %.2e\n", tag, steps, mx, mean);
}

// ---- a stories260K adapter ------------------------------------------------------------------

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((float)((*s >> 8) & 0xFFFF) / 65536.0f - 0.5f) * 3.4641f;
}

// Random rank-8 pairs for every matrix of base (token_embd flipped), F32, alpha 16.
static bool write_adapter(const char *base, const char *path, float std) {
    char err[512];
    gguf_file *f = gguf_open(base, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (!f) return false;
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "general.type", "adapter");
    gguf_writer_set_str(w, "adapter.type", "lora");
    gguf_writer_set_f32(w, "adapter.lora.alpha", 16.0f);
    float **bufs = calloc(2 * (size_t)gguf_n_tensors(f), sizeof *bufs);
    int nb = 0;
    unsigned seed = 11;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        if (t->n_dims != 2) continue;
        const bool embd = !strcmp(t->name, "token_embd.weight");
        int64_t a[2] = {embd ? 8 : t->ne[0], embd ? t->ne[1] : 8}, b[2] = {8, embd ? t->ne[0] : t->ne[1]};
        const int64_t *dims[2] = {a, b};
        for (int k = 0; k < 2; k++) {
            size_t n = (size_t)dims[k][0] * dims[k][1];
            float *v = bufs[nb++] = malloc(n * sizeof(float));
            for (size_t q = 0; q < n; q++) v[q] = frand(&seed) * std;
            char name[128];
            snprintf(name, sizeof name, "%s.lora_%c", t->name, k ? 'b' : 'a');
            gguf_writer_add_tensor(w, name, GL_TYPE_F32, 2, dims[k], v, n * sizeof(float));
        }
    }
    bool ok = gguf_writer_write(w, path, err, sizeof err);
    CHECK(ok, "%s", err);
    gguf_writer_free(w);
    for (int i = 0; i < nb; i++) free(bufs[i]);
    free(bufs);
    gguf_close(f);
    return ok;
}

// ---- checks ---------------------------------------------------------------------------------

static void expect_fail(const char *what, const char *needle, const char *const *args) {
    char *out, *err;
    int rc = run(NULL, &out, &err, args);
    size_t n = strlen(err);
    bool one_line = n > 0 && err[n - 1] == '\n' && !memchr(err, '\n', n - 1);
    CHECK(rc == 1 && one_line && !strncmp(err, "llamalite: ", 11) && strstr(err, needle),
          "%s: exit %d, stderr '%s' (want one line with '%s')", what, rc, err, needle);
    CHECK(out[0] == 0, "%s: wrote to stdout", what);
    printf("%-34s -> %s", what, err);
    free(out);
    free(err);
}

static void test_golden_trace(const char *shared) {
    char base[1024], lora[1024], gpath[1024], n_str[16];
    snprintf(base, sizeof base, "%s/models/mixed-base-q8_0.gguf", shared);
    snprintf(lora, sizeof lora, "%s/models/lora-rank8.gguf", shared);
    snprintf(gpath, sizeof gpath, "%s/golden/mixed-base-q8_0+lora.jsonl", shared);
    FILE *f = fopen(gpath, "rb");
    CHECK(f != NULL, "cannot open %s", gpath);
    if (!f) return;
    static char line[1 << 20];
    static trace ref, ours;
    int n_cases = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strchr(line, '{')) continue;
        CHECK(parse_trace(line, &ref), "golden line %d", n_cases + 1);
        snprintf(n_str, sizeof n_str, "%d", ref.n_steps);
        char *out, *err;
        // in the golden's attention mode (random weights: tests/golden_file.h)
        const char *args[] = {"trace", "-m", base, "--lora", lora, "-p", ref.prompt, "-n", n_str, "-fa", "off", NULL};
        int rc = run(NULL, &out, &err, args);
        CHECK(rc == 0 && parse_trace(out, &ours), "trace failed (%d): %s", rc, err);
        char tag[64];
        snprintf(tag, sizeof tag, "trace --lora case %d", n_cases);
        if (rc == 0) compare_traces(&ref, &ours, 0.05, 0.01, tag);
        free(out);
        free(err);
        n_cases++;
    }
    fclose(f);
    CHECK(n_cases == 2, "%d golden cases", n_cases);
}

// Two runs must print byte-identical stdout.
static void expect_same(const char *what, const char *const *a, const char *const *b, bool same) {
    char *oa, *ea, *ob, *eb;
    int ra = run(NULL, &oa, &ea, a), rb = run(NULL, &ob, &eb, b);
    CHECK(ra == 0 && rb == 0 && oa[0], "%s: exit %d / %d: %s%s", what, ra, rb, ea, eb);
    CHECK((strcmp(oa, ob) == 0) == same, "%s: outputs %s", what, same ? "differ" : "are the same");
    printf("%-34s ok\n", what);
    free(oa);
    free(ea);
    free(ob);
    free(eb);
}

int main(void) {
    const char *shared = test_shared_dir();
    g_bin = getenv("LLAMALITE_BIN");
    if (!shared || !g_bin || access(g_bin, X_OK) != 0) return TEST_SKIP;
    if (!scratch_dir_make(g_dir, sizeof g_dir, "test_lora_cli")) return 1;
    static char st[1024], big[4200], small[4200], merged[4200], mixed[1024], lora8[1024];
    snprintf(st, sizeof st, "%s/models/stories260K.gguf", shared);
    snprintf(mixed, sizeof mixed, "%s/models/mixed-base-q8_0.gguf", shared);
    snprintf(lora8, sizeof lora8, "%s/models/lora-rank8.gguf", shared);
    snprintf(big, sizeof big, "%s/big.gguf", g_dir);
    snprintf(small, sizeof small, "%s/small.gguf", g_dir);
    snprintf(merged, sizeof merged, "%s/merged.gguf", g_dir);
    if (!write_adapter(st, big, 0.1f) || !write_adapter(st, small, 0.03f)) return test_result("test_lora_cli");

    test_golden_trace(shared);

    // trace: scale 0 is the base; twice at 0.5 is once at 1 (bitwise)
    const char *p = "Once upon a time";
    {
        const char *a[] = {"trace", "-m", mixed, "-p", p, "-n", "12", NULL};
        const char *b[] = {"trace", "-m", mixed, "--lora-scaled", lora8, "0", "-p", p, "-n", "12", NULL};
        expect_same("trace: scale 0 == no adapter", a, b, true);
        const char *c[] = {"trace", "-m", mixed, "--lora", lora8, "-p", p, "-n", "12", NULL};
        const char *d[] = {"trace", "-m", mixed, "--lora-scaled", lora8, "0.5", "--lora-scaled", lora8, "0.5",
                           "-p", p, "-n", "12", NULL};
        expect_same("trace: 2 x 0.5 == 1 x 1", c, d, true);
        expect_same("trace: the adapter changes it", a, c, false);
    }

    // export-lora, then the merged model traces as the adapter does (F32 model and cache)
    {
        char *out, *err;
        const char *e[] = {"export-lora", "-m", st, "--lora", small, "-o", merged, NULL};
        int rc = run(NULL, &out, &err, e);
        CHECK(rc == 0 && strstr(err, "37 merged"), "export-lora: %d %s", rc, err);
        free(out);
        free(err);
        static trace tm, tr;
        const char *a[] = {"trace", "-m", merged, "-p", p, "-n", "32", "-ctk", "f32", "-ctv", "f32", NULL};
        const char *b[] = {"trace", "-m", st, "--lora", small, "-p", p, "-n", "32", "-ctk", "f32", "-ctv", "f32", NULL};
        char *oa, *ea, *ob, *eb;
        int ra = run(NULL, &oa, &ea, a), rb = run(NULL, &ob, &eb, b);
        CHECK(ra == 0 && rb == 0 && parse_trace(oa, &tm) && parse_trace(ob, &tr), "traces: %s %s", ea, eb);
        if (ra == 0 && rb == 0) compare_traces(&tr, &tm, 1e-4, 1e-5, "merged vs --lora (stories F32)");
        free(oa);
        free(ea);
        free(ob);
        free(eb);
    }

    // one-shot generation
    {
        const char *a[] = {"-m", st, "-p", p, "-n", "24", "--temp", "0", "--log-disable", NULL};
        const char *b[] = {"-m", st, "-p", p, "-n", "24", "--temp", "0", "--log-disable", "--lora-scaled", big, "0", NULL};
        const char *c[] = {"-m", st, "-p", p, "-n", "24", "--temp", "0", "--log-disable", "--lora", big, NULL};
        expect_same("run: scale 0 == no adapter", a, b, true);
        expect_same("run: the adapter changes the text", a, c, false);
    }

    // the REPL (stdin a pipe: only replies and command output on stdout)
    {
        char conv[4300], in1[4400], in2[4400];
        snprintf(conv, sizeof conv, "%s/conv.json", g_dir);
        const char *plain[] = {"-m", st, "-i", "--temp", "0", "-n", "16", "--log-disable", NULL};
        const char *at0[] = {"-m", st, "-i", "--temp", "0", "-n", "16", "--log-disable", "--lora-scaled", big, "0", NULL};
        const char *at1[] = {"-m", st, "-i", "--temp", "0", "-n", "16", "--log-disable", "--lora", big, NULL};
        char *o_plain, *o_a, *o_b, *e;
        run("Once upon a time\n", &o_plain, &e, plain);
        free(e);
        // at scale 1, /lora scale 1 0 before the first turn: the base model's reply
        run("/lora scale 1 0\nOnce upon a time\n", &o_a, &e, at1);
        free(e);
        const char *r = strchr(o_a, '\n');
        CHECK(strstr(o_a, "(adapter 1 scale 0") && r && !strcmp(r + 1, o_plain), "REPL /lora scale 1 0: '%s' vs '%s'",
              o_a, o_plain);
        free(o_a);
        // /lora lists the adapter with its scale
        run("/lora\n", &o_a, &e, at0);
        CHECK(strstr(o_a, "1: ") && strstr(o_a, big) && strstr(o_a, "scale 0"), "REPL /lora: '%s'", o_a);
        free(o_a);
        free(e);
        // A turn at scale 0, the scale set to 1, a second turn: the whole conversation is evaluated
        // with the new scale, as if it had been loaded into a REPL running at scale 1.
        snprintf(in1, sizeof in1, "Once upon a time\n/save %s\n/lora scale 1 1\nThe end\n", conv);
        snprintf(in2, sizeof in2, "/load %s\nThe end\n", conv);
        run(in1, &o_a, &e, at0);
        free(e);
        run(in2, &o_b, &e, at1);
        free(e);
        const char *ta = strstr(o_a, "evaluated again"), *tb = strstr(o_b, "(loaded");
        ta = ta ? strchr(ta, '\n') : NULL;
        tb = tb ? strchr(tb, '\n') : NULL;
        CHECK(ta && tb && ta[1] && !strcmp(ta, tb), "REPL re-evaluation: '%s' vs '%s'", ta ? ta : o_a, tb ? tb : o_b);
        if (ta && tb) printf("%-34s ok\n", "REPL /lora scale re-evaluates");
        free(o_a);
        free(o_b);
        free(o_plain);
    }

    // errors
    {
        const char *a[] = {"trace", "-m", st, "--lora", "/nonexistent.gguf", "-p", p, NULL};
        expect_fail("missing adapter file", "/nonexistent.gguf", a);
        const char *b[] = {"trace", "-m", st, "--lora", lora8, "-p", p, NULL};
        expect_fail("adapter of another model", "has shape", b);
        const char *c[] = {"-m", st, "-p", p, "--lora", st, NULL};
        expect_fail("a model as adapter", "not a LoRA adapter", c);
        const char *d[] = {"-m", st, "-p", p, "--lora-scaled", big, "x", NULL};
        expect_fail("bad scale", "invalid value 'x' for --lora-scaled", d);
        const char *e[] = {"export-lora", "-m", st, "--lora", big, "-o", big, NULL};
        expect_fail("export over an input", "is one of the inputs", e);
        const char *f[] = {"export-lora", "-m", st, "-o", merged, NULL};
        expect_fail("export without adapters", "at least one adapter", f);
        const char *g[] = {"export-lora", "-m", st, "--lora", big, "-o", merged, "--type", "Q9_9", NULL};
        expect_fail("export to an unknown type", "Q9_9", g);
    }

    int rc = test_result("test_lora_cli");
    if (rc == 0) scratch_dir_remove(g_dir);
    return rc;
}
