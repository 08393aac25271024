// A private directory for a test's files: "$LLAMALITE_BUILD/<stem>.XXXXXX" (or under /tmp),
// so two runs at once (ctest -j, two people in one build dir) never share a file. Removed at
// the end when the test passed, kept for a look when it failed.
// Needs POSIX 2008 (mkdtemp): define _DEFAULT_SOURCE before the first #include.
#ifndef LLAMALITE_TESTS_SCRATCH_DIR_H
#define LLAMALITE_TESTS_SCRATCH_DIR_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline bool scratch_dir_make(char *buf, size_t n, const char *stem) {
    const char *build = getenv("LLAMALITE_BUILD");
    int len = snprintf(buf, n, "%s/%s.XXXXXX", build && *build ? build : "/tmp", stem);
    if (len < 0 || (size_t)len >= n || !mkdtemp(buf)) {
        fprintf(stderr, "cannot create a scratch directory %s\n", buf);
        return false;
    }
    return true;
}

// Removes the files directly in dir, then dir.
static inline void scratch_dir_remove(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path) unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

#endif
