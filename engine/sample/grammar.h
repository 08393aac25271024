// Internal grammar interface: the compiled form of a GBNF grammar and the pushdown matcher
// the sampler constraint (grammar_sampler.c) and ll_grammar_match drive.
//
// Compiled form. Every rule is a list of alternatives; an alternative is a run of elements in
// elems[] ending with GE_END. An element is a uint32: the top two bits say what it is,
// the rest is a character-set id (GE_CHAR) or a rule id (GE_REF). Groups and repetitions of
// the source became extra rules, so there is nothing else. Character sets are sorted,
// merged code-point ranges (negation already applied) plus a bitmap for ASCII.
//
// Matcher. A parse position is a stack of element positions: the top is the character
// element to match next, the ones below are where to continue when the rule above ends.
// Stacks are hash-consed linked lists (a node is (position, parent node)), so a stack is one
// uint32 id, equal stacks have equal ids, sets of stacks deduplicate by id, and pushing shares
// the tail. Id 0 is the empty stack: the grammar has matched completely. The matcher holds
// the node arena; a "set" is an array of stack ids, always expanded so that every top is a
// character element (or the empty stack).
#ifndef LLAMALITE_GRAMMAR_INTERNAL_H
#define LLAMALITE_GRAMMAR_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "llamalite.h"

enum { GE_END = 0, GE_CHAR = 1, GE_REF = 2 };
#define GE_TYPE(e) ((uint32_t)(e) >> 30)
#define GE_VAL(e) ((uint32_t)(e) & 0x3FFFFFFFu)
#define GE_MAKE(t, v) (((uint32_t)(t) << 30) | (uint32_t)(v))

#define GR_MAX_CODEPOINT 0x10FFFFu

typedef struct {
    uint32_t lo, hi; // inclusive
} gr_range;

typedef struct {
    uint64_t ascii[2]; // bit c set: code point c < 128 is in the set
    uint32_t first, n; // its ranges: ranges[first .. first + n), sorted, disjoint
} gr_charset;

struct ll_grammar {
    uint32_t *elems;
    uint32_t n_elems;
    uint32_t *alts;      // start of each alternative in elems
    uint32_t *rule_alts; // rule r's alternatives: alts[rule_alts[r] .. rule_alts[r + 1])
    uint32_t n_rules;
    gr_charset *sets;
    uint32_t n_sets;
    gr_range *ranges;
    uint32_t n_ranges;
    uint32_t root;
    // rest_min[p]: fewest bytes that match the elements from p to the end of its alternative
    // (GR_FAR when nothing can); for steering toward completion when tokens run short.
    uint32_t *rest_min;
};

#define GR_FAR (1u << 28)

bool gr_charset_has(const ll_grammar *g, uint32_t set, uint32_t cp);
// Whether the set holds any code point in [lo, hi].
bool gr_charset_meets(const ll_grammar *g, uint32_t set, uint32_t lo, uint32_t hi);

ll_grammar *gr_copy(const ll_grammar *g);

// An incomplete UTF-8 sequence carried between bytes: the bits so far and how many
// continuation bytes are still due (0: none pending).
typedef struct {
    uint32_t value;
    int32_t n_remain;
    uint32_t min; // smallest code point the full sequence may encode (rejects overlong forms)
} gr_partial;

typedef struct {
    uint32_t *v;
    uint32_t n, cap;
} gr_set;

bool gr_set_reserve(gr_set *s, uint32_t extra);
void gr_set_free(gr_set *s);

typedef struct gr_matcher gr_matcher;

gr_matcher *gr_matcher_new(const ll_grammar *g); // g must outlive the matcher
void gr_matcher_free(gr_matcher *m);
// Appends the stacks of the grammar's start (root expanded) to out. False when out of memory.
bool gr_start(gr_matcher *m, gr_set *out);
// Partial parses a step may hold. An ambiguous grammar (nested repetitions and options over
// any character) can multiply them with every byte; past this it is refused as too ambiguous
// instead of taking exponential time and memory.
#define GR_MAX_STACKS (1u << 16)

// Advances the stacks io->v[first .. first+n) (with the pending sequence *p) by one byte:
// appends the surviving stacks to io (after the input, which stays in place), updates *p,
// returns how many were appended (0: the byte is not allowed) or -1 when out of memory or
// past GR_MAX_STACKS (then gr_too_ambiguous says so).
int gr_step(gr_matcher *m, gr_set *io, uint32_t first, uint32_t n, gr_partial *p, uint8_t byte);
// The last gr_step stopped at GR_MAX_STACKS.
bool gr_too_ambiguous(const gr_matcher *m);
// Work done so far (stacks stepped and expansion items visited, ever): a measure of time that
// lets a caller bound a whole vocabulary's walk.
uint64_t gr_work(const gr_matcher *m);
// Lets the matcher do `more` work from now on; past it, steps fail as too ambiguous
// (UINT64_MAX: no limit, the default).
void gr_set_work_limit(gr_matcher *m, uint64_t more);
// The grammar has matched completely: the empty stack is there and no sequence is pending.
bool gr_can_end(const uint32_t *in, uint32_t n, const gr_partial *p);
// Some stack can still take more input.
bool gr_can_continue(const uint32_t *in, uint32_t n);
uint32_t gr_matcher_n_nodes(const gr_matcher *m);
// Fewest bytes that complete the grammar from the stacks in[0..n) with pending sequence *p
// (GR_FAR if none can).
uint32_t gr_min_completion(gr_matcher *m, const uint32_t *in, uint32_t n, const gr_partial *p);
// Drops every node not used by the stacks in cur (renumbering them in place). Call between
// steps when gr_matcher_n_nodes grows large. False when out of memory (nothing changed).
bool gr_matcher_compact(gr_matcher *m, gr_set *cur);

#endif
