// Small helpers shared by the engine's files.
#ifndef LLAMALITE_UTIL_H
#define LLAMALITE_UTIL_H

#include <stdarg.h>
#include <stddef.h>

// Formats a one-line error message into err (ignored when err is NULL or errlen is 0).
void ll_set_err(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

// Line and column (from 1; columns count characters, not UTF-8 continuation bytes) of byte pos
// of a text that ends at len bytes or at a NUL.
void ll_line_col(const char *src, size_t len, size_t pos, int *line, int *col);

// ll_set_err with a "line:col: " prefix locating byte pos of src (as ll_line_col).
void ll_vset_err_at(char *err, size_t errlen, const char *src, size_t len, size_t pos, const char *fmt,
                    va_list ap);

double ll_now_ms(void); // monotonic clock in milliseconds

// The value of hex digit c (either case), or -1.
static inline int ll_hex_digit(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

// The value of the 4 hex digits at s (a \uXXXX escape's), or -1.
static inline int ll_hex4(const char *s) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        const int d = ll_hex_digit((unsigned char)s[i]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

#endif
