// Output files that a failed write cannot destroy (see ll_outfile in llamalite.h): write to a
// temporary file beside the target, rename it into place at the end; special files are
// written in place and left alone.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llamalite.h"
#include "util.h"

struct ll_outfile {
    FILE *f;
    char *name; // as the caller gave it, for messages
    char *path; // where the file ends up (a symlink's target)
    char *tmp;  // the temporary file beside it; NULL when writing in place
};

static void outfile_free(ll_outfile *o) {
    free(o->name);
    free(o->path);
    free(o->tmp);
    free(o);
}

// The mode a new file gets from fopen: 0666 less the umask (mkstemp would give 0600).
static mode_t new_file_mode(void) {
    mode_t mask = umask(0);
    umask(mask);
    return 0666 & ~mask;
}

// A device, FIFO or socket: opened for writing where it is; replacing it would be wrong
// (root would otherwise swap /dev/full for a regular file) and removing it a disaster.
static ll_outfile *open_in_place(ll_outfile *o, const char *path, char *err, size_t errlen) {
    o->f = fopen(path, "wb");
    if (!o->f) {
        ll_set_err(err, errlen, "%s: %s", path, strerror(errno));
        outfile_free(o);
        return NULL;
    }
    return o;
}

ll_outfile *ll_outfile_open(const char *path, char *err, size_t errlen) {
    ll_outfile *o = calloc(1, sizeof *o);
    if (o && !(o->name = strdup(path))) { free(o); o = NULL; }
    if (!o) { ll_set_err(err, errlen, "%s: out of memory", path); return NULL; }
    struct stat st;
    const bool exists = stat(path, &st) == 0; // follows symlinks
    if (exists && S_ISDIR(st.st_mode)) {
        ll_set_err(err, errlen, "%s: is a directory", path);
        outfile_free(o);
        return NULL;
    }
    if (exists && !S_ISREG(st.st_mode)) return open_in_place(o, path, err, errlen);

    o->path = exists ? realpath(path, NULL) : strdup(path);
    size_t n = o->path ? strlen(o->path) + 16 : 0;
    o->tmp = o->path ? malloc(n) : NULL;
    if (!o->tmp) {
        ll_set_err(err, errlen, "%s: %s", path, o->path ? "out of memory" : strerror(errno));
        outfile_free(o);
        return NULL;
    }
    snprintf(o->tmp, n, "%s.tmp.XXXXXX", o->path);
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        ll_set_err(err, errlen, "%s: cannot create a file beside it: %s", path, strerror(errno));
        outfile_free(o);
        return NULL;
    }
    // The same permissions as the file it replaces, or as a newly created one.
    if (fchmod(fd, exists ? st.st_mode & 07777 : new_file_mode()) != 0 || !(o->f = fdopen(fd, "wb"))) {
        ll_set_err(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        remove(o->tmp);
        outfile_free(o);
        return NULL;
    }
    return o;
}

FILE *ll_outfile_stream(ll_outfile *o) { return o->f; }

bool ll_outfile_close(ll_outfile *o, bool keep, char *err, size_t errlen) {
    if (!o) return false;
    bool ok = keep;
    int saved = 0;
    if (ok && (fflush(o->f) != 0 || ferror(o->f))) { ok = false; saved = errno; }
    if (fclose(o->f) != 0 && ok) { ok = false; saved = errno; }
    if (ok && o->tmp && rename(o->tmp, o->path) != 0) { ok = false; saved = errno; }
    if (!ok && o->tmp) remove(o->tmp); // only ever our own temporary file
    if (!ok && keep) {
        ll_set_err(err, errlen, "%s: write failed: %s", o->name,
                   saved ? strerror(saved) : "I/O error");
    }
    outfile_free(o);
    return ok;
}
