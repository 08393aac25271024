// End-to-end golden test: `llamalite trace` on every prompt of the reference golden files must
// tokenize the prompt identically, choose the same greedy token at every step, and give top-8
// logits within 2% relative or 0.05 absolute of the reference, with 1 and with 2 threads.
// Usage: test_trace_golden [MODEL-NAME ...]  (default: all four golden models)
// Needs $LLAMALITE_BIN and ../shared (else skipped).
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_util.h"

// ---- a small JSON reader (just enough for the golden format) --------------------------------
typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
    jtype t;
    double num;
    char *str;          // J_STR
    struct jval *items; // J_ARR / J_OBJ values
    char **keys;        // J_OBJ
    int n;
} jval;

static void jfree(jval *v) {
    for (int i = 0; i < v->n; i++) {
        jfree(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    memset(v, 0, sizeof *v);
}

static void skip_ws(const char **p) {
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r') (*p)++;
}

static int hex4(const char *s) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

static char *put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) *o++ = (char)cp;
    else if (cp < 0x800) { *o++ = (char)(0xC0 | cp >> 6); *o++ = (char)(0x80 | (cp & 63)); }
    else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12); *o++ = (char)(0x80 | (cp >> 6 & 63)); *o++ = (char)(0x80 | (cp & 63));
    } else {
        *o++ = (char)(0xF0 | cp >> 18); *o++ = (char)(0x80 | (cp >> 12 & 63));
        *o++ = (char)(0x80 | (cp >> 6 & 63)); *o++ = (char)(0x80 | (cp & 63));
    }
    return o;
}

static bool parse_string(const char **p, char **out) {
    if (**p != '"') return false;
    const char *s = ++*p;
    char *buf = malloc(strlen(s) + 1), *o = buf;
    while (*s && *s != '"') {
        if (*s != '\\') { *o++ = *s++; continue; }
        s++;
        switch (*s) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case '/': *o++ = '/'; break;
        case '\\': *o++ = '\\'; break;
        case '"': *o++ = '"'; break;
        case 'u': {
            int cp = hex4(s + 1);
            if (cp < 0) { free(buf); return false; }
            s += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && s[1] == '\\' && s[2] == 'u') {
                int lo = hex4(s + 3);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    s += 6;
                }
            }
            o = put_utf8(o, (unsigned)cp);
            break;
        }
        default: free(buf); return false;
        }
        s++;
    }
    if (*s != '"') { free(buf); return false; }
    *o = 0;
    *p = s + 1;
    *out = buf;
    return true;
}

static bool parse_value(const char **p, jval *v, int depth);

static bool parse_items(const char **p, jval *v, bool object, int depth) {
    char close = object ? '}' : ']';
    (*p)++;
    skip_ws(p);
    int cap = 0;
    if (**p == close) { (*p)++; return true; }
    for (;;) {
        if (v->n == cap) {
            cap = cap ? cap * 2 : 8;
            v->items = realloc(v->items, (size_t)cap * sizeof *v->items);
            if (object) v->keys = realloc(v->keys, (size_t)cap * sizeof *v->keys);
        }
        memset(&v->items[v->n], 0, sizeof v->items[0]);
        if (object) {
            skip_ws(p);
            if (!parse_string(p, &v->keys[v->n])) return false;
            skip_ws(p);
            if (**p != ':') { free(v->keys[v->n]); return false; }
            (*p)++;
        }
        if (!parse_value(p, &v->items[v->n], depth + 1)) {
            if (object) free(v->keys[v->n]);
            return false;
        }
        v->n++;
        skip_ws(p);
        if (**p == ',') { (*p)++; continue; }
        if (**p == close) { (*p)++; return true; }
        return false;
    }
}

static bool parse_value(const char **p, jval *v, int depth) {
    memset(v, 0, sizeof *v);
    if (depth > 64) return false;
    skip_ws(p);
    char c = **p;
    if (c == '{') { v->t = J_OBJ; return parse_items(p, v, true, depth); }
    if (c == '[') { v->t = J_ARR; return parse_items(p, v, false, depth); }
    if (c == '"') { v->t = J_STR; return parse_string(p, &v->str); }
    if (!strncmp(*p, "null", 4)) { v->t = J_NULL; *p += 4; return true; }
    if (!strncmp(*p, "true", 4)) { v->t = J_BOOL; v->num = 1; *p += 4; return true; }
    if (!strncmp(*p, "false", 5)) { v->t = J_BOOL; *p += 5; return true; }
    char *end;
    v->t = J_NUM;
    v->num = strtod(*p, &end);
    if (end == *p) return false;
    *p = end;
    return true;
}

static const jval *jget(const jval *o, const char *key) {
    if (o->t != J_OBJ) return NULL;
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return &o->items[i];
    return NULL;
}

// ---- running the binary --------------------------------------------------------------------
// Runs argv, returns its stdout (malloc'd) and exit status.
static char *run_capture(char *const argv[], int *status) {
    int fd[2];
    if (pipe(fd) != 0) return NULL;
    pid_t pid = fork();
    if (pid < 0) return NULL;
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while ((got = read(fd[0], buf + n, cap - n - 1)) > 0) {
        n += (size_t)got;
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    }
    close(fd[0]);
    buf[n] = 0;
    int st = 0;
    waitpid(pid, &st, 0);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return buf;
}

// The fidelity policy (issue 19), for every kernel set (test_golden.c says why): on the trained
// models (stories260K*) every greedy token the reference's and the top-8 logits within 2% or
// 0.05. On the random 14-layer models (mixed-*), which are chaotic, the logits within 5% or 0.05
// where the greedy paths agree, and our path may part from the reference's only at a near tie
// (the reference's logit for our token within 2% of its top); the rest of that case is not
// compared.
static double rel_tol = 0.02;
static const double tie = 0.02;
static bool random_model = false;

// The reference's logit for token id at one step, or -1e30 when it is not in its top list.
static double ref_logit(const jval *rtop, double id) {
    for (int j = 0; j < rtop->n; j++)
        if (rtop->items[j].items[0].num == id) return rtop->items[j].items[1].num;
    return -1e30;
}

static bool close_enough(double ours, double ref) {
    double d = fabs(ours - ref);
    return d <= 0.05 || d <= rel_tol * fabs(ref);
}

// Compares one traced line with its golden line; returns the number of problems.
static int compare(const char *what, const jval *ref, const jval *got) {
    int bad = 0;
    const jval *rt = jget(ref, "prompt_tokens"), *gt = jget(got, "prompt_tokens");
    if (!gt || gt->t != J_ARR || gt->n != rt->n) {
        fprintf(stderr, "%s: prompt_tokens: %d tokens, reference %d\n", what, gt ? gt->n : -1, rt->n);
        return 1;
    }
    for (int i = 0; i < rt->n; i++)
        if (gt->items[i].num != rt->items[i].num) {
            fprintf(stderr, "%s: prompt token %d is %g, reference %g\n", what, i, gt->items[i].num,
                    rt->items[i].num);
            return 1;
        }
    const jval *rs = jget(ref, "steps"), *gs = jget(got, "steps");
    if (!gs || gs->t != J_ARR || gs->n != rs->n) {
        fprintf(stderr, "%s: %d steps, reference %d\n", what, gs ? gs->n : -1, rs->n);
        return 1;
    }
    double worst = 0;
    int n_compared = 0;
    for (int s = 0; s < rs->n; s++, n_compared++) {
        const jval *r = &rs->items[s], *g = &gs->items[s];
        const jval *rtok = jget(r, "token"), *gtok = jget(g, "token");
        const jval *rtop = jget(r, "top"), *gtop = jget(g, "top");
        if (!gtok || !gtop || gtop->t != J_ARR || gtop->n != rtop->n) {
            fprintf(stderr, "%s: step %d malformed\n", what, s);
            return bad + 1;
        }
        if (gtok->num != rtok->num) {
            const double top1 = rtop->items[0].items[1].num, pick = ref_logit(rtop, gtok->num);
            if (random_model && top1 - pick <= tie * fabs(top1)) {
                fprintf(stderr, "%s: step %d near tie (%g vs reference %g, its logits %.4f, %.4f); compared %d steps\n",
                        what, s, gtok->num, rtok->num, pick, top1, s);
                break; // the rest of the sequence follows another path
            }
            fprintf(stderr, "%s: step %d chose token %g, reference %g\n", what, s, gtok->num, rtok->num);
            return bad + 1; // the rest of the sequence differs anyway
        }
        int k = rtop->n;
        double g_min = gtop->items[k - 1].items[1].num;
        for (int j = 0; j < k; j++) {
            double rid = rtop->items[j].items[0].num, rl = rtop->items[j].items[1].num;
            double gl = gtop->items[j].items[1].num;
            if (fabs(gl - rl) > worst) worst = fabs(gl - rl);
            if (!close_enough(gl, rl)) {
                fprintf(stderr, "%s: step %d rank %d logit %.5f, reference %.5f\n", what, s, j, gl, rl);
                bad++;
            }
            // The same id must be among ours with a close logit, unless it is a near tie at
            // the edge of the list.
            int found = -1;
            for (int q = 0; q < k; q++)
                if (gtop->items[q].items[0].num == rid) found = q;
            if (found >= 0 ? !close_enough(gtop->items[found].items[1].num, rl) : !close_enough(g_min, rl)) {
                fprintf(stderr, "%s: step %d token %g logit differs (reference %.5f)\n", what, s, rid, rl);
                bad++;
            }
        }
        if (bad > 10) break;
    }
    fprintf(stderr, "%s: %d/%d steps, largest logit difference %.4f%s\n", what, n_compared, rs->n, worst,
            bad ? " (FAILED)" : "");
    return bad;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    const char *shared = test_shared_dir();
    const char *bin = getenv("LLAMALITE_BIN");
    if (!shared || !bin || access(bin, X_OK) != 0) {
        fprintf(stderr, "test_trace_golden: skipped (needs ../shared and $LLAMALITE_BIN)\n");
        return TEST_SKIP;
    }
    static const char *const all[] = {"stories260K", "stories260K-f16", "mixed-base-q8_0", "mixed-types"};
    const char *const *models = argc > 1 ? (const char *const *)argv + 1 : all;
    int n_models = argc > 1 ? argc - 1 : (int)(sizeof all / sizeof all[0]);

    for (int m = 0; m < n_models; m++) {
        random_model = strncmp(models[m], "mixed", 5) == 0;
        rel_tol = random_model ? 0.05 : 0.02;
        char golden[4096], model[4096];
        snprintf(golden, sizeof golden, "%s/golden/%s.jsonl", shared, models[m]);
        snprintf(model, sizeof model, "%s/models/%s.gguf", shared, models[m]);
        char *text = read_all(golden);
        CHECK(text != NULL, "cannot read %s", golden);
        if (!text) continue;
        int line_no = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            line_no++;
            jval ref;
            const char *p = line;
            if (!parse_value(&p, &ref, 0) || ref.t != J_OBJ || !jget(&ref, "prompt") ||
                !jget(&ref, "steps") || !jget(&ref, "prompt_tokens")) {
                CHECK(0, "%s line %d: cannot parse the golden line", golden, line_no);
                jfree(&ref);
                continue;
            }
            char steps[16];
            snprintf(steps, sizeof steps, "%d", jget(&ref, "steps")->n);
            for (int threads = 1; threads <= 2; threads++) {
                char tstr[8], what[256];
                snprintf(tstr, sizeof tstr, "%d", threads);
                snprintf(what, sizeof what, "%s #%d -t %d", models[m], line_no, threads);
                // random weights in the goldens' attention mode (golden_file.h)
                char *args[] = {(char *)bin, "trace", "-m", model, "-p", jget(&ref, "prompt")->str, "-n", steps,
                                "--top", "8", "-t", tstr, "-fa", random_model ? "off" : "auto", NULL};
                int status = -1;
                char *out = run_capture(args, &status);
                CHECK(out && status == 0, "%s: llamalite trace exited with %d", what, status);
                jval got = {0};
                const char *q = out ? out : "";
                if (status == 0 && parse_value(&q, &got, 0) && got.t == J_OBJ) {
                    int bad = compare(what, &ref, &got);
                    CHECK(bad == 0, "%s: %d differences from the reference", what, bad);
                } else if (status == 0) {
                    CHECK(0, "%s: cannot parse the trace output", what);
                }
                jfree(&got);
                free(out);
            }
            jfree(&ref);
        }
        free(text);
    }
    return test_result("test_trace_golden");
}
