// A small JSON reader (RFC 8259: objects, arrays, strings with every escape including \uXXXX
// surrogate pairs, numbers, true/false/null) and a string writer. Used by `llamalite template`
// and the REPL's /save and /load.
#ifndef LLAMALITE_CLI_JSON_H
#define LLAMALITE_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json {
    json_type type;
    bool b;              // JSON_BOOL
    double num;          // JSON_NUMBER
    char *str;           // JSON_STRING: UTF-8, NUL-terminated (str_len excludes the NUL)
    size_t str_len;
    struct json *items;  // JSON_ARRAY elements, JSON_OBJECT values
    char **keys;         // JSON_OBJECT keys (same order as items)
    size_t n;
} json;

// Parses len bytes (one value, surrounding whitespace allowed). Returns NULL with
// "line L, column C: reason" in err on bad input or when out of memory.
json *json_parse(const char *s, size_t len, char *err, size_t errlen);
void json_free(json *j);
// The value of key in an object (the last one if repeated), or NULL.
const json *json_get(const json *obj, const char *key);
// The string of a JSON_STRING value, or NULL for anything else (including NULL).
const char *json_str(const json *j);
// Writes s as a JSON string literal (quotes included; control characters escaped).
void json_write_string(FILE *f, const char *s);

#endif
