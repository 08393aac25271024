// Small helpers shared by the engine's files (see util.h).
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void ll_set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void ll_line_col(const char *src, size_t len, size_t pos, int *line, int *col) {
    int l = 1, c = 1;
    for (size_t i = 0; i < pos && i < len && src[i]; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch == '\n') { l++; c = 1; }
        else if ((ch & 0xC0) != 0x80) c++;
    }
    *line = l;
    *col = c;
}

void ll_vset_err_at(char *err, size_t errlen, const char *src, size_t len, size_t pos, const char *fmt,
                    va_list ap) {
    if (!err || !errlen) return;
    int line, col;
    ll_line_col(src, len, pos, &line, &col);
    int k = snprintf(err, errlen, "%d:%d: ", line, col);
    if (k >= 0 && (size_t)k < errlen) vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
}

double ll_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
