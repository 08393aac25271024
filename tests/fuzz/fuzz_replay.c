// The plain-program side of the harnesses: fuzz_feed_path feeds a file, or every file of a
// directory, through the harness's LLVMFuzzerTestOneInput once, so the checked-in corpora run
// as ctests under the sanitizers without libFuzzer. The main below serves the text harnesses
// (fuzz_gbnf, fuzz_json_schema, fuzz_tokenizer): the paths on the command line, exit 77
// (skipped) when the harness's LLVMFuzzerInitialize finds no data to work on. fuzz_gguf has a
// main of its own (FUZZ_OWN_MAIN) that also makes its inputs.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int n_inputs = 0;

void fuzz_feed_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) { perror(path); exit(1); }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            fuzz_feed_path(sub);
        }
        if (d) closedir(d);
        return;
    }
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    size_t n = f && buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    if (f) fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    n_inputs++;
    free(buf);
}

int fuzz_n_fed(void) { return n_inputs; }

#ifndef FUZZ_OWN_MAIN
int LLVMFuzzerInitialize(int *argc, char ***argv);

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize(&argc, &argv) != 0) {
        puts("no data for this harness: skipped");
        return 77;
    }
    for (int i = 1; i < argc; i++) fuzz_feed_path(argv[i]);
    printf("replayed %d inputs\n", n_inputs);
    return n_inputs > 0 ? 0 : 1;
}
#endif
