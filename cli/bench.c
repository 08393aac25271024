// llamalite bench: prompt processing (pp) and generation (tg) speed, llama-bench style.
// pp N: N tokens (BOS, then fixed pseudo-random ids) evaluated from an empty cache in one
// decode; tg N: N single-token decodes; -gp P,T (as ik_llama.cpp's llama-bench): tgT@ppP, the
// speed of T single-token decodes after a P-token prompt (only the decodes are timed: the
// generation speed deep in a long context); -d D (llama.cpp's --n-depth): the pp and tg tests
// run after an untimed D-token prompt already in the cache (pp512 @ d4096: prompt speed deep in
// a long context). One warm-up run, then -r timed runs; the result is the mean ± sample standard
// deviation of tokens/s over the runs.
// `bench --kernels` runs ggml-lite's kernel micro-benchmark instead; with -md DRAFT (or
// --lookup-ngram N) the tg tests compare speculative decoding with the target alone
// (bench_spec.c).
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bench_moe.h"
#include "bench_spec.h"
#include "commands.h"
#include "progress.h"
#include "speculative.h"

#define MAX_LIST 16

typedef struct {
    int v[MAX_LIST];
    int n;
} int_list;

static void usage(FILE *out) {
    fputs("usage: llamalite bench -m MODEL.gguf [-p 512] [-n 128] [-t N] [-r 5] [-o md|json]\n"
          "       llamalite bench --kernels [-t N]\n"
          "Measures prompt processing (pp) and generation (tg) speed in tokens/s.\n\n"
          "options:\n"
          "  -m, --model FNAME         model file (GGUF)\n"
          "  -p, --n-prompt N[,N...]   prompt lengths to test (default: 512; 0 = none)\n"
          "  -n, --n-gen N[,N...]      generation lengths to test (default: 128; 0 = none)\n"
          "  -t, --threads N[,N...]    thread counts (default: 0 = physical cores)\n"
          "  -b, --batch-size N        prompt tokens per forward chunk (default: 512)\n"
          "  -gp P,T                   T generated tokens after a P-token prompt (tgT@ppP;\n"
          "                            repeat -gp for more pairs)\n"
          "  -d, --n-depth D[,D...]    run the pp and tg tests with D tokens already in the\n"
          "                            cache (untimed; default: 0)\n"
          "  -ctk, -ctv TYPE           KV cache types: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1\n"
          "                            iq4_nl (default: f16)\n"
          "  -fa, --flash-attn [on|off|auto]  fused attention (default: auto)\n"
          "  --swa-full                full-size caches on sliding-window layers too\n"
          "  --no-repack               the weights as the file has them (no repacking at load)\n"
          "  -r, --repetitions N       timed runs per test (default: 5)\n"
          "  -o, --output md|json      output format (default: md)\n"
          "  --kernels                 run the kernel micro-benchmark instead\n"
          "  --moe-bound               after each tg test on a mixture of experts: the bytes its\n"
          "                            decodes read and tg as a share of their memory bound\n"
          "  -v, --verbose             progress on stderr\n\n"
          "With -md DRAFT (or --lookup-ngram N), each tg test generates greedily from a text\n"
          "prompt, the target alone and with speculative decoding in turn (-r times), and reports\n"
          "the median tokens/s of both, the median speedup and the acceptance:\n"
          "  --spec-prompt TEXT        the prompt (default: \"Once upon a time\")\n", out);
    spec_print_help(out);
}

// "128,512" -> {128, 512}; every value in [min, max].
static bool parse_list(const char *flag, const char *s, int min, int_list *out) {
    out->n = 0;
    char buf[256];
    if (strlen(s) >= sizeof buf) {
        fprintf(stderr, "llamalite: invalid value '%s' for %s\n", s, flag);
        return false;
    }
    strcpy(buf, s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (out->n == MAX_LIST) {
            fprintf(stderr, "llamalite: too many values for %s (at most %d)\n", flag, MAX_LIST);
            return false;
        }
        if (!args_int(flag, tok, min, 1 << 20, &out->v[out->n])) return false;
        out->n++;
    }
    if (out->n == 0) {
        fprintf(stderr, "llamalite: invalid value '%s' for %s\n", s, flag);
        return false;
    }
    return true;
}

typedef struct {
    int n_prompt, n_gen, n_threads, depth;
    bool gen_after_prompt; // -gp: only the n_gen decodes are timed
    double *ns;   // per run
    double avg_ns, sd_ns, avg_ts, sd_ts;
} bench_result;

static uint32_t rng_next(uint32_t *s) { // xorshift32: fixed inputs, same every run
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

// n pseudo-random token ids (the first BOS when from_start), fixed by *seed.
static ll_token *bench_tokens(const ll_vocab *v, int n, bool from_start, uint32_t *seed) {
    ll_token *toks = malloc((size_t)n * sizeof *toks);
    if (!toks) {
        fputs("llamalite: out of memory\n", stderr);
        return NULL;
    }
    const uint32_t n_vocab = (uint32_t)ll_vocab_n_tokens(v);
    for (int i = 0; i < n; i++) toks[i] = (ll_token)(rng_next(seed) % n_vocab);
    if (from_start && ll_vocab_bos(v) >= 0) toks[0] = ll_vocab_bos(v);
    return toks;
}

// Brings the cache to `depth` tokens: rolled back to them when it holds them (the depth prompt
// of an earlier run), else evaluated anew. Returns 0, or -1 (message printed).
static int fill_depth(ll_context *ctx, const ll_vocab *v, int depth) {
    char err[512];
    if (depth > 0 && ll_n_past(ctx) >= depth) {
        ll_kv_truncate(ctx, depth);
        if (ll_n_past(ctx) == depth) return 0;
    }
    ll_kv_clear(ctx);
    if (depth == 0) return 0;
    uint32_t seed = 54321;
    ll_token *toks = bench_tokens(v, depth, true, &seed);
    if (!toks) return -1;
    int r = ll_decode(ctx, toks, depth, err, sizeof err);
    free(toks);
    if (r != 0) fprintf(stderr, "llamalite: %s\n", err);
    return r == 0 ? 0 : -1;
}

// One timed run of a test after `depth` cached tokens; returns nanoseconds, or -1 on error
// (message printed).
static double run_once(ll_context *ctx, const ll_vocab *v, int depth, int n_prompt, int n_gen, bool gen_only) {
    char err[512];
    ll_token bos = ll_vocab_bos(v);
    uint32_t seed = 12345;
    if (fill_depth(ctx, v, depth) != 0) return -1;
    double t0 = cli_now();
    if (n_prompt > 0) {
        ll_token *toks = bench_tokens(v, n_prompt, depth == 0, &seed);
        if (!toks) return -1;
        int r = ll_decode(ctx, toks, n_prompt, err, sizeof err);
        free(toks);
        if (r != 0) {
            fprintf(stderr, "llamalite: %s\n", err);
            return -1;
        }
    }
    if (gen_only) t0 = cli_now();
    const int n_vocab = ll_vocab_n_tokens(v);
    ll_token t = bos >= 0 ? bos : 0;
    for (int i = 0; i < n_gen; i++) {
        if (ll_decode(ctx, &t, 1, err, sizeof err) != 0) {
            fprintf(stderr, "llamalite: %s\n", err);
            return -1;
        }
        t = (ll_token)(rng_next(&seed) % (uint32_t)n_vocab);
    }
    return (cli_now() - t0) * 1e9;
}

static void stats(bench_result *r, int reps) {
    int n_tok = (r->gen_after_prompt ? 0 : r->n_prompt) + r->n_gen;
    double s = 0, s_ts = 0;
    for (int i = 0; i < reps; i++) {
        s += r->ns[i];
        s_ts += n_tok * 1e9 / r->ns[i];
    }
    r->avg_ns = s / reps;
    r->avg_ts = s_ts / reps;
    double v = 0, v_ts = 0;
    for (int i = 0; i < reps; i++) {
        double d = r->ns[i] - r->avg_ns, d_ts = n_tok * 1e9 / r->ns[i] - r->avg_ts;
        v += d * d;
        v_ts += d_ts * d_ts;
    }
    r->sd_ns = reps > 1 ? sqrt(v / (reps - 1)) : 0;
    r->sd_ts = reps > 1 ? sqrt(v_ts / (reps - 1)) : 0;
}

static void human_size(char *buf, size_t n, uint64_t bytes) {
    if (bytes >= (1ull << 30)) snprintf(buf, n, "%.2f GiB", bytes / (double)(1ull << 30));
    else snprintf(buf, n, "%.2f MiB", bytes / (double)(1ull << 20));
}

static void human_params(char *buf, size_t n, uint64_t params) {
    if (params >= 1000000000ull) snprintf(buf, n, "%.2f B", params / 1e9);
    else snprintf(buf, n, "%.2f M", params / 1e6);
}

// The cache columns appear, as llama-bench's, only when not at their defaults.
typedef struct {
    const char *tk, *tv, *fa;
    bool show;
} cache_cols;

static void print_md_header(const cache_cols *cc) {
    printf("| %-30s | %10s | %10s | %-7s | %7s | ", "model", "size", "params", "backend", "threads");
    if (cc->show) printf("%6s | %6s | %4s | ", "type_k", "type_v", "fa");
    printf("%13s | %20s |\n", "test", "t/s");
    printf("| ------------------------------ | ---------: | ---------: | ------- | ------: | ");
    if (cc->show) printf("-----: | -----: | ---: | ");
    puts("------------: | -------------------: |");
}

static void print_md_row(const ll_model *m, const bench_result *r, const cache_cols *cc) {
    char size[32], params[32], test[32], ts[48];
    human_size(size, sizeof size, ll_model_size_bytes(m));
    human_params(params, sizeof params, ll_model_n_params(m));
    if (r->gen_after_prompt) snprintf(test, sizeof test, "tg%d@pp%d", r->n_gen, r->n_prompt);
    else if (r->n_prompt && r->n_gen) snprintf(test, sizeof test, "pp%d+tg%d", r->n_prompt, r->n_gen);
    else if (r->n_prompt) snprintf(test, sizeof test, "pp%d", r->n_prompt);
    else snprintf(test, sizeof test, "tg%d", r->n_gen);
    if (r->depth > 0) snprintf(test + strlen(test), sizeof test - strlen(test), " @ d%d", r->depth);
    snprintf(ts, sizeof ts, "%.2f ± %.2f", r->avg_ts, r->sd_ts);
    // "±" is two bytes but one column: pad by hand.
    printf("| %-30.30s | %10s | %10s | %-7s | %7d | ", ll_model_desc(m), size, params, "CPU", r->n_threads);
    if (cc->show) printf("%6s | %6s | %4s | ", cc->tk, cc->tv, cc->fa);
    printf("%13s | %21s |\n", test, ts);
    fflush(stdout);
}

static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void print_json_obj(const char *path, const ll_model *m, const bench_result *r, int reps,
                           int n_batch, const char *tk, const char *tv, bool first) {
    printf("%s  {\n    \"model_filename\": ", first ? "" : ",\n");
    print_json_string(path);
    printf(",\n    \"model_type\": ");
    print_json_string(ll_model_desc(m));
    printf(",\n    \"model_size\": %llu,\n    \"model_n_params\": %llu,\n"
           "    \"n_batch\": %d,\n    \"n_threads\": %d,\n    \"type_k\": \"%s\",\n"
           "    \"type_v\": \"%s\",\n    \"n_prompt\": %d,\n    \"n_gen\": %d,\n    \"n_depth\": %d,\n"
           "    \"avg_ns\": %.0f,\n    \"stddev_ns\": %.0f,\n    \"avg_ts\": %.6f,\n"
           "    \"stddev_ts\": %.6f,\n    \"samples_ns\": [",
           (unsigned long long)ll_model_size_bytes(m), (unsigned long long)ll_model_n_params(m),
           n_batch, r->n_threads, tk, tv, r->n_prompt, r->n_gen, r->depth, r->avg_ns, r->sd_ns, r->avg_ts,
           r->sd_ts);
    for (int i = 0; i < reps; i++) printf("%s%.0f", i ? ", " : " ", r->ns[i]);
    printf(" ],\n    \"samples_ts\": [");
    int n_tok = r->n_prompt + r->n_gen;
    for (int i = 0; i < reps; i++) printf("%s%.2f", i ? ", " : " ", n_tok * 1e9 / r->ns[i]);
    printf(" ]\n  }");
    fflush(stdout);
}

// --moe-bound's lines, printed after the table.
typedef struct {
    char *text;
    size_t len;
} note_buf;

// The tg test's tokens again (run_once's), measured by bench_moe_bound into notes.
static int moe_bound_note(ll_context *ctx, const char *path, const ll_vocab *v, int n_gen, double tg_ts,
                          note_buf *notes) {
    uint32_t seed = 12345;
    ll_token *toks = bench_tokens(v, n_gen, false, &seed);
    if (!toks) return 1;
    // run_once's sequence: BOS (or 0), then one pseudo-random id after each decode
    for (int i = n_gen - 1; i > 0; i--) toks[i] = toks[i - 1];
    toks[0] = ll_vocab_bos(v) >= 0 ? ll_vocab_bos(v) : 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc = f ? bench_moe_bound(ctx, path, toks, n_gen, tg_ts, f) : 1;
    if (f) fclose(f);
    free(toks);
    char *grown = rc == 0 ? realloc(notes->text, notes->len + len + 1) : NULL;
    if (grown) {
        memcpy(grown + notes->len, buf, len + 1);
        notes->text = grown, notes->len += len;
    }
    free(buf);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    cli_params p;
    args_defaults(&p);
    int_list prompts = {{512}, 1}, gens = {{128}, 1}, threads = {{0}, 1}, depths = {{0}, 1};
    int gp[MAX_LIST][2], n_gp = 0; // -gp pairs
    int reps = 5;
    bool json = false, kernels = false, moe_bound = false;
    const char *spec_prompt = "Once upon a time";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--kernels")) {
            kernels = true;
        } else if (!strcmp(a, "--moe-bound")) {
            moe_bound = true;
        } else if (!strcmp(a, "--spec-prompt")) {
            if (!args_value(argc, argv, &i, &spec_prompt)) return 1;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if (!args_value(argc, argv, &i, &v) || !parse_list(a, v, 0, &prompts)) return 1;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (!args_value(argc, argv, &i, &v) || !parse_list(a, v, 0, &gens)) return 1;
        } else if (!strcmp(a, "-gp")) {
            int_list pair;
            if (!args_value(argc, argv, &i, &v) || !parse_list(a, v, 1, &pair)) return 1;
            if (pair.n != 2 || n_gp == MAX_LIST) {
                fprintf(stderr, "llamalite: invalid value '%s' for -gp (expected PROMPT,GEN; at most %d pairs)\n", v, MAX_LIST);
                return 1;
            }
            gp[n_gp][0] = pair.v[0], gp[n_gp][1] = pair.v[1], n_gp++;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--n-depth")) {
            if (!args_value(argc, argv, &i, &v) || !parse_list(a, v, 0, &depths)) return 1;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!args_value(argc, argv, &i, &v) || !parse_list(a, v, 0, &threads)) return 1;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            if (!args_value(argc, argv, &i, &v) || !args_int(a, v, 1, 1000, &reps)) return 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!args_value(argc, argv, &i, &v)) return 1;
            if (!strcmp(v, "json")) json = true;
            else if (!strcmp(v, "md")) json = false;
            else {
                fprintf(stderr, "llamalite: invalid value '%s' for %s (expected md or json)\n", v, a);
                return 1;
            }
        } else {
            int r = spec_parse_arg(argc, argv, &i);
            if (r == ARG_UNKNOWN) r = args_parse_common(argc, argv, &i, &p, ARGS_MODEL | ARGS_CONTEXT | ARGS_LOG);
            if (r == ARG_ERROR) return 1;
            if (r == ARG_UNKNOWN) {
                args_unknown("bench", a);
                return 1;
            }
        }
    }

    if (kernels) {
        int rc = 0;
        for (int i = 0; i < threads.n && rc == 0; i++) rc = ll_bench_kernels(threads.v[i], stdout);
        return rc == 0 ? 0 : 1;
    }
    if (!p.model) {
        fputs("llamalite: bench needs a model (-m MODEL.gguf)\n", stderr);
        return 1;
    }

    char err[512];
    ll_model *model = cli_load_model(p.model, p.verbosity >= 2, NULL);
    if (!model) return 1;
    const ll_vocab *v = ll_model_get_vocab(model);
    if (spec_wanted()) {
        if (json) fputs("llamalite: bench: -o json is not available with speculative decoding; writing md\n", stderr);
        int rc = 0;
        bench_spec_header();
        for (int ti = 0; ti < threads.n && rc == 0; ti++)
            for (int li = 0; li < gens.n && rc == 0; li++)
                if (gens.v[li] > 0) rc = bench_spec(&p, model, spec_prompt, gens.v[li], threads.v[ti], reps);
        ll_model_free(model);
        return rc;
    }
    const char *tk = ll_cache_type_name(p.type_k);
    const char *tv = ll_cache_type_name(p.type_v);

    // The tests: every pp, then every tg, for every thread count (llama-bench's order).
    int rc = 0, n_done = 0;
    double *ns = malloc((size_t)reps * sizeof *ns);
    if (!ns) {
        fputs("llamalite: out of memory\n", stderr);
        ll_model_free(model);
        return 1;
    }
    note_buf notes = {NULL, 0};
    const char *fa = p.flash_attn == LL_FLASH_ATTN_ON ? "1" : p.flash_attn == LL_FLASH_ATTN_OFF ? "0" : "auto";
    const cache_cols cc = {tk, tv, fa, p.type_k != LL_CACHE_F16 || p.type_v != LL_CACHE_F16 || p.flash_attn != LL_FLASH_ATTN_AUTO};
    if (json) printf("[\n");
    else print_md_header(&cc);
    for (int ti = 0; ti < threads.n && rc == 0; ti++) {
        for (int kind = 0; kind < 3 && rc == 0; kind++) { // pp, tg, then -gp pairs
            const int_list *lens = kind == 0 ? &prompts : &gens;
            const int n_tests = kind == 2 ? n_gp : lens->n;
            for (int li = 0; li < n_tests * (kind == 2 ? 1 : depths.n) && rc == 0; li++) {
                // -gp pairs once each; pp and tg tests at every depth
                const int di = kind == 2 ? 0 : li % depths.n, test = kind == 2 ? li : li / depths.n;
                int n = kind == 2 ? gp[test][1] : lens->v[test];
                if (n == 0) continue;
                bench_result r = {.n_prompt = kind == 0 ? n : kind == 2 ? gp[test][0] : 0,
                                  .n_gen = kind == 0 ? 0 : n, .gen_after_prompt = kind == 2, .ns = ns,
                                  .depth = kind == 2 ? 0 : depths.v[di]};
                ll_context_params cp = ll_context_default_params();
                cp.n_ctx = r.depth + r.n_prompt + r.n_gen + 1; // +1: some engines keep a slot free
                cp.n_batch = p.n_batch;
                cp.n_threads = threads.v[ti];
                cp.type_k = p.type_k;
                cp.type_v = p.type_v;
                cp.flash_attn = p.flash_attn;
                ll_context *ctx = ll_context_new(model, &cp, err, sizeof err);
                if (!ctx) {
                    fprintf(stderr, "llamalite: %s\n", err);
                    rc = 1;
                    break;
                }
                r.n_threads = ll_n_threads(ctx);
                // Warm-up: caches, page faults, thread start-up (after the depth prompt, which
                // the timed runs then roll back to). -gp: a short warm-up; the prompt of each
                // timed run warms the cache rows.
                if (run_once(ctx, v, r.depth, kind == 2 ? 1 : r.n_prompt, r.n_gen ? 1 : 0, false) < 0) rc = 1;
                for (int k = 0; k < reps && rc == 0; k++) {
                    ns[k] = run_once(ctx, v, r.depth, r.n_prompt, r.n_gen, r.gen_after_prompt);
                    if (ns[k] < 0) rc = 1;
                    cli_log(&p, 2, "bench: %s%d run %d/%d: %.2f ms\n", kind ? "tg" : "pp", n,
                            k + 1, reps, ns[k] / 1e6);
                }
                if (rc == 0) stats(&r, reps);
                if (rc == 0 && moe_bound && kind == 1 && r.depth == 0)
                    rc = moe_bound_note(ctx, p.model, v, n, r.avg_ts, &notes);
                ll_context_free(ctx);
                if (rc) break;
                if (json) print_json_obj(p.model, model, &r, reps, p.n_batch, tk, tv, n_done == 0);
                else print_md_row(model, &r, &cc);
                n_done++;
            }
        }
    }
    if (json) printf("\n]\n");
    if (notes.len) fputs(notes.text, json ? stderr : stdout);
    free(notes.text);
    free(ns);
    ll_model_free(model);
    return rc;
}
