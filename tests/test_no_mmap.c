// --no-mmap (ll_model_params.no_mmap): the model file is read into memory, not mapped.
//   - the file does not appear among the process's mappings (/proc/self/maps), while a mapped
//     load does (control);
//   - the progress callback counts the bytes read, up to the file size;
//   - the logits are bitwise those of the mapped load (stories260K and gemma3's family model);
//   - a file that shrinks or is not there gets the same one-line errors as a mapped open
//     (the malformed files themselves are in test_gguf_bad.c).
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/llamalite.h"
#include "tests/test_util.h"

static bool mapped(const char *path) {
    char real[4096], line[8192];
    if (!realpath(path, real)) return false;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return false;
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        const size_t n = strlen(line), r = strlen(real);
        found = n >= r && !strcmp(line + n - r, real);
    }
    fclose(f);
    return found;
}

typedef struct {
    uint64_t done, total;
    int calls;
} progress_seen;

static void on_progress(void *ud, uint64_t done, uint64_t total) {
    progress_seen *p = ud;
    CHECK(done >= p->done && done <= total, "progress %llu of %llu after %llu", (unsigned long long)done,
          (unsigned long long)total, (unsigned long long)p->done);
    p->done = done;
    p->total = total;
    p->calls++;
}

static float *logits_of(ll_model *m, int *n_vocab) {
    char err[256];
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 1;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    CHECK(c != NULL, "context: %s", err);
    if (!c) return NULL;
    *n_vocab = ll_vocab_n_tokens(ll_model_get_vocab(m));
    const ll_token toks[] = {1, 403, 407, 261, 378};
    float *out = NULL;
    if (ll_decode(c, toks, 5, err, sizeof err) == 0) {
        out = malloc(sizeof(float) * (size_t)*n_vocab);
        if (out) memcpy(out, ll_get_logits(c), sizeof(float) * (size_t)*n_vocab);
    }
    CHECK(out != NULL, "decode: %s", err);
    ll_context_free(c);
    return out;
}

static void check_model(const char *path) {
    char err[512];
    struct stat st;
    if (stat(path, &st) != 0) return;
    ll_model_params mp = ll_model_default_params();
    ll_model *mm = ll_model_load(path, &mp, err, sizeof err);
    CHECK(mm != NULL, "%s mapped: %s", path, err);
    CHECK(mm && mapped(path), "%s: a mapped load is not among the mappings (the check is blind)", path);
    int nv = 0, nv2 = 0;
    float *a = mm ? logits_of(mm, &nv) : NULL;
    ll_model_free(mm);

    progress_seen seen = {0};
    mp.no_mmap = true;
    mp.progress = on_progress;
    mp.progress_ud = &seen;
    ll_model *mr = ll_model_load(path, &mp, err, sizeof err);
    CHECK(mr != NULL, "%s read in: %s", path, err);
    CHECK(mr && !mapped(path), "%s: --no-mmap left the file mapped", path);
    CHECK(seen.calls > 0 && seen.done == (uint64_t)st.st_size && seen.total == (uint64_t)st.st_size,
          "%s: progress saw %llu of %llu bytes in %d calls (file: %lld)", path, (unsigned long long)seen.done,
          (unsigned long long)seen.total, seen.calls, (long long)st.st_size);
    float *b = mr ? logits_of(mr, &nv2) : NULL;
    CHECK(a && b && nv == nv2 && !memcmp(a, b, sizeof(float) * (size_t)nv), "%s: logits differ read in", path);
    printf("%s: read in (%lld bytes, %d progress calls), logits identical to the mapped load\n", path,
           (long long)st.st_size, seen.calls);
    ll_model_free(mr);
    free(a);
    free(b);
}

int main(void) {
    char err_map[512] = "", err_read[512] = "";
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load("/nonexistent/model.gguf", &mp, err_map, sizeof err_map);
    mp.no_mmap = true;
    ll_model *r = ll_model_load("/nonexistent/model.gguf", &mp, err_read, sizeof err_read);
    CHECK(!m && !r && err_map[0] && !strcmp(err_map, err_read), "missing file: '%s' vs '%s'", err_map, err_read);

    const char *dir = test_shared_dir();
    if (!dir) return test_failures ? 1 : TEST_SKIP;
    char path[4096];
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", dir);
    check_model(path);
    snprintf(path, sizeof path, "%s/models/arch/gemma3.gguf", dir);
    check_model(path);
    return test_result("test_no_mmap");
}
