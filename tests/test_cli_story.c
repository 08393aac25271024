// End-to-end: `llamalite -m stories260K.gguf -p "Once upon a time" -n 100 --temp 0` prints the
// reference's greedy story (the golden tokens, detokenized here with the engine's vocab) and
// nothing else on stdout; --echo prepends the prompt; sampled output from a Unicode prompt is
// valid UTF-8. Needs $LLAMALITE_BIN and ../shared (else skipped).
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/llamalite.h"
#include "tests/test_util.h"

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

// Strict UTF-8 check (no overlongs, no surrogates, nothing above U+10FFFF).
static bool valid_utf8(const unsigned char *s) {
    while (*s) {
        unsigned c = *s;
        int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (n < 0) return false;
        unsigned cp = n == 0 ? c : n == 1 ? (c & 31) : n == 2 ? (c & 15) : (c & 7);
        for (int i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i] & 63);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
            return false;
        s += n + 1;
    }
    return true;
}

int main(void) {
    const char *shared = test_shared_dir();
    const char *bin = getenv("LLAMALITE_BIN");
    if (!shared || !bin || access(bin, X_OK) != 0) {
        fprintf(stderr, "test_cli_story: skipped (needs ../shared and $LLAMALITE_BIN)\n");
        return TEST_SKIP;
    }
    char model_path[4096], golden_path[4096];
    snprintf(model_path, sizeof model_path, "%s/models/stories260K.gguf", shared);
    snprintf(golden_path, sizeof golden_path, "%s/golden/stories260K.jsonl", shared);

    // The golden story: the chosen tokens of the first line ("Once upon a time").
    FILE *f = fopen(golden_path, "rb");
    CHECK(f != NULL, "cannot open %s", golden_path);
    if (!f) return test_result("test_cli_story");
    static char line[1 << 20];
    CHECK(fgets(line, sizeof line, f) != NULL, "empty golden file");
    fclose(f);
    CHECK(strstr(line, "\"prompt\":\"Once upon a time\"") != NULL, "unexpected first golden prompt");

    char err[256];
    ll_model_params mp = ll_model_default_params();
    mp.vocab_only = true;
    ll_model *m = ll_model_load(model_path, &mp, err, sizeof err);
    CHECK(m != NULL, "load: %s", err);
    if (!m) return test_result("test_cli_story");
    const ll_vocab *v = ll_model_get_vocab(m);
    static char expected[1 << 16];
    size_t n_exp = 0;
    int n_tok = 0;
    ll_detok dt = {0};
    for (const char *p = strstr(line, "\"token\":"); p; p = strstr(p + 1, "\"token\":")) {
        ll_token t = atoi(p + 8);
        n_exp += ll_detok_push(&dt, v, t, false, expected + n_exp, sizeof expected - n_exp - 16);
        n_tok++;
    }
    n_exp += ll_detok_flush(&dt, expected + n_exp, sizeof expected - n_exp - 1);
    expected[n_exp] = 0;
    ll_model_free(m);
    CHECK(n_tok == 96 && n_exp > 100, "golden story: %d tokens, %zu bytes", n_tok, n_exp);

    // stdout is exactly the generated text: the 100 tokens start with the 96 golden ones.
    for (int threads = 1; threads <= 2; threads++) {
        char t[4];
        snprintf(t, sizeof t, "%d", threads);
        char *args[] = {(char *)bin, "-m", model_path, "-p", "Once upon a time", "-n", "100",
                        "--temp", "0", "-t", t, NULL};
        int status;
        char *out = run_capture(args, &status);
        CHECK(out && status == 0, "-t %s: exit status %d", t, status);
        if (out) {
            CHECK(strncmp(out, expected, n_exp) == 0, "-t %s: story differs:\n got: %s\nwant: %s",
                  t, out, expected);
            CHECK(strlen(out) > n_exp, "-t %s: no text after the golden tokens", t);
        }
        free(out);
    }

    // --echo puts the prompt first.
    {
        char *args[] = {(char *)bin, "-m", model_path, "-p", "Once upon a time", "-n", "20",
                        "--temp", "0", "--echo", "--log-disable", NULL};
        int status;
        char *out = run_capture(args, &status);
        CHECK(out && status == 0, "--echo: exit status %d", status);
        if (out) {
            size_t pl = strlen("Once upon a time");
            CHECK(strncmp(out, "Once upon a time", pl) == 0 && strncmp(out + pl, expected, 20) == 0,
                  "--echo: got '%s'", out);
        }
        free(out);
    }

    // A Unicode prompt and hot sampling: byte tokens come out, yet stdout stays valid UTF-8.
    for (int seed = 1; seed <= 3; seed++) {
        char s[8];
        snprintf(s, sizeof s, "%d", seed);
        char *args[] = {(char *)bin, "-m", model_path, "-p", "\xC3\x9Cn\xC3\xAF 🦙 caf\xC3\xA9 日本語",
                        "-n", "200", "--temp", "2", "--top-k", "0", "--top-p", "1", "--min-p", "0",
                        "-s", s, "--log-disable", NULL};
        int status;
        char *out = run_capture(args, &status);
        CHECK(out && status == 0, "utf-8 seed %s: exit status %d", s, status);
        if (out) CHECK(valid_utf8((const unsigned char *)out), "seed %s: invalid UTF-8 output", s);
        free(out);
    }
    return test_result("test_cli_story");
}
