// libFuzzer harness for the GGUF reader: any input either opens, and then every accessor, the
// info formatter and the hyperparameter readers are safe on it, or is refused with one line
// naming the file; mapped or read into memory, the verdict and the line are the same. Built with
// -DFUZZ_REPLAY_MAIN it is a plain program that replays the crafted files of
// tests/gguf_badfiles.h (every prefix and byte mutations of the valid one too) and any files
// given on the command line through the same entry point; --write-corpus DIR writes them out
// as a seed corpus.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/gguf/gguf.h"
#include "engine/llamalite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// Opens every piece of an opened file.
static void touch(const gguf_file *f) {
    volatile double sink = 0;
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const char *key = gguf_key(f, i);
        if (gguf_find_key(f, key) != i) abort();
        double x;
        if (gguf_kv_number(f, i, &x)) sink += x;
        gguf_str s = gguf_kv_string(f, i);
        if (s.len) sink += s.ptr[0] + s.ptr[s.len - 1];
        sink += gguf_get_u32(f, key, 0) + gguf_get_i32(f, key, 0) + gguf_get_f32(f, key, 0) +
                (double)gguf_get_u64(f, key, 0) + gguf_get_bool(f, key, false);
        sink += (double)strlen(gguf_get_str(f, key, ""));
        enum gguf_vtype t = gguf_arr_type(f, i);
        uint64_t n = gguf_arr_n(f, i);
        for (uint64_t j = 0; j < n; j++) {
            if (t == GGUF_TYPE_STRING) {
                gguf_str e = gguf_arr_str(f, i, j);
                if (e.len) sink += e.ptr[0] + e.ptr[e.len - 1];
            } else {
                sink += gguf_arr_number(f, i, j);
            }
        }
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        if (gguf_find_tensor(f, t->name) != t || t->size == 0) abort();
        const uint8_t *d = t->data;
        sink += d[0] + d[t->size - 1];
    }
    (void)sink;
}

static void check_message(const char *err, const char *path) {
    size_t plen = strlen(path);
    if (strncmp(err, path, plen) != 0 || err[plen] != ':' || strlen(err) <= plen + 2 || strchr(err, '\n')) {
        fprintf(stderr, "bad error message: '%s'\n", err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz.gguf", MFD_CLOEXEC);
        if (fd < 0) { perror("memfd_create"); abort(); }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) abort();
    char err[512] = "", err_read[512] = "";
    gguf_file *f = gguf_open(path, err, sizeof err);
    // Read into memory (--no-mmap): the same verdict and the same line.
    gguf_file *fr = gguf_open_with(path, &(gguf_load){.read_in = true}, err_read, sizeof err_read);
    if (!f != !fr || strcmp(err, err_read) != 0) {
        fprintf(stderr, "mapped and read in differ: '%s' vs '%s'\n", err, err_read);
        abort();
    }
    if (!f) {
        check_message(err, path);
        return 0;
    }
    touch(f);
    touch(fr);
    gguf_close(f);
    gguf_close(fr);
    ll_gguf *g = ll_gguf_open(path, err, sizeof err);
    if (!g) abort(); // it opened a moment ago
    for (int64_t i = 0; i < ll_gguf_n_kv(g); i++) {
        free(ll_gguf_kv_format(g, i, 3, 100));
        free(ll_gguf_kv_format(g, i, 0, 0));
        if (!ll_gguf_kv_type(g, i)[0]) abort();
    }
    for (int64_t i = 0; i < ll_gguf_n_tensors(g); i++) {
        ll_gguf_tensor_info t;
        if (!ll_gguf_tensor(g, i, &t) || !t.name || !t.type) abort();
    }
    // The hyperparameters `info` prints, for files that claim an architecture we run.
    char herr[512] = "";
    char *hp = ll_gguf_hparams(g, herr, sizeof herr);
    if (!hp && strchr(herr, '\n')) abort();
    free(hp);
    ll_gguf_close(g);
    return 0;
}

#ifdef FUZZ_REPLAY_MAIN
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz_replay.h"
#include "tests/gguf_badfiles.h"

static const char *corpus_dir; // --write-corpus
static int n_inputs = 0;

static void feed(const uint8_t *p, size_t n, const char *name) {
    n_inputs++;
    if (corpus_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", corpus_dir, name);
        FILE *f = fopen(path, "wb");
        if (!f || (n && fwrite(p, 1, n, f) != n)) { fprintf(stderr, "cannot write %s\n", path); exit(1); }
        fclose(f);
        return;
    }
    LLVMFuzzerTestOneInput(p, n);
}

int main(int argc, char **argv) {
    int first = 1;
    if (argc >= 3 && !strcmp(argv[1], "--write-corpus")) {
        corpus_dir = argv[2];
        mkdir(corpus_dir, 0755);
        first = 3;
    }
    char name[128];
    for (uint32_t v = 2; v <= 3; v++) {
        gbuf b = {0};
        gb_good(&b, v);
        snprintf(name, sizeof name, "good-v%u.gguf", v);
        feed(b.p, b.n, name);
        gb_free(&b);
    }
    for (size_t i = 0; i < GB_N_BAD_CASES; i++) {
        gbuf b = {0};
        gb_bad_cases[i].build(&b);
        snprintf(name, sizeof name, "bad-%s.gguf", gb_bad_cases[i].name);
        feed(b.p, b.n, name);
        gb_free(&b);
    }
    if (!corpus_dir) { // every prefix and byte mutations of the valid file
        gbuf b = {0};
        gb_good(&b, 3);
        for (size_t len = 0; len < b.n; len++) feed(b.p, len, "");
        for (size_t pos = 0; pos < b.n; pos++) {
            uint8_t old = b.p[pos];
            const uint8_t vals[4] = {0, 0xFF, (uint8_t)(old + 1), (uint8_t)(old - 1)};
            for (int k = 0; k < 4; k++) {
                b.p[pos] = vals[k];
                feed(b.p, b.n, "");
            }
            b.p[pos] = old;
        }
        gb_free(&b);
    }
    for (int i = first; i < argc; i++) fuzz_feed_path(argv[i]);
    printf("%s %d inputs\n", corpus_dir ? "wrote" : "replayed", n_inputs + fuzz_n_fed());
    return 0;
}
#endif
