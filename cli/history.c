// The REPL's input history: a bounded list of entries, kept in a file between sessions.
//
// File format: one entry per line, oldest first; a '\n' inside an entry is written as "\n"
// and a backslash as "\\", so multi-line messages survive the round trip.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lineedit.h"
#include "llamalite.h"

void le_history_init(le_history *h, int max) {
    memset(h, 0, sizeof *h);
    h->max = max > 0 ? max : 1000;
}

void le_history_free(le_history *h) {
    for (int i = 0; i < h->n; i++) free(h->items[i]);
    free(h->items);
    memset(h, 0, sizeof *h);
}

bool le_history_add(le_history *h, const char *s) {
    if (!s || !*s) return true;
    if (h->n && !strcmp(h->items[h->n - 1], s)) return true;
    if (h->n == h->max) { // drop the oldest
        free(h->items[0]);
        memmove(h->items, h->items + 1, sizeof *h->items * (size_t)(h->n - 1));
        h->n--;
    }
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        char **ni = realloc(h->items, sizeof *ni * (size_t)cap);
        if (!ni) return false;
        h->items = ni;
        h->cap = cap;
    }
    char *copy = strdup(s);
    if (!copy) return false;
    h->items[h->n++] = copy;
    return true;
}

bool le_history_load(le_history *h, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool ok = true;
    while (ok && (n = getline(&line, &cap, f)) >= 0) {
        if (n && line[n - 1] == '\n') line[--n] = 0;
        size_t o = 0;
        for (ssize_t i = 0; i < n; i++) {
            if (line[i] == '\\' && i + 1 < n) {
                i++;
                line[o++] = line[i] == 'n' ? '\n' : line[i];
            } else {
                line[o++] = line[i];
            }
        }
        line[o] = 0;
        ok = le_history_add(h, line);
    }
    free(line);
    fclose(f);
    return ok;
}

// mkdir -p of the directory part of path.
static void make_parent_dirs(const char *path) {
    char *d = strdup(path);
    if (!d) return;
    for (char *p = d + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(d, 0700);
        *p = '/';
    }
    free(d);
}

bool le_history_save(const le_history *h, const char *path) {
    make_parent_dirs(path);
    ll_outfile *out = ll_outfile_open(path, NULL, 0); // replaces the old history only when written
    if (!out) return false;
    FILE *f = ll_outfile_stream(out);
    for (int i = 0; i < h->n; i++) {
        for (const char *s = h->items[i]; *s; s++) {
            if (*s == '\n') fputs("\\n", f);
            else if (*s == '\\') fputs("\\\\", f);
            else fputc(*s, f);
        }
        fputc('\n', f);
    }
    return ll_outfile_close(out, true, NULL, 0);
}

char *le_history_default_path(void) {
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char *p = NULL;
    if (state && *state) {
        size_t n = strlen(state) + 32;
        if ((p = malloc(n))) snprintf(p, n, "%s/llamalite/history", state);
    } else if (home && *home) {
        size_t n = strlen(home) + 32;
        if ((p = malloc(n))) snprintf(p, n, "%s/.llamalite_history", home);
    }
    return p;
}
