// Hostile GGUF files: every crafted malformed file (tests/gguf_badfiles.h), every prefix of a
// valid file and byte mutations of it must be refused by gguf_open with one line naming the
// file and the problem, never a crash; `llamalite info` must exit 1 with exactly one line
// "llamalite: FILE: problem" on stderr and nothing on stdout.
// Read into memory instead of mapped (--no-mmap), the reader gives the same verdicts and lines.
#define _DEFAULT_SOURCE // mkdtemp
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/gguf/gguf.h"
#include "tests/gguf_badfiles.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

static char dir[1024];
static const char *bin; // the llamalite binary, NULL when not available
static int n_info_runs = 0;

static void write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno)); exit(1); }
    if (n && fwrite(p, 1, n, f) != n) { fprintf(stderr, "short write %s\n", path); exit(1); }
    fclose(f);
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 16);
    *n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    if (buf) buf[*n] = 0;
    fclose(f);
    return buf;
}

// Opens every piece of an opened file, so a reader that accepted something it should not
// have shows up under the sanitizers.
static void touch_everything(const gguf_file *f) {
    volatile double sink = 0;
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const char *key = gguf_key(f, i);
        sink += (double)strlen(key);
        CHECK(gguf_find_key(f, key) == i, "find_key(%s)", key);
        double x;
        if (gguf_kv_number(f, i, &x)) sink += x;
        gguf_str s = gguf_kv_string(f, i);
        for (uint64_t k = 0; k < s.len; k++) sink += s.ptr[k];
        uint64_t n = gguf_arr_n(f, i);
        enum gguf_vtype t = gguf_arr_type(f, i);
        for (uint64_t j = 0; j < n && j < 4096; j++) {
            if (t == GGUF_TYPE_STRING) {
                gguf_str e = gguf_arr_str(f, i, j);
                if (e.len) sink += e.ptr[0] + e.ptr[e.len - 1];
            } else {
                sink += gguf_arr_number(f, i, j);
            }
        }
        sink += (double)strlen(gguf_get_str(f, key, ""));
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        CHECK(gguf_find_tensor(f, t->name) == t, "find_tensor(%s)", t->name);
        const uint8_t *d = t->data;
        CHECK(t->size > 0, "tensor size");
        sink += d[0] + d[t->size - 1];
    }
    (void)sink;
}

// gguf_open refuses path with one line that names it (and contains expect, if given); read
// into memory instead of mapped (--no-mmap), the same line.
static void check_refused(const char *path, const char *expect, const char *what) {
    char err[512] = "", err_read[512] = "";
    gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK(f == NULL, "%s: accepted", what);
    if (f) { touch_everything(f); gguf_close(f); return; }
    gguf_file *fr = gguf_open_with(path, &(gguf_load){.read_in = true}, err_read, sizeof err_read);
    CHECK(fr == NULL && !strcmp(err, err_read), "%s: read in, %s: '%s'", what, fr ? "accepted" : "refused with",
          err_read);
    gguf_close(fr);
    size_t plen = strlen(path);
    CHECK(strlen(err) > plen + 2, "%s: empty message '%s'", what, err);
    CHECK(strncmp(err, path, plen) == 0 && err[plen] == ':', "%s: message does not name the file: '%s'", what, err);
    CHECK(strchr(err, '\n') == NULL, "%s: message has several lines: '%s'", what, err);
    bool controls = false;
    for (const unsigned char *q = (const unsigned char *)err; *q; q++)
        controls |= *q < 0x20 || *q == 0x7f || (q[0] == 0xC2 && q[1] >= 0x80 && q[1] < 0xA0);
    CHECK(!controls, "%s: message has terminal control characters: '%s'", what, err);
    if (expect) CHECK(strstr(err, expect) != NULL, "%s: message '%s' lacks '%s'", what, err, expect);
}

// Runs `llamalite info path`; returns its exit code, stdout and stderr in files.
static int run_info(const char *path, char **out, size_t *n_out, char **err, size_t *n_err) {
    char out_path[1100], err_path[1100];
    snprintf(out_path, sizeof out_path, "%s/info.stdout", dir);
    snprintf(err_path, sizeof err_path, "%s/info.stderr", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0) _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        execl(bin, bin, "info", path, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
    n_info_runs++;
    *out = read_all(out_path, n_out);
    *err = read_all(err_path, n_err);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void check_info_refuses(const char *path, const char *what) {
    if (!bin) return;
    char *out = NULL, *err = NULL;
    size_t n_out = 0, n_err = 0;
    int rc = run_info(path, &out, &n_out, &err, &n_err);
    CHECK(rc == 1, "%s: llamalite info exited %d", what, rc);
    CHECK(out && n_out == 0, "%s: llamalite info printed to stdout: %.200s", what, out ? out : "");
    char prefix[1200];
    snprintf(prefix, sizeof prefix, "llamalite: %s: ", path);
    bool one_line = err && n_err > 0 && err[n_err - 1] == '\n' && memchr(err, '\n', n_err - 1) == NULL;
    CHECK(one_line, "%s: stderr is not exactly one line: '%s'", what, err ? err : "");
    CHECK(err && strncmp(err, prefix, strlen(prefix)) == 0 && n_err > strlen(prefix) + 1,
          "%s: stderr '%s' does not start with '%s' and a problem", what, err ? err : "", prefix);
    free(out);
    free(err);
}

static void crafted_cases(void) {
    for (size_t i = 0; i < GB_N_BAD_CASES; i++) {
        const gb_case *c = &gb_bad_cases[i];
        gbuf b = {0};
        c->build(&b);
        char path[1200];
        snprintf(path, sizeof path, "%s/%s.gguf", dir, c->name);
        write_file(path, b.p, b.n);
        check_refused(path, c->expect, c->name);
        check_info_refuses(path, c->name);
        gb_free(&b);
    }
}

// The valid file opens (control: the refusals above are about the flaws, not the builder).
static void good_files(void) {
    for (uint32_t version = 2; version <= 3; version++) {
        gbuf b = {0};
        gb_good(&b, version);
        char path[1200], err[512] = "";
        snprintf(path, sizeof path, "%s/good-v%u.gguf", dir, version);
        write_file(path, b.p, b.n);
        gguf_file *f = gguf_open(path, err, sizeof err);
        CHECK(f != NULL, "good v%u refused: %s", version, err);
        if (f) {
            CHECK(gguf_n_kv(f) == GB_GOOD_N_KV && gguf_n_tensors(f) == 2, "good v%u counts", version);
            touch_everything(f);
            gguf_close(f);
        }
        if (bin) {
            char *out = NULL, *e = NULL;
            size_t n_out = 0, n_err = 0;
            int rc = run_info(path, &out, &n_out, &e, &n_err);
            CHECK(rc == 0 && n_err == 0, "info on good v%u: exit %d, stderr '%s'", version, rc, e ? e : "");
            free(out);
            free(e);
        }
        gb_free(&b);
    }
}

// Every proper prefix of the valid file is refused (its last tensor ends at the end of the
// file); llamalite info is run on the cuts at field boundaries.
static void truncations(void) {
    gbuf b = {0};
    gb_good(&b, 3);
    char path[1200];
    snprintf(path, sizeof path, "%s/truncated.gguf", dir);
    int n_info = 0;
    for (size_t len = 0; len < b.n; len++) {
        write_file(path, b.p, len);
        char what[64];
        snprintf(what, sizeof what, "prefix of %zu/%zu bytes", len, b.n);
        check_refused(path, NULL, what);
        bool at_mark = false;
        for (int m = 0; m < b.n_marks; m++) at_mark |= b.marks[m] == len;
        if (at_mark) {
            check_info_refuses(path, what);
            n_info++;
        }
    }
    CHECK(n_info > 50, "only %d field boundaries", n_info);
    gb_free(&b);
}

// Single-byte changes anywhere before the tensor data: the reader may accept or refuse, but
// a refusal is one line and an acceptance must be safe to use.
static void mutations(void) {
    gbuf b = {0};
    gb_good(&b, 3);
    size_t data_start = b.n - 66; // 32 bytes of "a" + 34 of "b"
    char path[1200];
    snprintf(path, sizeof path, "%s/mutated.gguf", dir);
    const uint8_t values[] = {0x00, 0xFF, 0x7F, 0x80};
    int refused = 0, accepted = 0;
    for (size_t pos = 0; pos < data_start; pos++) {
        for (size_t v = 0; v < sizeof values + 2; v++) {
            uint8_t old = b.p[pos];
            b.p[pos] = v < sizeof values ? values[v] : (uint8_t)(old + (v == sizeof values ? 1 : -1));
            if (b.p[pos] == old) continue;
            write_file(path, b.p, b.n);
            char err[512] = "", err_read[512] = "";
            gguf_file *f = gguf_open(path, err, sizeof err);
            gguf_file *fr = gguf_open_with(path, &(gguf_load){.read_in = true}, err_read, sizeof err_read);
            CHECK(!f == !fr && !strcmp(err, err_read), "mutation at %zu: mapped '%s', read in '%s'", pos, err, err_read);
            if (fr) touch_everything(fr);
            gguf_close(fr);
            if (f) {
                touch_everything(f);
                gguf_close(f);
                accepted++;
            } else {
                CHECK(err[0] && !strchr(err, '\n') && !strncmp(err, path, strlen(path)),
                      "mutation at %zu: bad message '%s'", pos, err);
                refused++;
            }
            b.p[pos] = old;
        }
    }
    CHECK(refused > 0 && accepted > 0, "mutations: %d refused, %d accepted", refused, accepted);
    gb_free(&b);
}

static void not_files(void) {
    check_refused("/", "not a regular file", "directory");
    char path[1200];
    snprintf(path, sizeof path, "%s/does-not-exist.gguf", dir);
    check_refused(path, "No such file", "missing file");
    check_info_refuses(path, "missing file");
}

int main(void) {
    if (!scratch_dir_make(dir, sizeof dir, "gguf_bad")) return 1;
    bin = getenv("LLAMALITE_BIN");
    if (bin && access(bin, X_OK) != 0) bin = NULL;
    if (!bin) fprintf(stderr, "LLAMALITE_BIN not set: llamalite info is not checked\n");
    good_files();
    crafted_cases();
    truncations();
    mutations();
    not_files();
    printf("%zu crafted files, %d llamalite info runs\n", GB_N_BAD_CASES, n_info_runs);
    if (test_failures) fprintf(stderr, "the files are in %s\n", dir);
    else scratch_dir_remove(dir);
    return test_result("test_gguf_bad");
}
