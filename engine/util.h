// Small helpers shared by the engine's files.
#ifndef LLAMALITE_UTIL_H
#define LLAMALITE_UTIL_H

#include <stddef.h>

// Formats a one-line error message into err (ignored when err is NULL or errlen is 0).
void ll_set_err(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

double ll_now_ms(void); // monotonic clock in milliseconds

#endif
