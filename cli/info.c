// llamalite info: a GGUF file's metadata (type, key = value), tensor table and totals.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamalite.h"
#include "commands.h"

#define MAX_ITEMS 3   // array elements shown before "... N items"
#define MAX_STR 100   // string bytes shown before "..."
#define MAX_NAME 48   // tensor name column width cap

static void usage(FILE *out) {
    fputs("usage: llamalite info [--full] [-m] MODEL.gguf\n"
          "\n"
          "Prints a GGUF file's metadata, one 'TYPE  key = value' per line (long arrays and\n"
          "strings abbreviated), then its tensors (name, type, dimensions with the row length\n"
          "first, size) and totals: tensors, bytes, parameters, bits per weight, and for a\n"
          "model of an architecture the engine runs, the hyperparameters it reads. The whole\n"
          "file is validated first.\n"
          "\n"
          "  -m, --model FNAME  the file (as the other commands name it; -m may be left out)\n"
          "  --full             print arrays and strings whole instead of abbreviated\n"
          "  -h, --help         this help\n", out);
}

// Names come from the file: print them with control characters escaped.
static void put_escaped(const char *s, FILE *out) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) fprintf(out, "\\x%02x", *p);
        else fputc(*p, out);
    }
}

static void human_size(double bytes, char *buf, size_t n) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) { bytes /= 1024; u++; }
    if (u == 0) snprintf(buf, n, "%.0f B", bytes);
    else snprintf(buf, n, "%.2f %s", bytes, units[u]);
}

static void human_count(double x, char *buf, size_t n) {
    if (x >= 1e9) snprintf(buf, n, "%.2fB", x / 1e9);
    else if (x >= 1e6) snprintf(buf, n, "%.2fM", x / 1e6);
    else if (x >= 1e3) snprintf(buf, n, "%.1fK", x / 1e3);
    else snprintf(buf, n, "%.0f", x);
}

// One line per key: its type in a column ("arr[bool]" is the widest), then "key = value".
static void print_metadata(const ll_gguf *g, bool full) {
    for (int64_t i = 0; i < ll_gguf_n_kv(g); i++) {
        char *v = ll_gguf_kv_format(g, i, full ? 0 : MAX_ITEMS, full ? 0 : MAX_STR);
        printf("%-9s  ", ll_gguf_kv_type(g, i));
        put_escaped(ll_gguf_key(g, i), stdout);
        printf(" = %s\n", v ? v : "(out of memory)");
        free(v);
    }
}

static void format_dims(const ll_gguf_tensor_info *t, char *buf, size_t n) {
    int len = snprintf(buf, n, "[");
    for (uint32_t d = 0; d < t->n_dims && len > 0 && (size_t)len < n; d++)
        len += snprintf(buf + len, n - len, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
    if (len > 0 && (size_t)len < n) snprintf(buf + len, n - len, "]");
}

static void print_tensors(const ll_gguf *g) {
    int64_t n = ll_gguf_n_tensors(g);
    int name_w = 4, dims_w = 4;
    for (int64_t i = 0; i < n; i++) {
        ll_gguf_tensor_info t;
        char dims[128];
        if (!ll_gguf_tensor(g, i, &t)) continue;
        int len = (int)strlen(t.name);
        if (len > name_w) name_w = len > MAX_NAME ? MAX_NAME : len;
        format_dims(&t, dims, sizeof dims);
        if ((int)strlen(dims) > dims_w) dims_w = (int)strlen(dims);
    }
    uint64_t total_size = 0, total_params = 0;
    if (n > 0) printf("\n%-*s  %-7s %-*s %12s\n", name_w, "name", "type", dims_w, "dims", "size");
    for (int64_t i = 0; i < n; i++) {
        ll_gguf_tensor_info t;
        if (!ll_gguf_tensor(g, i, &t)) continue;
        char dims[128], size[32];
        format_dims(&t, dims, sizeof dims);
        human_size((double)t.size, size, sizeof size);
        put_escaped(t.name, stdout);
        int pad = name_w - (int)strlen(t.name);
        printf("%*s  %-7s %-*s %12s\n", pad > 0 ? pad : 0, "", t.type, dims_w, dims, size);
        total_size += t.size;
        total_params += t.n_elements;
    }
    char size[32], params[32];
    human_size((double)total_size, size, sizeof size);
    human_count((double)total_params, params, sizeof params);
    printf("\n%lld tensors, %s (%llu bytes), %llu parameters (%s)", (long long)n, size,
           (unsigned long long)total_size, (unsigned long long)total_params, params);
    if (total_params) printf(", %.2f bits per weight", 8.0 * (double)total_size / (double)total_params);
    printf("\n");
}

// What the engine reads from a model of an architecture it runs, indented under a heading;
// for other model files the reason it would not run them.
static void print_hparams(const ll_gguf *g) {
    char err[512];
    char *hp = ll_gguf_hparams(g, err, sizeof err);
    if (!hp) {
        if (err[0]) printf("\nhyperparameters: none (%s)\n", err);
        return;
    }
    printf("\nhyperparameters:\n");
    for (char *line = hp, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line) - 1;
        printf("  %.*s\n", (int)(nl - line), line);
    }
    free(hp);
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool full = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--full")) {
            full = true;
        } else if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 == argc) {
            fprintf(stderr, "llamalite: info: %s needs a file name\n", argv[i]);
            return 1;
        } else if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && !path) {
            path = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "llamalite: info: unknown option '%s' (try 'llamalite info --help')\n", argv[i]);
            return 1;
        } else if (path) {
            fprintf(stderr, "llamalite: info: one file at a time (got '%s' and '%s')\n", path, argv[i]);
            return 1;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fputs("llamalite: info: no file given (usage: llamalite info [--full] MODEL.gguf)\n", stderr);
        return 1;
    }
    char err[512];
    ll_gguf *g = ll_gguf_open(path, err, sizeof err);
    if (!g) {
        fprintf(stderr, "llamalite: %s\n", err);
        return 1;
    }
    printf("%s: GGUF v%u, %llu bytes, alignment %zu, %lld metadata keys, %lld tensors\n\n", path,
           ll_gguf_version(g), (unsigned long long)ll_gguf_file_size(g), ll_gguf_alignment(g),
           (long long)ll_gguf_n_kv(g), (long long)ll_gguf_n_tensors(g));
    print_metadata(g, full);
    print_tensors(g);
    print_hparams(g);
    ll_gguf_close(g);
    return 0;
}
