// Minimal test helpers: CHECK records a failure and continues; main returns test_result().
#ifndef LLAMALITE_TEST_UTIL_H
#define LLAMALITE_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>

static int test_failures = 0;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            test_failures++;                                                   \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

#define TEST_SKIP 77

// Path of the shared test data directory, or NULL (then the test should exit TEST_SKIP).
static inline const char *test_shared_dir(void) {
    const char *d = getenv("LLAMALITE_SHARED");
    if (!d || !*d) d = "../shared";
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/README.md", d);
    FILE *f = fopen(probe, "rb");
    if (!f) return NULL;
    fclose(f);
    return d;
}

static inline int test_result(const char *name) {
    if (test_failures) fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
    return test_failures ? 1 : 0;
}

#endif
