// llamalite quantize: converts a model to another weight type (or mixture), like llama.cpp's
// llama-quantize, plus a size budget (--target-bpw / --target-size) for which the engine
// chooses per-tensor types. Prints a summary: sizes before and after, bits per weight.
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "args.h"
#include "commands.h"
#include "progress.h"

static void usage(FILE *out) {
    fputs("usage: llamalite quantize [options] IN.gguf OUT.gguf TYPE [THREADS]\n"
          "       llamalite quantize [options] --target-bpw B | --target-size S IN.gguf OUT.gguf [THREADS]\n"
          "Converts the weights of a model; metadata and other tensors are copied.\n\n"
          "TYPE:", out);
    const char *const *names = ll_quantize_type_names();
    for (int i = 0; names[i]; i++) fprintf(out, " %s", names[i]);
    fputs("\n      (the _S/_M/_L mixtures keep sensitive tensors at more bits, as llama.cpp does)\n\n"
          "options:\n"
          "  --imatrix FILE            importance matrix (llamalite imatrix / llama-imatrix output)\n"
          "  --pure                    every tensor the base type (no mixture)\n"
          "  --leave-output-tensor     copy output.weight unchanged\n"
          "  --output-tensor-type T    type of output.weight (e.g. Q8_0, F16)\n"
          "  --token-embedding-type T  type of token_embd.weight\n"
          "  --allow-requantize        accept quantized input (dequantized first; loses quality)\n"
          "  --target-bpw B            choose per-tensor types to fit B bits per weight with the\n"
          "                            least expected error (best with --imatrix)\n"
          "  --target-size S           the same for the weights' size in bytes (suffix K, M, G:\n"
          "                            KiB, MiB, GiB; the file adds its metadata, e.g. the vocabulary)\n"
          "  -v, --verbose             one line per tensor\n", out);
}

// "700M", "1.5G", "123456" -> bytes (binary units). false when malformed.
static bool parse_size(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v > 0)) return false;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mul = 1024.0; end++; break;
    case 'M': mul = 1024.0 * 1024; end++; break;
    case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    default: break;
    }
    if (toupper((unsigned char)*end) == 'B' || (toupper((unsigned char)*end) == 'I' && toupper((unsigned char)end[1]) == 'B'))
        end += toupper((unsigned char)*end) == 'B' ? 1 : 2;
    if (*end || v * mul > 1e18) return false;
    *out = (uint64_t)(v * mul);
    return true;
}

static bool is_number(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

// llama-quantize also takes the file type as its number.
static const char *ftype_by_number(const char *s) {
    static const struct { int id; const char *name; } IDS[] = {
        {0, "F32"}, {1, "F16"}, {2, "Q4_0"}, {3, "Q4_1"}, {7, "Q8_0"}, {8, "Q5_0"}, {9, "Q5_1"},
        {10, "Q2_K"}, {11, "Q3_K_S"}, {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"}, {15, "Q4_K_M"},
        {16, "Q5_K_S"}, {17, "Q5_K_M"}, {18, "Q6_K"}, {25, "IQ4_NL"}, {30, "IQ4_XS"}, {32, "BF16"},
    };
    int v = atoi(s);
    for (size_t i = 0; i < sizeof IDS / sizeof IDS[0]; i++)
        if (IDS[i].id == v) return IDS[i].name;
    return NULL;
}

static bool known_type(const char *s) {
    const char *const *names = ll_quantize_type_names();
    for (int i = 0; names[i]; i++) {
        const char *a = names[i], *b = s;
        while (*a && *b && toupper((unsigned char)*a) == toupper((unsigned char)*b)) a++, b++;
        if (!*a && !*b) return true;
    }
    return !strcasecmp(s, "Q3_K") || !strcasecmp(s, "Q4_K") || !strcasecmp(s, "Q5_K");
}

static void on_progress(void *ud, uint64_t done, uint64_t total) {
    progress *bar = ud;
    bar->total = (int64_t)(total ? total : 1);
    progress_update(bar, (int64_t)done, NULL);
}

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

// Size of the written file (weights plus metadata), 0 if it cannot be read.
static uint64_t file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    fclose(f);
    return n > 0 ? (uint64_t)n : 0;
}

// The mixture: weights per output type among the converted matrices.
static void print_mixture(const ll_quantize_stats *st) {
    const char *types[32];
    uint64_t el[32] = {0}, by[32] = {0};
    int cnt[32] = {0}, n = 0;
    uint64_t total = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const ll_quantize_tensor *t = &st->tensors[i];
        if (t->n_dims < 2) continue;
        int k = 0;
        while (k < n && strcmp(types[k], t->type_out)) k++;
        if (k == n) {
            if (n == 32) continue;
            types[n++] = t->type_out;
        }
        el[k] += t->n_elements;
        by[k] += t->size_out;
        cnt[k]++;
        total += t->n_elements;
    }
    printf("mixture:");
    for (int k = 0; k < n; k++)
        printf("%s %s x%d (%.1f%% of weights)", k ? "," : "", types[k], cnt[k],
               total ? 100.0 * (double)el[k] / (double)total : 0.0);
    printf("\n");
    (void)by;
}

int cmd_quantize(int argc, char **argv) {
    ll_quantize_params qp = ll_quantize_default_params();
    const char *pos[4] = {0};
    int n_pos = 0, verbose = 0;
    const char *imatrix_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--imatrix")) {
            if (!args_value(argc, argv, &i, &imatrix_path)) return 1;
        } else if (!strcmp(a, "--pure")) {
            qp.pure = true;
        } else if (!strcmp(a, "--leave-output-tensor")) {
            qp.leave_output = true;
        } else if (!strcmp(a, "--allow-requantize")) {
            qp.allow_requantize = true;
        } else if (!strcmp(a, "--output-tensor-type")) {
            if (!args_value(argc, argv, &i, &qp.output_type)) return 1;
        } else if (!strcmp(a, "--token-embedding-type")) {
            if (!args_value(argc, argv, &i, &qp.token_embd_type)) return 1;
        } else if (!strcmp(a, "--target-bpw")) {
            float b;
            if (!args_value(argc, argv, &i, &v) || !args_float(a, v, 0.5, 32, &b)) return 1;
            qp.target_bpw = b;
        } else if (!strcmp(a, "--target-size")) {
            if (!args_value(argc, argv, &i, &v)) return 1;
            if (!parse_size(v, &qp.target_bytes)) {
                fprintf(stderr, "llamalite: invalid value '%s' for --target-size\n", v);
                return 1;
            }
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = 1;
        } else if (a[0] == '-' && a[1]) {
            args_unknown("quantize", a);
            return 1;
        } else if (n_pos < 4) {
            pos[n_pos++] = a;
        } else {
            fprintf(stderr, "llamalite: quantize: unexpected argument '%s'\n", a);
            return 1;
        }
    }
    const bool target = qp.target_bpw > 0 || qp.target_bytes > 0;
    if (qp.target_bpw > 0 && qp.target_bytes > 0) {
        fputs("llamalite: --target-bpw and --target-size exclude each other\n", stderr);
        return 1;
    }
    const char *threads = NULL;
    if (n_pos >= 3 && (!target || !is_number(pos[2]))) {
        qp.type = pos[2];
        threads = n_pos >= 4 ? pos[3] : NULL;
    } else if (n_pos >= 3) {
        threads = pos[2];
        if (n_pos == 4) {
            fprintf(stderr, "llamalite: quantize: unexpected argument '%s'\n", pos[3]);
            return 1;
        }
    }
    if (n_pos < 2 || (!target && !qp.type)) {
        fputs("llamalite: quantize needs IN.gguf OUT.gguf TYPE (try 'llamalite quantize --help')\n", stderr);
        return 1;
    }
    if (qp.type && is_number(qp.type)) {
        const char *name = ftype_by_number(qp.type);
        if (!name) {
            fprintf(stderr, "llamalite: unknown quantization type '%s'\n", qp.type);
            return 1;
        }
        qp.type = name;
    }
    if (qp.type && !known_type(qp.type)) {
        fprintf(stderr, "llamalite: unknown quantization type '%s' (try 'llamalite quantize --help')\n", qp.type);
        return 1;
    }
    if (target) qp.type = NULL; // the planner chooses
    if (threads && !args_int("THREADS", threads, 0, 1024, &qp.n_threads)) return 1;

    char err[512];
    ll_imatrix *im = NULL;
    if (imatrix_path) {
        im = ll_imatrix_load(imatrix_path, err, sizeof err);
        if (!im) {
            fprintf(stderr, "llamalite: %s\n", err);
            return 1;
        }
        qp.imatrix = im;
        qp.imatrix_file = imatrix_path;
        fprintf(stderr, "quantize: imatrix %s: %d entries, %d chunks\n", imatrix_path, ll_imatrix_n_entries(im),
                ll_imatrix_n_chunks(im));
    }

    progress bar;
    progress_start(&bar, "quantize", 1, false);
    qp.progress = on_progress;
    qp.progress_ud = &bar;
    ll_quantize_stats st;
    int r = ll_model_quantize(pos[0], pos[1], &qp, &st, err, sizeof err);
    progress_end(&bar);
    ll_imatrix_free(im);
    if (r != 0) {
        fprintf(stderr, "llamalite: %s\n", err);
        return 1;
    }
    if (verbose)
        for (int i = 0; i < st.n_tensors; i++) {
            const ll_quantize_tensor *t = &st.tensors[i];
            char shape[64];
            int k = snprintf(shape, sizeof shape, "%lld", (long long)t->ne[0]);
            for (uint32_t d = 1; d < t->n_dims && k < (int)sizeof shape; d++)
                k += snprintf(shape + k, sizeof shape - (size_t)k, " x %lld", (long long)t->ne[d]);
            printf("%-32s [%-14s] %6s -> %-6s %9.3f MiB -> %9.3f MiB%s\n", t->name, shape, t->type_in, t->type_out,
                   mib(t->size_in), mib(t->size_out), t->fallback ? "  (fallback: rows do not fit)" : "");
        }
    const double n = (double)(st.n_elements ? st.n_elements : 1);
    printf("quantize: %s -> %s: weights %.2f MiB -> %.2f MiB (file %.2f MiB), %.2f -> %.2f bits per weight "
           "(%.2fM weights), file type %d, %.1f s\n", pos[0], pos[1], mib(st.size_in), mib(st.size_out),
           mib(file_size(pos[1])), 8.0 * (double)st.size_in / n, 8.0 * (double)st.size_out / n, n / 1e6, st.ftype,
           st.t_ms / 1000.0);
    if (target || verbose) print_mixture(&st);
    if (st.n_fallback)
        printf("quantize: %d tensor(s) used a fallback type (rows not a multiple of the block size)\n", st.n_fallback);
    ll_quantize_stats_free(&st);
    return 0; // main checks that stdout was written
}
