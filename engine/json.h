// A small JSON DOM: parse a document into a tree, look values up, write them back compactly.
// Strict RFC 8259 (no comments, no trailing commas), nesting limited to JSON_MAX_DEPTH, object
// members kept in document order (duplicates kept too; lookups find the first).
// Internal to the engine (JSON Schema translation); cli code reaches it through llamalite.h.
#ifndef LLAMALITE_JSON_H
#define LLAMALITE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 512

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;
    bool boolean;
    double number;
    char *text;          // strings: the decoded bytes (NUL-terminated; may hold NULs)
                         // numbers: the literal as written
    size_t len;          // length of text
    json_value **items;  // arrays and objects: n values
    char **keys;         // objects: n decoded keys (NUL-terminated)
    size_t *key_lens;
    size_t n;
};

// Parses text[0..len). On error returns NULL and writes "LINE:COL: reason" to err.
json_value *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(json_value *v);

// The first member named key of an object (NULL if v is not an object or has none).
const json_value *json_get(const json_value *v, const char *key);
// Whether a number is an integer value (no fraction, within +-2^53).
bool json_is_integer(const json_value *v);
// Deep equality (numbers by value, objects member by member in order).
bool json_equal(const json_value *a, const json_value *b);

// Appends v's compact serialization (no spaces; strings escaped as JSON requires, non-ASCII
// kept as UTF-8) to *buf (malloc'd, grown as needed; *len/*cap track it). False on OOM.
bool json_write(const json_value *v, char **buf, size_t *len, size_t *cap);
// Appends s[0..n) as a JSON string literal, quotes included.
bool json_write_string(const char *s, size_t n, char **buf, size_t *len, size_t *cap);

#endif
